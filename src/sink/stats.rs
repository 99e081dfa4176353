//! Numbers a stream or a benchmark reports: latency percentiles and the process's memory.

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
