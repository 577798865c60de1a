//! A disk measurement against a pair of watermarks (`high`, `low`): how far over it is and
//! how many bytes must go to reach `low`, and the figures a pressure decision shows. Pure
//! arithmetic on plain values.

use serde::{Deserialize, Serialize};

use crate::config::Watermarks;
use crate::inventory::DiskUsage;
use crate::inventory::disk::ratio_used;

/// How far over a pair of watermarks a measurement is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pressure {
    /// Used percent now.
    pub used_percent: f64,
    /// Whether `used_percent >= high`.
    pub over_high: bool,
    /// Bytes to free to bring usage down to `low` (0 when already there).
    pub to_free_bytes: u64,
}

/// Where the space stands against `marks`.
#[must_use]
pub fn space_pressure(usage: &DiskUsage, marks: Watermarks) -> Pressure {
    let used_percent = usage.used_ratio() * 100.0;
    // Available bytes once usage is at `low`: capacity · (100 − low) / 100.
    let target = u128::from(usage.capacity_bytes) * u128::from(100 - marks.low) / 100;
    let to_free = target.saturating_sub(u128::from(usage.available_bytes));
    Pressure {
        used_percent,
        over_high: used_percent >= f64::from(marks.high),
        to_free_bytes: u64::try_from(to_free).unwrap_or(u64::MAX),
    }
}

/// Where the inodes stand against `marks`; `to_free_bytes` is the share of `store_bytes`
/// (the images' bytes) proportional to the inodes to free, since inodes cannot be
/// attributed to images.
#[must_use]
pub fn inode_pressure(usage: &DiskUsage, marks: Watermarks, store_bytes: u64) -> Option<Pressure> {
    let (total, free) = usage.inodes.filter(|(total, _)| *total > 0)?;
    let used = total - free.min(total);
    let used_percent = ratio_used(free, total) * 100.0;
    let target_used = u128::from(total) * u128::from(marks.low) / 100;
    let to_free = u128::from(used).saturating_sub(target_used);
    let bytes = u128::from(store_bytes) * to_free / u128::from(used.max(1));
    Some(Pressure {
        used_percent,
        over_high: used_percent >= f64::from(marks.high),
        to_free_bytes: u64::try_from(bytes).unwrap_or(u64::MAX),
    })
}

/// The disk figures a pressure decision was made on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskFigures {
    /// What was measured: the path given to `statvfs`, or `api`.
    pub measured: String,
    /// `space` or `inodes`: the resource the decision is about.
    pub resource: String,
    /// Used, in tenths of a percent, rounded down (kubelet's formula).
    pub used_permille: u32,
    pub high_percent: u8,
    pub low_percent: u8,
    /// Bytes to free to reach `low` (for inodes: the share of the images' bytes).
    pub to_free_bytes: u64,
}

impl DiskFigures {
    pub(super) fn new(usage: &DiskUsage, resource: &str, p: Pressure, high: u8, low: u8) -> Self {
        // Rounded down: 84.99 % is not over a `high` of 85 (rounding would evict early).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0..=1000
        let used_permille = (p.used_percent * 10.0).floor().clamp(0.0, 1000.0) as u32;
        Self {
            measured: usage.source.clone(),
            resource: resource.to_owned(),
            used_permille,
            high_percent: high,
            low_percent: low,
            to_free_bytes: p.to_free_bytes,
        }
    }

    /// Whether usage is at or over `high`.
    #[must_use]
    pub fn over_high(&self) -> bool {
        self.used_permille >= u32::from(self.high_percent) * 10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(capacity: u64, available: u64) -> DiskUsage {
        DiskUsage {
            source: "t".into(),
            capacity_bytes: capacity,
            available_bytes: available,
            inodes: Some((1000, 100)),
        }
    }

    #[test]
    fn kubelets_formula_and_the_bytes_to_reach_low() {
        let marks = Watermarks { high: 85, low: 80 };
        let p = space_pressure(&usage(1000, 100), marks);
        assert!((p.used_percent - 90.0).abs() < 1e-9);
        assert!(p.over_high);
        assert_eq!(p.to_free_bytes, 100, "200 available at 80 %");
        let p = space_pressure(&usage(1000, 160), marks);
        assert!(!p.over_high, "84 % is below 85 %");
        assert_eq!(p.to_free_bytes, 40);
        let p = space_pressure(&usage(1000, 150), marks);
        assert!(p.over_high, "85 % is at high");
        assert_eq!(space_pressure(&usage(1000, 500), marks).to_free_bytes, 0);
        assert!(usage(0, 0).used_ratio().abs() < f64::EPSILON);
    }

    #[test]
    fn inodes_convert_to_a_share_of_the_image_bytes() {
        let marks = Watermarks { high: 85, low: 80 };
        let p = inode_pressure(&usage(1000, 900), marks, 9000).expect("inodes counted");
        assert!(p.over_high, "900 of 1000 inodes used");
        // 900 used, 800 wanted: free 1/9 of the store.
        assert_eq!(p.to_free_bytes, 1000);
        let btrfs = DiskUsage {
            inodes: Some((0, 0)),
            ..usage(1000, 900)
        };
        assert_eq!(inode_pressure(&btrfs, marks, 9000), None);
        assert_eq!(btrfs.inodes_used_ratio(), None);
    }
}
