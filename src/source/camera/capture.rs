//! V4L2 cameras (the `v4l` feature): turning V4L2's format lists into offers for
//! [`choose_format`], mmap streaming, decoding each buffer into a pooled image, and reopening a
//! camera that disappears.

use crate::pixel_format::{FourCc, FrameLayout, PixelFormat};
use crate::source::frame_decoder::FrameDecoder;
use crate::source::negotiate::{choose_format, ChosenFormat, FormatOffer, Interval, SizeOffer};
use crate::source::pixfmt::bad_buffer;
use crate::source::{
    CameraOptions, DeviceInfo, DeviceSpec, Frame, FrameSource, StopSignal, STOP_POLL,
};
use crate::{Error, Result};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use v4l::buffer::{Flags as BufferFlags, Type};
use v4l::capability::Flags as CapFlags;
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::io::traits::{CaptureStream, Stream as _};
use v4l::prelude::{Device, MmapStream};
use v4l::video::capture::Parameters;
use v4l::video::Capture;
use v4l::{Format, FourCC, Fraction};

// Linux values; v4l does not re-export libc.
const ENODEV: i32 = 19;
const POLLIN: i16 = 0x0001;

/// Stepwise sizes or rates can describe thousands of values; we offer the chooser a handful.
const STEPWISE_SAMPLES: usize = 8;

/// A V4L2 capture device streaming through mmap buffers.
pub struct Camera {
    path: PathBuf,
    name: String,
    options: CameraOptions,
    live: Option<Live>,
    next_attempt: Instant,
    index: u64,
    /// Also the pool the frames' images come from.
    decoder: FrameDecoder,
    stop: StopSignal,
}

/// An open, configured device. The stream is declared first so it is dropped first.
struct Live {
    stream: MmapStream<'static>,
    device: Device,
    format: PixelFormat,
    layout: FrameLayout,
    started: bool,
}

impl Camera {
    /// Opens `/dev/videoN` for `"N"`, or the given path, and negotiates a format with
    /// [`choose_format`]. Failing here is fatal ([`Error::SourceOpen`] / [`Error::SourceFormat`]);
    /// losing the camera later is not.
    pub fn open(spec: &str, mut options: CameraOptions) -> Result<Camera> {
        let path = DeviceSpec::parse(spec).path();
        options.buffers = options.buffers.clamp(2, 32);
        // v4l stores the poll timeout as i32 milliseconds and panics beyond that.
        options.frame_timeout = options
            .frame_timeout
            .clamp(Duration::from_millis(200), Duration::from_secs(600));
        let label = path.display().to_string();
        let (live, card, chosen) = open_live(&path, &label, &options)?;
        let name = if card.is_empty() {
            label
        } else {
            format!("{label} ({card})")
        };
        log::info!("{name}: {}", describe_chosen(&chosen, &live));
        Ok(Camera {
            path,
            name,
            options,
            live: Some(live),
            next_attempt: Instant::now(),
            index: 0,
            decoder: FrameDecoder::new(),
            stop: StopSignal::new(),
        })
    }

    /// The format, size and row stride in use; None while the camera is lost.
    pub fn current_format(&self) -> Option<(PixelFormat, FrameLayout)> {
        self.live.as_ref().map(|l| (l.format, l.layout))
    }

    /// Takes the camera down after an error and schedules the first reopen attempt.
    fn lose(&mut self, why: String) -> Error {
        if let Some(live) = self.live.take() {
            close(live, &self.name);
        }
        let delay = self.options.backoff.next_delay();
        self.next_attempt = Instant::now() + delay;
        Error::SourceLost {
            source_name: self.name.clone(),
            msg: format!("{why}; reopening in {}", fmt_delay(delay)),
        }
    }

    /// Waits for the next reopen slot and tries once. Ok(false): stopped while waiting.
    fn reopen(&mut self) -> Result<bool> {
        if !self.stop.sleep_until(self.next_attempt) {
            return Ok(false);
        }
        let attempt = self.options.backoff.failures();
        log::info!("{}: reopen attempt {attempt}", self.name);
        let label = self.path.display().to_string();
        match open_live(&self.path, &label, &self.options) {
            Ok((live, _, chosen)) => {
                log::info!(
                    "{}: back after {attempt} attempt(s): {}",
                    self.name,
                    describe_chosen(&chosen, &live)
                );
                self.options.backoff.reset();
                self.live = Some(live);
                Ok(true)
            }
            Err(e) => {
                let delay = self.options.backoff.next_delay();
                self.next_attempt = Instant::now() + delay;
                let detail = match e {
                    Error::SourceOpen { msg, .. } | Error::SourceFormat { msg, .. } => msg,
                    other => other.to_string(),
                };
                Err(Error::SourceLost {
                    source_name: self.name.clone(),
                    msg: format!(
                        "reopen attempt {attempt} failed: {detail}; next in {}",
                        fmt_delay(delay)
                    ),
                })
            }
        }
    }

    /// Reads and decodes one frame from the live stream.
    fn read(&mut self) -> Result<Option<Frame>> {
        let Camera {
            live,
            name,
            options,
            decoder,
            stop,
            index,
            ..
        } = self;
        let Some(live) = live.as_mut() else {
            return Err(lost_msg("not open"));
        };
        if live.started {
            // The other buffers are still queued, so polling before `next` tells us a frame is
            // ready while letting us look at the stop signal every STOP_POLL.
            let deadline = Instant::now() + options.frame_timeout;
            loop {
                if stop.is_stopped() {
                    return Ok(None);
                }
                match live
                    .device
                    .handle()
                    .poll(POLLIN, STOP_POLL.as_millis() as i32)
                {
                    Ok(0) if Instant::now() >= deadline => {
                        return Err(lost_msg(&format!(
                            "no frame for {}",
                            fmt_delay(options.frame_timeout)
                        )))
                    }
                    Ok(0) => continue,
                    Ok(_) => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(lost_msg(&format!("poll: {e}"))),
                }
            }
        }
        let (buf, meta) = match CaptureStream::next(&mut live.stream) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(lost_msg(&format!(
                    "no frame for {}",
                    fmt_delay(options.frame_timeout)
                )))
            }
            Err(e) => return Err(lost_msg(&format!("read: {e}"))),
        };
        live.started = true;
        let this_index = *index;
        *index += 1;
        let captured_at = Instant::now();
        let corrupt = |reason: Error| Error::CorruptFrame {
            source_name: name.clone(),
            frame: this_index,
            reason: Box::new(reason),
        };
        if meta.flags.contains(BufferFlags::ERROR) {
            return Err(corrupt(bad_buffer(
                live.format,
                "the driver flagged the buffer as damaged",
            )));
        }
        // Some drivers leave bytesused at 0 for fixed-size formats.
        let used = match meta.bytesused as usize {
            0 => buf.len(),
            n => n.min(buf.len()),
        };
        let image = decoder
            .decode_pooled(live.format, &buf[..used], live.layout)
            .map_err(corrupt)?;
        Ok(Some(Frame {
            index: this_index,
            captured_at,
            image,
            origin: None,
        }))
    }

    /// Images made outside the decoder's pool because every pooled one was still held downstream.
    pub fn pool_overflow(&self) -> u64 {
        self.decoder.pool_overflow()
    }
}

/// A loss seen while reading; `next_frame` turns it into the SourceLost it returns, with the
/// source name and the reopen delay.
fn lost_msg(msg: &str) -> Error {
    Error::SourceLost {
        source_name: String::new(),
        msg: msg.to_string(),
    }
}

impl FrameSource for Camera {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        loop {
            if self.stop.is_stopped() {
                return Ok(None);
            }
            if self.live.is_none() {
                if !self.reopen()? {
                    return Ok(None);
                }
                continue;
            }
            return match self.read() {
                Err(Error::SourceLost { msg, .. }) => Err(self.lose(msg)),
                other => other,
            };
        }
    }

    fn reserve_frames(&mut self, frames: usize) {
        self.decoder.reserve_frames(frames);
    }

    fn stop_signal(&self) -> Option<StopSignal> {
        Some(self.stop.clone())
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        if let Some(live) = self.live.take() {
            close(live, &self.name);
        }
    }
}

/// Stops and releases a stream. v4l panics in Drop when stopping fails for any reason but
/// ENODEV, so we stop first ourselves and, in that rare case, leak the buffers rather than
/// take the process down.
fn close(live: Live, name: &str) {
    let Live {
        mut stream, device, ..
    } = live;
    match stream.stop() {
        Ok(()) => drop(stream),
        Err(e) if e.raw_os_error() == Some(ENODEV) => drop(stream),
        Err(e) => {
            log::warn!("{name}: cannot stop streaming ({e}); leaving its buffers mapped");
            std::mem::forget(stream);
        }
    }
    drop(device);
}

fn fmt_delay(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn describe_chosen(chosen: &ChosenFormat, live: &Live) -> String {
    let rate = chosen
        .interval
        .map(|i| format!(" at {:.2} fps", i.fps()))
        .unwrap_or_default();
    format!(
        "streaming {} {}x{}{rate}",
        live.format, live.layout.width, live.layout.height
    )
}

/// Why opening failed, with what to do about the common cases.
fn open_error(label: &str, e: &io::Error) -> Error {
    let hint = match e.kind() {
        io::ErrorKind::NotFound => "no such device; `gss devices` lists the cameras",
        io::ErrorKind::PermissionDenied => "permission denied; add the user to the `video` group",
        _ if e.raw_os_error() == Some(16) => "busy: another program is using the camera",
        _ => "",
    };
    let msg = if hint.is_empty() {
        e.to_string()
    } else {
        format!("{e} ({hint})")
    };
    Error::SourceOpen {
        source_name: label.to_string(),
        msg,
    }
}

/// Opens, checks, negotiates and maps buffers; returns the card name too.
fn open_live(
    path: &Path,
    label: &str,
    options: &CameraOptions,
) -> Result<(Live, String, ChosenFormat)> {
    let device = Device::with_path(path).map_err(|e| open_error(label, &e))?;
    let caps = device.query_caps().map_err(|e| open_error(label, &e))?;
    let open_err = |msg: String| Error::SourceOpen {
        source_name: label.to_string(),
        msg,
    };
    if !caps.capabilities.contains(CapFlags::VIDEO_CAPTURE) {
        return Err(open_err(format!(
            "{} ({}) is not a video capture node (cameras often add a metadata node next to the real one; try the other /dev/video*)",
            caps.card, caps.driver
        )));
    }
    if !caps.capabilities.contains(CapFlags::STREAMING) {
        return Err(open_err(
            "the driver does not support streaming I/O, which gss uses".into(),
        ));
    }
    let offers =
        query_offers(&device).map_err(|e| open_err(format!("cannot list formats: {e}")))?;
    let chosen = choose_format(label, &offers, &options.request)?;
    let format_err = |msg: String| Error::SourceFormat {
        source_name: label.to_string(),
        msg,
    };
    let wanted = Format::new(
        chosen.width,
        chosen.height,
        FourCC::new(&chosen.format.fourcc().0),
    );
    let actual = device.set_format(&wanted).map_err(|e| {
        format_err(format!(
            "setting {} {}x{}: {e}",
            chosen.format, chosen.width, chosen.height
        ))
    })?;
    let Some(format) = PixelFormat::from_fourcc(FourCc(actual.fourcc.repr)) else {
        return Err(format_err(format!(
            "asked for {}, the driver switched to {}",
            chosen.format,
            FourCc(actual.fourcc.repr)
        )));
    };
    if (actual.width, actual.height) != (chosen.width, chosen.height) {
        log::warn!(
            "{label}: asked for {}x{}, the driver gives {}x{}",
            chosen.width,
            chosen.height,
            actual.width,
            actual.height
        );
    }
    if let Some(Interval {
        numerator,
        denominator,
    }) = chosen.interval
    {
        // Not every driver can set the rate; the stream still works at the device's own rate.
        if let Err(e) = device.set_params(&Parameters::new(Fraction::new(numerator, denominator))) {
            log::warn!("{label}: cannot set the frame rate: {e}");
        }
    }
    let mut stream = MmapStream::with_buffers(&device, Type::VideoCapture, options.buffers)
        .map_err(|e| {
            open_err(format!(
                "cannot map {} capture buffers: {e}",
                options.buffers
            ))
        })?;
    stream.set_timeout(options.frame_timeout);
    let layout = FrameLayout {
        width: actual.width,
        height: actual.height,
        stride: actual.stride,
    };
    Ok((
        Live {
            stream,
            device,
            format,
            layout,
            started: false,
        },
        caps.card,
        chosen,
    ))
}

/// Everything the node offers for capture, in the chooser's terms.
fn query_offers(device: &Device) -> io::Result<Vec<FormatOffer>> {
    let mut offers = Vec::new();
    for desc in device.enum_formats()? {
        let mut sizes = Vec::new();
        // A format whose sizes cannot be listed is still offered: the driver adjusts the size.
        for size in device.enum_framesizes(desc.fourcc).unwrap_or_default() {
            for (width, height) in sample_sizes(&size.size) {
                let intervals = device
                    .enum_frameintervals(desc.fourcc, width, height)
                    .map(|list| {
                        list.iter()
                            .flat_map(|i| sample_intervals(&i.interval))
                            .collect()
                    })
                    .unwrap_or_default();
                sizes.push(SizeOffer {
                    width,
                    height,
                    intervals,
                });
            }
        }
        offers.push(FormatOffer {
            fourcc: FourCc(desc.fourcc.repr),
            description: desc.description.clone(),
            sizes,
        });
    }
    Ok(offers)
}

fn sample_sizes(size: &FrameSizeEnum) -> Vec<(u32, u32)> {
    match size {
        FrameSizeEnum::Discrete(d) => vec![(d.width, d.height)],
        FrameSizeEnum::Stepwise(s) => {
            let steps_w = s.step_width.max(1);
            let steps_h = s.step_height.max(1);
            let n_w = (s.max_width.saturating_sub(s.min_width) / steps_w) as usize;
            let n_h = (s.max_height.saturating_sub(s.min_height) / steps_h) as usize;
            let n = n_w.min(n_h).max(1);
            let stride = n.div_ceil(STEPWISE_SAMPLES).max(1);
            // Common sizes first if the range allows them, then an even spread of the range.
            let mut out: Vec<(u32, u32)> = [(640, 480), (1280, 720), (1920, 1080), (320, 240)]
                .into_iter()
                .filter(|&(w, h)| {
                    (s.min_width..=s.max_width).contains(&w)
                        && (s.min_height..=s.max_height).contains(&h)
                        && (w - s.min_width) % steps_w == 0
                        && (h - s.min_height) % steps_h == 0
                })
                .collect();
            for k in (0..=n).step_by(stride).chain([n]) {
                let w = s
                    .min_width
                    .saturating_add((k.min(n_w) as u32).saturating_mul(steps_w));
                let h = s
                    .min_height
                    .saturating_add((k.min(n_h) as u32).saturating_mul(steps_h));
                if !out.contains(&(w, h)) {
                    out.push((w, h));
                }
            }
            out
        }
    }
}

fn sample_intervals(interval: &FrameIntervalEnum) -> Vec<Interval> {
    let to = |f: &Fraction| Interval {
        numerator: f.numerator,
        denominator: f.denominator,
    };
    match interval {
        FrameIntervalEnum::Discrete(f) => vec![to(f)],
        // Both ends: the fastest and the slowest rate the device allows.
        FrameIntervalEnum::Stepwise(s) => vec![to(&s.min), to(&s.max)],
    }
}

/// The `/dev/video*` nodes and what each offers. No cameras: an empty list. A node that
/// cannot be opened (busy, permission) is listed with its error.
pub fn list_devices() -> Result<Vec<DeviceInfo>> {
    let mut nodes: Vec<(u32, PathBuf)> = match std::fs::read_dir("/dev") {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name();
                let n = name.to_str()?.strip_prefix("video")?.parse::<u32>().ok()?;
                Some((n, e.path()))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    nodes.sort();
    Ok(nodes
        .into_iter()
        .map(|(_, path)| describe_node(path))
        .collect())
}

fn describe_node(path: PathBuf) -> DeviceInfo {
    let mut info = DeviceInfo {
        path,
        card: String::new(),
        driver: String::new(),
        bus: String::new(),
        is_capture: false,
        formats: Vec::new(),
        error: None,
    };
    let device = match Device::with_path(&info.path) {
        Ok(d) => d,
        Err(e) => {
            info.error = Some(e.to_string());
            return info;
        }
    };
    match device.query_caps() {
        Ok(caps) => {
            info.card = caps.card;
            info.driver = caps.driver;
            info.bus = caps.bus;
            info.is_capture = caps.capabilities.contains(CapFlags::VIDEO_CAPTURE);
        }
        Err(e) => {
            info.error = Some(e.to_string());
            return info;
        }
    }
    if info.is_capture {
        match query_offers(&device) {
            Ok(formats) => info.formats = formats,
            Err(e) => info.error = Some(format!("cannot list formats: {e}")),
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;
    use v4l::framesize::{Discrete, Stepwise};

    #[test]
    fn list_devices_without_cameras_does_not_fail() {
        let devices = list_devices().unwrap();
        for d in &devices {
            // Whatever is there must print.
            let _ = d.to_string();
        }
    }

    #[test]
    fn opening_a_missing_device_is_a_clear_fatal_error() {
        let err = Camera::open("/dev/video-gss-test-missing", CameraOptions::default())
            .err()
            .unwrap();
        assert!(matches!(err, Error::SourceOpen { .. }), "{err}");
        assert!(!err.is_recoverable());
        assert!(err.to_string().contains("gss devices"), "{err}");
        let err = Camera::open("/dev/null", CameraOptions::default())
            .err()
            .unwrap();
        assert!(matches!(err, Error::SourceOpen { .. }), "{err}");
    }

    #[test]
    fn stepwise_sizes_are_sampled_not_enumerated() {
        let s = FrameSizeEnum::Stepwise(Stepwise {
            min_width: 16,
            max_width: 4096,
            step_width: 2,
            min_height: 16,
            max_height: 2160,
            step_height: 2,
        });
        let sizes = sample_sizes(&s);
        assert!(sizes.len() <= STEPWISE_SAMPLES + 6, "{sizes:?}");
        assert!(sizes.contains(&(640, 480)) && sizes.contains(&(1920, 1080)));
        assert!(sizes.contains(&(16, 16)));
        assert_eq!(
            sample_sizes(&FrameSizeEnum::Discrete(Discrete {
                width: 8,
                height: 4
            })),
            vec![(8, 4)]
        );
        let zero_step = FrameSizeEnum::Stepwise(Stepwise {
            min_width: 10,
            max_width: 10,
            step_width: 0,
            min_height: 10,
            max_height: 10,
            step_height: 0,
        });
        assert_eq!(sample_sizes(&zero_step), vec![(10, 10)]);
    }
}
