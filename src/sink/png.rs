//! PNG files of a stream's output: class-id maps (8-bit grey, pixel = class id, the dataset's
//! label format) and colour overlays, named after the frame they came from.

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
        image::ImageError::IoError(source) => Error::Io { path: path.to_path_buf(), source },
        other => Error::Io { path: path.to_path_buf(), source: std::io::Error::other(other) },
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
pub fn write_confidence(dir: &Path, stem: &str, confidence: &[f32], grid: [usize; 2]) -> Result<PathBuf> {
    let path = dir.join(format!("{stem}.confidence.png"));
    let grey: Vec<u8> = confidence.iter().map(|&p| (p.clamp(0.0, 1.0) * 255.0).round() as u8).collect();
    let image = GrayImage::from_raw(grid[1] as u32, grid[0] as u32, grey).ok_or_else(|| Error::Usage {
        stage: "confidence",
        msg: format!("{} values for a {}x{} grid", confidence.len(), grid[0], grid[1]),
    })?;
    image.save(&path).map_err(|e| write_err(&path, e))?;
    Ok(path)
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
        assert_eq!(image::open(&conf).unwrap().to_luma8().as_raw(), &[0, 128, 255, 255]);
        assert!(write_confidence(&dir, "b", &[0.5; 3], [2, 2]).is_err());
        let err = write_classes(&dir.join("missing/dir"), "a", &classes).unwrap_err();
        assert!(err.to_string().contains("missing/dir"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
