//! Human summary of a validated configuration, for `stagesweep check-config`: one line per
//! policy, then protection, engine and agent lines. Pure formatting.

use bytesize::ByteSize;

use super::types::{Config, Dangling, GroupBy, Policy, Protect};
use super::values::format_duration;

/// The summary lines of a configuration.
pub(super) fn lines(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if config.policies.is_empty() {
        out.push("no policies: nothing will be deleted".to_owned());
    }
    out.extend(config.policies.iter().map(policy));
    if config.build_cache.is_empty() {
        out.push("no build_cache rules: build cache is left alone".to_owned());
    }
    out.extend(config.build_cache.iter().map(super::cache::summary));
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
    out.push(if config.metrics.enabled {
        format!("metrics: http://{}/metrics", config.metrics.listen)
    } else {
        "metrics: disabled".to_owned()
    });
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
            Dangling::Only => "dangling true (untagged only)",
            Dangling::Never => "dangling false (tagged only)",
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
    if p.is_plain_prune() {
        parts.push("deletes every match older than min_age".to_owned());
    }
    format!("{}: {}", p.name, parts.join(", "))
}

/// IEC units when the size is a whole multiple of its IEC unit (as when written in
/// GiB), SI units otherwise (as when written in GB).
pub(super) fn size(bytes: u64) -> String {
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
