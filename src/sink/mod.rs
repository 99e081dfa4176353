//! What ships with the crate to consume class maps: colour overlays a person can look at
//! ([`overlay`]), PNG writers for class maps and overlays ([`png`]), and the numbers a stream or a
//! benchmark reports: live windows, latency percentiles, memory ([`stats`]); class maps over
//! zenoh ([`zenoh`], feature `zenoh`) in the `gss-mask/1` format ([`wire`]) and as ROS 2 images
//! ([`ros2`]).

pub mod overlay;
pub mod png;
pub mod ros2;
pub mod stats;
pub mod wire;
#[cfg(feature = "zenoh")]
pub mod zenoh;
#[cfg(not(feature = "zenoh"))]
#[path = "zenoh_disabled.rs"]
pub mod zenoh;

pub use overlay::blend_into;
