//! What ships with the crate to consume class maps: colour overlays a person can look at
//! ([`overlay`]), PNG writers for class maps and overlays ([`png`]), and the numbers a stream or a
//! benchmark reports: live windows, latency percentiles, memory ([`stats`]), the live view in a
//! browser ([`serve`], feature `serve`) and Rerun recordings and live viewers ([`rerun`], feature
//! `rerun`); without a feature the same API says how to get it.

pub mod overlay;
pub mod png;
pub mod stats;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(not(feature = "serve"))]
#[path = "serve_disabled.rs"]
pub mod serve;

#[cfg(feature = "rerun")]
pub mod rerun;
#[cfg(not(feature = "rerun"))]
#[path = "rerun_disabled.rs"]
pub mod rerun;

pub use overlay::blend_into;
