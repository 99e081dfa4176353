//! What ships with the crate to consume class maps: colour overlays a person can look at, PNG
//! writers and stream statistics.

pub mod overlay;
pub mod stats;

pub use overlay::blend_into;
