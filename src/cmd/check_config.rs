//! `stagesweep check-config`: validate and summarise.

use super::{CmdError, load_config};
use crate::cli::ConfigArg;
use crate::config;

/// Print `ok` and one line per policy, or fail with every problem.
pub fn run(args: &ConfigArg) -> Result<(), CmdError> {
    let cfg = load_config(args)?;
    println!("ok");
    for line in config::summary_lines(&cfg) {
        println!("{line}");
    }
    Ok(())
}
