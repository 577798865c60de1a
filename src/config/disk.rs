//! The `disk:` section: watermarks in percent of capacity (kubelet's defaults), the path to
//! measure (or containerd's root, for engines on the containerd image store),
//! `measure: statvfs | api`, and how often the agent checks. Pure: whether the paths exist
//! is checked when a pass measures them (`pass::disk`).

use std::path::PathBuf;
use std::time::Duration;

use super::ctx::Ctx;
use super::forecast::ForecastConfig;
use super::history::absolute;
use super::raw::{RawDisk, RawPercent, RawPolicy, S};
use super::values::{self, Bad};

/// containerd's default root (`root` in its `config.toml`), where the containerd image store
/// keeps content and snapshots.
pub const DEFAULT_CONTAINERD_ROOT: &str = "/var/lib/containerd";

/// kubelet's default image GC thresholds, in percent.
const DEFAULT_HIGH: u8 = 85;
const DEFAULT_LOW: u8 = 80;

/// A pair of thresholds in percent of capacity: pressure from `high` on, relief at `low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// Percent (0–100) at or above which the disk is under pressure. Default 85.
    pub high: u8,
    /// Percent (0–100, below `high`) that eviction brings usage down to. Default 80.
    pub low: u8,
}

/// How disk usage is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// `statvfs` on the engine's data root (or `disk.path`): kubelet's
    /// `100 − f_bavail·100/f_blocks`.
    Statvfs,
    /// No filesystem visible: the images' bytes against a budget of `max_images_bytes`.
    Api { max_images_bytes: u64 },
}

/// `disk:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// Space thresholds (`high`, `low`), in percent of capacity. Default 85 / 80.
    pub space: Watermarks,
    /// Inode thresholds (`inodes_high`, `inodes_low`), in percent; none by default.
    pub inodes: Option<Watermarks>,
    /// The path to measure, whatever the engine says; default the filesystem the engine's
    /// image store lives on (see `containerd_root`).
    pub path: Option<PathBuf>,
    /// containerd's root, measured for an engine on the containerd image store (its images
    /// are not under `DockerRootDir`, and the API does not report where they are). `None`:
    /// [`DEFAULT_CONTAINERD_ROOT`].
    pub containerd_root: Option<PathBuf>,
    /// `statvfs` (default) or `api` (with `max_images_bytes`).
    pub measure: Measure,
    /// How often the agent checks the disk between passes; off by default.
    pub check_every: Option<Duration>,
    /// The fill-rate forecast of the agent's checks (`disk.forecast`).
    pub forecast: ForecastConfig,
}

/// Without a `disk:` section, a policy with `when: disk_pressure` could never delete.
pub(super) fn require_disk(ctx: &mut Ctx, policies: &[S<RawPolicy>]) {
    for (i, p) in policies.iter().enumerate() {
        if let Some(w) = &p.value.when
            && w.value.trim() == "disk_pressure"
        {
            let bad = Bad::new(
                "when: disk_pressure needs a disk: section",
                "add disk: with high and low (e.g. high: 85, low: 80), or use when: always",
            );
            ctx.push(w.referenced, &format!("policies[{i}].when"), bad);
        }
    }
}

/// `disk:`; `None` when the section is absent.
pub(super) fn disk(ctx: &mut Ctx, raw: Option<&RawDisk>) -> Option<DiskConfig> {
    let raw = raw?;
    let space = watermarks(ctx, (&raw.high, "high"), (&raw.low, "low"), true);
    let inodes = watermarks(
        ctx,
        (&raw.inodes_high, "inodes_high"),
        (&raw.inodes_low, "inodes_low"),
        false,
    );
    let path = raw
        .path
        .as_ref()
        .and_then(|p| ctx.check(p, "disk.path", |t| absolute("disk.path", t)));
    let containerd_root = raw.containerd_root.as_ref().and_then(|p| {
        ctx.check(p, "disk.containerd_root", |t| {
            absolute("disk.containerd_root", t)
        })
    });
    let budget = raw.max_images_bytes.as_ref().and_then(|s| {
        ctx.check(s, "disk.max_images_bytes", |t| {
            values::size("max_images_bytes", t)
        })
    });
    let measure = match raw.measure.as_ref() {
        None => Some(Measure::Statvfs),
        Some(m) => ctx.check(m, "disk.measure", |t| measure(t, budget)),
    };
    if let (Some(Measure::Statvfs), Some(s)) = (measure, &raw.max_images_bytes) {
        let bad = Bad::new(
            "max_images_bytes is only used with measure: api",
            "set measure: api when no filesystem of the engine is visible, or remove max_images_bytes",
        );
        ctx.push(s.referenced, "disk.max_images_bytes", bad);
    }
    let check_every = raw.check_every.as_ref().and_then(|s| {
        ctx.check(s, "disk.check_every", |t| {
            values::duration("check_every", t)
        })
    });
    let forecast = super::forecast::forecast(ctx, raw.forecast.as_ref(), check_every);
    Some(DiskConfig {
        space: space.unwrap_or(Watermarks {
            high: DEFAULT_HIGH,
            low: DEFAULT_LOW,
        }),
        inodes,
        path,
        containerd_root,
        measure: measure.unwrap_or(Measure::Statvfs),
        check_every,
        forecast,
    })
}

fn measure(text: &str, budget: Option<u64>) -> Result<Measure, Bad> {
    match (text.trim(), budget) {
        ("statvfs", _) => Ok(Measure::Statvfs),
        ("api", Some(max_images_bytes)) => Ok(Measure::Api { max_images_bytes }),
        ("api", None) => Err(Bad::new(
            "measure: api needs disk.max_images_bytes",
            "without a visible filesystem, percentages need a budget, e.g. max_images_bytes: 50GB",
        )),
        _ => Err(Bad::new(
            format!("measure {text:?} is not statvfs or api"),
            "statvfs measures the engine's filesystem; api compares image bytes with max_images_bytes",
        )),
    }
}

type RawMark<'r> = (&'r Option<S<RawPercent>>, &'static str);

/// A high/low pair; with `defaults`, a missing one takes kubelet's default.
fn watermarks(
    ctx: &mut Ctx,
    (high_raw, high_key): RawMark<'_>,
    (low_raw, low_key): RawMark<'_>,
    defaults: bool,
) -> Option<Watermarks> {
    if !defaults && high_raw.is_none() && low_raw.is_none() {
        return None;
    }
    let mut read = |raw: &Option<S<RawPercent>>, key: &str, default: u8| match raw {
        None if defaults => Some(default),
        None => {
            let other = if key == high_key { low_key } else { high_key };
            let bad = Bad::new(
                format!("disk.{other} is set but disk.{key} is not"),
                format!("set both {high_key} and {low_key}"),
            );
            ctx.push(serde_saphyr::Location::UNKNOWN, &format!("disk.{key}"), bad);
            None
        }
        Some(s) => match percent(key, &s.value) {
            Ok(p) => Some(p),
            Err(bad) => {
                ctx.push(s.referenced, &format!("disk.{key}"), bad);
                None
            }
        },
    };
    let high = read(high_raw, high_key, DEFAULT_HIGH);
    let low = read(low_raw, low_key, DEFAULT_LOW);
    let (high, low) = (high?, low?);
    if low >= high {
        let at = low_raw
            .as_ref()
            .or(high_raw.as_ref())
            .map_or(serde_saphyr::Location::UNKNOWN, |s| s.referenced);
        let bad = Bad::new(
            format!("disk.{low_key} {low}% is not below disk.{high_key} {high}%"),
            "eviction starts at high and stops at low: make low smaller, e.g. high 85, low 80",
        );
        ctx.push(at, &format!("disk.{low_key}"), bad);
        return None;
    }
    Some(Watermarks { high, low })
}

/// `85` or `"85%"`, 0 to 100.
fn percent(key: &str, raw: &RawPercent) -> Result<u8, Bad> {
    let parsed = match raw {
        RawPercent::Number(n) => Some(*n),
        RawPercent::Text(t) => t.trim().trim_end_matches('%').trim().parse::<i64>().ok(),
    };
    let shown = match raw {
        RawPercent::Number(n) => n.to_string(),
        RawPercent::Text(t) => format!("{t:?}"),
    };
    match parsed.map(u8::try_from) {
        Some(Ok(p)) if p <= 100 => Ok(p),
        _ => Err(Bad::new(
            format!("{key} {shown} is not a percentage from 0 to 100"),
            "write a whole percent like 85 or \"85%\" (of the filesystem's capacity, as kubelet counts it)",
        )),
    }
}
