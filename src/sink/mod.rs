//! What ships with the crate to consume class maps: colour overlays a person can look at
//! ([`overlay`]), PNG writers for class maps and overlays ([`png`]), and the numbers a stream or a
//! benchmark reports: live windows, latency percentiles, memory ([`stats`]), and Rerun recordings
//! and live viewers ([`rerun`], feature `rerun`; without it the same API says how to get it).

pub mod overlay;
pub mod png;
pub mod stats;

#[cfg(feature = "rerun")]
pub mod rerun;
#[cfg(not(feature = "rerun"))]
#[path = "rerun_disabled.rs"]
pub mod rerun;

pub use overlay::blend_into;
