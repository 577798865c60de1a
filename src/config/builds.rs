//! Validation of the `builds:` section: the build lock file (absolute, and never the pass
//! lock's file) and whether it is used, detection, and the retry interval and longest wait of
//! a deferred pass.

use std::path::PathBuf;
use std::time::Duration;

use super::ctx::Ctx;
use super::raw::RawBuilds;
use super::types::{AgentConfig, BuildsConfig};
use super::values::{self, Bad};

/// The shortest retry interval: each retry may re-read the whole inventory.
const MIN_RETRY: Duration = Duration::from_secs(1);

/// Validate `builds:`; `agent` supplies the pass lock, which the build lock must not be.
pub(super) fn builds(ctx: &mut Ctx, raw: &RawBuilds, agent: &AgentConfig) -> BuildsConfig {
    let mut out = BuildsConfig::default();
    if let Some(path) = &raw.lock_file {
        let parsed = ctx.check(path, "builds.lock_file", |t| lock_file(t, agent));
        out.lock_file = parsed.unwrap_or(out.lock_file);
    }
    if let Some(lock) = raw.lock {
        out.lock = lock;
    }
    if let Some(detect) = raw.detect {
        out.detect = detect;
    }
    if let Some(retry) = &raw.retry {
        let parsed = ctx.check(retry, "builds.retry", |t| {
            let d = values::duration("retry", t)?;
            if d < MIN_RETRY {
                return Err(Bad::new(
                    format!("retry {t:?} is shorter than 1s"),
                    "each retry may re-read the inventory; use 1s or more, e.g. 10s",
                ));
            }
            Ok(d)
        });
        out.retry = parsed.unwrap_or(out.retry);
    }
    if let Some(max) = &raw.max_defer {
        let parsed = ctx.check(max, "builds.max_defer", |t| {
            values::duration("max_defer", t)
        });
        out.max_defer = parsed.unwrap_or(out.max_defer);
    }
    out
}

fn lock_file(text: &str, agent: &AgentConfig) -> Result<PathBuf, Bad> {
    let path = PathBuf::from(text.trim());
    if !path.is_absolute() {
        return Err(Bad::new(
            format!("builds.lock_file {text:?} is not an absolute path"),
            "builds and stagesweep must agree on one file; use e.g. /run/stagesweep/builds.lock",
        ));
    }
    if path == agent.lock_file {
        return Err(Bad::new(
            format!("builds.lock_file {text:?} is the pass lock (lock_file)"),
            "a pass holds the pass lock while it takes the build lock, so one file would defer \
             every pass; use a separate file, e.g. /run/stagesweep/builds.lock",
        ));
    }
    Ok(path)
}
