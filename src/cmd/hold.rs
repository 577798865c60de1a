//! `stagesweep hold -- CMD`: resolve the build lock and hand over to [`crate::builds::hold`].

use super::cli::{ConfigArg, HoldArgs};
use super::{CmdError, load_config};

/// Run CMD under the build lock; returns CMD's exit status.
pub async fn run(config_arg: &ConfigArg, args: &HoldArgs) -> Result<i32, CmdError> {
    let lock_file = match &args.lock_file {
        Some(path) => path.clone(),
        None => load_config(config_arg)?.builds.lock_file,
    };
    Ok(crate::builds::hold::hold(&lock_file, args.timeout, &args.command).await?)
}
