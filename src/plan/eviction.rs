//! What a plan leaves to the pass when the disk is over `high`: every `disk_pressure`
//! candidate in eviction order, and how far the estimate reaches ([`EvictionOrder`]). The
//! estimate orders and bounds the work; the pass measures between waves and stops when the
//! disk is at `low` (kubelet frees until measured). Pure: the next wave's end and the bytes
//! still to free are computed from plain values.

use std::sync::Arc;

use serde::Serialize;

use super::reason::Reason;
use super::watermarks::{DiskFigures, inode_pressure, space_pressure};
use crate::config::DiskConfig;
use crate::inventory::DiskUsage;

/// Every candidate of the `when: disk_pressure` policies, in the order eviction takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvictionOrder {
    /// The measurement and watermarks the plan was made on.
    pub figures: Arc<DiskFigures>,
    /// Least recently used first; a parent right after the last of its children.
    pub entries: Vec<Evictee>,
    /// How many of `entries` the estimate reaches: the plan's `disk_pressure` deletions. The
    /// rest are kept (`no_disk_pressure`) unless the pass, measuring, needs them.
    pub estimated: usize,
    /// The images' bytes when planned (each layer once): inode pressure is converted to a
    /// share of them.
    pub store_bytes: u64,
}

/// One candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evictee {
    /// Index into the plan's decisions (and the inventory's images).
    pub decision: usize,
    /// The estimate of what deleting it frees (each layer counted once).
    pub reclaim_bytes: u64,
    /// A parent the entry before it released (its last child): they go in the same wave.
    pub follows: bool,
    /// The reason the image gets when the pass decides otherwise than the estimate:
    /// `disk_pressure` for an entry beyond `estimated` that the pass evicts after all,
    /// `no_disk_pressure` for one within it that the pass finds not needed.
    pub otherwise: Reason,
}

impl EvictionOrder {
    /// Bytes still to free to bring `usage` to `low`, for the resource the plan is about
    /// (space, or inodes as a share of the images' bytes, `deleted` of which are gone). 0
    /// once usage is at or below `low`.
    #[must_use]
    pub fn to_free(&self, usage: &DiskUsage, disk: &DiskConfig, deleted: u64) -> u64 {
        if self.figures.resource == "inodes"
            && let Some(marks) = disk.inodes
        {
            let store = self.store_bytes.saturating_sub(deleted);
            return inode_pressure(usage, marks, store).map_or(0, |p| p.to_free_bytes);
        }
        space_pressure(usage, disk.space).to_free_bytes
    }

    /// True when `usage` is at or below `low` for the plan's resource (by ratio: on a tiny
    /// capacity the bytes to free round down to 0 before `low` is reached).
    #[must_use]
    pub fn at_low(&self, usage: &DiskUsage, disk: &DiskConfig) -> bool {
        let (ratio, low) = match (self.figures.resource.as_str(), disk.inodes) {
            ("inodes", Some(marks)) => (usage.inodes_used_ratio().unwrap_or(0.0), marks.low),
            _ => (usage.used_ratio(), disk.space.low),
        };
        ratio * 100.0 <= f64::from(low)
    }

    /// True when `usage` is at or over `high` for the plan's resource.
    #[must_use]
    pub fn over_high(&self, usage: &DiskUsage, disk: &DiskConfig) -> bool {
        if self.figures.resource == "inodes"
            && let Some(marks) = disk.inodes
        {
            return inode_pressure(usage, marks, self.store_bytes).is_some_and(|p| p.over_high);
        }
        space_pressure(usage, disk.space).over_high
    }

    /// Used, in tenths of a percent (rounded down), for the plan's resource.
    #[must_use]
    pub fn used_permille(&self, usage: &DiskUsage) -> u32 {
        let ratio = if self.figures.resource == "inodes" {
            usage.inodes_used_ratio().unwrap_or(0.0)
        } else {
            usage.used_ratio()
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0..=1000
        let permille = (ratio * 1000.0).floor().clamp(0.0, 1000.0) as u32;
        permille
    }

    /// The end (exclusive) of the wave that starts at `from`: whole units (an entry and the
    /// parents that follow it) until their estimate covers `missing` bytes, at least one
    /// unit; `from` itself when nothing is left.
    #[must_use]
    pub fn wave_end(&self, from: usize, missing: u64) -> usize {
        let entries = &self.entries;
        let (mut end, mut sum) = (from, 0u64);
        while end < entries.len() {
            sum = sum.saturating_add(entries[end].reclaim_bytes);
            end += 1;
            while end < entries.len() && entries[end].follows {
                sum = sum.saturating_add(entries[end].reclaim_bytes);
                end += 1;
            }
            if sum >= missing {
                break;
            }
        }
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Measure, Watermarks};

    fn entry(decision: usize, bytes: u64, follows: bool) -> Evictee {
        Evictee {
            decision,
            reclaim_bytes: bytes,
            follows,
            otherwise: Reason::NoPolicyMatches,
        }
    }

    fn order(entries: Vec<Evictee>, resource: &str) -> EvictionOrder {
        EvictionOrder {
            figures: Arc::new(DiskFigures {
                measured: "/data".into(),
                resource: resource.into(),
                used_permille: 900,
                high_percent: 85,
                low_percent: 80,
                to_free_bytes: 100,
            }),
            entries,
            estimated: 1,
            store_bytes: 9000,
        }
    }

    fn disk(inodes: Option<Watermarks>) -> DiskConfig {
        DiskConfig {
            space: Watermarks { high: 85, low: 80 },
            inodes,
            path: None,
            containerd_root: None,
            measure: Measure::Statvfs,
            check_every: None,
            forecast: crate::config::ForecastConfig::default(),
        }
    }

    fn usage(available: u64, inodes_free: u64) -> DiskUsage {
        DiskUsage {
            source: "/data".into(),
            capacity_bytes: 1000,
            available_bytes: available,
            inodes: Some((1000, inodes_free)),
        }
    }

    #[test]
    fn a_wave_covers_the_missing_bytes_by_estimate_in_whole_units() {
        // 0 (40) · 1 (30) + its parent 2 (10) · 3 (50) · 4 (5)
        let o = order(
            vec![
                entry(0, 40, false),
                entry(1, 30, false),
                entry(2, 10, true),
                entry(3, 50, false),
                entry(4, 5, false),
            ],
            "space",
        );
        assert_eq!(o.wave_end(0, 40), 1, "the first entry covers 40");
        assert_eq!(o.wave_end(0, 41), 3, "a parent goes with its last child");
        assert_eq!(o.wave_end(0, 0), 1, "at least one unit");
        assert_eq!(o.wave_end(1, 45), 4);
        assert_eq!(o.wave_end(3, 1_000), 5, "up to the end, no further");
        assert_eq!(o.wave_end(5, 10), 5, "nothing left");
    }

    #[test]
    fn the_bytes_to_free_follow_the_measurement_of_the_plans_resource() {
        let space = order(Vec::new(), "space");
        let d = disk(None);
        // 90 % used: 100 bytes to reach 80 %; at 80 % nothing.
        assert_eq!(space.to_free(&usage(100, 500), &d, 0), 100);
        assert!(space.over_high(&usage(100, 500), &d));
        assert_eq!(space.to_free(&usage(200, 500), &d, 0), 0);
        assert!(!space.over_high(&usage(200, 500), &d));
        assert_eq!(space.used_permille(&usage(123, 500)), 877);
        assert!(space.at_low(&usage(200, 500), &d) && !space.at_low(&usage(199, 500), &d));
        // A 1-byte budget, full: nothing to free by the bytes' arithmetic, yet not at low.
        let tiny = DiskUsage {
            capacity_bytes: 1,
            available_bytes: 0,
            ..usage(0, 500)
        };
        assert_eq!(space.to_free(&tiny, &d, 0), 0);
        assert!(!space.at_low(&tiny, &d) && space.over_high(&tiny, &d));
        // Inodes: 900 of 1000 used, 800 wanted: 1/9 of the store (less what is gone).
        let inodes = order(Vec::new(), "inodes");
        let d = disk(Some(Watermarks { high: 85, low: 80 }));
        assert_eq!(inodes.to_free(&usage(900, 100), &d, 0), 1000);
        assert_eq!(inodes.to_free(&usage(900, 100), &d, 4500), 500);
        assert_eq!(
            inodes.to_free(&usage(100, 200), &d, 0),
            0,
            "space is not it"
        );
        assert!(inodes.over_high(&usage(900, 100), &d));
        assert!(!inodes.at_low(&usage(900, 100), &d) && inodes.at_low(&usage(100, 200), &d));
        assert_eq!(inodes.used_permille(&usage(900, 100)), 900);
    }
}
