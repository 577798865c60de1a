//! Human summary of a validated configuration, for `stagesweep check-config`: one line per
//! policy (and a note under a policy without grace period), then protection, engine and
//! agent lines. Pure formatting.

use bytesize::ByteSize;

use super::build_cache::{CacheRule, SharedRecords};
use super::disk::{DiskConfig, Measure};
use super::history::{GapPolicy, HistoryConfig};
use super::policy_keys::{Dangling, GroupBy, Order, Parents, When};
use super::types::{Config, Policy, Protect};
use super::values::format_duration;
use crate::inventory::CacheType;

/// The summary lines of a configuration.
pub(super) fn lines(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if config.policies.is_empty() {
        out.push("no policies: nothing will be deleted".to_owned());
    }
    for p in &config.policies {
        out.push(policy(p));
        if p.min_age.is_zero() {
            out.push(format!(
                "note: policy {:?} has min_age 0s: it relies on build coordination alone; \
                 no grace period keeps an image that a running build still needs",
                p.name
            ));
        }
    }
    if config.build_cache.is_empty() {
        out.push("no build_cache rules: build cache is left alone".to_owned());
    }
    out.extend(config.build_cache.iter().map(cache_rule));
    out.push(protect(&config.protect));
    let docker = &config.docker;
    out.push(format!(
        "docker: {}, timeout {}, concurrency {}",
        docker
            .host
            .as_deref()
            .unwrap_or("$DOCKER_HOST or the local socket"),
        format_duration(docker.timeout),
        docker.concurrency
    ));
    let agent = &config.agent;
    out.push(format!(
        "agent: schedule {} ({}), jitter {}, run_on_start {}, lock_file {}",
        agent.schedule,
        agent.timezone,
        format_duration(agent.jitter),
        agent.run_on_start,
        agent.lock_file.display()
    ));
    out.push(history(&config.history));
    if let Some(d) = &config.disk {
        out.push(disk(d));
    }
    let m = &config.metrics;
    out.push(if m.enabled {
        let groups = m.group_by.as_ref().map_or_else(
            || "no group gauges (group_by: off)".to_owned(),
            |by| {
                format!(
                    "stagesweep_group_bytes by {by}, the {} largest groups, the rest as other",
                    m.groups
                )
            },
        );
        format!("metrics: http://{}/metrics, {groups}", m.listen)
    } else {
        "metrics: disabled".to_owned()
    });
    let builds = &config.builds;
    let lock = if builds.lock {
        format!("lock_file {}", builds.lock_file.display())
    } else {
        "no build lock (lock: false: nothing builds on this host)".to_owned()
    };
    out.push(format!(
        "builds: {lock}, detect {}, retry {}, max_defer {}",
        builds.detect,
        format_duration(builds.retry),
        format_duration(builds.max_defer)
    ));
    out
}

/// `builder-stages: labels stage=builder, dangling any, min_age 1h, max_age 24h,
/// keep_last 2 per repository`.
fn policy(p: &Policy) -> String {
    let m = &p.matcher;
    let mut parts = Vec::new();
    if m.all_images {
        parts.push("all images".to_owned());
    }
    if !m.labels.is_empty() {
        parts.push(format!("labels {}", join(&m.labels, " and ")));
    }
    if !m.references.is_empty() {
        parts.push(format!("references {}", join(&m.references, " or ")));
    }
    parts.push(
        match m.dangling {
            Dangling::Any => "dangling any",
            Dangling::Only => "dangling true (no tag or digest)",
            Dangling::Never => "dangling false (with a tag or digest)",
        }
        .to_owned(),
    );
    parts.push(format!("min_age {}", format_duration(p.min_age)));
    if let Some(max) = p.max_age {
        parts.push(format!("max_age {}", format_duration(max)));
    }
    let per = match &p.group_by {
        GroupBy::None => String::new(),
        g => format!(" per {g}"),
    };
    if let Some(n) = p.keep_last {
        parts.push(format!("keep_last {n}{per}"));
    }
    if let Some(bytes) = p.max_total_size {
        parts.push(format!("max_total_size {}{per}", size(bytes)));
    }
    if let Some(d) = p.unused_for {
        parts.push(format!("unused_for {}", format_duration(d)));
    }
    match p.order {
        Order::Lru => {}
        Order::Oldest => parts.push("order oldest".to_owned()),
        Order::Lfu => parts.push("order lfu (fewest recent uses first)".to_owned()),
        Order::Size => parts.push("order size (largest first by idle day)".to_owned()),
    }
    if p.when == When::DiskPressure {
        parts.push("when disk_pressure".to_owned());
    }
    parts.push(
        match p.parents {
            Parents::Delete => "parents delete",
            Parents::Keep => "parents keep",
        }
        .to_owned(),
    );
    if p.is_plain_prune() {
        parts.push("deletes every match older than min_age".to_owned());
    }
    format!("{}: {}", p.name, parts.join(", "))
}

/// IEC units when the size is a whole multiple of its IEC unit (as when written in
/// GiB), SI units otherwise (as when written in GB).
fn size(bytes: u64) -> String {
    let display = ByteSize(bytes).display();
    let unit = [1u64 << 40, 1 << 30, 1 << 20, 1 << 10]
        .into_iter()
        .find(|u| bytes >= *u)
        .unwrap_or(1);
    if bytes.is_multiple_of(unit) {
        display.iec().to_string()
    } else {
        display.si().to_string()
    }
}

fn history(h: &HistoryConfig) -> String {
    if !h.enabled {
        return "history: disabled".to_owned();
    }
    let gap = match h.gap_policy {
        GapPolicy::AssumeUsed => "assume_used",
        GapPolicy::Ignore => "ignore",
    };
    let half_life = if h.half_life == super::DEFAULT_HALF_LIFE {
        String::new()
    } else {
        format!(", half_life {}", format_duration(h.half_life))
    };
    format!(
        "history: {}, gap_policy {gap}, catch_up {}{half_life}",
        h.path.display(),
        format_duration(h.catch_up)
    )
}

fn disk(d: &DiskConfig) -> String {
    let mut parts = vec![format!("high {}%, low {}%", d.space.high, d.space.low)];
    if let Some(i) = d.inodes {
        parts.push(format!("inodes high {}%, low {}%", i.high, i.low));
    }
    parts.push(match (d.measure, &d.path) {
        (Measure::Api { max_images_bytes }, _) => {
            format!(
                "of max_images_bytes {} (image bytes from the api)",
                size(max_images_bytes)
            )
        }
        (Measure::Statvfs, Some(p)) => format!("statvfs on {} (disk.path)", p.display()),
        (Measure::Statvfs, None) => format!(
            "statvfs on the engine's image store: its data root, or containerd's root {} \
             on the containerd image store",
            d.containerd_root
                .as_deref()
                .unwrap_or(std::path::Path::new(super::disk::DEFAULT_CONTAINERD_ROOT))
                .display()
        ),
    });
    if let Some(every) = d.check_every {
        parts.push(format!("checked every {}", format_duration(every)));
        let f = d.forecast;
        parts.push(format!(
            "fill rate over {}{}",
            format_duration(f.window),
            if f.preempt {
                ", a pass early when high is due before the next check"
            } else {
                ""
            }
        ));
    }
    format!("disk: {}", parts.join(", "))
}

fn protect(p: &Protect) -> String {
    if p.references.is_empty() && p.labels.is_empty() {
        return "protect: no references or labels".to_owned();
    }
    let mut parts = Vec::new();
    if !p.references.is_empty() {
        parts.push(format!("references {}", join(&p.references, " or ")));
    }
    if !p.labels.is_empty() {
        parts.push(format!("labels {}", join(&p.labels, " or ")));
    }
    format!("protect: {}", parts.join("; "))
}

fn join<T: std::fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// `stale-cache: build cache types regular, source.local; shared excluded; unused_for 7d`.
fn cache_rule(rule: &CacheRule) -> String {
    let types: Vec<&str> = rule.types.iter().map(CacheType::as_str).collect();
    let mut parts = vec![format!("build cache types {}", types.join(", "))];
    parts.push(
        match rule.shared {
            SharedRecords::Exclude => "shared excluded",
            SharedRecords::Include => "shared included",
        }
        .to_owned(),
    );
    if let Some(d) = rule.unused_for {
        parts.push(format!("unused_for {}", format_duration(d)));
    }
    if let Some(bytes) = rule.keep_storage {
        parts.push(format!("keep_storage {}", size(bytes)));
    }
    parts.push("in-use records never".to_owned());
    format!("{}: {}", rule.name, parts.join(", "))
}
