//! The disk forecast of the agent's checks (`disk.forecast`): each check's measurement goes
//! into a short window per resource (bytes, and inodes where the filesystem counts them),
//! a least-squares line through the window gives the fill rate, and the rate gives the time
//! until `high` ([`Forecaster`]). Pure: plain values and `at` (time since the checker
//! started) in, figures out; measuring and acting on them is `disk_check`'s.
//!
//! A drop (a prune, a deleted volume: usage falls by more than [`DROP_PERMILLE`] ‰ of the
//! capacity between two checks) starts the window over: the fit uses only the samples since
//! the last drop, so a pass in the middle of the window does not read as a slow fill or a
//! drain. Smaller decreases are noise and stay in the fit. A change of capacity (another
//! filesystem after a reload) starts over too.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::DiskConfig;
use crate::inventory::DiskUsage;

/// The most samples kept per resource (the newest): 512 checks, 8 KiB.
pub const MAX_SAMPLES: usize = 512;
/// Fewer samples than this since the last drop give no fit.
pub const MIN_SAMPLES: usize = 3;
/// A decrease of more than this share of the capacity (in ‰) between two checks is a drop.
pub const DROP_PERMILLE: u64 = 10;

/// What fills: space (bytes) or inodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Space,
    Inodes,
}

impl Resource {
    /// The `resource` label value, as the plan's disk figures name it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Space => "space",
            Resource::Inodes => "inodes",
        }
    }
}

/// One resource's outlook from the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outlook {
    pub resource: Resource,
    /// Units (bytes or inodes) per second; negative while usage falls.
    pub rate_per_sec: f64,
    /// Time until usage reaches `high` at that rate from the last sample (zero when it is
    /// there already); `None` when not filling or no `high` is set for the resource.
    pub eta: Option<Duration>,
    /// Used share (0–1) at the last sample.
    pub used_ratio: f64,
}

/// The outlook of both resources after a check; `None` where there is no fit yet.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Forecast {
    pub space: Option<Outlook>,
    pub inodes: Option<Outlook>,
}

/// A pass to run now: `resource` reaches `high` in `eta`, before the next check is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub resource: Resource,
    pub eta: Duration,
    /// The watermark the pass plans with: the usage now in whole percent (rounded down), at
    /// least `low` + 1, so that the pass evicts to `low` as a pressure pass does.
    pub high: u8,
}

impl Due {
    /// `forecast: space reaches high in 40s`, for the log.
    #[must_use]
    pub fn reason(&self) -> String {
        format!(
            "forecast: {} reaches high in {}s",
            self.resource.as_str(),
            self.eta.as_secs()
        )
    }
}

/// One resource's window.
#[derive(Debug, Clone, Default)]
struct Series {
    capacity: u64,
    /// (seconds since the checker started, units used).
    samples: VecDeque<(f64, f64)>,
}

impl Series {
    #[allow(clippy::cast_precision_loss)] // byte and inode counts: 53 bits are plenty.
    fn push(&mut self, at: Duration, used: u64, capacity: u64, window: Duration) {
        let drop = capacity / 1000 * DROP_PERMILLE;
        let dropped = self
            .samples
            .back()
            .is_some_and(|&(_, last)| (used as f64) + (drop as f64) < last);
        if capacity != self.capacity || dropped {
            self.samples.clear();
            self.capacity = capacity;
        }
        let now = at.as_secs_f64();
        self.samples.push_back((now, used as f64));
        let oldest = now - window.as_secs_f64();
        while self.samples.len() > MAX_SAMPLES || self.samples.front().is_some_and(|s| s.0 < oldest)
        {
            self.samples.pop_front();
        }
    }

    /// The least-squares slope through the window, in units per second.
    fn slope(&self) -> Option<f64> {
        if self.samples.len() < MIN_SAMPLES {
            return None;
        }
        #[allow(clippy::cast_precision_loss)] // at most MAX_SAMPLES
        let n = self.samples.len() as f64;
        let (st, su) = self
            .samples
            .iter()
            .fold((0.0, 0.0), |(a, b), &(t, u)| (a + t, b + u));
        let (mt, mu) = (st / n, su / n);
        let (mut num, mut den) = (0.0, 0.0);
        for &(t, u) in &self.samples {
            num += (t - mt) * (u - mu);
            den += (t - mt) * (t - mt);
        }
        (den > 0.0).then(|| num / den)
    }

    /// The outlook towards `high_percent` of the capacity, when there is a fit.
    #[allow(clippy::cast_precision_loss)]
    fn outlook(&self, resource: Resource, high_percent: Option<u8>) -> Option<Outlook> {
        let rate = self.slope()?;
        let &(_, last) = self.samples.back()?;
        let capacity = self.capacity as f64;
        let eta = high_percent.filter(|_| rate > 0.0).map(|high| {
            let to_high = (capacity * f64::from(high) / 100.0 - last).max(0.0);
            Duration::try_from_secs_f64(to_high / rate).unwrap_or(Duration::MAX)
        });
        Some(Outlook {
            resource,
            rate_per_sec: rate,
            eta,
            used_ratio: if capacity > 0.0 { last / capacity } else { 0.0 },
        })
    }
}

/// The windows of the agent's disk checks.
#[derive(Debug, Clone, Default)]
pub struct Forecaster {
    space: Series,
    inodes: Series,
}

impl Forecaster {
    /// Add the measurement `usage` taken at `at` and fit both windows again.
    pub fn observe(&mut self, at: Duration, usage: &DiskUsage, disk: &DiskConfig) -> Forecast {
        let window = disk.forecast.window;
        let used = usage.capacity_bytes.saturating_sub(usage.available_bytes);
        self.space.push(at, used, usage.capacity_bytes, window);
        let space = self.space.outlook(Resource::Space, Some(disk.space.high));
        let inodes = if let Some((total, free)) = usage.inodes.filter(|(total, _)| *total > 0) {
            self.inodes
                .push(at, total.saturating_sub(free), total, window);
            self.inodes
                .outlook(Resource::Inodes, disk.inodes.map(|m| m.high))
        } else {
            self.inodes = Series::default();
            None
        };
        Forecast { space, inodes }
    }
}

impl Forecast {
    /// The pass to run now, if any: the resource whose `high` comes first, when it comes
    /// within `horizon` (the time until the next check is done) and is not reached yet (the
    /// checker's over-`high` wake covers that), and usage is over `low` + 1 % (below, a
    /// pressure pass would have nothing to bring down).
    #[must_use]
    pub fn due(&self, horizon: Duration, disk: &DiskConfig) -> Option<Due> {
        [self.space, self.inodes]
            .into_iter()
            .flatten()
            .filter_map(|o| {
                let eta = o.eta.filter(|e| !e.is_zero() && *e < horizon)?;
                let marks = match o.resource {
                    Resource::Space => disk.space,
                    Resource::Inodes => disk.inodes?,
                };
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0..=100
                let now = (o.used_ratio * 100.0).floor().clamp(0.0, 100.0) as u8;
                let high = now.min(marks.high);
                (high > marks.low).then_some(Due {
                    resource: o.resource,
                    eta,
                    high,
                })
            })
            .min_by_key(|d| d.eta)
    }
}

#[cfg(test)]
#[path = "forecast_tests.rs"]
mod tests;
