//! Stream features above any backend: the temporal stabiliser and the prior's confidence (both
//! read the prior's token logits) and token reuse (re-decoding only windows of the grid near
//! changed tokens). They need two things of a backend, both on the [`Backend`] trait: the
//! prior's logits ([`Backend::run_prior_logits`]) and decoder plans for windows of the grid
//! ([`Backend::plan_decoder_windows`], [`Backend::run_decoder_window`]). So every backend that
//! offers those gets every feature, and no backend keeps stream state of its own.
//!
//! [`wrap`] is the one place that decides what a stream gets: it refuses an explicit request the
//! package or the backend cannot honour, and leaves a backend unwrapped when nothing is asked, so
//! a GPU backend keeps its single submission per frame.

use crate::engine::reuse::{self, Reuse, TileLayout};
use crate::engine::tokens;
use crate::engine::{Backend, BackendOptions, Graphs};
use crate::error::{Error, Result};
use crate::model::{ModelPackage, PriorOutput};

/// Tile side in token cells for token reuse. Measured on a parked camera with the stabiliser
/// (Zen 5, dense package, halo 4): decoder 2.1 ms at 8 against 4.2 ms at 4 and 2.6 ms at 16,
/// full decode 5.0 ms; smaller tiles pay their halo too often, larger ones refresh too much.
const REUSE_TILE: usize = 8;
/// Above this share of a full decode's cells the frame is decoded in full: windows cost about
/// 1.1-1.3× their share of cells in time (each call has a fixed cost of its own, measured on
/// the clip and the parked camera), so beyond 0.7 tiles would save little or lose.
pub(crate) const FULL_DECODE_ABOVE: f32 = 0.7;

/// What token reuse keeps between frames: the layout, the last tokens and maskige.
struct TileReuse {
    layout: TileLayout,
    /// Re-decode tiles whatever they cost ([`Reuse::Always`]).
    always: bool,
    /// The tokens `maskige` was decoded from; empty before the first frame.
    previous: Vec<i64>,
    maskige: Vec<f32>,
    window_tokens: Vec<i64>,
    window_maskige: Vec<f32>,
    marks: Vec<bool>,
    dirty: Vec<usize>,
}

/// A backend with the stream features `options` asked for.
pub struct StreamBackend {
    inner: Box<dyn Backend>,
    grid: [usize; 2],
    codes: usize,
    upsample: usize,
    /// The last frame's per-cell confidence, when asked for.
    confidence: Option<Vec<f32>>,
    /// (margin, the last frame's tokens) when the stabiliser was asked for.
    stabiliser: Option<(f32, Vec<i64>)>,
    reuse: Option<TileReuse>,
    decoded_share: f32,
}

fn refuse(what: &str, why: String) -> Error {
    Error::Usage {
        stage: "stream",
        msg: format!("{what}: {why}"),
    }
}

/// Gives `inner` (built for `graphs` of `package`) the stream features `options` asks for, or
/// returns it as it is when none applies. Confidence and the stabiliser need a prior that ends
/// with token logits and are refused otherwise; `Reuse::Always` is refused where reuse cannot
/// run, `Reuse::Auto` then only logs why every frame is decoded in full.
pub fn wrap(
    mut inner: Box<dyn Backend>,
    package: &ModelPackage,
    options: &BackendOptions,
    graphs: Graphs,
) -> Result<Box<dyn Backend>> {
    let m = &package.manifest;
    let logits = m.prior.emits == PriorOutput::TokenLogits;
    let prior_side = graphs != Graphs::Decoder;
    let no_logits = || {
        format!(
            "{}'s prior ends with its ArgMax, so it gives no token logits to weigh (export it \
             with `gss-convert export --argmax runtime`, the default)",
            m.name
        )
    };
    if prior_side && options.confidence && !logits {
        return Err(refuse("the prior's confidence", no_logits()));
    }
    if let (true, Some(_), false) = (prior_side, options.stabilise, logits) {
        return Err(refuse("the stabiliser", no_logits()));
    }
    let confidence = (prior_side && options.confidence).then(Vec::new);
    let stabiliser = options
        .stabilise
        .filter(|_| prior_side)
        .map(|margin| (margin, Vec::new()));
    let reuse = if graphs == Graphs::Prior {
        None
    } else {
        tile_reuse(
            inner.as_mut(),
            package,
            options.variant.as_deref(),
            options.reuse,
        )?
    };
    if confidence.is_none() && stabiliser.is_none() && reuse.is_none() {
        return Ok(inner);
    }
    Ok(Box::new(StreamBackend {
        inner,
        grid: m.prior.grid,
        codes: m.prior.codebook_size,
        upsample: m.decoder.upsample,
        confidence,
        stabiliser,
        reuse,
        decoded_share: 1.0,
    }))
}

/// Token reuse for `inner`'s decoder, if `mode` asks for it and it can run.
fn tile_reuse(
    inner: &mut dyn Backend,
    package: &ModelPackage,
    variant: Option<&str>,
    mode: Reuse,
) -> Result<Option<TileReuse>> {
    let m = &package.manifest;
    if mode == Reuse::Off {
        return Ok(None);
    }
    let Some(halo) = m.decoder.halo else {
        let why = format!(
            "{} states no decoder.halo (re-export it with gss-convert)",
            m.name
        );
        if mode == Reuse::Always {
            return Err(refuse("token reuse", why));
        }
        log::info!("token reuse: {why}; decoding every frame in full");
        return Ok(None);
    };
    let layout = TileLayout::new(m.prior.grid, REUSE_TILE, halo);
    if let Err(e) = inner.plan_decoder_windows(&layout.window_shapes()) {
        if mode == Reuse::Always {
            return Err(e);
        }
        log::info!(
            "token reuse: {} cannot decode windows ({}); decoding every frame in full",
            inner.name(),
            e.chain()
        );
        return Ok(None);
    }
    check_halo(inner, package, variant, halo)?;
    Ok(Some(TileReuse {
        layout,
        always: mode == Reuse::Always,
        previous: Vec::new(),
        maskige: Vec::new(),
        window_tokens: Vec::new(),
        window_maskige: Vec::new(),
        marks: Vec::new(),
        dirty: Vec::new(),
    }))
}

/// Refuses a package whose stated halo is smaller than its decoder's reach: a wrong halo would
/// give wrong masks without any error, so it is probed before the first frame. One token changed
/// in the middle of a random grid must change no pixel farther than `halo` cells away, or reused
/// tiles would differ from a full decode.
fn check_halo(
    inner: &mut dyn Backend,
    package: &ModelPackage,
    variant: Option<&str>,
    halo: usize,
) -> Result<()> {
    let m = &package.manifest;
    let (grid, s, codes) = (m.prior.grid, m.decoder.upsample, m.prior.codebook_size);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut tokens: Vec<i64> = (0..grid[0] * grid[1])
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % codes.max(1) as u64) as i64
        })
        .collect();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    inner.run_decoder(&tokens, &mut before)?;
    let (cy, cx) = (grid[0] / 2, grid[1] / 2);
    let centre = &mut tokens[cy * grid[1] + cx];
    *centre = (*centre + 1) % codes.max(2) as i64;
    inner.run_decoder(&tokens, &mut after)?;
    let (h, w) = (grid[0] * s, grid[1] * s);
    let reach = before
        .iter()
        .zip(&after)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| {
            let (y, x) = ((i / w) % h, i % w);
            (y / s).abs_diff(cy).max((x / s).abs_diff(cx))
        })
        .max()
        .unwrap_or(0);
    if reach > halo {
        let (_, decoder) = package.graph_files(variant)?;
        return Err(Error::GraphMismatch {
            path: decoder,
            msg: format!(
                "model.json says decoder.halo {halo}, but one changed token changed pixels \
                 {reach} cells away; token reuse would give wrong masks (re-export the package \
                 with gss-convert, which measures the halo from the graph, or run with reuse off)"
            ),
        });
    }
    Ok(())
}

impl StreamBackend {
    fn decode_with_reuse(&mut self, tokens: &[i64], maskige: &mut Vec<f32>) -> Result<()> {
        let Some(reuse) = self.reuse.as_mut() else {
            self.decoded_share = 1.0;
            return self.inner.run_decoder(tokens, maskige);
        };
        let full = reuse.previous.len() != tokens.len() || {
            reuse.layout.dirty_tiles_into(
                &reuse.previous,
                tokens,
                &mut reuse.marks,
                &mut reuse.dirty,
            );
            !reuse.always && reuse.layout.decoded_share(&reuse.dirty) > FULL_DECODE_ABOVE
        };
        if full {
            self.inner.run_decoder(tokens, &mut reuse.maskige)?;
            self.decoded_share = 1.0;
        } else {
            let grid = self.grid;
            for &i in &reuse.dirty {
                let tile = reuse.layout.tiles()[i];
                let window = tile.window;
                reuse::window_tokens_into(tokens, grid[1], window, &mut reuse.window_tokens);
                self.inner.run_decoder_window(
                    &reuse.window_tokens,
                    [window.height(), window.width()],
                    &mut reuse.window_maskige,
                )?;
                reuse::paste_core(
                    &reuse.window_maskige,
                    window,
                    tile.core,
                    grid,
                    self.upsample,
                    &mut reuse.maskige,
                );
            }
            self.decoded_share = reuse.layout.decoded_share(&reuse.dirty);
        }
        reuse.previous.clear();
        reuse.previous.extend_from_slice(tokens);
        maskige.clear();
        maskige.extend_from_slice(&reuse.maskige);
        Ok(())
    }
}

impl Backend for StreamBackend {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn run_prior(&mut self, image: &[f32], tokens: &mut Vec<i64>) -> Result<()> {
        if self.confidence.is_none() && self.stabiliser.is_none() {
            return self.inner.run_prior(image, tokens);
        }
        let (codes, cells) = (self.codes, self.grid[0] * self.grid[1]);
        let (confidence, stabiliser) = (&mut self.confidence, &mut self.stabiliser);
        let mut read = |logits: &[f32]| {
            tokens::argmax_channels_into(logits, codes, cells, tokens);
            if let Some((margin, previous)) = stabiliser.as_mut() {
                tokens::stabilise(logits, cells, *margin, previous, tokens);
            }
            if let Some(confidence) = confidence.as_mut() {
                tokens::max_probability_into(logits, codes, cells, tokens, confidence);
            }
        };
        self.inner.run_prior_logits(image, &mut read)
    }

    fn run_prior_logits(&mut self, image: &[f32], read: &mut dyn FnMut(&[f32])) -> Result<()> {
        self.inner.run_prior_logits(image, read)
    }

    fn run_decoder(&mut self, tokens: &[i64], maskige: &mut Vec<f32>) -> Result<()> {
        self.decode_with_reuse(tokens, maskige)
    }

    fn plan_decoder_windows(&mut self, shapes: &[[usize; 2]]) -> Result<()> {
        self.inner.plan_decoder_windows(shapes)
    }

    fn run_decoder_window(
        &mut self,
        tokens: &[i64],
        shape: [usize; 2],
        maskige: &mut Vec<f32>,
    ) -> Result<()> {
        self.inner.run_decoder_window(tokens, shape, maskige)
    }

    fn confidence(&self) -> Option<&[f32]> {
        self.confidence.as_deref()
    }

    fn decoded_share(&self) -> f32 {
        self.decoded_share
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::{create_backend, BackendKind, Kernels};

    /// The tiny fixture's decoder on a 24×40 grid (its graph is fully convolutional; the
    /// fixture's own 8×16 grid is within one halo of every cell).
    pub(crate) fn tiny_decoder(
        kind: BackendKind,
        kernels: Kernels,
        reuse: Reuse,
    ) -> Box<dyn Backend> {
        let mut package = ModelPackage::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/gss-tiny"
        ))
        .unwrap();
        let m = &mut package.manifest;
        m.prior.grid = [24, 40];
        (m.input.height, m.input.width) = (24 * m.decoder.upsample, 40 * m.decoder.upsample);
        let options = BackendOptions {
            kind,
            threads: 1,
            reuse,
            kernels,
            ..BackendOptions::default()
        };
        create_backend(&package, &options, Graphs::Decoder).unwrap()
    }

    /// Grids that drift a few cells at a time (with a jump to many cells now and then), the
    /// codebook of the tiny fixture (32 codes).
    fn drifting_grids(cells: usize, frames: usize) -> Vec<Vec<i64>> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut grid: Vec<i64> = (0..cells).map(|_| (next() % 32) as i64).collect();
        let mut grids = vec![grid.clone()];
        for f in 1..frames {
            let changes = if f % 5 == 0 { cells / 2 } else { f % 3 };
            for _ in 0..changes {
                let i = (next() % cells as u64) as usize;
                grid[i] = (next() % 32) as i64;
            }
            grids.push(grid.clone());
        }
        grids
    }

    /// Token reuse on `kind` gives the full decode bit for bit, decodes less when few tokens
    /// change, and decodes in full when a full decode is cheaper (auto).
    pub(crate) fn reused_tiles_match(kind: BackendKind, kernels: Kernels) {
        let mut full = tiny_decoder(kind, kernels, Reuse::Off);
        let mut always = tiny_decoder(kind, kernels, Reuse::Always);
        let mut auto = tiny_decoder(kind, kernels, Reuse::Auto);
        let cells = 24 * 40;
        let (mut want, mut got, mut got_auto) = (Vec::new(), Vec::new(), Vec::new());
        let mut shares = Vec::new();
        for tokens in drifting_grids(cells, 12) {
            full.run_decoder(&tokens, &mut want).unwrap();
            always.run_decoder(&tokens, &mut got).unwrap();
            auto.run_decoder(&tokens, &mut got_auto).unwrap();
            assert!(
                want == got && want == got_auto,
                "a reused maskige differs from the full decode"
            );
            shares.push((always.decoded_share(), auto.decoded_share()));
        }
        assert_eq!(
            shares[0],
            (1.0, 1.0),
            "the first frame has nothing to reuse"
        );
        assert!(
            shares[1..].iter().all(|&(a, _)| a != 1.0),
            "always re-decodes tiles: {shares:?}"
        );
        // A frame with half the cells changed costs more in tiles than in full: auto decodes it
        // whole.
        assert_eq!(shares[5].1, 1.0);
        assert!(
            shares[1].1 < FULL_DECODE_ABOVE,
            "a couple of changed cells: {shares:?}"
        );
        let same = drifting_grids(cells, 1).remove(0);
        auto.run_decoder(&same, &mut got_auto).unwrap();
        auto.run_decoder(&same, &mut got_auto).unwrap();
        assert_eq!(
            auto.decoded_share(),
            0.0,
            "nothing changed, nothing decoded"
        );
    }

    #[test]
    fn reused_tiles_give_the_full_decode_bit_for_bit_on_the_cpu() {
        for kernels in [Kernels::Tract, Kernels::Gss] {
            reused_tiles_match(BackendKind::Cpu, kernels);
        }
    }

    /// Confidence and the stabiliser from a backend's logits: the prior's confidence lies in
    /// [1/codes, 1], and a stabiliser no new token can beat keeps the first frame's grid.
    pub(crate) fn logits_features_work(kind: BackendKind) {
        let package = ModelPackage::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/gss-tiny-logits"
        ))
        .unwrap();
        let m = &package.manifest;
        let (cells, codes) = (m.prior.grid[0] * m.prior.grid[1], m.prior.codebook_size);
        let len = 3 * m.input.height * m.input.width;
        let images: Vec<Vec<f32>> = (0..3)
            .map(|f| {
                (0..len)
                    .map(|i| ((i * 7 + f * 131) % 97) as f32 / 48.0 - 1.0)
                    .collect()
            })
            .collect();
        let options = BackendOptions {
            kind,
            threads: 1,
            confidence: true,
            stabilise: Some(1e9),
            reuse: Reuse::Off,
            ..BackendOptions::default()
        };
        let mut both = create_backend(&package, &options, Graphs::Prior).unwrap();
        let plain = BackendOptions {
            confidence: false,
            stabilise: None,
            ..options.clone()
        };
        let mut free = create_backend(&package, &plain, Graphs::Prior).unwrap();
        assert!(free.confidence().is_none(), "not asked for: none");
        let (mut first, mut tokens, mut unstable) = (Vec::new(), Vec::new(), Vec::new());
        let mut changed = false;
        for (f, image) in images.iter().enumerate() {
            both.run_prior(image, &mut tokens).unwrap();
            free.run_prior(image, &mut unstable).unwrap();
            let confidence = both.confidence().expect("asked for, logits prior").to_vec();
            assert_eq!(confidence.len(), cells);
            let lo = 1.0 / codes as f32 - 1e-6;
            assert!(
                confidence.iter().all(|&p| p >= lo && p <= 1.0 + 1e-6),
                "{confidence:?}"
            );
            if f == 0 {
                assert_eq!(tokens, unstable, "the first frame is the argmax");
                first = tokens.clone();
            }
            assert_eq!(
                tokens, first,
                "a margin no token can beat keeps the first grid"
            );
            changed |= unstable != first;
        }
        assert!(changed, "the frames differ enough to change some argmax");
    }

    #[test]
    fn confidence_and_the_stabiliser_on_the_cpu() {
        logits_features_work(BackendKind::Cpu);
    }

    #[test]
    fn features_a_package_cannot_honour_are_refused() {
        let argmax = ModelPackage::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/gss-tiny"
        ))
        .unwrap();
        for options in [
            BackendOptions {
                confidence: true,
                ..BackendOptions::default()
            },
            BackendOptions {
                stabilise: Some(1.0),
                ..BackendOptions::default()
            },
        ] {
            let options = BackendOptions {
                kind: BackendKind::Cpu,
                threads: 1,
                ..options
            };
            let err = create_backend(&argmax, &options, Graphs::Both)
                .err()
                .unwrap();
            assert!(err.to_string().contains("token logits"), "{err}");
            // The decoder stage of a pipelined stream has no prior to weigh.
            assert!(create_backend(&argmax, &options, Graphs::Decoder).is_ok());
        }
        let mut no_halo = argmax.clone();
        no_halo.manifest.decoder.halo = None;
        let always = BackendOptions {
            kind: BackendKind::Cpu,
            threads: 1,
            reuse: Reuse::Always,
            ..BackendOptions::default()
        };
        let err = create_backend(&no_halo, &always, Graphs::Both)
            .err()
            .unwrap();
        assert!(err.to_string().contains("decoder.halo"), "{err}");
        let auto = BackendOptions {
            reuse: Reuse::Auto,
            ..always
        };
        assert!(
            create_backend(&no_halo, &auto, Graphs::Both).is_ok(),
            "auto decodes in full"
        );
    }
}
