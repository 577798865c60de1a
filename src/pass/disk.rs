//! Measuring the disk images live on: where ([`locate`]: `disk.path`, else the filesystem of
//! the engine's image store — its data root, or containerd's root on the containerd image
//! store — or a refusal when that cannot be this machine's), and how (`statvfs`, or the
//! images' bytes against a budget for `measure: api`). The only I/O of the disk watermarks:
//! a pass measures before it plans and again around its deletions; the agent's checks
//! between passes call [`check`]. The value is an [`inventory::DiskUsage`](crate::inventory::DiskUsage).

use std::path::{Path, PathBuf};

use crate::config::{Config, DEFAULT_CONTAINERD_ROOT, DiskConfig, Measure, When};
use crate::engine::{Engine, EngineInfo, ImageStore};
use crate::inventory::{DiskUsage, Image, Inventory};

/// What containerd keeps its content store in, under its root.
pub const CONTAINERD_CONTENT: &str = "io.containerd.content.v1.content";

/// The way out of every refusal that is about the filesystem: measure something else.
const OR_API: &str = "or use disk.measure: api with max_images_bytes";

/// Why the disk could not be measured, or will not be: measuring would read the wrong
/// filesystem. Each names the configuration key that fixes it ([`DiskError::key`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    /// `statvfs` failed.
    #[error(
        "cannot measure the disk at {path}: {cause} (mount the engine's data root there, set disk.path to where it is mounted, {OR_API})"
    )]
    Unmeasurable { path: PathBuf, cause: String },
    /// The engine is reached over the network: a path here is this machine's disk.
    #[error(
        "the engine at {host} is remote: statvfs here would measure this machine's disk, not the engine's (set disk.path to where the engine's image store is mounted on this machine, {OR_API})"
    )]
    Remote { host: String },
    /// The containerd image store, and containerd's root is not where the key says.
    #[error(
        "the engine uses the containerd image store, whose images live under containerd's root, not its data root; {path} ({from}) {cause} (set disk.containerd_root to containerd's root, `root` in its config.toml, or disk.path to the filesystem to measure, {OR_API})"
    )]
    NoContainerdRoot {
        path: PathBuf,
        /// `disk.containerd_root`, or its default.
        from: &'static str,
        cause: String,
    },
    /// A graph driver, and `/info` gave no `DockerRootDir`.
    #[error(
        "the engine reported no data root (DockerRootDir) to measure (set disk.path to the filesystem its images live on, {OR_API})"
    )]
    NoDataRoot,
    /// The configuration has no `disk:` section.
    #[error("no disk: section")]
    NoSection,
}

impl DiskError {
    /// The configuration key that would fix it.
    #[must_use]
    pub fn key(&self) -> &'static str {
        match self {
            DiskError::NoContainerdRoot { .. } => "disk.containerd_root",
            DiskError::NoSection => "disk",
            _ => "disk.path",
        }
    }
}

/// Why a path is the one measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// `disk.path` says so.
    DiskPath,
    /// The engine's data root (`DockerRootDir`), where a graph driver keeps layers.
    DataRoot,
    /// containerd's root, for the containerd image store: `disk.containerd_root` when set
    /// (`true`), else its default.
    ContainerdRoot(bool),
}

/// What a pass measures: a filesystem, or the images' bytes against a budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gauge {
    Statvfs { path: PathBuf, basis: Basis },
    Api { max_images_bytes: u64 },
}

impl Gauge {
    /// What is measured and why, for `check-config` and logs:
    /// `/var/lib/containerd (containerd's root, the default of disk.containerd_root: the
    /// engine uses the containerd image store)`.
    #[must_use]
    pub fn describe(&self, info: &EngineInfo) -> String {
        let (path, basis) = match self {
            Gauge::Api { max_images_bytes } => {
                return format!(
                    "the images' bytes (from the api) against max_images_bytes {}",
                    crate::units::fmt_bytes(*max_images_bytes)
                );
            }
            Gauge::Statvfs { path, basis } => (path.display(), basis),
        };
        let why = match basis {
            Basis::DiskPath => "disk.path".to_owned(),
            Basis::DataRoot => match &info.image_store {
                ImageStore::Graphdriver(d) if !d.is_empty() => {
                    format!("the engine's data root, DockerRootDir: its {d} layers live there")
                }
                _ => "the engine's data root, DockerRootDir".to_owned(),
            },
            Basis::ContainerdRoot(set) => format!(
                "containerd's root, {}: the engine uses the containerd image store",
                if *set {
                    "disk.containerd_root"
                } else {
                    "the default of disk.containerd_root"
                }
            ),
        };
        format!("{path} ({why})")
    }

    /// The path `statvfs` reads, if any.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        match self {
            Gauge::Statvfs { path, .. } => Some(path),
            Gauge::Api { .. } => None,
        }
    }

    /// Measure now; `images` are the listed images (only `measure: api` reads them).
    pub fn measure(&self, images: &[Image]) -> Result<DiskUsage, DiskError> {
        match self {
            Gauge::Api { max_images_bytes } => Ok(DiskUsage {
                source: "api".to_owned(),
                capacity_bytes: *max_images_bytes,
                available_bytes: max_images_bytes.saturating_sub(images_bytes(images)),
                inodes: None,
            }),
            Gauge::Statvfs { path, .. } => statvfs(path),
        }
    }

    /// Measure now, listing the images when `measure: api` needs them.
    pub async fn measure_on<E: Engine>(&self, engine: &E) -> Result<DiskUsage, String> {
        let images = match self {
            Gauge::Api { .. } => engine.list_images().await.map_err(|e| e.to_string())?,
            Gauge::Statvfs { .. } => Vec::new(),
        };
        self.measure(&images).map_err(|e| e.to_string())
    }
}

/// Where the disk watermarks of `disk` measure for the engine `info` describes: `disk.path`
/// when set; nothing for `measure: api`; else the filesystem of the image store, which must
/// be this machine's (a remote engine is refused) and must be found (containerd's root must
/// hold containerd's content store).
pub fn locate(disk: &DiskConfig, info: &EngineInfo) -> Result<Gauge, DiskError> {
    locate_with(disk, info, Path::new(DEFAULT_CONTAINERD_ROOT))
}

/// [`locate`] with containerd's default root at `default_root`.
fn locate_with(
    disk: &DiskConfig,
    info: &EngineInfo,
    default_root: &Path,
) -> Result<Gauge, DiskError> {
    if let Measure::Api { max_images_bytes } = disk.measure {
        return Ok(Gauge::Api { max_images_bytes });
    }
    if let Some(path) = &disk.path {
        return Ok(Gauge::Statvfs {
            path: path.clone(),
            basis: Basis::DiskPath,
        });
    }
    if let Some(host) = &info.remote {
        return Err(DiskError::Remote { host: host.clone() });
    }
    match &info.image_store {
        ImageStore::Containerd => {
            let set = disk.containerd_root.is_some();
            let path = disk
                .containerd_root
                .clone()
                .unwrap_or_else(|| default_root.to_owned());
            let refuse = |cause: String| DiskError::NoContainerdRoot {
                path: path.clone(),
                from: if set {
                    "disk.containerd_root"
                } else {
                    "the default of disk.containerd_root"
                },
                cause,
            };
            match std::fs::metadata(path.join(CONTAINERD_CONTENT)) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(refuse(format!(
                        "has a {CONTAINERD_CONTENT} that is not a directory"
                    )));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let cause = if path.exists() {
                        format!("holds no {CONTAINERD_CONTENT}")
                    } else {
                        "does not exist here".to_owned()
                    };
                    return Err(refuse(cause));
                }
                Err(e) => return Err(refuse(format!("cannot be read: {e}"))),
            }
            Ok(Gauge::Statvfs {
                path,
                basis: Basis::ContainerdRoot(set),
            })
        }
        ImageStore::Graphdriver(_) => match &info.root_dir {
            Some(root) => Ok(Gauge::Statvfs {
                path: root.clone(),
                basis: Basis::DataRoot,
            }),
            None => Err(DiskError::NoDataRoot),
        },
    }
}

/// `statvfs(path)`.
pub fn statvfs(path: &Path) -> Result<DiskUsage, DiskError> {
    let st = rustix::fs::statvfs(path).map_err(|e| DiskError::Unmeasurable {
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

/// Locate and measure the disk as configured, for the engine `info` describes.
pub fn measure_disk(
    config: &Config,
    info: &EngineInfo,
    inventory: &Inventory,
) -> Result<(Gauge, DiskUsage), DiskError> {
    let disk = config.disk.as_ref().ok_or(DiskError::NoSection)?;
    let gauge = locate(disk, info)?;
    let usage = gauge.measure(&inventory.images)?;
    Ok((gauge, usage))
}

/// The images' own bytes (each image's size minus its parent's), as the planner counts them.
#[must_use]
pub fn images_bytes(images: &[Image]) -> u64 {
    let sizes: rustc_hash::FxHashMap<_, _> = images.iter().map(|i| (i.id, i.size)).collect();
    images
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

/// The disk measured now, for the agent's checks between passes: `/info` for the image
/// store, and the listing only with `measure: api`.
pub async fn check<E: Engine>(engine: &E, config: &Config) -> anyhow::Result<DiskUsage> {
    let disk = config.disk.as_ref().ok_or(DiskError::NoSection)?;
    let info = engine.info().await?;
    let gauge = locate(disk, &info)?;
    gauge.measure_on(engine).await.map_err(anyhow::Error::msg)
}

#[cfg(test)]
#[path = "disk_tests.rs"]
mod tests;
