//! Reopen policy for sources that drop out: exponential backoff with a cap.

use std::time::Duration;

/// Delays between reopen attempts: `initial`, doubling on every failure, capped at `max`;
/// [`Backoff::reset`] after a success starts again from `initial`.
///
/// Doubling keeps a camera that is unplugged for a minute from spinning the CPU and filling
/// the log, while one that blips (USB reset) is back within a fraction of a second.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    failures: u32,
}

impl Backoff {
    /// `initial` of zero would never grow, so it is raised to 1 ms; `max` below `initial` is
    /// raised to `initial`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        let initial = initial.max(Duration::from_millis(1));
        let max = max.max(initial);
        Backoff {
            initial,
            max,
            next: initial,
            failures: 0,
        }
    }

    /// Records a failed attempt and returns how long to wait before the next one.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// Failed attempts since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// After a success the next outage starts from the short delay again.
    pub fn reset(&mut self) {
        self.next = self.initial;
        self.failures = 0;
    }

    pub fn initial(&self) -> Duration {
        self.initial
    }
    pub fn max(&self) -> Duration {
        self.max
    }
}

impl Default for Backoff {
    /// 100 ms doubling to 5 s.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn doubles_from_the_initial_delay_up_to_the_cap() {
        let mut b = Backoff::default();
        let delays: Vec<_> = (0..9).map(|_| b.next_delay()).collect();
        assert_eq!(
            delays,
            vec![
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(3200),
                ms(5000),
                ms(5000),
                ms(5000)
            ]
        );
        assert_eq!(b.failures(), 9);
    }

    #[test]
    fn reset_after_success_starts_over() {
        let mut b = Backoff::new(ms(50), ms(1000));
        for _ in 0..10 {
            b.next_delay();
        }
        b.reset();
        assert_eq!(b.failures(), 0);
        assert_eq!(b.next_delay(), ms(50));
        assert_eq!(b.next_delay(), ms(100));
    }

    #[test]
    fn degenerate_settings_are_made_sane() {
        let mut zero = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(zero.next_delay(), ms(1));
        assert_eq!(zero.next_delay(), ms(1));
        let mut inverted = Backoff::new(ms(300), ms(10));
        assert_eq!(inverted.next_delay(), ms(300));
        assert_eq!(inverted.next_delay(), ms(300));
    }

    #[test]
    fn many_failures_do_not_overflow() {
        let mut b = Backoff::new(ms(1), Duration::MAX);
        for _ in 0..200 {
            b.next_delay();
        }
        assert_eq!(b.failures(), 200);
    }
}
