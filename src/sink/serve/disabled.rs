//! The live view in a build without the `serve` feature: the same API, and starting it is an
//! error that says how to get a build that can.

use std::net::SocketAddr;

use crate::error::{Error, Result};
use crate::pipeline::Subscription;

use super::ServeOptions;

const REBUILD: &str = "this gss was built without the serve feature; rebuild with --features serve";

/// A live view. In this build none can be started, so no value of this type exists.
pub struct LiveView {
    never: std::convert::Infallible,
}

impl LiveView {
    /// Always an error in this build: the live view needs the `serve` feature.
    pub fn start(_addr: &str, _options: ServeOptions, _frames: Subscription) -> Result<LiveView> {
        Err(Error::Serve {
            msg: REBUILD.into(),
            source: None,
        })
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
