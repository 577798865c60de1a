//! The `history:` and `disk:` sections and the policy keys that use them (`unused_for`,
//! `order`, `when`): typed values and their validation. Pure: knows nothing of files or
//! filesystems (whether `disk.path` exists is checked when a pass measures it).

use std::path::PathBuf;
use std::time::Duration;

use super::raw::{RawDisk, RawHistory, RawPercent, RawPolicy, S};
use super::validate::{Ctx, join};
use super::values::{self, Bad};

/// Default `history.path`.
pub const DEFAULT_HISTORY_PATH: &str = "/var/lib/stagesweep/history.json";
/// kubelet's default image GC thresholds, in percent.
const DEFAULT_HIGH: u8 = 85;
const DEFAULT_LOW: u8 = 80;

/// `history:` section: when each image was first seen and last used, kept in one file that
/// the agent writes and `prune` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Keep the history. Default true. The agent writes the file (creating its directory);
    /// `prune` reads it when present and writes it when its directory exists.
    pub enabled: bool,
    /// The history file. Default `/var/lib/stagesweep/history.json`.
    pub path: PathBuf,
    /// What a gap in the events (daemon restart, lost events) means for known images.
    /// Default `assume_used`.
    pub gap_policy: GapPolicy,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: PathBuf::from(DEFAULT_HISTORY_PATH),
            gap_policy: GapPolicy::AssumeUsed,
        }
    }
}

/// `history.gap_policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GapPolicy {
    /// Known images count as used at the end of the gap (`last_used = max(last_used, gap_end)`).
    #[default]
    AssumeUsed,
    /// Known images keep the `last_used` recorded before the gap.
    Ignore,
}

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
    /// The path to measure; default the engine's data root (`/info` `DockerRootDir`).
    pub path: Option<PathBuf>,
    /// `statvfs` (default) or `api` (with `max_images_bytes`).
    pub measure: Measure,
    /// How often the agent checks the disk between passes; off by default.
    pub check_every: Option<Duration>,
}

/// `order:` of a policy: how `keep_last` ranks and budgets evict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Least recently used first (`last_used`, else `first_seen`, else `Created`). Default;
    /// without history it is the same as `oldest`.
    #[default]
    Lru,
    /// Oldest `Created` first.
    Oldest,
}

/// `when:` of a policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum When {
    /// Every pass (default).
    #[default]
    Always,
    /// Only while the disk is at or over `disk.high`, least recently used first, until the
    /// estimate reaches `disk.low`.
    DiskPressure,
}

/// The policy keys of this module, validated.
pub(super) struct PolicyUsage {
    pub unused_for: Option<Duration>,
    pub order: Order,
    pub when: When,
}

pub(super) fn policy_usage(ctx: &mut Ctx, raw: &RawPolicy, base: &str) -> Option<PolicyUsage> {
    let unused_for = raw.unused_for.as_ref().map(|s| {
        ctx.check(s, &join(base, "unused_for"), |t| {
            values::duration("unused_for", t)
        })
    });
    let order = raw
        .order
        .as_ref()
        .map(|s| ctx.check(s, &join(base, "order"), order));
    let when = raw
        .when
        .as_ref()
        .map(|s| ctx.check(s, &join(base, "when"), when));
    Some(PolicyUsage {
        unused_for: unused_for.unwrap_or(None),
        order: order.unwrap_or(Some(Order::Lru))?,
        when: when.unwrap_or(Some(When::Always))?,
    })
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

fn order(text: &str) -> Result<Order, Bad> {
    match text.trim() {
        "lru" => Ok(Order::Lru),
        "oldest" => Ok(Order::Oldest),
        _ => Err(Bad::new(
            format!("order {text:?} is not lru or oldest"),
            "lru ranks by last use (needs the history), oldest by creation time",
        )),
    }
}

fn when(text: &str) -> Result<When, Bad> {
    match text.trim() {
        "always" => Ok(When::Always),
        "disk_pressure" => Ok(When::DiskPressure),
        _ => Err(Bad::new(
            format!("when {text:?} is not always or disk_pressure"),
            "always deletes at every pass; disk_pressure only while the disk is over disk.high",
        )),
    }
}

pub(super) fn history(ctx: &mut Ctx, raw: &RawHistory) -> HistoryConfig {
    let mut out = HistoryConfig::default();
    out.enabled = raw.enabled.unwrap_or(out.enabled);
    if let Some(p) = &raw.path {
        out.path = ctx
            .check(p, "history.path", |t| absolute("history.path", t))
            .unwrap_or(out.path);
    }
    if let Some(g) = &raw.gap_policy {
        out.gap_policy = ctx
            .check(g, "history.gap_policy", gap_policy)
            .unwrap_or_default();
    }
    out
}

fn gap_policy(text: &str) -> Result<GapPolicy, Bad> {
    match text.trim() {
        "assume_used" => Ok(GapPolicy::AssumeUsed),
        "ignore" => Ok(GapPolicy::Ignore),
        _ => Err(Bad::new(
            format!("gap_policy {text:?} is not assume_used or ignore"),
            "assume_used counts known images as used when events were lost; ignore keeps their last use",
        )),
    }
}

fn absolute(field: &str, text: &str) -> Result<PathBuf, Bad> {
    let path = PathBuf::from(text.trim());
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(Bad::new(
            format!("{field} {text:?} is not an absolute path"),
            "write the full path, e.g. /var/lib/stagesweep/history.json",
        ))
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
    Some(DiskConfig {
        space: space.unwrap_or(Watermarks {
            high: DEFAULT_HIGH,
            low: DEFAULT_LOW,
        }),
        inodes,
        path,
        measure: measure.unwrap_or(Measure::Statvfs),
        check_every,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    fn problems(text: &str) -> Vec<String> {
        match parse_str(text, "c.yaml") {
            Ok(_) => panic!("expected problems for:\n{text}"),
            Err(e) => e.to_string().lines().map(str::to_owned).collect(),
        }
    }

    const POLICY: &str = "policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n";

    #[test]
    fn defaults_and_every_key() {
        let c = parse_str(POLICY, "c.yaml").expect("valid");
        assert_eq!(c.history, HistoryConfig::default());
        assert_eq!(c.disk, None);
        assert_eq!(c.policies[0].order, Order::Lru);
        assert_eq!(c.policies[0].when, When::Always);
        let text = format!(
            "{POLICY}    unused_for: 7d\n    order: oldest\n    when: disk_pressure\n\
             history:\n  enabled: false\n  path: /tmp/h.json\n  gap_policy: ignore\n\
             disk:\n  high: \"90%\"\n  low: 70\n  inodes_high: 95\n  inodes_low: \"90 %\"\n  path: /data\n  check_every: 1m\n"
        );
        let c = parse_str(&text, "c.yaml").unwrap_or_else(|e| panic!("{e}"));
        let p = &c.policies[0];
        assert_eq!(p.unused_for, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!((p.order, p.when), (Order::Oldest, When::DiskPressure));
        assert!(!p.is_plain_prune());
        assert_eq!(
            c.history,
            HistoryConfig {
                enabled: false,
                path: "/tmp/h.json".into(),
                gap_policy: GapPolicy::Ignore
            }
        );
        assert_eq!(
            c.disk,
            Some(DiskConfig {
                space: Watermarks { high: 90, low: 70 },
                inodes: Some(Watermarks { high: 95, low: 90 }),
                path: Some("/data".into()),
                measure: Measure::Statvfs,
                check_every: Some(Duration::from_secs(60)),
            })
        );
        let api = parse_str(
            "disk:\n  measure: api\n  max_images_bytes: 50GB\n",
            "c.yaml",
        )
        .expect("valid");
        let disk = api.disk.expect("a disk section");
        assert_eq!(
            disk.measure,
            Measure::Api {
                max_images_bytes: 50_000_000_000
            }
        );
        assert_eq!(
            disk.space,
            Watermarks { high: 85, low: 80 },
            "kubelet's defaults"
        );
    }

    #[test]
    fn bad_values_name_the_value_and_the_way_out() {
        let cases = [
            (
                format!("{POLICY}    unused_for: a week\n"),
                "c.yaml:5:17: policies[0].unused_for: unused_for \"a week\" is not a duration",
            ),
            (
                format!("{POLICY}    order: newest\n"),
                "c.yaml:5:12: policies[0].order: order \"newest\" is not lru or oldest",
            ),
            (
                format!("{POLICY}    when: sometimes\n"),
                "c.yaml:5:11: policies[0].when: when \"sometimes\" is not always or disk_pressure",
            ),
            (
                format!("{POLICY}    when: disk_pressure\n"),
                "c.yaml:5:11: policies[0].when: when: disk_pressure needs a disk: section",
            ),
            (
                "history:\n  path: state.json\n".to_owned(),
                "c.yaml:2:9: history.path: history.path \"state.json\" is not an absolute path",
            ),
            (
                "history:\n  gap_policy: panic\n".to_owned(),
                "c.yaml:2:15: history.gap_policy: gap_policy \"panic\" is not assume_used or ignore",
            ),
            (
                "disk:\n  high: 185\n".to_owned(),
                "c.yaml:2:9: disk.high: high 185 is not a percentage from 0 to 100",
            ),
            (
                "disk:\n  high: \"lots\"\n".to_owned(),
                "c.yaml:2:9: disk.high: high \"lots\" is not a percentage",
            ),
            (
                "disk:\n  high: 80\n  low: 80\n".to_owned(),
                "c.yaml:3:8: disk.low: disk.low 80% is not below disk.high 80%",
            ),
            (
                "disk:\n  inodes_high: 90\n".to_owned(),
                "c.yaml: disk.inodes_low: disk.inodes_high is set but disk.inodes_low is not",
            ),
            (
                "disk:\n  measure: api\n".to_owned(),
                "c.yaml:2:12: disk.measure: measure: api needs disk.max_images_bytes",
            ),
            (
                "disk:\n  measure: df\n".to_owned(),
                "c.yaml:2:12: disk.measure: measure \"df\" is not statvfs or api",
            ),
            (
                "disk:\n  max_images_bytes: 1GB\n".to_owned(),
                "c.yaml:2:21: disk.max_images_bytes: max_images_bytes is only used with measure: api",
            ),
            (
                "disk:\n  path: docker\n".to_owned(),
                "c.yaml:2:9: disk.path: disk.path \"docker\" is not an absolute path",
            ),
            (
                "disk:\n  check_every: 60\n".to_owned(),
                "c.yaml:2:16: disk.check_every: check_every \"60\" is not a duration",
            ),
        ];
        for (text, start) in cases {
            let found = problems(&text);
            assert_eq!(found.len(), 1, "{text}: {found:#?}");
            assert!(
                found[0].starts_with(start),
                "{text}\n{}\nwanted {start}",
                found[0]
            );
            assert!(found[0].ends_with(')'), "a hint: {}", found[0]);
        }
    }
}
