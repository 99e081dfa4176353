//! Numbers a stream or a benchmark reports: latency percentiles and the process's memory.

use std::time::{Duration, Instant};

/// Latencies of the frames seen since the last report, for a live "fps | p50 | p95" line once a
/// period. Its buffer is reused from window to window.
#[derive(Debug)]
pub struct LiveWindow {
    period: Duration,
    started: Instant,
    latencies_ms: Vec<f64>,
}

/// One window's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowReport {
    pub fps: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
}

impl LiveWindow {
    pub fn new(period: Duration) -> Self {
        Self { period, started: Instant::now(), latencies_ms: Vec::with_capacity(64) }
    }

    /// Counts one frame; once the period has passed, the window's report (and a new window).
    pub fn record(&mut self, latency: Duration) -> Option<WindowReport> {
        self.latencies_ms.push(latency.as_secs_f64() * 1e3);
        let elapsed = self.started.elapsed();
        if elapsed < self.period {
            return None;
        }
        self.latencies_ms.sort_by(f64::total_cmp);
        let report = WindowReport {
            fps: self.latencies_ms.len() as f64 / elapsed.as_secs_f64(),
            latency_p50_ms: percentile(&self.latencies_ms, 50.0),
            latency_p95_ms: percentile(&self.latencies_ms, 95.0),
        };
        self.latencies_ms.clear();
        self.started = Instant::now();
        Some(report)
    }
}

/// How much of the token grid changes from one frame to the next: the share of grid cells whose
/// token differs from the previous frame's (reset at a gap, so only neighbouring frames count).
///
/// Given the grid's shape and the decoder's halo ([`TokenChangeMeter::with_reach`]), it also
/// counts the cells within `halo` cells of a changed token: the cells whose pixels a change can
/// alter, so the least that any exact token reuse has to decode again.
#[derive(Debug, Clone, Default)]
pub struct TokenChangeMeter {
    previous: Vec<i64>,
    changed: u64,
    cells: u64,
    pairs: u64,
    /// (grid, halo, reached cells so far, this pair's marks)
    reach: Option<([usize; 2], usize, u64, Vec<bool>)>,
}

impl TokenChangeMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Also measures the reach of each change on an h×w grid for a decoder with this halo.
    pub fn with_reach(grid: [usize; 2], halo: usize) -> Self {
        Self { reach: Some((grid, halo, 0, Vec::new())), ..Self::default() }
    }

    /// Mean share of the grid within the halo of a change, per pair (None without a reach, or
    /// before the first pair).
    pub fn mean_reach(&self) -> Option<f64> {
        let (_, _, reached, _) = self.reach.as_ref()?;
        (self.cells > 0).then(|| *reached as f64 / self.cells as f64)
    }

    /// The next frame's grid; returns its changed share (0..1) when there is a previous grid of
    /// the same size. An empty grid (a backend that keeps it on its device) is not counted.
    pub fn update(&mut self, tokens: &[i64]) -> Option<f64> {
        if tokens.is_empty() {
            return None;
        }
        let share = (self.previous.len() == tokens.len()).then(|| {
            let changed = tokens.iter().zip(&self.previous).filter(|(a, b)| a != b).count();
            if let Some(([h, w], halo, reached, marks)) = self.reach.as_mut().filter(|r| r.0[0] * r.0[1] == tokens.len()) {
                marks.clear();
                marks.resize(tokens.len(), false);
                for (i, _) in tokens.iter().zip(&self.previous).enumerate().filter(|(_, (a, b))| a != b) {
                    let (y, x) = (i / *w, i % *w);
                    for yy in y.saturating_sub(*halo)..=(y + *halo).min(*h - 1) {
                        marks[yy * *w + x.saturating_sub(*halo)..=yy * *w + (x + *halo).min(*w - 1)].fill(true);
                    }
                }
                *reached += marks.iter().filter(|&&m| m).count() as u64;
            }
            self.changed += changed as u64;
            self.cells += tokens.len() as u64;
            self.pairs += 1;
            changed as f64 / tokens.len() as f64
        });
        self.previous.clear();
        self.previous.extend_from_slice(tokens);
        share
    }

    pub fn reset(&mut self) {
        self.previous.clear();
    }

    /// Mean changed share over every pair so far (NaN before the first pair).
    pub fn mean_share(&self) -> f64 {
        if self.cells == 0 { f64::NAN } else { self.changed as f64 / self.cells as f64 }
    }

    /// Neighbouring frame pairs compared.
    pub fn pairs(&self) -> u64 {
        self.pairs
    }
}

/// p-th percentile (0..=100) of ascending `sorted` values by nearest rank; NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// A memory line of /proc/self/status ("VmRSS" now, "VmHWM" the peak), in MB; None off Linux.
pub fn process_memory_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Peak resident set size of this process, in MB.
pub fn peak_rss_mb() -> Option<f64> {
    process_memory_mb("VmHWM")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_reports_once_its_period_has_passed() {
        let mut w = LiveWindow::new(Duration::from_millis(30));
        assert_eq!(w.record(Duration::from_millis(10)), None);
        std::thread::sleep(Duration::from_millis(35));
        let r = w.record(Duration::from_millis(20)).expect("the period has passed");
        assert_eq!((r.latency_p50_ms, r.latency_p95_ms), (10.0, 20.0));
        assert!(r.fps > 0.0 && r.fps < 2.0 / 0.03);
        // A new window starts empty.
        assert_eq!(w.record(Duration::from_millis(5)), None);
    }

    #[test]
    fn token_change_is_the_share_of_cells_that_differ_from_the_last_frame() {
        let mut m = TokenChangeMeter::new();
        assert_eq!(m.update(&[1, 2, 3, 4]), None);
        assert_eq!(m.update(&[1, 2, 3, 5]), Some(0.25));
        assert_eq!(m.update(&[]), None);
        assert_eq!(m.update(&[0, 0, 3, 5]), Some(0.5));
        assert_eq!((m.pairs(), m.mean_share()), (2, 0.375));
        m.reset();
        assert_eq!(m.update(&[9, 9, 9, 9]), None);
    }

    #[test]
    fn reach_counts_the_cells_within_the_halo_of_a_change() {
        // 4×5 grid, halo 1: a change at a corner reaches 2×2 cells, one in the middle 3×3.
        let mut m = TokenChangeMeter::with_reach([4, 5], 1);
        let base = vec![0i64; 20];
        m.update(&base);
        let mut corner = base.clone();
        corner[0] = 1;
        m.update(&corner);
        let mut middle = corner.clone();
        middle[2 * 5 + 2] = 1;
        m.update(&middle);
        assert_eq!(m.mean_reach(), Some((4 + 9) as f64 / 40.0));
        assert_eq!(TokenChangeMeter::new().mean_reach(), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 5.0);
        assert_eq!(percentile(&v, 95.0), 10.0);
        assert_eq!(percentile(&v[..1], 95.0), 1.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process_memory() {
        let rss = process_memory_mb("VmRSS").unwrap();
        assert!(rss > 0.0 && peak_rss_mb().unwrap() >= rss);
    }
}
