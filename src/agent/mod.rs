//! The long-running agent: passes on a schedule, signals, metrics and health.

/// Placeholder until the agent branch lands.
#[allow(clippy::unused_async)]
pub async fn main(_path: std::path::PathBuf, _config: crate::config::Config) -> anyhow::Result<()> {
    anyhow::bail!("the agent is not built yet")
}
