//! `stagesweep agent`: load the configuration and hand over to [`crate::agent`].

use super::cli::ConfigArg;
use super::{CmdError, config_path, load_config};

/// Run the agent until SIGTERM/SIGINT.
pub async fn run(args: &ConfigArg) -> Result<i32, CmdError> {
    let config = load_config(args)?;
    // A context that names no usable engine is a usage error at start-up, not an outage to
    // retry; after a reload it fails the passes (and /healthz says why).
    super::endpoint(&config)?;
    let (path, _) = config_path(args);
    crate::agent::main(path, config).await?;
    Ok(crate::exit::OK)
}
