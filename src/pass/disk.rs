//! Measuring the disk images live on: `statvfs` on the engine's data root (or `disk.path`),
//! or the images' bytes against a budget (`measure: api`). The only I/O of the disk
//! watermarks (a pass measures once; the agent's checks between passes call [`check`]).
//! The value is an [`inventory::DiskUsage`](crate::inventory::DiskUsage).

use std::path::{Path, PathBuf};

use crate::config::{Config, Measure, When};
use crate::engine::Engine;
use crate::inventory::{DiskUsage, Inventory};

/// Why the disk could not be measured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot measure the disk at {path}: {cause} (mount the engine's data root there, set disk.path to where it is mounted, or use disk.measure: api with max_images_bytes)"
)]
pub struct DiskError {
    pub path: PathBuf,
    pub cause: String,
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

/// Whether the configuration needs the disk measured at every pass.
#[must_use]
pub fn needs_disk(config: &Config) -> bool {
    config.disk.is_some() && config.policies.iter().any(|p| p.when == When::DiskPressure)
}

/// The disk as configured: `disk.path`, else the engine's data root.
pub fn measure_disk(
    config: &Config,
    root_dir: Option<PathBuf>,
    inventory: &Inventory,
) -> Result<DiskUsage, DiskError> {
    let Some(d) = &config.disk else {
        return Err(DiskError {
            path: PathBuf::new(),
            cause: "no disk: section".to_owned(),
        });
    };
    let path = d.path.clone().or(root_dir).unwrap_or_default();
    let images_bytes = match d.measure {
        Measure::Api { .. } => images_bytes(inventory),
        Measure::Statvfs => 0,
    };
    measure(d.measure, &path, images_bytes)
}

/// The images' own bytes (each image's size minus its parent's), as the planner counts them.
#[must_use]
pub fn images_bytes(inventory: &Inventory) -> u64 {
    let sizes: rustc_hash::FxHashMap<_, _> =
        inventory.images.iter().map(|i| (i.id, i.size)).collect();
    inventory
        .images
        .iter()
        .map(|i| {
            let parent = i
                .parent_id
                .and_then(|p| sizes.get(&p).copied())
                .unwrap_or(0);
            i.size.saturating_sub(parent)
        })
        .sum()
}

/// The disk's used and `high` ratios (0–1) now, for the agent's checks between passes:
/// `/info` for the data root, and the listing only with `measure: api`.
pub async fn check<E: Engine>(engine: &E, config: &Config) -> anyhow::Result<(f64, f64)> {
    let info = engine.info().await?;
    let api = config
        .disk
        .as_ref()
        .is_some_and(|d| matches!(d.measure, Measure::Api { .. }));
    let inventory = if api {
        Inventory {
            images: engine.list_images().await?,
            ..Inventory::default()
        }
    } else {
        Inventory::default()
    };
    let usage = measure_disk(config, info.root_dir, &inventory)?;
    let high = config
        .disk
        .as_ref()
        .map_or(1.0, |d| f64::from(d.space.high) / 100.0);
    Ok((usage.used_ratio(), high))
}

#[cfg(test)]
mod tests {
    use super::*;

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
