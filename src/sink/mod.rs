//! What ships with the crate to consume class maps: colour overlays a person can look at
//! ([`overlay`]), PNG writers for class maps and overlays ([`png`]), and the numbers a stream or a
//! benchmark reports: live windows, latency percentiles, memory ([`stats`]); the live view in a
//! browser ([`serve`], feature `serve`), Rerun recordings and live viewers ([`rerun`], feature
//! `rerun`), and class maps over zenoh ([`zenoh`], feature `zenoh`) in the `gss-mask/1` format
//! ([`wire`]) and as ROS 2 images ([`ros2`]); without a feature the same API says how to get it.

pub mod overlay;
pub mod png;
pub mod rerun;
pub mod ros2;
pub mod serve;
pub mod stats;

pub mod wire;
pub mod zenoh;

pub use overlay::{blend_into, blend_view_into};
