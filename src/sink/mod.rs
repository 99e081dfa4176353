//! What ships with the crate to consume class maps: colour overlays a person can look at
//! ([`overlay`]), PNG writers for class maps and overlays ([`png`]), and the numbers a stream or a
//! benchmark reports: live windows, latency percentiles, memory ([`stats`]), and the live view in
//! a browser ([`serve`], feature `serve`; without it the same API says how to get it).

pub mod overlay;
pub mod png;
pub mod stats;
#[cfg(feature = "serve")]
pub mod serve;
#[cfg(not(feature = "serve"))]
#[path = "serve_disabled.rs"]
pub mod serve;

pub use overlay::blend_into;
