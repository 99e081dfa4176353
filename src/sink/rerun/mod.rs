//! Rerun logging: a stream as a Rerun recording, written to an `.rrd` file or sent to a running
//! viewer. What a recording is (`Target`) and what the logger did (`RerunReport`) are the same in
//! every build; the logger itself is `sdk.rs` with the `rerun` feature, and `disabled.rs` without
//! it, where opening a recording is an error that says how to get a build that can.

use std::path::PathBuf;

#[cfg(feature = "rerun")]
mod sdk;
#[cfg(feature = "rerun")]
pub use sdk::*;

#[cfg(not(feature = "rerun"))]
mod disabled;
#[cfg(not(feature = "rerun"))]
pub use disabled::*;

/// Where a recording goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An `.rrd` file (created or replaced).
    File(PathBuf),
    /// A viewer's gRPC proxy, e.g. `rerun+http://127.0.0.1:9876/proxy`.
    Viewer(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::File(path) => write!(f, "{}", path.display()),
            Target::Viewer(url) => f.write_str(url),
        }
    }
}

/// What a [`RerunSink`] did, for the stream's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RerunReport {
    /// The file or viewer URL.
    pub target: String,
    /// Frames logged.
    pub logged: u64,
    /// Frames not logged because no viewer was connected (yet, or any more).
    pub skipped: u64,
    /// Why logging stopped early (a lost viewer, a logging error), if it did.
    pub problem: Option<String>,
}
