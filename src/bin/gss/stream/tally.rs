//! What the stream's own consumer measures on the frames it receives: latency and rate, decoder
//! work, the masks' digest, token change and halo reach between neighbouring frames, and mIoU
//! and flicker where the frames have labels.

use std::time::Instant;

use anyhow::Result;

use gss::dataset::{label_path_for, load_label};
use gss::eval::ConfusionMatrix;
use gss::sink::stats::percentile;
use gss::temporal::{FlickerMeter, TokenChangeMeter};
use gss::{MaskFrame, ModelPackage};

use super::ms;

/// FNV-1a's offset basis and prime.
const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

pub(super) struct Tally {
    pub received: u64,
    first_frame_at: Option<Instant>,
    /// Milliseconds, in arrival order.
    latencies: Vec<f64>,
    decoded_share: f64,
    decoder_ms: f64,
    /// FNV-1a over every published (source index, class map): two runs that published the same
    /// frames agree on it exactly when their masks are byte-identical (`--reuse` off vs auto).
    pub digest: u64,
    pub cm: ConfusionMatrix,
    pub labelled: u64,
    pub flicker: FlickerMeter,
    pub token_change: TokenChangeMeter,
    /// The decoder's halo, when the package states one (token change then measures its reach).
    pub halo: Option<usize>,
    last_index: Option<u64>,
}

impl Tally {
    pub fn new(package: &ModelPackage) -> Tally {
        let (grid, halo) = (package.manifest.prior.grid, package.manifest.decoder.halo);
        Tally {
            received: 0,
            first_frame_at: None,
            latencies: Vec::new(),
            decoded_share: 0.0,
            decoder_ms: 0.0,
            digest: FNV_BASIS,
            cm: ConfusionMatrix::new(package.manifest.classes.len()),
            labelled: 0,
            flicker: FlickerMeter::new(),
            token_change: match halo {
                Some(halo) => TokenChangeMeter::with_reach(grid, halo),
                None => TokenChangeMeter::new(),
            },
            halo,
            last_index: None,
        }
    }

    /// Counts a frame in as it arrives: rate, latency, decoder work and the digest.
    pub fn count(&mut self, mask: &MaskFrame) {
        self.received += 1;
        self.first_frame_at.get_or_insert_with(Instant::now);
        self.decoded_share += f64::from(mask.decoded_share);
        for &byte in mask
            .source_index
            .to_le_bytes()
            .iter()
            .chain(mask.classes.as_raw())
        {
            self.digest = (self.digest ^ u64::from(byte)).wrapping_mul(FNV_PRIME);
        }
        self.decoder_ms += ms(mask.timings.decoder);
        self.latencies.push(ms(mask.latency));
    }

    /// The temporal figures, and the score against the frame's label when it has one.
    pub fn score(&mut self, mask: &MaskFrame) -> Result<()> {
        // Temporal figures compare neighbouring frames of the source only: a dropped frame is a gap.
        if self.last_index.is_none_or(|i| i + 1 != mask.source_index) {
            self.flicker.reset();
            self.token_change.reset();
        }
        self.last_index = Some(mask.source_index);
        self.token_change.update(&mask.tokens);
        let Some(label_path) = mask.origin.as_deref().and_then(label_path_for) else {
            return Ok(());
        };
        match load_label(&label_path) {
            Ok(label) if label.dimensions() == mask.classes.dimensions() => {
                self.cm.update(mask.classes.as_raw(), label.as_raw())?;
                self.flicker.update(mask.classes.as_raw(), label.as_raw())?;
                self.labelled += 1;
            }
            Ok(_) => log::warn!(
                "{}: label size differs from its frame; not scored",
                label_path.display()
            ),
            Err(e) => log::warn!("{e}; not scored"),
        }
        Ok(())
    }

    /// Frames per second from the first frame received until now (NaN under two frames).
    pub fn fps(&self) -> f64 {
        match self.first_frame_at.map(|t| t.elapsed()) {
            Some(elapsed) if !elapsed.is_zero() && self.received > 1 => {
                (self.received - 1) as f64 / elapsed.as_secs_f64()
            }
            _ => f64::NAN,
        }
    }

    /// The latencies' 50th and 95th percentiles, in milliseconds.
    pub fn latency_p50_p95(&mut self) -> (f64, f64) {
        self.latencies.sort_by(f64::total_cmp);
        (
            percentile(&self.latencies, 50.0),
            percentile(&self.latencies, 95.0),
        )
    }

    /// The mean share of a full decode per frame, in percent.
    pub fn decoded_pct(&self) -> Option<f64> {
        (self.received > 0).then(|| 100.0 * self.decoded_share / self.received as f64)
    }

    /// The mean decoder time per frame. None when there was none of its own: sequential wgpu
    /// runs both graphs as one submission.
    pub fn decoder_ms(&self) -> Option<f64> {
        (self.received > 0 && self.decoder_ms > 0.0).then(|| self.decoder_ms / self.received as f64)
    }
}
