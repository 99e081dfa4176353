//! What ships with the crate to consume class maps: colour overlays a person can look at
//! ([`overlay`]), PNG writers for class maps and overlays ([`png`]), and the numbers a stream or a
//! benchmark reports: live windows, latency percentiles, memory ([`stats`]).

pub mod overlay;
pub mod png;
pub mod stats;

pub use overlay::blend_into;
