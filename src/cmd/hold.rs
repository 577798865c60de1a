//! `stagesweep hold -- CMD`: resolve the build lock and hand over to [`crate::builds::hold`].

use super::cli::{ConfigArg, HoldArgs};
use super::{CmdError, load_config};

/// Run CMD under the build lock; returns CMD's exit status.
pub async fn run(config_arg: &ConfigArg, args: &HoldArgs) -> Result<i32, CmdError> {
    let lock_file = if let Some(path) = &args.lock_file {
        path.clone()
    } else {
        let builds = load_config(config_arg)?.builds;
        if !builds.lock {
            return Err(CmdError::Usage(
                "the configuration says builds.lock: false (nothing builds on this host), so no \
                 deletion waits for a build lock; remove it, or pass --lock-file"
                    .to_owned(),
            ));
        }
        builds.lock_file
    };
    Ok(crate::builds::hold::hold(&lock_file, args.timeout, &args.command).await?)
}
