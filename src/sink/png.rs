//! PNG files of a stream's output: class-id maps (8-bit grey, pixel = class id, the dataset's
//! label format) and colour overlays, named after the frame they came from.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use image::{GrayImage, RgbImage};

use crate::error::{Error, Result};
use crate::pipeline::MaskFrame;

/// `<stem>` of the frame's file, or `frame_<index>` for a camera frame.
pub fn frame_stem(mask: &MaskFrame) -> String {
    mask.origin
        .as_ref()
        .and_then(|p| p.file_stem())
        .and_then(|s| s.to_str())
        .map_or_else(|| format!("frame_{:06}", mask.source_index), str::to_string)
}

fn write_err(path: &Path, e: image::ImageError) -> Error {
    match e {
        image::ImageError::IoError(source) => Error::Io {
            path: path.to_path_buf(),
            source,
        },
        other => Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(other),
        },
    }
}

/// Writes `classes` as `<dir>/<stem>.png`; returns the path.
pub fn write_classes(dir: &Path, stem: &str, classes: &GrayImage) -> Result<PathBuf> {
    let path = dir.join(format!("{stem}.png"));
    classes.save(&path).map_err(|e| write_err(&path, e))?;
    Ok(path)
}

/// Writes an overlay as `<dir>/<stem>.overlay.png`; returns the path.
pub fn write_overlay(dir: &Path, stem: &str, overlay: &RgbImage) -> Result<PathBuf> {
    let path = dir.join(format!("{stem}.overlay.png"));
    overlay.save(&path).map_err(|e| write_err(&path, e))?;
    Ok(path)
}

/// Writes a confidence grid (`grid` = [rows, columns], values 0..1) as an 8-bit grey
/// `<dir>/<stem>.confidence.png` at the grid's size (one pixel per token cell, 255 = certain).
pub fn write_confidence(
    dir: &Path,
    stem: &str,
    confidence: &[f32],
    grid: [usize; 2],
) -> Result<PathBuf> {
    let path = dir.join(format!("{stem}.confidence.png"));
    let grey: Vec<u8> = confidence
        .iter()
        .map(|&p| (p.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let image =
        GrayImage::from_raw(grid[1] as u32, grid[0] as u32, grey).ok_or_else(|| Error::Usage {
            stage: "confidence",
            msg: format!(
                "{} values for a {}x{} grid",
                confidence.len(),
                grid[0],
                grid[1]
            ),
        })?;
    image.save(&path).map_err(|e| write_err(&path, e))?;
    Ok(path)
}

/// What a [`Saver`] writes per frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveKind {
    /// Class-id maps (`<stem>.png`).
    Masks,
    /// Colour overlays (`<stem>.overlay.png`) of frames that kept their image.
    Overlays,
}

/// A stream's frames saved as PNGs in one folder, optionally only the last `keep` frames'
/// files (older ones are deleted), so that a camera left running cannot fill the disk. An
/// output, not part of the stream: its first write error stops it (and is kept for the
/// summary), and the stream goes on.
pub struct Saver {
    dir: PathBuf,
    kind: SaveKind,
    colors: Vec<[u8; 3]>,
    keep: Option<usize>,
    /// Files written, oldest first, and how often each is in the queue (a looping source
    /// writes the same name again: it is deleted only when its last write leaves the queue).
    written: VecDeque<PathBuf>,
    queued: HashMap<PathBuf, usize>,
    overlay: RgbImage,
    saved: u64,
    /// Why the saver stopped, if it did.
    failure: Option<String>,
}

impl Saver {
    /// Creates `dir` if needed. `colors`: the class colours overlays use; `keep`: frames whose
    /// files are kept (None: all, Some(0) is refused).
    pub fn new(
        dir: &Path,
        kind: SaveKind,
        colors: Vec<[u8; 3]>,
        keep: Option<usize>,
    ) -> Result<Self> {
        if keep == Some(0) {
            return Err(Error::InvalidOption {
                option: "--save-keep",
                msg: "keeps no frame at all; use --save none".into(),
            });
        }
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            kind,
            colors,
            keep,
            written: VecDeque::new(),
            queued: HashMap::new(),
            overlay: RgbImage::new(0, 0),
            saved: 0,
            failure: None,
        })
    }

    /// Writes `mask`'s file. The first failure is returned (and kept); after it the saver
    /// writes nothing more and returns Ok.
    pub fn save(&mut self, mask: &MaskFrame) -> Result<()> {
        if self.failure.is_some() {
            return Ok(());
        }
        self.write(mask)
            .inspect_err(|e| self.failure = Some(e.to_string()))
    }

    fn write(&mut self, mask: &MaskFrame) -> Result<()> {
        let stem = frame_stem(mask);
        let path = match self.kind {
            SaveKind::Masks => write_classes(&self.dir, &stem, &mask.classes)?,
            SaveKind::Overlays => match &mask.frame {
                Some(frame) => {
                    super::blend_into(frame, &mask.classes, &self.colors, &mut self.overlay);
                    write_overlay(&self.dir, &stem, &self.overlay)?
                }
                None => return Ok(()),
            },
        };
        self.saved += 1;
        let Some(keep) = self.keep else { return Ok(()) };
        *self.queued.entry(path.clone()).or_insert(0) += 1;
        self.written.push_back(path);
        while self.written.len() > keep {
            let Some(old) = self.written.pop_front() else {
                break;
            };
            let left = self.queued.get_mut(&old).map_or(0, |n| {
                *n -= 1;
                *n
            });
            if left == 0 {
                self.queued.remove(&old);
                match std::fs::remove_file(&old) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(Error::Io { path: old, source }),
                }
            }
        }
        Ok(())
    }

    /// Files written so far (deleted ones included).
    pub fn saved(&self) -> u64 {
        self.saved
    }

    /// The message of the error that stopped the saver, if one did.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_maps_round_trip_and_a_bad_folder_is_named() {
        let dir = std::env::temp_dir().join(format!("gss-png-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let classes = GrayImage::from_raw(3, 1, vec![0, 7, 255]).unwrap();
        let path = write_classes(&dir, "a", &classes).unwrap();
        assert_eq!(image::open(&path).unwrap().to_luma8(), classes);
        let conf = write_confidence(&dir, "a", &[0.0, 0.5, 1.0, 2.0], [2, 2]).unwrap();
        assert_eq!(
            image::open(&conf).unwrap().to_luma8().as_raw(),
            &[0, 128, 255, 255]
        );
        assert!(write_confidence(&dir, "b", &[0.5; 3], [2, 2]).is_err());
        let err = write_classes(&dir.join("missing/dir"), "a", &classes).unwrap_err();
        assert!(err.to_string().contains("missing/dir"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn mask(index: u64, origin: Option<&str>) -> MaskFrame {
        MaskFrame {
            seq: index,
            source_index: index,
            captured_at: std::time::Instant::now(),
            latency: std::time::Duration::ZERO,
            classes: std::sync::Arc::new(GrayImage::from_raw(2, 1, vec![0, 1]).unwrap()),
            frame: None,
            origin: origin.map(PathBuf::from),
            tokens: Default::default(),
            confidence: None,
            decoded_share: 1.0,
            timings: Default::default(),
            dropped_so_far: 0,
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_saver_keeps_the_last_frames_and_a_rewritten_name_survives() {
        let dir = std::env::temp_dir().join(format!("gss-saver-{}", std::process::id()));
        let mut saver = Saver::new(&dir, SaveKind::Masks, vec![], Some(2)).unwrap();
        for i in 0..5 {
            saver.save(&mask(i, None)).unwrap();
        }
        assert_eq!(files(&dir), ["frame_000003.png", "frame_000004.png"]);
        // A looping source: a, b, a; keeping 2 must not delete a's new file with its old entry.
        for name in ["a.jpg", "b.jpg", "a.jpg"] {
            saver.save(&mask(9, Some(name))).unwrap();
        }
        assert_eq!(files(&dir), ["a.png", "b.png"]);
        assert_eq!(saver.saved(), 8);
        assert!(Saver::new(&dir, SaveKind::Masks, vec![], Some(0)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_saver_stops_at_its_first_error_and_keeps_it() {
        let dir = std::env::temp_dir().join(format!("gss-saver-gone-{}", std::process::id()));
        let mut saver = Saver::new(&dir, SaveKind::Masks, vec![], None).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(saver.save(&mask(0, None)).is_err());
        assert!(
            saver.save(&mask(1, None)).is_ok(),
            "only the first failure is reported"
        );
        assert!(saver
            .failure()
            .unwrap()
            .to_string()
            .contains(&dir.display().to_string()));
        assert_eq!(saver.saved(), 0);
    }
}
