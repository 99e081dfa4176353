//! V4L2 cameras: the camera source (`capture.rs`, feature `v4l`) or, without the feature,
//! `disabled.rs`, where opening a camera or listing devices is an error that says how to get a
//! build that can. What a camera is asked for ([`super::CameraOptions`]) and the format
//! negotiation ([`super::negotiate`]) build in every build.

#[cfg(feature = "v4l")]
mod capture;
#[cfg(feature = "v4l")]
pub use capture::*;

#[cfg(not(feature = "v4l"))]
mod disabled;
#[cfg(not(feature = "v4l"))]
pub use disabled::*;
