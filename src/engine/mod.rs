//! Inference backends: one trait for running the prior and the decoder, one folder per backend.

pub mod cpu;

use crate::error::Result;

/// Runs a package's two graphs. Implementations plan once at construction and reuse their
/// buffers across frames; callers own the input and output buffers.
pub trait Backend: Send {
    /// Backend name for logs and benchmarks.
    fn name(&self) -> &str;
    /// Normalised NCHW image (1×3×H×W) → token ids (h×w, row-major) written into `tokens`.
    fn run_prior(&mut self, image: &[f32], tokens: &mut Vec<i64>) -> Result<()>;
    /// Token ids (h×w) → maskige (1×3×H×W, the manifest's output range) written into `maskige`.
    fn run_decoder(&mut self, tokens: &[i64], maskige: &mut Vec<f32>) -> Result<()>;
    /// Image → maskige in one call. A GPU backend overrides it to keep the token grid on the
    /// device between the two graphs; `tokens` then holds the grid only if the backend reads it
    /// back (it may leave it empty).
    fn run(&mut self, image: &[f32], tokens: &mut Vec<i64>, maskige: &mut Vec<f32>) -> Result<()> {
        self.run_prior(image, tokens)?;
        self.run_decoder(tokens, maskige)
    }
}
