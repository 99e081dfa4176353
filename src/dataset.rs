//! The dataset layout `gss-convert` writes and `gss eval` and `gss stream` read:
//!
//! ```text
//! <root>/images/<split>/<stem>.png|jpg      RGB
//! <root>/labels/<split>/<stem>.png          8-bit, pixel = class id, 255 = unlabeled
//! <root>/classes.json                       [{"id":0,"name":"road","color":[r,g,b]}, ...]
//! ```
//!
//! This module is the one place that knows it: where an image's label is (from a root and a
//! split, or from the image's path alone, which is all a stream played from files has), the
//! labelled samples of a split, and reading a label. Scoring labels is [`crate::eval`]'s.

use crate::source::ImageFiles;
use crate::{Error, Result};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Label value of unlabeled pixels.
pub const IGNORE: u8 = 255;

/// `<root>/images/<split>`.
pub fn images_dir(root: &Path, split: &str) -> PathBuf {
    root.join("images").join(split)
}

/// `<root>/labels/<split>`.
pub fn labels_dir(root: &Path, split: &str) -> PathBuf {
    root.join("labels").join(split)
}

/// `<root>/classes.json`: the class ids, names and colours of the labels.
pub fn classes_file(root: &Path) -> PathBuf {
    root.join("classes.json")
}

/// Where the label of the image `<root>/images/<split>/<stem>.*` is, whether or not it exists.
pub fn label_path(root: &Path, split: impl AsRef<OsStr>, stem: impl AsRef<OsStr>) -> PathBuf {
    // Appended, not `set_extension`: a stem such as "cam.0001" keeps its dot.
    let mut name = stem.as_ref().to_os_string();
    name.push(".png");
    root.join("labels").join(split.as_ref()).join(name)
}

/// The label of an image given only its path, if the image sits in the layout
/// (`<root>/images/<split>/<stem>.<ext>`) and its label file exists.
pub fn label_path_for(image_path: &Path) -> Option<PathBuf> {
    let stem = image_path.file_stem()?;
    let split_dir = image_path.parent()?;
    let split = split_dir.file_name()?;
    let images_dir = split_dir.parent()?;
    if images_dir.file_name()? != "images" {
        return None;
    }
    let label = label_path(images_dir.parent()?, split, stem);
    label.is_file().then_some(label)
}

/// One labelled image of a dataset split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub image: PathBuf,
    pub label: PathBuf,
}

/// The images of `<root>/images/<split>` with their labels, in the order the file source
/// plays them. An image without a label is an error naming the missing file: evaluating on
/// the labelled part only would be silent about the rest.
pub fn samples(root: &Path, split: &str) -> Result<Vec<Sample>> {
    ImageFiles::from_dir(images_dir(root, split))?
        .paths()
        .iter()
        .map(|image| {
            let stem = image.file_stem().unwrap_or_default();
            let label = label_path(root, split, stem);
            if label.is_file() {
                Ok(Sample { image: image.clone(), label })
            } else {
                Err(Error::Label {
                    path: label,
                    msg: format!(
                        "missing; every image in {} needs its label (8-bit PNG, pixel = class id, {IGNORE} = unlabeled)",
                        images_dir(root, split).display()
                    ),
                })
            }
        })
        .collect()
}

/// Reads an 8-bit label PNG (pixel = class id, 255 = unlabeled).
pub fn load_label(path: &Path) -> Result<image::GrayImage> {
    let reader = image::ImageReader::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let decoded = reader.decode().map_err(|e| Error::Image {
        path: path.to_path_buf(),
        problem: "cannot decode label",
        source: Some(e),
    })?;
    match decoded {
        image::DynamicImage::ImageLuma8(gray) => Ok(gray),
        other => Err(Error::Label {
            path: path.to_path_buf(),
            msg: format!(
                "a {:?} image; labels are 8-bit single-channel PNGs (pixel = class id), so re-export them as such",
                other.color()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/street8-clip")
    }

    #[test]
    fn the_layout_paths() {
        let root = Path::new("/data/street8");
        assert_eq!(
            images_dir(root, "val"),
            Path::new("/data/street8/images/val")
        );
        assert_eq!(
            labels_dir(root, "val"),
            Path::new("/data/street8/labels/val")
        );
        assert_eq!(classes_file(root), Path::new("/data/street8/classes.json"));
        assert_eq!(
            label_path(root, "val", "f.1"),
            Path::new("/data/street8/labels/val/f.1.png")
        );
        assert!(
            classes_file(&clip()).is_file(),
            "the bundled clip follows the layout"
        );
    }

    #[test]
    fn label_path_follows_the_dataset_layout() {
        let frames = images_dir(&clip(), "seq");
        let label = label_path_for(&frames.join("frame_000003.jpg")).expect("the clip has labels");
        assert_eq!(label, labels_dir(&clip(), "seq").join("frame_000003.png"));
        // Outside the layout, or with no label file, there is no label.
        assert_eq!(label_path_for(Path::new("/tmp/x/frame.jpg")), None);
        assert_eq!(label_path_for(&frames.join("frame_999999.jpg")), None);
        assert_eq!(label_path_for(Path::new("frame.jpg")), None);
    }

    #[test]
    fn a_split_pairs_every_image_with_its_label_in_play_order() {
        let samples = samples(&clip(), "seq").unwrap();
        assert_eq!(samples.len(), 120);
        assert!(samples[0].image.ends_with("images/seq/frame_000000.jpg"));
        assert!(samples[119].label.ends_with("labels/seq/frame_000119.png"));
        let label = load_label(&samples[0].label).unwrap();
        assert_eq!(label.dimensions(), (512, 256));
        assert!(label.pixels().all(|p| p.0[0] < 8 || p.0[0] == IGNORE));
    }

    #[test]
    fn missing_and_malformed_labels_are_label_errors() {
        let root = std::env::temp_dir().join(format!("gss-dataset-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(images_dir(&root, "t")).unwrap();
        std::fs::create_dir_all(labels_dir(&root, "t")).unwrap();
        image::RgbImage::new(4, 4)
            .save(images_dir(&root, "t").join("a.png"))
            .unwrap();
        let err = samples(&root, "t").unwrap_err();
        assert!(matches!(err, Error::Label { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with(&label_path(&root, "t", "a").display().to_string()),
            "{err}"
        );

        // An RGB label where class ids belong.
        image::RgbImage::new(4, 4)
            .save(label_path(&root, "t", "a"))
            .unwrap();
        let sample = &samples(&root, "t").unwrap()[0];
        let err = load_label(&sample.label).unwrap_err();
        assert!(
            matches!(err, Error::Label { .. }) && err.to_string().contains("8-bit single-channel"),
            "{err}"
        );
        std::fs::write(&sample.label, b"not a png").unwrap();
        assert!(matches!(
            load_label(&sample.label),
            Err(Error::Image {
                source: Some(_),
                ..
            })
        ));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
