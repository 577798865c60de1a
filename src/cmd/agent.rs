//! `stagesweep agent`: load the configuration and hand over to [`crate::agent`].

use super::{CmdError, config_path, load_config};
use crate::cli::ConfigArg;

/// Run the agent until SIGTERM/SIGINT.
pub async fn run(args: &ConfigArg) -> Result<i32, CmdError> {
    let config = load_config(args)?;
    let (path, _) = config_path(args);
    crate::agent::main(path, config).await?;
    Ok(crate::exit::OK)
}
