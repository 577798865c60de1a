//! The glue from the agent's traits to the real engine and schedule. Kept tiny on purpose.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::backend::Connector;
use super::ticks::{Ticker, TickerFactory};
use crate::config::schedule::Schedule;
use crate::config::{Config, DockerConfig};
use crate::engine::EngineError;
use crate::engine::docker::{self, DockerEngine};

/// Connects with [`docker::connect`] (`docker.host`, else `$DOCKER_HOST`, else the socket).
#[derive(Debug, Clone, Copy, Default)]
pub struct DockerConnector;

impl Connector for DockerConnector {
    type Engine = DockerEngine;

    async fn connect(&self, cfg: &DockerConfig) -> Result<DockerEngine, EngineError> {
        docker::connect(cfg).await
    }
}

/// `agent.schedule` read in `agent.timezone`.
struct ScheduleTicker {
    schedule: Schedule,
    tz: chrono_tz::Tz,
}

impl Ticker for ScheduleTicker {
    fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.next_after(after, self.tz)
    }
}

/// Tickers from `agent.schedule` read in `agent.timezone`.
#[must_use]
pub fn schedule_tickers() -> TickerFactory {
    Arc::new(|config: &Config| {
        Arc::new(ScheduleTicker {
            schedule: config.agent.schedule.clone(),
            tz: config.agent.timezone,
        }) as Arc<dyn Ticker>
    })
}
