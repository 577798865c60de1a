//! Configuration reload (SIGHUP): re-read the same file; a valid one applies from the next
//! pass, an invalid one is logged (every problem, with `file:line:column`) and the old one kept.
//!
//! [`Reloader::reload`] is a plain method, so tests call it without a signal.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

use super::notify;
use super::telemetry::Telemetry;
use crate::config::{Config, ConfigError};

/// Reads a configuration file (the real one is `config::load_file`).
pub type LoadFn = Box<dyn Fn(&Path) -> Result<Config, ConfigError> + Send + Sync>;

/// Owns the current configuration and hands new ones to the loop.
pub struct Reloader {
    path: PathBuf,
    load: LoadFn,
    tx: watch::Sender<Arc<Config>>,
    telemetry: Arc<Telemetry>,
}

impl Reloader {
    /// A reloader for `path` starting from `initial`, and the receiver the loop reads.
    pub fn new(
        path: PathBuf,
        initial: Config,
        load: LoadFn,
        telemetry: Arc<Telemetry>,
    ) -> (Self, watch::Receiver<Arc<Config>>) {
        let (tx, rx) = watch::channel(Arc::new(initial));
        let reloader = Self {
            path,
            load,
            tx,
            telemetry,
        };
        (reloader, rx)
    }

    /// Re-read the file. On success the new configuration applies from the next pass; on
    /// failure the problems are logged and the old configuration stays.
    pub fn reload(&self) -> Result<(), ConfigError> {
        notify::reloading();
        let path = self.path.display().to_string();
        let result = (self.load)(&self.path);
        match &result {
            Ok(new) => {
                let old = self.tx.borrow().metrics.clone();
                if old != new.metrics {
                    tracing::warn!(
                        path,
                        "metrics: changed; the listener keeps its old settings until a restart"
                    );
                }
                self.tx.send_replace(Arc::new(new.clone()));
                self.telemetry.metrics.config_reload(true);
                tracing::info!(
                    path,
                    "configuration reloaded; it applies from the next pass"
                );
            }
            Err(e) => {
                for problem in e.to_string().lines() {
                    tracing::error!(path, "{problem}");
                }
                self.telemetry.metrics.config_reload(false);
                tracing::error!(
                    path,
                    problems = e.problems.len(),
                    "configuration reload failed; keeping the previous configuration"
                );
            }
        }
        notify::ready(&self.telemetry.status_line());
        result.map(|_| ())
    }

    /// The configuration in force.
    #[must_use]
    pub fn current(&self) -> Arc<Config> {
        Arc::clone(&self.tx.borrow())
    }
}
