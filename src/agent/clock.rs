//! Time for the agent: an injectable wall clock, sleeping until a wall-clock time, and a
//! backoff. Sleeping uses `tokio::time` only, so tests drive it with `pause()`/`advance()`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// The longest single sleep: waits are re-checked against the wall clock at least this
/// often, so a clock step (NTP, suspend) delays a tick by at most this much.
pub(crate) const MAX_NAP: Duration = Duration::from_secs(60);

/// A wall clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A wall clock that moves with tokio's clock: under `tokio::time::pause()` it stands
/// still until the test (or auto-advance) moves time on.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    wall: DateTime<Utc>,
    start: Instant,
}

impl TokioClock {
    /// A clock that reads `wall` now.
    #[must_use]
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        Self {
            wall,
            start: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.start.elapsed())
            .expect("elapsed time fits in chrono's range");
        self.wall + elapsed
    }
}

/// Sleep until the wall clock reads `target` (returns at once if it already does).
/// Cancel-safe: it holds no state between polls that matters.
pub async fn sleep_until_wall(clock: &dyn Clock, target: DateTime<Utc>) {
    loop {
        let Ok(left) = (target - clock.now()).to_std() else {
            return;
        };
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(MAX_NAP)).await;
    }
}

/// Doubling delays with a cap: 1s, 2s, 4s, … 60s.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    cap: Duration,
    current: Duration,
}

impl Backoff {
    #[must_use]
    pub fn new(initial: Duration, cap: Duration) -> Self {
        Self {
            initial,
            cap,
            current: initial,
        }
    }

    /// The delay to wait now; the next call returns twice as much, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.current;
        self.current = (self.current * 2).min(self.cap);
        delay
    }

    /// Back to the initial delay (after a success).
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("test timestamp")
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let got: Vec<u64> = (0..9).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_moves_with_paused_time() {
        let clock = TokioClock::starting_at(t("2026-01-01T00:00:00Z"));
        sleep_until_wall(&clock, t("2026-01-01T00:05:00Z")).await;
        assert_eq!(clock.now(), t("2026-01-01T00:05:00Z"));
    }
}
