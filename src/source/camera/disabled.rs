//! Cameras in a build without the `v4l` feature: opening one or listing devices is an error
//! that says how to get a build that can.

use crate::pixel_format::{FrameLayout, PixelFormat};
use crate::source::{CameraOptions, DeviceInfo, Frame, FrameSource};
use crate::{Error, Result};

const REBUILD: &str = "this gss was built without the v4l feature; rebuild with --features v4l";

/// A V4L2 camera. In this build none can be opened, so no value of this type exists.
pub struct Camera {
    never: std::convert::Infallible,
}

impl Camera {
    /// Always an error in this build: cameras need the `v4l` feature.
    pub fn open(spec: &str, _options: CameraOptions) -> Result<Camera> {
        Err(Error::SourceOpen {
            source_name: spec.to_string(),
            msg: REBUILD.into(),
        })
    }

    /// The format, size and row stride in use (never called: no camera exists in this build).
    pub fn current_format(&self) -> Option<(PixelFormat, FrameLayout)> {
        match self.never {}
    }

    /// Images made outside the decoder's pool (never called: no camera exists in this build).
    pub fn pool_overflow(&self) -> u64 {
        match self.never {}
    }
}

impl FrameSource for Camera {
    fn name(&self) -> &str {
        match self.never {}
    }
    fn next_frame(&mut self) -> Result<Option<Frame>> {
        match self.never {}
    }
}

/// Always an error in this build: listing cameras needs the `v4l` feature.
pub fn list_devices() -> Result<Vec<DeviceInfo>> {
    Err(Error::SourceOpen {
        source_name: "cameras".into(),
        msg: REBUILD.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cameras_say_how_to_enable_them() {
        let err = Camera::open("0", CameraOptions::default()).err().unwrap();
        assert!(err.to_string().contains("--features v4l"), "{err}");
        assert!(!err.is_recoverable());
        let err = list_devices().unwrap_err();
        assert!(err.to_string().contains("--features v4l"), "{err}");
    }
}
