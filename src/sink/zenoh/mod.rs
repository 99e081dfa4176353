//! Class maps over zenoh: the sink that publishes a stream (`session.rs`, feature `zenoh`) or,
//! without the feature, `disabled.rs`, where starting it is an error that says how to get a build
//! that can. The wire format ([`super::wire`]) and the ROS 2 encoding ([`super::ros2`]) build in
//! every build.

#[cfg(feature = "zenoh")]
mod session;
#[cfg(feature = "zenoh")]
pub use session::*;

#[cfg(not(feature = "zenoh"))]
mod disabled;
#[cfg(not(feature = "zenoh"))]
pub use disabled::*;
