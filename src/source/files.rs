//! Image files as a frame source: a directory, a glob, or the bundled sample clip, played in
//! name order, optionally paced and looped. Each file is decoded ([`super::decode`]) into an
//! image from the source's own pool, so a steady stream allocates no image per frame.

use super::decode::load_rgb_into;
use super::frame_decoder::FRAME_POOL_CAPACITY;
use super::{Frame, FrameSource, StopSignal};
use crate::locate::{self, Candidate};
use crate::pool::BufferPool;
use crate::{Error, Result};
use image::RgbImage;
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];
const EXPECTED: &str = "expected .png, .jpg or .jpeg files";

/// Frames read from image files in name order (numbers compared by value, so `frame_2` comes
/// before `frame_10`), optionally paced to a frame rate and looped.
#[derive(Debug)]
pub struct ImageFiles {
    name: String,
    paths: Vec<PathBuf>,
    next: usize,
    index: u64,
    period: Option<Duration>,
    due: Option<Instant>,
    looping: bool,
    good_this_pass: bool,
    stop: StopSignal,
    images: BufferPool<RgbImage>,
    /// The file being decoded, read into memory that the next file reuses.
    bytes: Vec<u8>,
}

impl ImageFiles {
    /// The image files directly inside `dir` (not recursive).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let name = dir.display().to_string();
        let open_err = |msg: String| Error::SourceOpen {
            source_name: name.clone(),
            msg,
        };
        if !dir.is_dir() {
            let what = if dir.exists() {
                "not a directory"
            } else {
                "no such directory"
            };
            return Err(open_err(format!(
                "{what}; expected a directory of .png/.jpg/.jpeg files"
            )));
        }
        let entries = std::fs::read_dir(dir).map_err(|e| open_err(format!("cannot list: {e}")))?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| open_err(format!("cannot list: {e}")))?;
            let path = entry.path();
            if has_image_extension(&path) && path.is_file() {
                paths.push(path);
            }
        }
        if paths.is_empty() {
            return Err(open_err(format!("the directory has no images; {EXPECTED}")));
        }
        Ok(Self::from_sorted(name, paths))
    }

    /// The image files matching a glob pattern such as `shots/**/*.jpg`.
    pub fn from_glob(pattern: &str) -> Result<Self> {
        let open_err = |msg: String| Error::SourceOpen {
            source_name: pattern.to_string(),
            msg,
        };
        let matches =
            glob::glob(pattern).map_err(|e| open_err(format!("invalid glob pattern: {e}")))?;
        let mut paths = Vec::new();
        let mut matched_any = false;
        for entry in matches {
            match entry {
                Ok(path) => {
                    matched_any = true;
                    if has_image_extension(&path) && path.is_file() {
                        paths.push(path);
                    }
                }
                // An unreadable directory on the way should not hide the files that are readable.
                Err(e) => log::warn!("{pattern}: skipping {}: {}", e.path().display(), e.error()),
            }
        }
        if paths.is_empty() {
            let msg = if matched_any {
                format!("the pattern matches no image files; {EXPECTED}")
            } else {
                format!("the pattern matches nothing; {EXPECTED}")
            };
            return Err(open_err(msg));
        }
        Ok(Self::from_sorted(pattern.to_string(), paths))
    }

    /// The clip bundled with gss (`assets/street8-clip`, 120 labelled frames of 512×256), found
    /// as [`sample_clip_dir`] says.
    pub fn sample_clip() -> Result<Self> {
        Self::from_dir(sample_clip_dir()?)
    }

    fn from_sorted(name: String, mut paths: Vec<PathBuf>) -> Self {
        paths.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
        paths.dedup();
        ImageFiles {
            name,
            paths,
            next: 0,
            index: 0,
            period: None,
            due: None,
            looping: false,
            good_this_pass: false,
            stop: StopSignal::new(),
            images: BufferPool::new(FRAME_POOL_CAPACITY),
            bytes: Vec::new(),
        }
    }

    /// Replays at `fps` frames per second, sleeping between frames (no pacing by default: as
    /// fast as files decode). The rate is kept on average; a late frame does not cause a burst.
    pub fn with_fps(mut self, fps: f64) -> Result<Self> {
        if !(fps.is_finite() && fps > 0.0 && fps <= 10_000.0) {
            return Err(Error::SourceOpen {
                source_name: self.name,
                msg: format!(
                    "frame rate {fps} is not usable; give a number of frames per second above 0"
                ),
            });
        }
        self.period = Some(Duration::from_secs_f64(1.0 / fps));
        Ok(self)
    }

    /// Starts again from the first file after the last one instead of ending.
    pub fn looping(mut self, looping: bool) -> Self {
        self.looping = looping;
        self
    }

    /// The files in the order they are played.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Images made outside the source's pool because every pooled one was still held downstream.
    pub fn pool_overflow(&self) -> u64 {
        self.images.overflow()
    }

    /// Waits for the pacing slot of the next frame; false if stopped meanwhile.
    fn wait_for_slot(&mut self) -> bool {
        let Some(period) = self.period else {
            return !self.stop.is_stopped();
        };
        let now = Instant::now();
        let due = match self.due {
            Some(due) => due,
            None => now,
        };
        if !self.stop.sleep_until(due) {
            return false;
        }
        // Behind by more than a period (slow decode, a stalled consumer): restart the schedule
        // from now rather than firing the missed frames back to back.
        let after = Instant::now();
        self.due = Some(if after > due + period {
            after + period
        } else {
            due + period
        });
        true
    }
}

impl FrameSource for ImageFiles {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        if self.next >= self.paths.len() {
            if !self.looping {
                return Ok(None);
            }
            if !self.good_this_pass {
                // Looping over files that all fail would produce errors forever.
                return Err(Error::SourceOpen {
                    source_name: self.name.clone(),
                    msg: "no file decoded in a whole pass; stopping instead of looping".into(),
                });
            }
            self.next = 0;
            self.good_this_pass = false;
        }
        if !self.wait_for_slot() {
            return Ok(None);
        }
        let path = self.paths[self.next].clone();
        let index = self.index;
        self.next += 1;
        self.index += 1;
        let Self { images, bytes, .. } = self;
        match images.fill(|image| load_rgb_into(&path, bytes, image)) {
            Ok(image) => {
                self.good_this_pass = true;
                Ok(Some(Frame {
                    index,
                    captured_at: Instant::now(),
                    image,
                    origin: Some(path),
                }))
            }
            Err(reason) => Err(Error::CorruptFrame {
                source_name: self.name.clone(),
                frame: index,
                reason: Box::new(reason),
            }),
        }
    }

    fn reserve_frames(&mut self, frames: usize) {
        self.images.reserve(frames);
    }

    fn stop_signal(&self) -> Option<StopSignal> {
        Some(self.stop.clone())
    }
}

/// The environment variable that points gss at the sample clip's frames.
pub const SAMPLE_CLIP_VAR: &str = "GSS_SAMPLE_CLIP";

/// Where the bundled sample clip's frames are, inside the source tree and an install.
const SAMPLE_CLIP_FRAMES: &str = "assets/street8-clip/images/seq";

/// Where the sample clip's frames are: `$GSS_SAMPLE_CLIP` when set, else the first of
/// `./assets/street8-clip/images/seq`, the same beside the executable or in
/// `<exe dir>/../share/gss/`, and the checkout gss was built from.
pub fn sample_clip_dir() -> Result<PathBuf> {
    sample_clip_in(&locate::bundled(
        Some(SAMPLE_CLIP_VAR),
        Path::new(SAMPLE_CLIP_FRAMES),
    ))
}

fn sample_clip_in(candidates: &[Candidate]) -> Result<PathBuf> {
    let hint = format!(
        "set {SAMPLE_CLIP_VAR} to the clip's images/seq directory (it ships in the gss source tree as \
         {SAMPLE_CLIP_FRAMES}), or play a directory of frames of your own"
    );
    locate::first_existing("sample clip", candidates, &hint)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Compares names with digit runs taken as numbers, because exported frames are often not
/// zero-padded and `frame_10` must not play before `frame_2`.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                // Longer significant digit strings are larger numbers; equal lengths compare
                // digit by digit, which avoids parsing (and overflow on long runs).
                let ord = na
                    .len()
                    .cmp(&nb.len())
                    .then_with(|| na.cmp(nb))
                    .then_with(|| da.cmp(&db));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let start = digits
        .iter()
        .position(|&c| c != b'0')
        .unwrap_or(digits.len());
    &digits[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_compares_numbers_by_value() {
        let mut names = vec![
            "f10.png", "f2.png", "f1.png", "f02.png", "g.png", "f.png", "f100.png",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            vec!["f.png", "f1.png", "f2.png", "f02.png", "f10.png", "f100.png", "g.png"]
        );
        assert_eq!(
            natural_cmp("frame_000001.jpg", "frame_000010.jpg"),
            Ordering::Less
        );
        let long = "9".repeat(60);
        assert_eq!(natural_cmp(&format!("a{long}"), "a1"), Ordering::Greater);
    }

    #[test]
    fn extensions_are_matched_case_insensitively() {
        assert!(has_image_extension(Path::new("a/B.JPG")));
        assert!(has_image_extension(Path::new("a/b.jpeg")));
        assert!(has_image_extension(Path::new("a/b.png")));
        assert!(!has_image_extension(Path::new("a/b.gif")));
        assert!(!has_image_extension(Path::new("a/png")));
    }

    #[test]
    fn the_sample_clip_is_found_and_a_miss_names_every_place() {
        let dir = sample_clip_dir().expect("tests run where the clip is");
        assert!(
            dir.ends_with(SAMPLE_CLIP_FRAMES) && dir.is_dir(),
            "{}",
            dir.display()
        );
        let nowhere = [
            Candidate::new("/nonexistent/a", "here"),
            Candidate::new("/nonexistent/b", "there"),
        ];
        let err = sample_clip_in(&nowhere).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::NotFound { .. }) && !err.is_recoverable());
        for needle in [
            "sample clip",
            "/nonexistent/a (here)",
            "/nonexistent/b (there)",
            SAMPLE_CLIP_VAR,
        ] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
    }

    #[test]
    fn bad_rates_are_refused() {
        for fps in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = ImageFiles::sample_clip()
                .unwrap()
                .with_fps(fps)
                .unwrap_err();
            assert!(matches!(err, Error::SourceOpen { .. }), "{fps}: {err}");
        }
    }

    #[test]
    fn pacing_keeps_the_rate() {
        let mut src = ImageFiles::sample_clip().unwrap().with_fps(50.0).unwrap();
        let start = Instant::now();
        for _ in 0..6 {
            src.next_frame().unwrap().unwrap();
        }
        // Six frames at 50 fps: the first is immediate, five periods of 20 ms follow.
        assert!(
            start.elapsed() >= Duration::from_millis(95),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_raised_stop_signal_ends_a_paced_source() {
        let mut src = ImageFiles::sample_clip().unwrap().with_fps(0.1).unwrap();
        src.next_frame().unwrap().unwrap();
        let stop = src.stop_signal().unwrap();
        stop.stop();
        let start = Instant::now();
        assert!(src.next_frame().unwrap().is_none());
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
