//! Early passes (`disk.check_every`: the disk is over `high`) back off while they cannot
//! help: after a pass that evicted what the `disk_pressure` policies allow and left the
//! disk at or over `high` ([`Summary::disk_pressure_stuck`](crate::execute::Summary)), the
//! next early pass waits `check_every` × 2, then × 4, … up to [`MAX_BACKOFF`]; a pass that
//! is not stuck ends the backoff. Scheduled passes are not held back. Pure bookkeeping over
//! `tokio::time` instants.

use std::time::Duration;

use tokio::time::Instant;

/// The longest wait between early passes while pressure persists with nothing to evict.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// When the next early pass may run.
#[derive(Debug, Clone, Default)]
pub struct EarlyPasses {
    /// Stuck passes in a row.
    stuck: u32,
    not_before: Option<Instant>,
}

impl EarlyPasses {
    /// A pass finished at `now`: stuck or not. Returns the backoff that starts, if any
    /// (`every` is `disk.check_every`).
    pub fn pass_finished(
        &mut self,
        stuck: bool,
        now: Instant,
        every: Duration,
    ) -> Option<Duration> {
        if !stuck {
            self.stuck = 0;
            self.not_before = None;
            return None;
        }
        self.stuck = self.stuck.saturating_add(1);
        let factor = 2u32.saturating_pow(self.stuck.min(31));
        let delay = every.saturating_mul(factor).min(MAX_BACKOFF.max(every));
        self.not_before = Some(now + delay);
        Some(delay)
    }

    /// True when an early pass may run at `now`.
    #[must_use]
    pub fn may_run(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }

    /// When the next early pass may run, while backing off.
    #[must_use]
    pub fn not_before(&self) -> Option<Instant> {
        self.not_before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuck_passes_double_the_wait_up_to_the_bound_and_relief_ends_it() {
        let every = Duration::from_secs(2);
        let t0 = Instant::now();
        let mut early = EarlyPasses::default();
        assert!(early.may_run(t0), "nothing to back off from yet");
        let waits: Vec<u64> = (0..14)
            .map(|_| {
                let d = early.pass_finished(true, t0, every).expect("a backoff");
                d.as_secs()
            })
            .collect();
        assert_eq!(
            waits,
            [
                4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600, 3600, 3600
            ]
        );
        assert!(!early.may_run(t0 + Duration::from_secs(3599)));
        assert!(early.may_run(t0 + MAX_BACKOFF));
        assert_eq!(early.pass_finished(false, t0, every), None);
        assert!(early.may_run(t0), "a pass that helped ends the backoff");
        let d = early.pass_finished(true, t0, every).expect("starts over");
        assert_eq!(d, Duration::from_secs(4));
        // A check_every longer than the bound is not shortened.
        let mut slow = EarlyPasses::default();
        let d = slow.pass_finished(true, t0, Duration::from_secs(7200));
        assert_eq!(d, Some(Duration::from_secs(7200)));
    }
}
