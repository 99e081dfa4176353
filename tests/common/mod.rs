//! Helpers the integration tests share: a backend whose speed and failures the test decides,
//! and a source that draws frames into recycled buffers, as a camera does.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gss::engine::Backend;
use gss::pool::BufferPool;
use gss::source::{Frame, FrameSource};
use gss::{Error, ModelPackage, Result};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

pub fn tiny_package() -> ModelPackage {
    ModelPackage::open(root().join("tests/fixtures/gss-tiny")).unwrap()
}

/// The first `n` frames of the sample clip, copied into a folder of their own (`tag` keeps
/// tests that run at once apart).
pub fn clip_frames(n: usize, tag: &str) -> gss::source::ImageFiles {
    use gss::source::ImageFiles;
    let pattern = format!(
        "{}/assets/street8-clip/images/seq/frame_0000[0-9][0-9].jpg",
        root().display()
    );
    let files = ImageFiles::from_glob(&pattern).unwrap();
    assert!(files.paths().len() >= n);
    let dir = std::env::temp_dir().join(format!("gss-clip-{tag}-{n}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for p in &files.paths()[..n] {
        std::fs::copy(p, dir.join(p.file_name().unwrap())).unwrap();
    }
    ImageFiles::from_dir(&dir).unwrap()
}

/// What a [`ScriptedBackend`] does on its `n`-th frame (counted from 0).
#[derive(Clone, Copy)]
pub enum Script {
    /// Every frame works, taking `delay`.
    Works { delay: Duration },
    /// Frame `at` fails with a non-frame error (a lost device).
    DeviceLostAt { at: u64 },
    /// Frame `at` panics.
    PanicsAt { at: u64 },
}

/// A backend that writes zeros without allocating (once its buffers have their size), so a test
/// measures the pipeline and not a graph.
pub struct ScriptedBackend {
    script: Script,
    frames: Arc<AtomicU64>,
    tokens: usize,
    maskige: usize,
}

impl ScriptedBackend {
    pub fn new(package: &ModelPackage, script: Script) -> Self {
        Self::counting(package, script, Arc::default())
    }

    /// Shares its frame counter with the caller (one counter for both stages of a pipeline).
    pub fn counting(package: &ModelPackage, script: Script, frames: Arc<AtomicU64>) -> Self {
        let m = &package.manifest;
        Self {
            script,
            frames,
            tokens: m.prior.grid[0] * m.prior.grid[1],
            maskige: 3 * m.input.height * m.input.width,
        }
    }
}

impl Backend for ScriptedBackend {
    fn name(&self) -> &str {
        "scripted"
    }

    fn run_prior(&mut self, _image: &[f32], tokens: &mut Vec<i64>) -> Result<()> {
        let n = self.frames.fetch_add(1, Ordering::SeqCst);
        match self.script {
            Script::Works { delay } if !delay.is_zero() => std::thread::sleep(delay),
            Script::DeviceLostAt { at } if n == at => {
                return Err(Error::Gpu {
                    msg: "device lost".into(),
                })
            }
            Script::PanicsAt { at } if n == at => panic!("scripted panic at frame {n}"),
            _ => {}
        }
        tokens.resize(self.tokens, 0);
        Ok(())
    }

    fn run_decoder(&mut self, _tokens: &[i64], maskige: &mut Vec<f32>) -> Result<()> {
        maskige.resize(self.maskige, 0.0);
        Ok(())
    }
}

/// An endless (or `limit`-frame) source of flat grey frames drawn into its own recycled buffers,
/// like a camera: no file decoding, no allocation per frame once its pool is warm.
pub struct PatternSource {
    size: (u32, u32),
    pool: BufferPool<image::RgbImage>,
    index: u64,
    limit: Option<u64>,
}

impl PatternSource {
    pub fn new(width: u32, height: u32, limit: Option<u64>) -> Self {
        Self {
            size: (width, height),
            pool: BufferPool::new(4),
            index: 0,
            limit,
        }
    }
}

impl FrameSource for PatternSource {
    fn name(&self) -> &str {
        "pattern"
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        if self.limit.is_some_and(|l| self.index >= l) {
            return Ok(None);
        }
        let (w, h) = self.size;
        let shade = (self.index % 251) as u8;
        let image = self.pool.fill(|img: &mut image::RgbImage| {
            if img.dimensions() != (w, h) {
                *img = image::RgbImage::new(w, h);
            }
            img.fill(shade);
            Ok::<_, Error>(())
        })?;
        self.index += 1;
        Ok(Some(Frame {
            index: self.index - 1,
            captured_at: Instant::now(),
            image,
            origin: None,
        }))
    }

    fn reserve_frames(&mut self, frames: usize) {
        self.pool = BufferPool::new(frames);
    }
}
