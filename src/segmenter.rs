//! [`Segmenter`]: the [`FramePath`] driven frame after frame on the caller's thread.

use image::{GrayImage, RgbImage};

use crate::engine::{cpu::CpuBackend, create_backend, Backend, BackendOptions, Graphs};
use crate::error::Result;
use crate::frame_path::{Fit, FramePath, ImageView, StageTimings};
use crate::model::ModelPackage;

/// Segments frames with one model; every buffer is reused from frame to frame.
pub struct Segmenter {
    package: ModelPackage,
    path: FramePath,
    /// Stage times of the last frame.
    pub timings: StageTimings,
}

impl Segmenter {
    /// The package's fp32 graphs (or `variant`) on the CPU backend (gss's kernels or tract's, as
    /// `Kernels::Auto` picks), every core, the package's own fit.
    pub fn new(package: ModelPackage, variant: Option<&str>) -> Result<Self> {
        let backend = Box::new(CpuBackend::new(&package, variant)?);
        Self::with_backend(package, backend)
    }

    /// The backend `options` describe (`auto` may pick the GPU).
    pub fn with_options(package: ModelPackage, options: &BackendOptions) -> Result<Self> {
        let backend = create_backend(&package, options, Graphs::Both)?;
        Self::with_backend(package, backend)
    }

    /// A backend built by the caller for both graphs of `package`.
    pub fn with_backend(package: ModelPackage, backend: Box<dyn Backend>) -> Result<Self> {
        let path = FramePath::new(&package, backend, Graphs::Both, package.manifest.input.fit)?;
        Ok(Self {
            package,
            path,
            timings: StageTimings::default(),
        })
    }

    /// Fits frames of another shape with `fit` instead of the package's choice. For
    /// [`Fit::Native`], open the package [`at its native size`](ModelPackage::at_input_size)
    /// first; the fit left to do is then a small stretch.
    pub fn with_fit(mut self, fit: Fit) -> Self {
        self.path.set_fit(fit);
        self
    }

    pub fn fit(&self) -> Fit {
        self.path.fit()
    }

    pub fn package(&self) -> &ModelPackage {
        &self.package
    }

    pub fn backend_name(&self) -> &str {
        self.path.backend_name()
    }

    /// Token grid of the last frame (h×w, row-major), when the backend reads it back.
    pub fn tokens(&self) -> &[i64] {
        self.path.tokens()
    }

    /// The prior's confidence per grid cell for the last frame (h×w, the chosen token's
    /// probability), when the backend was built with `BackendOptions::confidence` and the prior
    /// ends with token logits.
    pub fn confidence(&self) -> Option<&[f32]> {
        self.path.confidence()
    }

    /// Share of a full decode the last frame's decoder run did: below 1 when the backend was
    /// built with `BackendOptions::reuse` and only some tiles were decoded again.
    pub fn decoded_share(&self) -> f32 {
        self.path.decoded_share()
    }

    /// Class map (u8 ids) at the image's own size, in a new image.
    pub fn segment(&mut self, image: &RgbImage) -> Result<GrayImage> {
        let mut out = GrayImage::new(image.width(), image.height());
        self.segment_into(image, &mut out)?;
        Ok(out)
    }

    /// Class map at the image's own size, written into the caller's buffer (reallocated only when
    /// the frame size changes), so a stream allocates no output per frame.
    pub fn segment_into(&mut self, image: &RgbImage, out: &mut GrayImage) -> Result<()> {
        self.timings = self.path.segment_into(image, out)?;
        Ok(())
    }

    /// [`segment_into`](Segmenter::segment_into) for a frame in the caller's memory (a numpy
    /// array, a camera buffer; rows may be padded, channels BGR), read in place: no copy of the
    /// frame is made.
    pub fn segment_view_into(&mut self, image: ImageView, out: &mut GrayImage) -> Result<()> {
        self.timings = self.path.segment_view_into(image, out)?;
        Ok(())
    }
}
