//! The live view in a build without the `serve` feature: the same API, and starting it is an
//! error that says how to get a build that can.

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::model::{ClassInfo, ModelPackage};
use crate::pipeline::Subscription;

const REBUILD: &str = "this gss was built without the serve feature; rebuild with --features serve";

/// What the live view shows besides the frames.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub title: String,
    pub classes: Vec<ClassInfo>,
    pub jpeg_quality: u8,
    pub shutdown_grace: Duration,
}

impl ServeOptions {
    pub fn for_package(package: &ModelPackage) -> Self {
        Self {
            title: format!("gss: {}", package.manifest.name),
            classes: package.manifest.classes.clone(),
            jpeg_quality: 80,
            shutdown_grace: Duration::from_secs(1),
        }
    }
}

/// A live view. In this build none can be started, so no value of this type exists.
pub struct LiveView {
    never: std::convert::Infallible,
}

impl LiveView {
    /// Always an error in this build: the live view needs the `serve` feature.
    pub fn start(_addr: &str, _options: ServeOptions, _frames: Subscription) -> Result<LiveView> {
        Err(Error::Serve { msg: REBUILD.into(), source: None })
    }

    /// The address the server listens on (never called: no live view exists in this build).
    pub fn local_addr(&self) -> SocketAddr {
        match self.never {}
    }

    /// Waits for the server to stop (never called: no live view exists in this build).
    pub fn join(self) -> Result<()> {
        match self.never {}
    }
}
