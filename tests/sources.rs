//! Frame sources against small image files written by the tests themselves.

use gss::dataset::label_path_for;
use gss::source::{ImageFiles, StopSignal};
use gss::{Error, FrameSource};
use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("gss-sources-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A 16×8 image whose every pixel is `shade`, so a decoded frame tells which file it was.
fn write_frame(dir: &Path, name: &str, shade: u8) -> PathBuf {
    let path = dir.join(name);
    RgbImage::from_pixel(16, 8, Rgb([shade, shade, shade]))
        .save(&path)
        .unwrap();
    path
}

fn shade_of(img: &RgbImage) -> u8 {
    img.get_pixel(8, 4)[0]
}

/// Collects (origin file name, shade) until the source ends, counting corrupt frames.
fn drain(src: &mut ImageFiles) -> (Vec<(String, u8)>, usize) {
    let (mut frames, mut corrupt) = (Vec::new(), 0);
    loop {
        match src.next_frame() {
            Ok(Some(f)) => {
                let name = f
                    .origin
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                frames.push((name, shade_of(&f.image)));
            }
            Ok(None) => return (frames, corrupt),
            Err(e @ Error::CorruptFrame { .. }) => {
                assert!(e.is_recoverable());
                corrupt += 1;
            }
            Err(e) => panic!("unexpected fatal error: {e}"),
        }
    }
}

#[test]
fn directory_frames_come_sorted_with_png_and_jpeg() {
    let dir = TempDir::new("sorted");
    write_frame(dir.path(), "f10.png", 100);
    write_frame(dir.path(), "f2.jpg", 20);
    write_frame(dir.path(), "f1.png", 10);
    write_frame(dir.path(), "f3.JPEG", 30);
    std::fs::write(dir.path().join("notes.txt"), "not a frame").unwrap();
    std::fs::create_dir(dir.path().join("sub.png")).unwrap();

    let mut src = ImageFiles::from_dir(dir.path()).unwrap();
    assert_eq!(src.name(), dir.path().display().to_string());
    let (frames, corrupt) = drain(&mut src);
    assert_eq!(corrupt, 0);
    let names: Vec<_> = frames.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["f1.png", "f2.jpg", "f3.JPEG", "f10.png"]);
    // JPEG is lossy, but a flat grey survives within a level or two.
    for ((_, got), want) in frames.iter().zip([10u8, 20, 30, 100]) {
        assert!(got.abs_diff(want) <= 2, "got {got}, want {want}");
    }
    assert!(
        src.next_frame().unwrap().is_none(),
        "an ended source stays ended"
    );
}

#[test]
fn a_corrupt_jpeg_in_the_middle_is_skipped() {
    let dir = TempDir::new("corrupt");
    write_frame(dir.path(), "a.png", 10);
    let good = write_frame(dir.path(), "b.jpg", 20);
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&good, &bytes[..bytes.len() / 3]).unwrap();
    write_frame(dir.path(), "c.png", 30);
    std::fs::write(dir.path().join("d.jpg"), b"").unwrap();
    write_frame(dir.path(), "e.png", 50);

    let mut src = ImageFiles::from_dir(dir.path()).unwrap();
    let first = src.next_frame().unwrap().unwrap();
    assert_eq!((first.index, shade_of(&first.image)), (0, 10));
    let err = src.next_frame().unwrap_err();
    assert!(matches!(err, Error::CorruptFrame { .. }), "{err}");
    assert!(
        err.to_string().contains("b.jpg"),
        "the error names the file: {err}"
    );
    let next = src.next_frame().unwrap().unwrap();
    assert_eq!(
        (next.index, shade_of(&next.image)),
        (2, 30),
        "indices count the skipped file"
    );
    let err = src.next_frame().unwrap_err();
    assert!(err.to_string().contains("d.jpg"), "{err}");
    let last = src.next_frame().unwrap().unwrap();
    assert_eq!((last.index, shade_of(&last.image)), (4, 50));
    assert!(src.next_frame().unwrap().is_none());
}

#[test]
fn a_corrupt_frame_keeps_its_cause_and_names_the_file_once() {
    let dir = TempDir::new("cause");
    std::fs::write(dir.path().join("a.png"), b"garbage").unwrap();
    std::fs::write(dir.path().join("b.png"), b"").unwrap();
    let mut src = ImageFiles::from_dir(dir.path()).unwrap();

    let err = src.next_frame().unwrap_err();
    let Error::CorruptFrame {
        frame: 0, reason, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(
        matches!(
            **reason,
            Error::Image {
                source: Some(_),
                ..
            }
        ),
        "the decoder's refusal: {reason:?}"
    );
    // The chain a reporter walks: the file's error, then the decoder's under it.
    let cause = std::error::Error::source(&err).expect("the cause is the source");
    assert_eq!(cause.to_string(), reason.to_string());
    let decoder_error = std::error::Error::source(cause).expect("and the decoder's error under it");
    assert!(decoder_error.is::<image::ImageError>());
    let text = err.to_string();
    assert_eq!(text.matches("a.png").count(), 1, "{text}");
    assert!(
        text.starts_with(&format!("{}: frame 0 skipped: ", dir.path().display())),
        "{text}"
    );

    let err = src.next_frame().unwrap_err();
    let Error::CorruptFrame {
        frame: 1, reason, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(
        matches!(**reason, Error::Image { source: None, .. }),
        "our own check: {reason:?}"
    );
    assert!(
        err.to_string()
            .ends_with("b.png: the file is empty; replace or remove the file"),
        "{err}"
    );
}

#[test]
fn a_steady_stream_of_files_decodes_into_reused_images() {
    let dir = TempDir::new("pool");
    for i in 0..12u8 {
        write_frame(dir.path(), &format!("f{i:02}.png"), i * 10);
    }
    let mut src = ImageFiles::from_dir(dir.path()).unwrap();
    let first = src.next_frame().unwrap().unwrap();
    let memory = first.image.as_ptr();
    drop(first);
    for i in 1..6u8 {
        let frame = src.next_frame().unwrap().unwrap();
        assert_eq!(
            frame.image.as_ptr(),
            memory,
            "frame {i} reuses the released image"
        );
        assert_eq!(shade_of(&frame.image), i * 10);
    }
    // Frames still held are never written over; more than the pool keeps are allocated, counted.
    let held: Vec<_> = std::iter::from_fn(|| src.next_frame().unwrap()).collect();
    assert_eq!(held.len(), 6);
    let shades: Vec<u8> = held.iter().map(|f| shade_of(&f.image)).collect();
    assert_eq!(shades, [60, 70, 80, 90, 100, 110]);
    assert_eq!(src.pool_overflow(), 0, "six frames alive fit the pool");
}

#[test]
fn frames_held_past_the_pool_are_counted_not_overwritten() {
    let dir = TempDir::new("overflow");
    for i in 0..9u8 {
        write_frame(dir.path(), &format!("f{i}.png"), i);
    }
    let mut src = ImageFiles::from_dir(dir.path()).unwrap();
    let held: Vec<_> = std::iter::from_fn(|| src.next_frame().unwrap()).collect();
    assert_eq!(
        held.iter().map(|f| shade_of(&f.image)).collect::<Vec<_>>(),
        (0..9).collect::<Vec<u8>>()
    );
    assert_eq!(src.pool_overflow(), 3);
}

#[test]
fn a_pipeline_that_holds_more_frames_reserves_them_in_the_sources_pool() {
    let dir = TempDir::new("reserve");
    for i in 0..9u8 {
        write_frame(dir.path(), &format!("f{i}.png"), i);
    }
    let mut src = ImageFiles::from_dir(dir.path()).unwrap();
    // What Pipeline::run tells the source (queues, stages and subscribers together).
    src.reserve_frames(9);
    let held: Vec<_> = std::iter::from_fn(|| src.next_frame().unwrap()).collect();
    assert_eq!(held.len(), 9);
    assert_eq!(
        src.pool_overflow(),
        0,
        "nine frames alive fit the reserved pool"
    );
}

#[test]
fn looping_starts_over_and_keeps_counting() {
    let dir = TempDir::new("loop");
    write_frame(dir.path(), "0.png", 0);
    write_frame(dir.path(), "1.png", 100);
    let mut src = ImageFiles::from_dir(dir.path()).unwrap().looping(true);
    let seen: Vec<(u64, u8)> = (0..5)
        .map(|_| {
            let f = src.next_frame().unwrap().unwrap();
            (f.index, shade_of(&f.image))
        })
        .collect();
    assert_eq!(seen, [(0, 0), (1, 100), (2, 0), (3, 100), (4, 0)]);
}

#[test]
fn looping_over_only_broken_files_stops_instead_of_spinning() {
    let dir = TempDir::new("allbad");
    std::fs::write(dir.path().join("x.png"), b"garbage").unwrap();
    let mut src = ImageFiles::from_dir(dir.path()).unwrap().looping(true);
    assert!(matches!(src.next_frame(), Err(Error::CorruptFrame { .. })));
    let err = src.next_frame().unwrap_err();
    assert!(!err.is_recoverable(), "{err}");
}

#[test]
fn glob_selects_matching_images_only() {
    let dir = TempDir::new("glob");
    write_frame(dir.path(), "cam_b.png", 2);
    write_frame(dir.path(), "cam_a.jpg", 1);
    write_frame(dir.path(), "other.png", 9);
    std::fs::write(dir.path().join("cam_c.txt"), "no").unwrap();
    let pattern = format!("{}/cam_*", dir.path().display());
    let mut src = ImageFiles::from_glob(&pattern).unwrap();
    assert_eq!(src.name(), pattern);
    let (frames, _) = drain(&mut src);
    let names: Vec<_> = frames.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["cam_a.jpg", "cam_b.png"]);

    let err =
        ImageFiles::from_glob(&format!("{}/nothing_*.png", dir.path().display())).unwrap_err();
    assert!(
        matches!(err, Error::SourceOpen { .. }) && err.to_string().contains("matches nothing"),
        "{err}"
    );
    let err = ImageFiles::from_glob(&format!("{}/cam_*.txt", dir.path().display())).unwrap_err();
    assert!(err.to_string().contains("no image files"), "{err}");
    let err = ImageFiles::from_glob("[unclosed").unwrap_err();
    assert!(err.to_string().contains("invalid glob pattern"), "{err}");
}

#[test]
fn empty_or_missing_directories_are_open_errors() {
    let dir = TempDir::new("empty");
    std::fs::write(dir.path().join("readme.md"), "no frames here").unwrap();
    let err = ImageFiles::from_dir(dir.path()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::SourceOpen { .. }), "{err}");
    assert!(
        text.contains(&dir.path().display().to_string()) && text.contains(".png"),
        "{text}"
    );
    assert!(!err.is_recoverable());

    let missing = dir.path().join("nope");
    let err = ImageFiles::from_dir(&missing).unwrap_err();
    assert!(err.to_string().contains("no such directory"), "{err}");
    let file = write_frame(dir.path(), "f.png", 1);
    let err = ImageFiles::from_dir(&file).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn the_sample_clip_has_120_labelled_frames() {
    let mut src = ImageFiles::sample_clip().unwrap();
    let mut count = 0;
    while let Some(frame) = src.next_frame().unwrap() {
        assert_eq!(frame.index, count);
        assert_eq!(frame.image.dimensions(), (512, 256));
        let origin = frame.origin.unwrap();
        assert!(
            label_path_for(&origin).is_some(),
            "no label for {}",
            origin.display()
        );
        count += 1;
    }
    assert_eq!(count, 120);
}

#[test]
fn sources_work_behind_a_trait_object_on_another_thread() {
    let src: Box<dyn FrameSource> = Box::new(ImageFiles::sample_clip().unwrap());
    let stop: StopSignal = src.stop_signal().unwrap();
    let handle = std::thread::spawn(move || {
        let mut src = src;
        let mut n = 0;
        while src.next_frame().unwrap().is_some() {
            n += 1;
        }
        n
    });
    assert_eq!(handle.join().unwrap(), 120);
    stop.stop();
}

#[test]
fn list_devices_does_not_panic() {
    // Without cameras this is an empty list (v4l builds) or the rebuild hint (plain builds).
    match gss::source::list_devices() {
        Ok(devices) => {
            for d in devices {
                let _ = d.to_string();
            }
        }
        Err(e) => assert!(e.to_string().contains("--features v4l"), "{e}"),
    }
}
