//! Rerun logging in a build without the `rerun` feature: opening a recording is an error that
//! says how to get a build that can, so `gss stream --rerun` exists in every build.

use crate::error::{Error, Result};
use crate::model::ClassInfo;
use crate::pipeline::{MaskFrame, Subscription};

use super::{RerunReport, Target};

const REBUILD: &str = "this gss was built without the rerun feature; rebuild with --features rerun";

/// A Rerun recording. In this build none can be opened, so no value of this type exists.
pub struct RerunSink {
    never: std::convert::Infallible,
}

impl RerunSink {
    /// Always an error in this build: recordings need the `rerun` feature.
    pub fn open(target: Target, _classes: &[ClassInfo]) -> Result<Self> {
        Err(Error::Rerun {
            target: target.to_string(),
            msg: REBUILD.into(),
        })
    }

    /// Never called: no sink exists in this build.
    pub fn log(&mut self, _mask: &MaskFrame) -> Result<bool> {
        match self.never {}
    }

    /// Never called: no sink exists in this build.
    pub fn spawn(self, _frames: Subscription) -> Result<RerunThread> {
        match self.never {}
    }

    /// Never called: no sink exists in this build.
    pub fn finish(self) -> RerunReport {
        match self.never {}
    }
}

/// The logger thread (none exists in this build).
pub struct RerunThread {
    never: std::convert::Infallible,
}

impl RerunThread {
    /// Never called: no thread exists in this build.
    pub fn join(self) -> RerunReport {
        match self.never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_say_how_to_enable_them() {
        for target in [
            Target::File("out.rrd".into()),
            Target::Viewer("rerun+http://127.0.0.1:9876/proxy".into()),
        ] {
            let err = RerunSink::open(target, &[])
                .err()
                .expect("no rerun in this build");
            assert!(err.to_string().contains("--features rerun"), "{err}");
        }
    }
}
