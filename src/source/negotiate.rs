//! Format negotiation with a camera: what a caller asks for ([`FormatRequest`]), what a device
//! offers ([`FormatOffer`], [`SizeOffer`], [`Interval`]), and the choice between them
//! ([`choose_format`]), plus the one-line description of offers that errors and `gss devices`
//! print. Nothing here touches a device, so it is compiled and tested without the `v4l` feature;
//! the camera only turns V4L2's enumerations into offers and applies the choice.

use crate::pixel_format::{FourCc, PixelFormat};
use crate::{Error, Result};

/// What a caller wants from a camera; every field is a preference, not a demand.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatRequest {
    pub fourcc: Option<FourCc>,
    pub width: u32,
    pub height: u32,
    /// Frames per second; None asks for the fastest rate at the chosen size.
    pub fps: Option<f64>,
}

impl Default for FormatRequest {
    fn default() -> Self {
        FormatRequest {
            fourcc: None,
            width: 640,
            height: 480,
            fps: None,
        }
    }
}

/// A frame interval in seconds, as V4L2 states it (numerator / denominator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub numerator: u32,
    pub denominator: u32,
}

impl Interval {
    pub fn fps(self) -> f64 {
        if self.numerator == 0 {
            0.0
        } else {
            f64::from(self.denominator) / f64::from(self.numerator)
        }
    }
}

/// One frame size a device offers for a format, with its frame intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeOffer {
    pub width: u32,
    pub height: u32,
    /// Empty when the device does not list rates (it then picks one itself).
    pub intervals: Vec<Interval>,
}

/// One pixel format a device offers.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatOffer {
    pub fourcc: FourCc,
    /// The driver's description ("Motion-JPEG").
    pub description: String,
    /// Empty when the device does not list sizes (it then adjusts the requested one).
    pub sizes: Vec<SizeOffer>,
}

/// The outcome of [`choose_format`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChosenFormat {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    /// None: leave the rate to the device.
    pub interval: Option<Interval>,
}

/// Above this many pixels, uncompressed formats usually cannot keep a useful frame rate over
/// USB 2.0 (YUYV 1280×720 tops out near 10 fps), so MJPG is preferred.
const LARGE_FRAME_PIXELS: u64 = 640 * 480;

fn format_rank(format: PixelFormat, large: bool) -> u8 {
    match (format, large) {
        (PixelFormat::Mjpg, true) | (PixelFormat::Yuyv, false) => 0,
        (PixelFormat::Yuyv, true) | (PixelFormat::Mjpg, false) => 1,
        (PixelFormat::Rgb3, _) => 2,
        (PixelFormat::Grey, _) => 3,
    }
}

/// Picks a format, size and rate from what a device offers.
///
/// The requested fourcc wins if the device offers it (a warning is logged if it does not and
/// another is used); otherwise the size closest to the request decides, then the format
/// preference (MJPG first for frames above 640×480, YUYV first below, then RGB3, GREY); then
/// the rate closest to the request, or the fastest. Nothing decodable is
/// [`Error::SourceFormat`] listing what the device offers.
pub fn choose_format(
    source_name: &str,
    offers: &[FormatOffer],
    request: &FormatRequest,
) -> Result<ChosenFormat> {
    let format_err = |msg: String| Error::SourceFormat {
        source_name: source_name.to_string(),
        msg,
    };
    let decodable: Vec<(PixelFormat, &FormatOffer)> = offers
        .iter()
        .filter_map(|o| PixelFormat::from_fourcc(o.fourcc).map(|f| (f, o)))
        .collect();
    let supported = PixelFormat::ALL.map(|f| f.to_string()).join(", ");
    let mut candidates = decodable.clone();
    if let Some(wanted) = request.fourcc {
        if PixelFormat::from_fourcc(wanted).is_none() {
            return Err(format_err(format!(
                "{wanted} was asked for but gss decodes only {supported}; the device offers {}",
                describe_offers(offers)
            )));
        }
        if decodable.iter().any(|(f, _)| f.fourcc() == wanted) {
            candidates.retain(|(f, _)| f.fourcc() == wanted);
        } else if !decodable.is_empty() {
            log::warn!("{source_name}: does not offer {wanted}; choosing another format");
        }
    }
    if candidates.is_empty() {
        return Err(format_err(format!(
            "gss decodes {supported}; the device offers {}",
            describe_offers(offers)
        )));
    }

    let (rw, rh) = (i64::from(request.width), i64::from(request.height));
    let large = u64::from(request.width) * u64::from(request.height) > LARGE_FRAME_PIXELS;
    let mut best: Option<((i64, u8), PixelFormat, Option<&SizeOffer>)> = None;
    for (format, offer) in candidates {
        let rank = format_rank(format, large);
        let sizes: Vec<Option<&SizeOffer>> = if offer.sizes.is_empty() {
            vec![None]
        } else {
            offer
                .sizes
                .iter()
                .filter(|s| s.width > 0 && s.height > 0)
                .map(Some)
                .collect()
        };
        for size in sizes {
            // A format that lists no sizes lets the driver adjust the request: nearly exact,
            // but a listed exact match is the safer bet.
            let distance = match size {
                Some(s) => (i64::from(s.width) - rw).abs() + (i64::from(s.height) - rh).abs(),
                None => 1,
            };
            let key = (distance, rank);
            if best.as_ref().is_none_or(|(k, _, _)| key < *k) {
                best = Some((key, format, size));
            }
        }
    }
    let Some((_, format, size)) = best else {
        return Err(format_err(format!(
            "no usable frame size; the device offers {}",
            describe_offers(offers)
        )));
    };
    let (width, height, intervals) = match size {
        Some(s) => (s.width, s.height, s.intervals.as_slice()),
        None => (request.width, request.height, &[][..]),
    };
    let usable = intervals
        .iter()
        .copied()
        .filter(|i| i.numerator > 0 && i.denominator > 0);
    let interval = match request.fps {
        Some(fps) => usable.min_by(|a, b| (a.fps() - fps).abs().total_cmp(&(b.fps() - fps).abs())),
        None => usable.max_by(|a, b| a.fps().total_cmp(&b.fps())),
    };
    Ok(ChosenFormat {
        format,
        width,
        height,
        interval,
    })
}

/// "MJPG (Motion-JPEG) 1280x720@30/15 640x480@30; YUYV (YUYV 4:2:2) 640x480@30", for errors
/// and `gss devices`.
pub fn describe_offers(offers: &[FormatOffer]) -> String {
    if offers.is_empty() {
        return "no formats".into();
    }
    offers
        .iter()
        .map(|o| {
            let mut s = format!("{} ({})", o.fourcc, o.description);
            for size in &o.sizes {
                s.push_str(&format!(" {}x{}", size.width, size.height));
                let rates: Vec<String> = size
                    .intervals
                    .iter()
                    .map(|i| format!("{:.4}", i.fps()))
                    .map(trim_rate)
                    .collect();
                if !rates.is_empty() {
                    s.push('@');
                    s.push_str(&rates.join("/"));
                }
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn trim_rate(s: String) -> String {
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(fourcc: &str, sizes: &[(u32, u32, &[u32])]) -> FormatOffer {
        FormatOffer {
            fourcc: FourCc::parse(fourcc).unwrap(),
            description: fourcc.to_lowercase(),
            sizes: sizes
                .iter()
                .map(|&(width, height, rates)| SizeOffer {
                    width,
                    height,
                    intervals: rates
                        .iter()
                        .map(|&r| Interval {
                            numerator: 1,
                            denominator: r,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn webcam() -> Vec<FormatOffer> {
        vec![
            offer(
                "YUYV",
                &[
                    (640, 480, &[30, 15]),
                    (1280, 720, &[10, 5]),
                    (320, 240, &[30]),
                ],
            ),
            offer(
                "MJPG",
                &[
                    (640, 480, &[30]),
                    (1280, 720, &[30, 15]),
                    (1920, 1080, &[30]),
                ],
            ),
            offer("H264", &[(1920, 1080, &[30])]),
        ]
    }

    fn request(fourcc: Option<&str>, width: u32, height: u32, fps: Option<f64>) -> FormatRequest {
        FormatRequest {
            fourcc: fourcc.and_then(FourCc::parse),
            width,
            height,
            fps,
        }
    }

    #[test]
    fn chooser_prefers_yuyv_small_and_mjpg_large() {
        let small = choose_format("cam", &webcam(), &request(None, 640, 480, None)).unwrap();
        assert_eq!(
            (small.format, small.width, small.height),
            (PixelFormat::Yuyv, 640, 480)
        );
        assert_eq!(small.interval.map(Interval::fps), Some(30.0));
        let large = choose_format("cam", &webcam(), &request(None, 1280, 720, None)).unwrap();
        assert_eq!(
            (large.format, large.width, large.height),
            (PixelFormat::Mjpg, 1280, 720)
        );
        assert_eq!(large.interval.map(Interval::fps), Some(30.0));
    }

    #[test]
    fn chooser_honours_the_requested_fourcc_size_and_rate() {
        let c = choose_format(
            "cam",
            &webcam(),
            &request(Some("MJPG"), 640, 480, Some(20.0)),
        )
        .unwrap();
        assert_eq!((c.format, c.width, c.height), (PixelFormat::Mjpg, 640, 480));
        assert_eq!(c.interval.map(Interval::fps), Some(30.0));
        let c = choose_format(
            "cam",
            &webcam(),
            &request(Some("YUYV"), 1280, 720, Some(4.0)),
        )
        .unwrap();
        assert_eq!(
            (c.format, c.width, c.height),
            (PixelFormat::Yuyv, 1280, 720)
        );
        assert_eq!(c.interval.map(Interval::fps), Some(5.0));
        // Closest size when nothing matches exactly.
        let c = choose_format("cam", &webcam(), &request(None, 300, 200, None)).unwrap();
        assert_eq!((c.width, c.height), (320, 240));
        // A decodable fourcc the device lacks falls back to what it has.
        let c = choose_format("cam", &webcam(), &request(Some("GREY"), 640, 480, None)).unwrap();
        assert_eq!(c.format, PixelFormat::Yuyv);
    }

    #[test]
    fn chooser_handles_devices_that_list_no_sizes() {
        let offers = vec![offer("RGB3", &[])];
        let c = choose_format("cam", &offers, &request(None, 800, 600, None)).unwrap();
        assert_eq!(
            (c.format, c.width, c.height, c.interval),
            (PixelFormat::Rgb3, 800, 600, None)
        );
    }

    #[test]
    fn chooser_error_lists_what_the_device_offers() {
        let offers = vec![
            offer("H264", &[(1920, 1080, &[30])]),
            offer("NV12", &[(640, 480, &[30, 15])]),
        ];
        let err = choose_format("/dev/video0", &offers, &FormatRequest::default()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::SourceFormat { .. }));
        for needle in [
            "/dev/video0",
            "H264",
            "1920x1080@30",
            "NV12",
            "640x480@30/15",
            "YUYV",
            "MJPG",
        ] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
        let err =
            choose_format("cam", &webcam(), &request(Some("H264"), 640, 480, None)).unwrap_err();
        assert!(err.to_string().contains("H264 was asked for"), "{err}");
        assert!(choose_format("cam", &[], &FormatRequest::default()).is_err());
    }

    #[test]
    fn intervals_are_rates_and_offers_print_compactly() {
        assert_eq!(
            Interval {
                numerator: 1001,
                denominator: 30000
            }
            .fps()
            .round(),
            30.0
        );
        assert_eq!(
            Interval {
                numerator: 0,
                denominator: 30
            }
            .fps(),
            0.0
        );
        let text = describe_offers(&webcam());
        assert!(
            text.starts_with("YUYV (yuyv) 640x480@30/15 1280x720@10/5 320x240@30; MJPG (mjpg)"),
            "{text}"
        );
        let ntsc = FormatOffer {
            fourcc: FourCc(*b"YUYV"),
            description: "yuyv".into(),
            sizes: vec![SizeOffer {
                width: 640,
                height: 480,
                intervals: vec![Interval {
                    numerator: 1001,
                    denominator: 30000,
                }],
            }],
        };
        assert_eq!(describe_offers(&[ntsc]), "YUYV (yuyv) 640x480@29.97");
        assert_eq!(describe_offers(&[]), "no formats");
    }
}
