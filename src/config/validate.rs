//! Validation: raw schema → typed [`Config`], accumulating every problem before failing
//! (cargo-deny style). Each problem carries `file:line:column` of the offending value (or
//! the flag name for ad-hoc policies), the field path, a message naming the value and a
//! hint. Owns the top-level sections; policies are in `policy.rs`.

use std::path::PathBuf;
use std::time::Duration;

use super::ctx::Ctx;
use super::error::ConfigError;
use super::raw::{RawConfig, RawDocker, RawMetrics, RawProtect, S};
use super::schedule::Schedule;
use super::selectors::{globs, labels};
use super::space_group::SpaceGroup;
use super::types::{
    AgentConfig, Config, DEFAULT_METRIC_GROUPS, DockerConfig, MetricsConfig, Protect,
};
use super::values::{self, Bad};

/// Default agent schedule.
pub(super) const DEFAULT_SCHEDULE: &str = "@hourly";
/// Default lock file shared by `prune` and the agent.
pub(super) const DEFAULT_LOCK_FILE: &str = "/run/stagesweep/stagesweep.lock";
/// Default metrics listen address.
pub(super) const DEFAULT_LISTEN: &str = "127.0.0.1:9477";

/// Validate a whole raw configuration.
pub(super) fn config(raw: RawConfig, origin: &str) -> Result<Config, ConfigError> {
    let mut ctx = Ctx::file(origin);
    let agent = agent(&mut ctx, &raw);
    let docker = docker(&mut ctx, &raw.docker.unwrap_or_default());
    let protect = protect(&mut ctx, &raw.protect.unwrap_or_default());
    let history = super::history::history(&mut ctx, &raw.history.unwrap_or_default());
    let disk = super::disk::disk(&mut ctx, raw.disk.as_ref());
    let raw_policies = raw.policies.unwrap_or_default();
    if disk.is_none() {
        super::disk::require_disk(&mut ctx, &raw_policies);
    }
    let policies = super::policy::policies(&mut ctx, raw_policies);
    let build_cache = super::build_cache::rules(&mut ctx, raw.build_cache.unwrap_or_default());
    let metrics = metrics(&mut ctx, &raw.metrics.unwrap_or_default());
    let builds = super::builds::builds(&mut ctx, &raw.builds.unwrap_or_default(), &agent);
    ctx.finish(Config {
        docker,
        protect,
        policies,
        build_cache,
        agent,
        metrics,
        builds,
        history,
        disk,
    })
}

fn docker(ctx: &mut Ctx, raw: &RawDocker) -> DockerConfig {
    let mut out = DockerConfig::default();
    if let Some(host) = &raw.host {
        out.host = ctx.check(host, "docker.host", values::host);
    }
    if let Some(t) = &raw.timeout {
        let parsed = ctx.check(t, "docker.timeout", |s| values::whole_seconds("timeout", s));
        out.timeout = parsed.unwrap_or(out.timeout);
    }
    if let Some(c) = &raw.concurrency {
        match usize::try_from(c.value) {
            Ok(n @ 1..=64) => out.concurrency = n,
            _ => ctx.push(
                c.referenced,
                "docker.concurrency",
                Bad::new(
                    format!("concurrency {} is outside 1..=64", c.value),
                    "it is the number of deletions in flight at once; 4 suits most hosts",
                ),
            ),
        }
    }
    out
}

fn protect(ctx: &mut Ctx, raw: &RawProtect) -> Protect {
    Protect {
        references: globs(
            ctx,
            raw.references.as_deref().unwrap_or_default(),
            "protect.references",
        ),
        labels: labels(
            ctx,
            raw.labels.as_deref().unwrap_or_default(),
            "protect.labels",
        ),
    }
}

fn agent(ctx: &mut Ctx, raw: &RawConfig) -> AgentConfig {
    let default_schedule = Schedule::parse(DEFAULT_SCHEDULE).expect("@hourly is a valid schedule");
    let mut duration = |v: &Option<S<String>>, field: &str, default: Duration| {
        v.as_ref()
            .and_then(|s| ctx.check(s, field, |t| values::duration(field, t)))
            .unwrap_or(default)
    };
    let jitter = duration(&raw.jitter, "jitter", Duration::ZERO);
    let shutdown_timeout = duration(
        &raw.shutdown_timeout,
        "shutdown_timeout",
        Duration::from_secs(30),
    );
    let schedule = raw
        .schedule
        .as_ref()
        .and_then(|s| ctx.check(s, "schedule", |t| Schedule::parse(t).map_err(Bad::bare)))
        .unwrap_or(default_schedule);
    let timezone = raw
        .timezone
        .as_ref()
        .and_then(|s| ctx.check(s, "timezone", values::timezone))
        .unwrap_or(chrono_tz::UTC);
    let lock_file = raw
        .lock_file
        .as_ref()
        .and_then(|s| ctx.check(s, "lock_file", lock_file))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LOCK_FILE));
    AgentConfig {
        schedule,
        timezone,
        jitter,
        run_on_start: raw.run_on_start.unwrap_or(true),
        lock_file,
        shutdown_timeout,
    }
}

fn lock_file(text: &str) -> Result<PathBuf, Bad> {
    let path = PathBuf::from(text.trim());
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(Bad::new(
            format!("lock_file {text:?} is not an absolute path"),
            "prune and the agent must agree on one file; use e.g. /run/stagesweep/stagesweep.lock",
        ))
    }
}

fn metrics(ctx: &mut Ctx, raw: &RawMetrics) -> MetricsConfig {
    let default_listen = DEFAULT_LISTEN
        .parse()
        .expect("the default listen address is valid");
    MetricsConfig {
        enabled: raw.enabled.unwrap_or(true),
        listen: raw
            .listen
            .as_ref()
            .and_then(|s| ctx.check(s, "metrics.listen", values::listen))
            .unwrap_or(default_listen),
        group_by: raw.group_by.as_ref().map_or(Some(SpaceGroup::Policy), |s| {
            ctx.check(s, "metrics.group_by", metric_groups).flatten()
        }),
        groups: raw.groups.as_ref().map_or(DEFAULT_METRIC_GROUPS, |n| {
            if let Ok(n @ 1..=50) = usize::try_from(n.value) {
                n
            } else {
                ctx.push(
                    n.referenced,
                    "metrics.groups",
                    Bad::new(
                        format!("groups {} is outside 1..=50", n.value),
                        "it bounds the series of stagesweep_group_bytes: the largest groups get their own, the rest are summed into other; 10 suits most hosts",
                    ),
                );
                DEFAULT_METRIC_GROUPS
            }
        }),
    }
}

/// `metrics.group_by`: `off`, or a grouping of `du --by`.
fn metric_groups(text: &str) -> Result<Option<SpaceGroup>, Bad> {
    if text == "off" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e: String| {
        Bad::new(
            e,
            "use off, policy, repo, a label key such as project, or label:<key> (label:off for a label named off)",
        )
    })
}
