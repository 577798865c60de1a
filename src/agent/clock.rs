//! Time for the agent: an injectable wall clock, the schedule as a "next tick" function,
//! and a backoff. Sleeping uses `tokio::time` only, so tests drive it with `pause()`/`advance()`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::rngs::StdRng;
use tokio::time::Instant;

/// The longest single sleep: waits are re-checked against the wall clock at least this
/// often, so a clock step (NTP, suspend) delays a tick by at most this much.
const MAX_NAP: Duration = Duration::from_secs(60);

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

/// When the schedule fires next: the first tick strictly after `after`, or `None` if never.
pub trait Ticker: Send + Sync {
    fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>>;
}

/// Builds the ticker for a configuration (schedule + time zone); called again after a reload.
pub type TickerFactory = Arc<dyn Fn(&crate::config::Config) -> Arc<dyn Ticker> + Send + Sync>;

/// One scheduled tick: the schedule's time and the moment it fires (after jitter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub at: DateTime<Utc>,
    pub fire: DateTime<Utc>,
}

/// The schedule state of the loop: the ticker, the jitter and the next tick.
pub struct Ticks {
    ticker: Arc<dyn Ticker>,
    jitter: Duration,
    rng: StdRng,
    /// The next tick, if the schedule has one.
    pub next: Option<Tick>,
    /// Ticks skipped so far (fired while the loop was busy).
    pub skipped: u64,
}

impl Ticks {
    #[must_use]
    pub fn new(ticker: Arc<dyn Ticker>, jitter: Duration, rng: StdRng) -> Self {
        Self {
            ticker,
            jitter,
            rng,
            next: None,
            skipped: 0,
        }
    }

    /// Replace the ticker and jitter (after a reload) and plan the first tick after `now`.
    pub fn reset(&mut self, ticker: Arc<dyn Ticker>, jitter: Duration, now: DateTime<Utc>) {
        self.ticker = ticker;
        self.jitter = jitter;
        self.plan_after(now);
    }

    /// Plan the first tick strictly after `after`.
    pub fn plan_after(&mut self, after: DateTime<Utc>) {
        self.next = self.ticker.next_after(after).map(|at| Tick {
            at,
            fire: at + self.draw_jitter(),
        });
    }

    /// The tick in `next` fired: plan the one after it. Ticks follow the schedule's own
    /// times (no drift for `@every`); when the loop is far behind (suspend, clock step),
    /// they re-start from `now` instead of replaying every missed tick.
    pub fn advance(&mut self, now: DateTime<Utc>) {
        let after = match self.next {
            Some(t) if now - t.at <= chrono::Duration::from_std(MAX_NAP).unwrap_or_default() => {
                t.at
            }
            _ => now,
        };
        self.plan_after(after);
    }

    fn draw_jitter(&mut self) -> chrono::Duration {
        if self.jitter.is_zero() {
            return chrono::Duration::zero();
        }
        let ms = u64::try_from(self.jitter.as_millis()).unwrap_or(u64::MAX);
        let pick = self.rng.random_range(0..ms.max(1));
        chrono::Duration::milliseconds(i64::try_from(pick).unwrap_or(i64::MAX))
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
    use rand::SeedableRng;

    struct EveryMinute;
    impl Ticker for EveryMinute {
        fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
            let secs = after.timestamp().div_euclid(60) * 60 + 60;
            DateTime::from_timestamp(secs, 0)
        }
    }

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

    #[test]
    fn jitter_stays_in_range_and_ticks_advance_from_the_schedule_time() {
        let mut ticks = Ticks::new(
            Arc::new(EveryMinute),
            Duration::from_secs(10),
            StdRng::seed_from_u64(7),
        );
        ticks.plan_after(t("2026-01-01T00:00:30Z"));
        let mut seen_nonzero = false;
        for minute in 1..=50 {
            let tick = ticks.next.expect("every minute has a next tick");
            assert_eq!(
                tick.at,
                t("2026-01-01T00:00:00Z") + chrono::Duration::minutes(minute)
            );
            let jitter = tick.fire - tick.at;
            assert!(jitter >= chrono::Duration::zero() && jitter < chrono::Duration::seconds(10));
            seen_nonzero |= jitter > chrono::Duration::zero();
            ticks.advance(tick.fire);
        }
        assert!(seen_nonzero, "jitter is drawn, not always zero");
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_moves_with_paused_time() {
        let clock = TokioClock::starting_at(t("2026-01-01T00:00:00Z"));
        sleep_until_wall(&clock, t("2026-01-01T00:05:00Z")).await;
        assert_eq!(clock.now(), t("2026-01-01T00:05:00Z"));
    }
}
