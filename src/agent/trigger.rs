//! Why a pass runs ([`Trigger`]), and what the disk checker hands the loop when its forecast
//! says `high` comes before the next check ([`Forecasts`]): a forecast pass plans with the
//! due resource's `high` lowered to the usage now, so that it evicts to `low` as a pressure
//! pass does, and reports the configured `high`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::forecast::{Due, Resource};
use crate::config::Config;
use crate::execute::Summary;

/// Why a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    Start,
    Schedule,
    Recovered,
    DiskPressure,
    /// The forecast says the disk reaches `high` before the next check.
    Forecast(Due),
}

impl Trigger {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Schedule => "schedule",
            Trigger::Recovered => "recovered",
            Trigger::DiskPressure => "disk_pressure",
            Trigger::Forecast(_) => "forecast",
        }
    }

    /// The configuration the pass plans with: `config` itself, or for a forecast pass a copy
    /// with the due resource's `high` lowered to [`Due::high`].
    pub(super) fn pass_config(self, config: &Arc<Config>) -> Arc<Config> {
        let Trigger::Forecast(due) = self else {
            return Arc::clone(config);
        };
        let mut lowered = Config::clone(config);
        if let Some(disk) = lowered.disk.as_mut() {
            let marks = match due.resource {
                Resource::Space => Some(&mut disk.space),
                Resource::Inodes => disk.inodes.as_mut(),
            };
            if let Some(m) = marks.filter(|m| due.high > m.low) {
                m.high = m.high.min(due.high);
            }
        }
        Arc::new(lowered)
    }

    /// What to log when the pass evicted all the `disk_pressure` policies may and the disk
    /// is still at or over the `high` it planned with: the configured one, or for a forecast
    /// pass the lowered one (the disk may still be under `disk.high`).
    pub(super) fn stuck_message(self) -> &'static str {
        match self {
            Trigger::Forecast(_) => {
                "the forecast pass evicted all the disk_pressure policies may evict and the disk \
                 is still filling toward disk.high: free space otherwise, widen the policies or \
                 raise disk.high (early passes back off)"
            }
            _ => {
                "the disk is still at or over disk.high and the disk_pressure policies may evict \
                 nothing more: free space otherwise, widen the policies or raise disk.high"
            }
        }
    }

    /// Report the configured `high` in `summary`, not the one a forecast pass planned with.
    pub(super) fn restore_high(self, summary: &mut Summary, config: &Config) {
        if let (Trigger::Forecast(_), Some(disk)) = (self, &config.disk) {
            let high = f64::from(disk.space.high) / 100.0;
            summary.disk = summary.disk.map(|(used, _)| (used, high));
        }
    }
}

/// Shared by the disk checker and the loop: the forecast pass due now, and how long the last
/// pass took (the checker runs a pass early when `high` comes within `check_every` plus
/// twice that, at most `check_every`, so that the pass ends before the disk gets there).
#[derive(Debug, Default)]
pub struct Forecasts {
    due: Mutex<Option<Due>>,
    last_pass: Mutex<Duration>,
}

impl Forecasts {
    /// The checker: the pass due with its next wake, or none.
    pub fn set(&self, due: Option<Due>) {
        *self.due.lock().unwrap_or_else(PoisonError::into_inner) = due;
    }

    /// The loop, woken: the forecast pass due, if that is why.
    pub fn take(&self) -> Option<Due> {
        self.due
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The loop: a pass took `took`.
    pub fn pass_took(&self, took: Duration) {
        *self
            .last_pass
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = took;
    }

    /// How long the last pass took (zero before the first).
    pub fn last_pass(&self) -> Duration {
        *self
            .last_pass
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Watermarks;

    fn config() -> Arc<Config> {
        let yaml = "disk:\n  high: 85\n  low: 80\n  inodes_high: 90\n  inodes_low: 70\n  check_every: 1m\n";
        Arc::new(crate::config::parse_str(yaml, "t.yaml").expect("valid"))
    }

    fn due(resource: Resource, high: u8) -> Trigger {
        Trigger::Forecast(Due {
            resource,
            eta: Duration::from_secs(40),
            high,
        })
    }

    fn marks(c: &Config) -> (Watermarks, Option<Watermarks>) {
        let d = c.disk.as_ref().expect("disk");
        (d.space, d.inodes)
    }

    #[test]
    fn a_stuck_forecast_pass_does_not_claim_the_disk_is_over_high() {
        let forecast = due(Resource::Space, 83).stuck_message();
        assert!(
            forecast.contains("still filling toward disk.high"),
            "{forecast}"
        );
        assert!(!forecast.contains("at or over"), "{forecast}");
        let pressure = Trigger::DiskPressure.stuck_message();
        assert!(
            pressure.contains("still at or over disk.high"),
            "{pressure}"
        );
    }

    #[test]
    fn a_forecast_pass_plans_with_the_due_resources_high_lowered_and_reports_the_real_one() {
        let c = config();
        let space = due(Resource::Space, 83).pass_config(&c);
        assert_eq!(
            marks(&space),
            (
                Watermarks { high: 83, low: 80 },
                Some(Watermarks { high: 90, low: 70 })
            )
        );
        let inodes = due(Resource::Inodes, 75).pass_config(&c);
        assert_eq!(marks(&inodes).1, Some(Watermarks { high: 75, low: 70 }));
        assert_eq!(marks(&inodes).0.high, 85);
        // Never at or under low, never raised.
        assert_eq!(marks(&due(Resource::Space, 80).pass_config(&c)).0.high, 85);
        assert_eq!(marks(&due(Resource::Space, 95).pass_config(&c)).0.high, 85);
        assert!(Arc::ptr_eq(&Trigger::Schedule.pass_config(&c), &c));

        let mut s = Summary {
            disk: Some((0.84, 0.83)),
            ..Summary::default()
        };
        due(Resource::Space, 83).restore_high(&mut s, &c);
        assert_eq!(s.disk, Some((0.84, 0.85)));
        let mut t = Summary {
            disk: Some((0.84, 0.83)),
            ..Summary::default()
        };
        Trigger::DiskPressure.restore_high(&mut t, &c);
        assert_eq!(
            t.disk,
            Some((0.84, 0.83)),
            "only forecast passes are restored"
        );
    }
}
