//! Camera-related types that do not need the `v4l` feature: how a device is named, what it
//! offers, and how a camera source is configured.

use super::negotiate::{describe_offers, FormatOffer, FormatRequest};
use super::Backoff;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A camera as a user names it: an index (`0` → `/dev/video0`) or a device path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    Index(u32),
    Path(PathBuf),
}

impl DeviceSpec {
    pub fn parse(spec: &str) -> DeviceSpec {
        match spec.trim().parse::<u32>() {
            Ok(index) => DeviceSpec::Index(index),
            Err(_) => DeviceSpec::Path(PathBuf::from(spec)),
        }
    }

    pub fn path(&self) -> PathBuf {
        match self {
            DeviceSpec::Index(i) => PathBuf::from(format!("/dev/video{i}")),
            DeviceSpec::Path(p) => p.clone(),
        }
    }
}

/// What one formats list entry of a device is; the same type the chooser reads.
pub type DeviceFormat = FormatOffer;

/// One `/dev/video*` node, for `gss devices`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    pub path: PathBuf,
    /// The card name the driver reports ("HD Pro Webcam C920").
    pub card: String,
    pub driver: String,
    pub bus: String,
    /// Whether the node captures video; UVC cameras also create metadata nodes that do not.
    pub is_capture: bool,
    pub formats: Vec<DeviceFormat>,
    /// Why the node could not be queried (permission denied, busy, ...), if it could not.
    pub error: Option<String>,
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(e) = &self.error {
            return write!(f, ": cannot query: {e}");
        }
        write!(f, ": {} (driver {}, {})", self.card, self.driver, self.bus)?;
        if !self.is_capture || self.formats.is_empty() {
            return write!(f, "; not a video capture node");
        }
        for format in &self.formats {
            write!(f, "\n  {}", describe_offers(std::slice::from_ref(format)))?;
        }
        Ok(())
    }
}

/// How a camera source negotiates and behaves when it drops out.
#[derive(Debug, Clone)]
pub struct CameraOptions {
    pub request: FormatRequest,
    /// Driver buffers for mmap streaming: enough to ride out a slow frame, few enough that
    /// frames are not stale when read.
    pub buffers: u32,
    /// No frame for this long counts as a lost camera (a stalled USB device never errors).
    pub frame_timeout: Duration,
    pub backoff: Backoff,
}

impl Default for CameraOptions {
    fn default() -> Self {
        CameraOptions {
            request: FormatRequest::default(),
            buffers: 4,
            frame_timeout: Duration::from_secs(3),
            backoff: Backoff::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixel_format::FourCc;
    use crate::source::negotiate::{Interval, SizeOffer};

    #[test]
    fn specs_are_indices_or_paths() {
        assert_eq!(DeviceSpec::parse("0").path(), PathBuf::from("/dev/video0"));
        assert_eq!(
            DeviceSpec::parse(" 12 ").path(),
            PathBuf::from("/dev/video12")
        );
        assert_eq!(
            DeviceSpec::parse("/dev/video2").path(),
            PathBuf::from("/dev/video2")
        );
        assert_eq!(
            DeviceSpec::parse("/dev/v4l/by-id/usb-cam").path(),
            PathBuf::from("/dev/v4l/by-id/usb-cam")
        );
        assert!(matches!(DeviceSpec::parse("-1"), DeviceSpec::Path(_)));
    }

    #[test]
    fn device_info_prints_formats_or_the_problem() {
        let info = DeviceInfo {
            path: "/dev/video0".into(),
            card: "Cam".into(),
            driver: "uvcvideo".into(),
            bus: "usb-1".into(),
            is_capture: true,
            formats: vec![FormatOffer {
                fourcc: FourCc(*b"MJPG"),
                description: "Motion-JPEG".into(),
                sizes: vec![SizeOffer {
                    width: 1280,
                    height: 720,
                    intervals: vec![Interval {
                        numerator: 1,
                        denominator: 30,
                    }],
                }],
            }],
            error: None,
        };
        let text = info.to_string();
        assert!(text.contains("/dev/video0: Cam (driver uvcvideo"), "{text}");
        assert!(text.contains("MJPG (Motion-JPEG) 1280x720@30"), "{text}");
        let broken = DeviceInfo {
            error: Some("Permission denied".into()),
            ..info
        };
        assert!(broken
            .to_string()
            .ends_with("cannot query: Permission denied"));
    }
}
