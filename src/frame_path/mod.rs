//! The frame path: one frame in, one class map out. It owns the three stages and their buffers,
//!
//! ```text
//! RgbImage ─► Preprocess (fit + normalise) ─► Backend (prior → tokens → decoder) ─► Postprocess (X⁻¹ + fit back) ─► GrayImage
//! ```
//!
//! and every caller drives this one path: [`crate::Segmenter`] frame after frame on the caller's
//! thread (`gss segment`, `eval`, `bench`), [`crate::Pipeline`] on its own threads, either whole
//! ([`FramePath::segment_into`], one [`Backend::run`] call, so a GPU backend keeps the tokens on
//! the device) or split at the token grid across two threads ([`FramePath::encode`] and
//! [`FramePath::decode`]).

pub mod geometry;
pub mod postprocess;
pub mod preprocess;
pub mod view;

use std::time::{Duration, Instant};

use image::{GrayImage, RgbImage};

pub use crate::model::Fit;
pub use geometry::UNSEEN;
pub use postprocess::Postprocess;
pub use preprocess::Preprocess;
pub use view::{ChannelOrder, ImageView};

use crate::engine::{Backend, Graphs};
use crate::error::{Error, Result};
use crate::model::ModelPackage;

/// Time spent in each stage of one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimings {
    pub preprocess: Duration,
    /// With a backend that runs both graphs in one submission (wgpu), the two together, and
    /// `decoder` is zero.
    pub prior: Duration,
    pub decoder: Duration,
    pub inverse: Duration,
    /// Mapping the class map back to the frame's size.
    pub resize: Duration,
}

impl StageTimings {
    /// Time in the model and its pre/post-processing, queues excluded.
    pub fn total(&self) -> Duration {
        self.preprocess + self.prior + self.decoder + self.inverse + self.resize
    }
}

/// Preprocess → backend → postprocess for one model, with every buffer reused from frame to
/// frame. Built for the graphs its backend runs: a prior-only path has no postprocess, a
/// decoder-only path no preprocess.
pub struct FramePath {
    pre: Option<Preprocess>,
    backend: Box<dyn Backend>,
    post: Option<Postprocess>,
    fit: Fit,
    tokens: Vec<i64>,
    maskige: Vec<f32>,
}

impl FramePath {
    /// The path for `graphs` of `package` on `backend` (built for the same graphs), fitting
    /// frames of another shape with `fit`.
    pub fn new(
        package: &ModelPackage,
        backend: Box<dyn Backend>,
        graphs: Graphs,
        fit: Fit,
    ) -> Result<Self> {
        let m = &package.manifest;
        let pre = (graphs != Graphs::Decoder).then(|| Preprocess::new(m, fit));
        let post = match graphs {
            Graphs::Prior => None,
            _ => Some(Postprocess::new(
                m,
                crate::maskige::for_package(package)?,
                fit,
            )),
        };
        Ok(Self {
            pre,
            backend,
            post,
            fit,
            tokens: Vec::new(),
            maskige: Vec::new(),
        })
    }

    pub fn backend_name(&self) -> &str {
        self.backend.name()
    }

    /// The fit frames of another shape get.
    pub fn fit(&self) -> Fit {
        self.fit
    }

    pub fn set_fit(&mut self, fit: Fit) {
        self.fit = fit;
        if let Some(pre) = &mut self.pre {
            pre.set_fit(fit);
        }
        if let Some(post) = &mut self.post {
            post.set_fit(fit);
        }
    }

    /// Token grid of the last frame (h×w, row-major); empty after [`segment_into`] on a backend
    /// that keeps the grid on its device.
    ///
    /// [`segment_into`]: FramePath::segment_into
    pub fn tokens(&self) -> &[i64] {
        &self.tokens
    }

    /// The prior's confidence per grid cell for the last frame (h×w), when the backend gives it
    /// ([`crate::engine::BackendOptions::confidence`]).
    pub fn confidence(&self) -> Option<&[f32]> {
        self.backend.confidence()
    }

    /// Share of a full decode the last frame's decoder run did ([`Backend::decoded_share`]).
    pub fn decoded_share(&self) -> f32 {
        self.backend.decoded_share()
    }

    /// The whole path in one backend call: class map at the image's own size into `out`
    /// (reallocated only when the frame size changes).
    pub fn segment_into(&mut self, image: &RgbImage, out: &mut GrayImage) -> Result<StageTimings> {
        self.segment_view_into(image.into(), out)
    }

    /// [`segment_into`](FramePath::segment_into) for a frame in the caller's memory, read in
    /// place.
    pub fn segment_view_into(
        &mut self,
        image: ImageView,
        out: &mut GrayImage,
    ) -> Result<StageTimings> {
        let (pre, post) = match (&mut self.pre, &mut self.post) {
            (Some(pre), Some(post)) => (pre, post),
            _ => return Err(not_built("segment_into", "both graphs")),
        };
        let t0 = Instant::now();
        let input = pre.run(image);
        let preprocess = t0.elapsed();
        let graphs = self
            .backend
            .run(input, &mut self.tokens, &mut self.maskige)?;
        let (inverse, resize) = post.run(&self.maskige, image.dimensions(), out)?;
        Ok(StageTimings {
            preprocess,
            prior: graphs.prior,
            decoder: graphs.decoder,
            inverse,
            resize,
        })
    }

    /// The first half, up to the token grid: preprocess and prior, tokens into `tokens`.
    pub fn encode(&mut self, image: &RgbImage, tokens: &mut Vec<i64>) -> Result<StageTimings> {
        let pre = self
            .pre
            .as_mut()
            .ok_or_else(|| not_built("encode", "the prior"))?;
        let t0 = Instant::now();
        let input = pre.run(image);
        let t1 = Instant::now();
        self.backend.run_prior(input, tokens)?;
        Ok(StageTimings {
            preprocess: t1 - t0,
            prior: t1.elapsed(),
            ..StageTimings::default()
        })
    }

    /// The second half: decoder, X⁻¹ and the mapping back to a `frame_size` frame, into `out`.
    pub fn decode(
        &mut self,
        tokens: &[i64],
        frame_size: (u32, u32),
        out: &mut GrayImage,
    ) -> Result<StageTimings> {
        let post = self
            .post
            .as_mut()
            .ok_or_else(|| not_built("decode", "the decoder"))?;
        let t0 = Instant::now();
        self.backend.run_decoder(tokens, &mut self.maskige)?;
        let decoder = t0.elapsed();
        let (inverse, resize) = post.run(&self.maskige, frame_size, out)?;
        Ok(StageTimings {
            decoder,
            inverse,
            resize,
            ..StageTimings::default()
        })
    }
}

fn not_built(call: &str, needs: &str) -> Error {
    Error::Usage {
        stage: "frame path",
        msg: format!(
            "{call} needs a path built for {needs} (FramePath::new with the matching Graphs)"
        ),
    }
}
