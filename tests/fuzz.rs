//! Mutation fuzzing of everything that reads bytes from outside: `model.json` parsing and
//! validation, MJPG camera frames, the packed pixel conversions (YUYV, RGB3, GREY at any
//! negotiated layout) and the `gss-mask/1` frame decoder; and a barrage of mutated image files
//! through `gss stream`.
//!
//! cargo-fuzz needs a nightly toolchain, which the project does not assume, so the fuzzer is a
//! test on stable Rust in cargo-fuzz's manner: a committed seed corpus per target
//! (`tests/fuzz/<target>/`, written by `cargo test --test fuzz -- --ignored write_seed_corpus`;
//! a crash found later goes there too, as a regression), mutations of it (bit flips, random
//! and boundary bytes, insertions, deletions, splices; for JSON also values swapped for
//! hostile ones), and every input run under `catch_unwind`. Deterministic: a failure names the
//! target and the iteration, and writes the input to `target/fuzz-crashes/`. A bounded run
//! here (`GSS_FUZZ_ITERS` per target, default 20,000); a longer one with e.g.
//! `GSS_FUZZ_ITERS=1000000 cargo test --release --test fuzz`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use gss::model::Manifest;
use gss::sink::wire;
use gss::source::{FrameDecoder, FrameLayout, PixelFormat};
use image::RgbImage;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn iterations() -> u64 {
    std::env::var("GSS_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// xorshift64*: fast, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Values that break size arithmetic, as little- and big-endian u16/u32.
const BOUNDARY: [u32; 9] = [
    0,
    1,
    0x7F,
    0xFF,
    0x7FFF,
    0xFFFF,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
];

/// One to four byte-level mutations of `data`, sometimes spliced with `other`.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..=rng.below(4) {
        let len = data.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next() as u8;
            }
            2 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                data.drain(at..at + n);
            }
            4 if len > 0 => data.truncate(rng.below(len)),
            5 if len >= 4 => {
                let v = BOUNDARY[rng.below(BOUNDARY.len())];
                let at = rng.below(len - 3);
                let bytes = if rng.below(2) == 0 {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                data[at..at + 4].copy_from_slice(&bytes);
            }
            6 if !other.is_empty() && len > 0 => {
                let at = rng.below(len);
                let from = rng.below(other.len());
                let n = 1 + rng.below((other.len() - from).min(256));
                data.splice(at..at, other[from..from + n].iter().copied());
            }
            _ if len > 1 => {
                // Duplicate a range (repeated markers, chunks).
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                let copy = data[at..at + n].to_vec();
                data.splice(at..at, copy);
            }
            _ => data.push(rng.next() as u8),
        }
    }
}

/// The seed corpus of `target`: the committed files, sorted by name.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = root().join("tests/fuzz").join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; write it with --ignored write_seed_corpus",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let seeds: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "{}: an empty corpus", dir.display());
    seeds
}

/// Runs `target` on every seed and on `iterations()` mutants; a panic fails the test with the
/// iteration and leaves the input in target/fuzz-crashes/.
fn fuzz(
    name: &str,
    mut mutate_one: impl FnMut(&mut Rng, &[Vec<u8>]) -> Vec<u8>,
    mut target: impl FnMut(&[u8]),
) {
    let seeds = corpus(name);
    let mut rng = Rng::new(
        name.bytes()
            .fold(7, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
    );
    let n = iterations();
    let started = std::time::Instant::now();
    for i in 0..(seeds.len() as u64 + n) {
        let input = match seeds.get(i as usize) {
            Some(seed) => seed.clone(),
            None => mutate_one(&mut rng, &seeds),
        };
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            let dir = root().join("target/fuzz-crashes");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("{name}-{i}.bin"));
            std::fs::write(&path, &input).unwrap();
            panic!(
                "fuzz target {name} panicked at iteration {i}; the input is in {}",
                path.display()
            );
        }
    }
    eprintln!(
        "fuzz {name}: {} executions in {:.1} s, no panic",
        seeds.len() as u64 + n,
        started.elapsed().as_secs_f64()
    );
}

fn bytes_mutant(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    let other = &seeds[rng.below(seeds.len())];
    mutate(rng, &mut data, other);
    data
}

/// Hostile JSON values for the structure-aware half of the manifest mutants.
fn hostile(rng: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    let values = [
        json!(0),
        json!(-1),
        json!(1u64 << 40),
        json!(u64::MAX),
        json!(4611686018427387904u64),
        json!(1e300),
        json!(-1e300),
        json!(0.0),
        json!(""),
        json!("../../etc/passwd"),
        json!("/etc/passwd"),
        json!([]),
        json!([0, 0]),
        json!([1e300, 1e300, 1e300]),
        json!({}),
        json!(null),
        json!(true),
        json!("x".repeat(10_000)),
    ];
    values[rng.below(values.len())].clone()
}

/// Replaces one value somewhere in `v` (objects and arrays walked at random).
fn replace_somewhere(rng: &mut Rng, v: &mut serde_json::Value) {
    let children = match v {
        serde_json::Value::Object(m) if !m.is_empty() => m.len(),
        serde_json::Value::Array(a) if !a.is_empty() => a.len(),
        _ => 0,
    };
    if children == 0 || rng.below(4) == 0 {
        *v = hostile(rng);
        return;
    }
    let i = rng.below(children);
    let child = match v {
        serde_json::Value::Object(m) => m.values_mut().nth(i),
        serde_json::Value::Array(a) => a.get_mut(i),
        _ => None,
    };
    if let Some(child) = child {
        replace_somewhere(rng, child);
    }
}

#[test]
fn model_json_parsing_and_validation() {
    let path = Path::new("fuzz/model.json");
    fuzz(
        "manifest",
        |rng, seeds| {
            let seed = &seeds[rng.below(seeds.len())];
            match serde_json::from_slice::<serde_json::Value>(seed) {
                Ok(mut value) if rng.below(2) == 0 => {
                    for _ in 0..=rng.below(3) {
                        replace_somewhere(rng, &mut value);
                    }
                    serde_json::to_vec(&value).unwrap()
                }
                _ => bytes_mutant(rng, seeds),
            }
        },
        |data| {
            let _ = Manifest::parse(&String::from_utf8_lossy(data), path);
        },
    );
}

#[test]
fn mjpg_frames() {
    let mut decoder = FrameDecoder::new();
    let mut out = RgbImage::new(0, 0);
    fuzz("mjpg", bytes_mutant, |data| {
        // The negotiated size is the seed's, or none (0: any size).
        let layout = if data.len() % 2 == 0 {
            FrameLayout::packed(64, 48)
        } else {
            FrameLayout::packed(0, 0)
        };
        let _ = decoder.decode(PixelFormat::Mjpg, data, layout, &mut out);
    });
}

#[test]
fn packed_pixel_conversions() {
    let mut decoder = FrameDecoder::new();
    let mut out = RgbImage::new(0, 0);
    fuzz("packed", bytes_mutant, |data| {
        // The first 7 bytes choose the format and the layout a device could have negotiated.
        let Some((head, pixels)) = data.split_at_checked(7) else {
            return;
        };
        let format =
            [PixelFormat::Yuyv, PixelFormat::Rgb3, PixelFormat::Grey][head[0] as usize % 3];
        let u16_at = |i: usize| u32::from(u16::from_le_bytes([head[i], head[i + 1]]));
        let layout = FrameLayout {
            width: u16_at(1) % 4096,
            height: u16_at(3) % 4096,
            stride: u16_at(5),
        };
        let _ = decoder.decode(format, pixels, layout, &mut out);
    });
}

#[test]
fn gss_mask_frames() {
    fuzz("wire", bytes_mutant, |data| {
        if let Some((header, pixels)) = wire::parse_frame(data) {
            assert_eq!(
                pixels.len() as u64,
                u64::from(header.width) * u64::from(header.height)
            );
        }
    });
}

/// Writes the seed corpus from the project's own fixtures (run once, then commit tests/fuzz/).
#[test]
#[ignore]
fn write_seed_corpus() {
    let dir = root().join("tests/fuzz");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::create_dir_all(dir.join(target)).unwrap();
        std::fs::write(dir.join(target).join(name), bytes).unwrap();
    };
    for package in ["gss-tiny", "gss-tiny-logits"] {
        let json = std::fs::read(
            root()
                .join("tests/fixtures")
                .join(package)
                .join("model.json"),
        )
        .unwrap();
        write("manifest", &format!("{package}.json"), &json);
    }
    let frame =
        image::open(root().join("assets/street8-clip/images/seq/frame_000000.jpg")).unwrap();
    let small = frame
        .resize_exact(64, 48, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 70)
        .encode_image(&small)
        .unwrap();
    write("mjpg", "frame-64x48.jpg", &jpeg);
    write(
        "mjpg",
        "frame-64x48-no-dht.jpg",
        &strip_huffman_tables(&jpeg),
    );
    let grey = image::DynamicImage::ImageRgb8(small.clone()).to_luma8();
    let mut grey_jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut grey_jpeg, 70)
        .encode_image(&grey)
        .unwrap();
    write("mjpg", "grey-64x48.jpg", &grey_jpeg);
    // Packed: format byte, width, height, stride (u16 LE), then the pixels.
    let packed = |format: u8, w: u16, h: u16, bytes_per_pixel: usize| {
        let mut v = vec![format];
        v.extend_from_slice(&w.to_le_bytes());
        v.extend_from_slice(&h.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend(
            (0..usize::from(w) * usize::from(h) * bytes_per_pixel).map(|i| (i * 37 % 251) as u8),
        );
        v
    };
    write("packed", "yuyv-16x8", &packed(0, 16, 8, 2));
    write("packed", "rgb3-16x8", &packed(1, 16, 8, 3));
    write("packed", "grey-16x8", &packed(2, 16, 8, 1));
    let mut frame = Vec::new();
    wire::write_header(&mut frame, 8, 4, 3, 3);
    frame.extend((0..32).map(|i| (i % 5) as u8));
    write("wire", "frame-8x4", &frame);
}

/// The JPEG without its DHT segments, as many webcams send MJPG frames.
fn strip_huffman_tables(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
        let marker = jpeg[i + 1];
        if marker == 0xDA {
            break;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if marker != 0xC4 {
            out.extend_from_slice(&jpeg[i..i + 2 + len]);
        }
        i += 2 + len;
    }
    out.extend_from_slice(&jpeg[i..]);
    out
}

/// 10,000 mutated image files through `gss stream` (lossless): it neither panics nor stops,
/// and every file is accounted for, as a frame or as a corrupt one.
#[cfg(feature = "cli")]
#[test]
fn a_barrage_of_mutated_images_through_gss_stream() {
    const FILES: usize = 10_000;
    let dir = std::env::temp_dir().join(format!("gss-fuzz-barrage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let frame =
        image::open(root().join("assets/street8-clip/images/seq/frame_000000.jpg")).unwrap();
    let small = frame.resize_exact(32, 24, image::imageops::FilterType::Triangle);
    let mut seeds: Vec<(Vec<u8>, &str)> = Vec::new();
    for (format, ext) in [
        (image::ImageFormat::Jpeg, "jpg"),
        (image::ImageFormat::Png, "png"),
    ] {
        let mut bytes = Vec::new();
        small
            .write_to(&mut std::io::Cursor::new(&mut bytes), format)
            .unwrap();
        seeds.push((bytes, ext));
    }
    let mut rng = Rng::new(20_000);
    for i in 0..FILES {
        let (seed, ext) = &seeds[i % seeds.len()];
        let mut data = seed.clone();
        // Every tenth file is left whole, so frames flow between the broken ones.
        if i % 10 != 0 {
            mutate(&mut rng, &mut data, &seeds[(i + 1) % seeds.len()].0);
        }
        std::fs::write(dir.join(format!("f{i:05}.{ext}")), &data).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gss"))
        .env("GSS_MODEL", root().join("tests/fixtures/gss-tiny"))
        .env("RUST_LOG", "error")
        .args([
            "stream",
            "--fps",
            "0",
            "--lossless",
            "--save",
            "none",
            "--json",
            "--threads",
            "1",
            "--dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "gss stream failed: {}",
        stderr.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (captured, corrupt) = (
        report["captured"].as_u64().unwrap(),
        report["corrupt"].as_u64().unwrap(),
    );
    assert_eq!(captured + corrupt, FILES as u64, "{report}");
    assert_eq!(
        report["published"].as_u64(),
        Some(captured),
        "lossless: every intact frame published: {report}"
    );
    assert!(captured >= FILES as u64 / 10, "{report}");
    eprintln!("barrage: {FILES} files, {captured} frames published, {corrupt} corrupt, no panic");
    std::fs::remove_dir_all(&dir).unwrap();
}
