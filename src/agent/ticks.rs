//! The schedule as the loop sees it: a "next tick" function ([`Ticker`]), the planned next
//! tick with its jitter, and [`busy`], which skips and counts the ticks that fire while the
//! loop is doing something else. Pure bookkeeping over `tokio::time`; decides nothing else.

use std::future::{Future, pending};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::rngs::StdRng;

use super::clock::{Clock, MAX_NAP, sleep_until_wall};
use super::metric_labels::SkipReason;
use super::telemetry::Telemetry;

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

/// What the planned ticks depend on: the schedule, its time zone and the jitter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleKey {
    schedule: String,
    timezone: chrono_tz::Tz,
    jitter: Duration,
}

impl ScheduleKey {
    #[must_use]
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            schedule: config.agent.schedule.to_string(),
            timezone: config.agent.timezone,
            jitter: config.agent.jitter,
        }
    }
}

/// While the loop waits on work, it tells [`Telemetry`] it is alive this often (`/livez`).
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// Drive `work` to completion while counting (and skipping) every tick that fires meanwhile,
/// and beating the loop's heartbeat.
pub async fn busy<F: Future>(
    work: F,
    ticks: &mut Ticks,
    clock: &dyn Clock,
    telemetry: &Telemetry,
    why: SkipReason,
) -> F::Output {
    tokio::pin!(work);
    loop {
        telemetry.beat();
        let fire = ticks.next.map(|t| t.fire);
        let tick = async move {
            match fire {
                Some(at) => sleep_until_wall(clock, at).await,
                None => pending().await,
            }
        };
        tokio::select! {
            biased;
            out = &mut work => return out,
            () = tick => {
                let missed = ticks.next.map(|t| t.at);
                ticks.advance(clock.now());
                ticks.skipped += 1;
                telemetry.metrics.tick_skipped(why);
                telemetry.next_pass(ticks.next.map(|t| t.fire));
                tracing::warn!(tick = ?missed, reason = why.text(), "schedule tick skipped");
            }
            () = tokio::time::sleep(HEARTBEAT) => {}
        }
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

    #[test]
    fn the_longest_jitter_the_configuration_accepts_plans_without_overflow() {
        // 100 years, the bound the configuration enforces on every duration.
        let max = Duration::from_secs(3_155_760_000);
        let mut ticks = Ticks::new(Arc::new(EveryMinute), max, StdRng::seed_from_u64(3));
        ticks.plan_after(t("2026-01-01T00:00:30Z"));
        let tick = ticks.next.expect("every minute has a next tick");
        let jitter = (tick.fire - tick.at)
            .to_std()
            .expect("jitter is not negative");
        assert!(jitter < max, "{tick:?}");
    }
}
