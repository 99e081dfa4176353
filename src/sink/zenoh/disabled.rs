//! The zenoh sink in a build without the `zenoh` feature: starting it is an error that says how
//! to get a build that can (the wire format and ROS 2 encoding still build: [`crate::sink::wire`],
//! [`crate::sink::ros2`]).

use crate::model::ModelPackage;
use crate::pipeline::{Pipeline, Subscription};
pub use crate::sink::wire::SinkStats;
use crate::sink::wire::ZenohSinkOptions;
use crate::{Error, Result};

const REBUILD: &str = "this gss was built without the zenoh feature; rebuild with --features zenoh";

/// The zenoh sink. In this build none can be started, so no value of this type exists.
pub struct ZenohSink {
    never: std::convert::Infallible,
}

impl ZenohSink {
    /// Always an error in this build: publishing over zenoh needs the `zenoh` feature.
    pub fn start(_pipeline: &mut Pipeline, _options: &ZenohSinkOptions) -> Result<ZenohSink> {
        Err(Error::Zenoh {
            what: "--zenoh/--ros2".into(),
            msg: REBUILD.into(),
        })
    }

    /// Always an error in this build, as [`ZenohSink::start`].
    pub fn start_with(
        _package: &ModelPackage,
        _frames: Subscription,
        _options: &ZenohSinkOptions,
    ) -> Result<ZenohSink> {
        Err(Error::Zenoh {
            what: "--zenoh/--ros2".into(),
            msg: REBUILD.into(),
        })
    }

    /// The session's zenoh id (never called: no sink exists in this build).
    pub fn zid(&self) -> &str {
        match self.never {}
    }

    /// Waits for the sink (never called: no sink exists in this build).
    pub fn join(self) -> Result<SinkStats> {
        match self.never {}
    }
}
