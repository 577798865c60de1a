//! Disk usage: measured with `statvfs` on the engine's data root (or `disk.path`), or from
//! the images' bytes against a budget (`measure: api`), and compared with the watermarks
//! the way kubelet does: `used% = 100 − f_bavail·100/f_blocks` (blocks reserved for root
//! count as used, so this is higher than `df`'s Use%).
//!
//! [`measure`] is the only I/O here; the rest is arithmetic on plain values for the planner.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Measure, Watermarks};

/// One measurement of the filesystem (or budget) images live on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskUsage {
    /// What was measured: a path, or `api` for the image-bytes budget.
    pub source: String,
    /// Capacity in bytes (`f_blocks · f_frsize`, or `max_images_bytes`).
    pub capacity_bytes: u64,
    /// Bytes available to unprivileged users (`f_bavail · f_frsize`, or budget − images).
    pub available_bytes: u64,
    /// Inodes in total and free (`f_files`, `f_ffree`); `None` when the filesystem does not
    /// count them (btrfs reports 0) or for the api budget.
    pub inodes: Option<(u64, u64)>,
}

/// Why the disk could not be measured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot measure the disk at {path}: {cause} (mount the engine's data root there, set disk.path to where it is mounted, or use disk.measure: api with max_images_bytes)"
)]
pub struct DiskError {
    pub path: PathBuf,
    pub cause: String,
}

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

impl DiskUsage {
    /// kubelet's used ratio: `1 − available/capacity` (0 for an empty capacity).
    #[must_use]
    pub fn used_ratio(&self) -> f64 {
        ratio_used(self.available_bytes, self.capacity_bytes)
    }

    /// `1 − f_ffree/f_files`, when the filesystem counts inodes.
    #[must_use]
    pub fn inodes_used_ratio(&self) -> Option<f64> {
        self.inodes
            .filter(|(total, _)| *total > 0)
            .map(|(total, free)| ratio_used(free, total))
    }

    /// Where the space stands against `marks`.
    #[must_use]
    pub fn space_pressure(&self, marks: Watermarks) -> Pressure {
        let used_percent = self.used_ratio() * 100.0;
        // Available bytes once usage is at `low`: capacity · (100 − low) / 100.
        let target = u128::from(self.capacity_bytes) * u128::from(100 - marks.low) / 100;
        let to_free = target.saturating_sub(u128::from(self.available_bytes));
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
    pub fn inode_pressure(&self, marks: Watermarks, store_bytes: u64) -> Option<Pressure> {
        let (total, free) = self.inodes.filter(|(total, _)| *total > 0)?;
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
}

#[allow(clippy::cast_precision_loss)] // ratios of byte counts: 53 bits are plenty.
fn ratio_used(available: u64, capacity: u64) -> f64 {
    if capacity == 0 {
        return 0.0;
    }
    1.0 - available.min(capacity) as f64 / capacity as f64
}

/// Measure the disk as configured: `statvfs` on `path`, or the images' bytes against the
/// budget for `measure: api`.
pub fn measure(measure: Measure, path: &Path, images_bytes: u64) -> Result<DiskUsage, DiskError> {
    match measure {
        Measure::Api { max_images_bytes } => Ok(DiskUsage {
            source: "api".to_owned(),
            capacity_bytes: max_images_bytes,
            available_bytes: max_images_bytes.saturating_sub(images_bytes),
            inodes: None,
        }),
        Measure::Statvfs => statvfs(path),
    }
}

/// `statvfs(path)`.
pub fn statvfs(path: &Path) -> Result<DiskUsage, DiskError> {
    let st = rustix::fs::statvfs(path).map_err(|e| DiskError {
        path: path.to_owned(),
        cause: std::io::Error::from(e).to_string(),
    })?;
    let unit = if st.f_frsize > 0 {
        st.f_frsize
    } else {
        st.f_bsize
    };
    Ok(DiskUsage {
        source: path.display().to_string(),
        capacity_bytes: st.f_blocks.saturating_mul(unit),
        available_bytes: st.f_bavail.saturating_mul(unit),
        inodes: (st.f_files > 0).then_some((st.f_files, st.f_ffree)),
    })
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
        let p = usage(1000, 100).space_pressure(marks);
        assert!((p.used_percent - 90.0).abs() < 1e-9);
        assert!(p.over_high);
        assert_eq!(p.to_free_bytes, 100, "200 available at 80 %");
        let p = usage(1000, 160).space_pressure(marks);
        assert!(!p.over_high, "84 % is below 85 %");
        assert_eq!(p.to_free_bytes, 40);
        let p = usage(1000, 150).space_pressure(marks);
        assert!(p.over_high, "85 % is at high");
        assert_eq!(usage(1000, 500).space_pressure(marks).to_free_bytes, 0);
        assert!(usage(0, 0).used_ratio().abs() < f64::EPSILON);
    }

    #[test]
    fn inodes_convert_to_a_share_of_the_image_bytes() {
        let marks = Watermarks { high: 85, low: 80 };
        let p = usage(1000, 900)
            .inode_pressure(marks, 9000)
            .expect("inodes counted");
        assert!(p.over_high, "900 of 1000 inodes used");
        // 900 used, 800 wanted: free 1/9 of the store.
        assert_eq!(p.to_free_bytes, 1000);
        let btrfs = DiskUsage {
            inodes: Some((0, 0)),
            ..usage(1000, 900)
        };
        assert_eq!(btrfs.inode_pressure(marks, 9000), None);
        assert_eq!(btrfs.inodes_used_ratio(), None);
    }

    #[test]
    fn statvfs_measures_a_real_filesystem_and_names_a_missing_path() {
        let here = statvfs(Path::new("/")).expect("the root filesystem");
        assert!(here.capacity_bytes > 0 && here.available_bytes <= here.capacity_bytes);
        let e = statvfs(Path::new("/nonexistent/stagesweep")).expect_err("missing");
        assert!(e.to_string().contains("/nonexistent/stagesweep"), "{e}");
        assert!(e.to_string().contains("disk.path"), "{e}");
        let api = measure(
            Measure::Api {
                max_images_bytes: 1000,
            },
            Path::new("/nonexistent"),
            900,
        )
        .expect("no filesystem needed");
        assert!((api.used_ratio() - 0.9).abs() < 1e-9);
    }
}
