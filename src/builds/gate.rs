//! The gate in front of a pass's deletions: take the build lock exclusively (try-lock) and
//! look for classic build steps; when a build is in the way, defer, check again every
//! `builds.retry`, and give up after `builds.max_defer`.
//!
//! The pass re-reads the inventory and re-plans after every wait (the world changed); the
//! gate only says "go" (with the lock held while deleting) or "not now". Uses `tokio::time`
//! only, so tests drive it with paused time.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::detect::{self, Build};
use crate::config::BuildsConfig;
use crate::inventory::Container;
use crate::locks::{BuildLock, BuildLockError, Probe};
use crate::units::{fmt_age, fmt_duration};

/// Whether and how a pass's deletions wait for builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordination {
    /// The `builds:` section.
    pub config: BuildsConfig,
    /// Wait for builds (up to `max_defer`); `false` (`prune --no-wait`): give up at once.
    pub wait: bool,
}

/// How the gate ended for one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateOutcome {
    /// No build was in the way (at once or after waiting): the deletions ran.
    Clear,
    /// A build was in the way and the pass was told not to wait: nothing was deleted.
    NoWait,
    /// Builds kept the deletions back for `max_defer`: the pass skipped them.
    Expired,
    /// Stop requested while waiting: nothing was deleted.
    Stopped,
}

/// What the gate did in one pass (the report's `builds`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildWait {
    pub outcome: GateOutcome,
    /// Checks that found a build in the way.
    pub deferrals: u32,
    /// Time between the first deferral and the gate's decision.
    pub waited_secs: f64,
    /// What held the deletions back at the last deferral (empty when nothing did).
    pub builds: Vec<Build>,
}

/// The answer of one check.
#[derive(Debug)]
pub enum Check {
    /// Delete now; keep the lock (when there is one) until the deletions are done.
    Go(Option<BuildLock>),
    /// A build is in the way: [`Gate::wait`], then re-plan and check again.
    Defer,
}

/// The gate of one pass.
#[derive(Debug)]
pub struct Gate {
    coordination: Coordination,
    first_deferral: Option<Instant>,
    deferrals: u32,
    last: Vec<Build>,
    /// A build step was seen at the last check: the next clear check defers once more,
    /// because classic builds run no container between steps.
    settling: bool,
    deletions: usize,
}

impl Gate {
    #[must_use]
    pub fn new(coordination: &Coordination) -> Self {
        Self {
            coordination: coordination.clone(),
            first_deferral: None,
            deferrals: 0,
            last: Vec::new(),
            settling: false,
            deletions: 0,
        }
    }

    /// Check before `deletions` planned deletions, with the containers just listed.
    pub fn check(
        &mut self,
        containers: &[Container],
        deletions: usize,
    ) -> Result<Check, BuildLockError> {
        self.deletions = deletions;
        let config = &self.coordination.config;
        // A lock that cannot be used stops the pass (fail closed): a lock directory nobody
        // can create here may still be where the builds of this host look (a sidecar's
        // private /run/stagesweep). Only `builds.lock: false` goes without one.
        let lock = if config.lock {
            match BuildLock::try_exclusive(&config.lock_file)? {
                Probe::Free(lock) => Some(lock),
                Probe::Held => {
                    let held = Build::LockHeld {
                        path: config.lock_file.clone(),
                    };
                    return Ok(self.defer(vec![held]));
                }
            }
        } else {
            None
        };
        if config.detect {
            let steps = detect::classic_steps(containers);
            if !steps.is_empty() {
                self.settling = true;
                return Ok(self.defer(steps));
            }
            if self.settling {
                self.settling = false;
                debug!(
                    "no classic build step now; checking once more, one retry later, before deleting"
                );
                let last = std::mem::take(&mut self.last);
                return Ok(self.defer(last));
            }
        }
        if self.deferrals > 0 {
            info!(waited = %fmt_age(self.waited().as_secs()), "no build in progress any more; deleting");
        }
        Ok(Check::Go(lock))
    }

    fn defer(&mut self, builds: Vec<Build>) -> Check {
        let what = detect::describe(&builds);
        if self.first_deferral.is_none() {
            self.first_deferral = Some(Instant::now());
            let config = &self.coordination.config;
            info!(
                builds = %what,
                deletions = self.deletions,
                retry = %fmt_duration(config.retry.as_secs()),
                max_defer = %fmt_duration(config.max_defer.as_secs()),
                "a build is in progress; deferring deletions"
            );
        } else {
            debug!(builds = %what, "a build is still in progress");
        }
        self.deferrals += 1;
        self.last = builds;
        Check::Defer
    }

    /// After [`Check::Defer`]: wait for the next check. `None`: re-plan and check again;
    /// `Some(outcome)`: give up with nothing deleted.
    pub async fn wait(
        &mut self,
        stop: &CancellationToken,
    ) -> Result<Option<GateOutcome>, BuildLockError> {
        if !self.coordination.wait {
            return Ok(Some(GateOutcome::NoWait));
        }
        let config = &self.coordination.config;
        let first = *self.first_deferral.get_or_insert_with(Instant::now);
        let deadline = first + config.max_defer;
        let lock_held = config.lock && matches!(self.last.first(), Some(Build::LockHeld { .. }));
        loop {
            let now = Instant::now();
            if now >= deadline {
                warn!(
                    builds = %detect::describe(&self.last),
                    deletions = self.deletions,
                    max_defer = %fmt_duration(config.max_defer.as_secs()),
                    "builds kept the deletions back for max_defer; skipping them in this pass"
                );
                return Ok(Some(GateOutcome::Expired));
            }
            tokio::select! {
                () = stop.cancelled() => return Ok(Some(GateOutcome::Stopped)),
                () = tokio::time::sleep(config.retry.min(deadline - now)) => {}
            }
            // While the build lock stays held, nothing else can change the answer: probe it
            // alone, without reading the inventory, until it is free or time is up.
            if !lock_held || !BuildLock::is_held(&config.lock_file)? {
                return Ok(None);
            }
        }
    }

    /// What the gate did, ending with `outcome`.
    #[must_use]
    pub fn finish(&self, outcome: GateOutcome) -> BuildWait {
        BuildWait {
            outcome,
            deferrals: self.deferrals,
            waited_secs: self.waited().as_secs_f64(),
            builds: self.last.clone(),
        }
    }

    fn waited(&self) -> Duration {
        self.first_deferral
            .map_or(Duration::ZERO, |first| first.elapsed())
    }
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
