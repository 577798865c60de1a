//! The glue from the agent's traits to the real engine and schedule. Kept tiny on purpose.

use super::clock::TickerFactory;

/// Connects with `DockerEngine::connect`.
#[derive(Debug, Clone, Copy, Default)]
pub struct DockerConnector;

/// Tickers from `agent.schedule` read in `agent.timezone`.
#[must_use]
pub fn schedule_tickers() -> TickerFactory {
    todo!("wired once main has DockerEngine::connect and Schedule::next_after")
}
