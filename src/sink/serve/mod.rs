//! The live view in a browser: `ServeOptions` (what the page shows) is the same in every build;
//! the server is `http.rs` with the `serve` feature, and `disabled.rs` without it, where starting
//! it is an error that says how to get a build that can.

use std::time::Duration;

use crate::model::{ClassInfo, ModelPackage};

#[cfg(feature = "serve")]
mod http;
#[cfg(feature = "serve")]
pub use http::*;

#[cfg(not(feature = "serve"))]
mod disabled;
#[cfg(not(feature = "serve"))]
pub use disabled::*;

/// What the live view shows besides the frames.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The page's heading (the model and the source).
    pub title: String,
    /// The legend, and the colours the overlays use (ids 0..K-1 in order, as in model.json).
    pub classes: Vec<ClassInfo>,
    /// JPEG quality, 1-100.
    pub jpeg_quality: u8,
    /// How long a shutdown waits for open connections to finish before dropping them.
    pub shutdown_grace: Duration,
}

impl ServeOptions {
    /// The package's classes and name, JPEG quality 80, one second of grace.
    pub fn for_package(package: &ModelPackage) -> Self {
        Self {
            title: format!("gss: {}", package.manifest.name),
            classes: package.manifest.classes.clone(),
            jpeg_quality: 80,
            shutdown_grace: Duration::from_secs(1),
        }
    }
}
