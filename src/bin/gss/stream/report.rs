//! The stream's summary: one struct that `--json` serialises and the text summary prints, so
//! the two always report the same figures. Scripts and tests read the JSON keys: renaming one is
//! a breaking change.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde::{Serialize, Serializer};

use gss::pipeline::Stats;
use gss::sink::rerun::RerunReport;
use gss::sink::stats::peak_rss_mb;

use super::ms;
use super::outputs::Finished;
use super::setup::Plan;
use super::tally::Tally;

/// What the Rerun log did.
#[derive(Serialize)]
pub(super) struct RerunSummary {
    target: String,
    logged: u64,
    /// Frames not logged while no viewer was connected.
    skipped: u64,
    /// Frames the log's own queue lost to a slow sink.
    dropped: u64,
    problem: Option<String>,
}

impl RerunSummary {
    pub fn new(report: RerunReport, dropped: u64) -> Self {
        RerunSummary {
            target: report.target,
            logged: report.logged,
            skipped: report.skipped,
            dropped,
            problem: report.problem,
        }
    }
}

/// The saver's files. The JSON has the count alone (`saved`); the text also says what they
/// are and where.
pub(super) struct SavedFiles {
    pub count: u64,
    /// "masks" or "overlays".
    pub what: &'static str,
    pub dir: PathBuf,
    /// `--save-keep`.
    pub keep: Option<usize>,
}

impl Serialize for SavedFiles {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.count.serialize(serializer)
    }
}

/// Every figure the summary reports. Fields marked `skip` are for the text summary only.
#[derive(Serialize)]
pub(super) struct Report {
    source: String,
    policy: &'static str,
    mode: &'static str,
    captured: u64,
    processed: u64,
    published: u64,
    dropped: u64,
    dropped_before_prior: u64,
    dropped_before_decoder: u64,
    dropped_before_publish: u64,
    failed: u64,
    corrupt: u64,
    consumer_received: u64,
    consumer_dropped: u64,
    fps: f64,
    latency_p50_ms: f64,
    latency_p95_ms: f64,
    cold_start_ms: f64,
    peak_rss_mb: Option<f64>,
    labelled_frames: u64,
    #[serde(rename = "mIoU")]
    miou: Option<f64>,
    #[serde(skip)]
    macc: Option<f64>,
    flicker_pct: Option<f64>,
    token_change_pct: Option<f64>,
    token_pairs: u64,
    reuse: &'static str,
    decoded_pct: Option<f64>,
    halo_reach_pct: Option<f64>,
    #[serde(skip)]
    halo: Option<usize>,
    decoder_ms: Option<f64>,
    masks_digest: String,
    rerun: Option<RerunSummary>,
    zenoh_published: Option<u64>,
    zenoh_failed: Option<u64>,
    saved: Option<SavedFiles>,
    output_errors: Vec<String>,
}

/// What the stream was, as opposed to what it did.
pub(super) struct Header<'a> {
    pub plan: &'a Plan,
    pub source: String,
    pub cold_start: Duration,
}

impl Report {
    /// Call once every output has finished: the rate counts until now.
    pub fn new(
        header: Header<'_>,
        stats: &Stats,
        consumer_dropped: u64,
        mut tally: Tally,
        outputs: Finished,
    ) -> Report {
        let (latency_p50_ms, latency_p95_ms) = tally.latency_p50_p95();
        let labelled = tally.labelled > 0;
        let token_pairs = tally.token_change.pairs();
        Report {
            source: header.source,
            policy: header.plan.policy_name(),
            mode: header.plan.mode_name(),
            captured: stats.captured,
            processed: stats.processed,
            published: stats.published,
            dropped: stats.dropped(),
            dropped_before_prior: stats.dropped_before_prior,
            dropped_before_decoder: stats.dropped_before_decoder,
            dropped_before_publish: stats.dropped_before_publish,
            failed: stats.failed,
            corrupt: stats.corrupt,
            consumer_received: tally.received,
            consumer_dropped,
            fps: tally.fps(),
            latency_p50_ms,
            latency_p95_ms,
            cold_start_ms: ms(header.cold_start),
            peak_rss_mb: peak_rss_mb(),
            labelled_frames: tally.labelled,
            miou: labelled.then(|| tally.cm.miou()),
            macc: labelled.then(|| tally.cm.macc()),
            flicker_pct: (tally.flicker.stable_pixels() > 0).then(|| tally.flicker.flicker()),
            token_change_pct: (token_pairs > 0).then(|| 100.0 * tally.token_change.mean_share()),
            token_pairs,
            reuse: header.plan.reuse_name,
            decoded_pct: tally.decoded_pct(),
            halo_reach_pct: tally.token_change.mean_reach().map(|r| 100.0 * r),
            halo: tally.halo,
            decoder_ms: tally.decoder_ms(),
            masks_digest: format!("{:016x}", tally.digest),
            rerun: outputs.rerun,
            zenoh_published: outputs.zenoh.map(|s| s.published),
            zenoh_failed: outputs.zenoh.map(|s| s.failed),
            saved: outputs.saved,
            output_errors: outputs.errors,
        }
    }

    pub fn print_json(&self) -> Result<()> {
        // Through a `Value`, whose objects keep their keys sorted: the order the summary has
        // always printed them in, whatever the order of the fields above.
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::to_value(self)?)?
        );
        Ok(())
    }

    pub fn print_text(&self) {
        println!("{}: captured {}, published {}, dropped {} (before prior {}, decoder {}, publish {}), failed {}, corrupt {}",
            self.source, self.captured, self.published, self.dropped, self.dropped_before_prior,
            self.dropped_before_decoder, self.dropped_before_publish, self.failed, self.corrupt);
        println!(
            "fps {:.1}, latency p50 {:.1} ms p95 {:.1} ms, model load {:.0} ms, peak RSS {}",
            self.fps,
            self.latency_p50_ms,
            self.latency_p95_ms,
            self.cold_start_ms,
            self.peak_rss_mb
                .map_or("n/a".into(), |r| format!("{r:.0} MB"))
        );
        if self.consumer_dropped > 0 {
            println!(
                "the saver fell behind and skipped {} frames",
                self.consumer_dropped
            );
        }
        if let (Some(m), Some(a)) = (self.miou, self.macc) {
            println!(
                "mIoU {m:.2} over {} labelled frames (mAcc {a:.2})",
                self.labelled_frames
            );
        }
        if let Some(t) = self.token_change_pct {
            println!(
                "tokens changed between neighbouring frames: {t:.1} % of the grid ({} pairs)",
                self.token_pairs
            );
        }
        if let (Some(r), Some(h)) = (self.halo_reach_pct, self.halo) {
            println!("cells within the decoder's halo ({h}) of a change: {r:.1} % of the grid (the least exact reuse re-decodes)");
        }
        if let (Some(d), Some(t)) = (self.decoded_pct, self.decoder_ms) {
            println!(
                "decoder {t:.2} ms per frame, {d:.1} % of a full decode per frame (reuse {})",
                self.reuse
            );
        }
        if let Some(f) = self.flicker_pct {
            println!("flicker {f:.2} % (pixels whose class changed where the label did not, neighbouring frames)");
        }
        self.print_outputs();
    }

    fn print_outputs(&self) {
        if let Some(r) = &self.rerun {
            println!("rerun: {} frames logged to {} ({} skipped without a viewer, {} lost to a slow sink){}",
                r.logged, r.target, r.skipped, r.dropped, r.problem.as_ref().map_or(String::new(), |p| format!("; stopped: {p}")));
        }
        if let (Some(published), Some(failed)) = (self.zenoh_published, self.zenoh_failed) {
            println!("zenoh: published {published} frames ({failed} failed)");
        }
        if let Some(saved) = self.saved.as_ref().filter(|s| s.count > 0) {
            let kept = saved
                .keep
                .map_or(String::new(), |n| format!(" (the last {n} kept)"));
            println!(
                "{} {} written to {}{kept}",
                saved.count,
                saved.what,
                saved.dir.display()
            );
        }
        for e in &self.output_errors {
            println!("output stopped: {e}");
        }
    }
}
