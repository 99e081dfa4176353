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
        Self {
            period,
            started: Instant::now(),
            latencies_ms: Vec::with_capacity(64),
        }
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
    let line = status.lines().find(|l| {
        l.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
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
        let r = w
            .record(Duration::from_millis(20))
            .expect("the period has passed");
        assert_eq!((r.latency_p50_ms, r.latency_p95_ms), (10.0, 20.0));
        assert!(r.fps > 0.0 && r.fps < 2.0 / 0.03);
        // A new window starts empty.
        assert_eq!(w.record(Duration::from_millis(5)), None);
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
