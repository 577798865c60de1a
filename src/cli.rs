//! The command-line interface (clap derive). Doc comments are the help text.

// The doc comments here are read by people in a terminal, not by rustdoc.
#![allow(clippy::doc_markdown)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Garbage-collect the images and build cache Docker builds leave behind, by policy.
///
/// stagesweep selects images by labels (such as stage=builder), references and age,
/// and deletes them according to a YAML retention policy — never an image in use,
/// protected, younger than its grace period, or the parent of a kept image. BuildKit's
/// build cache goes by build_cache: rules (type, last use, storage) — never a record a
/// running build holds.
#[derive(Debug, Parser)]
#[command(
    name = "stagesweep",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = "Exit codes: 0 nothing failed, 1 some deletions failed, 2 configuration or usage \
                  error, 3 docker unreachable, 4 host lock busy (prune --no-wait), 5 environment \
                  error (lock file, I/O, listener).\n\
                  Configuration reference: config/default.yaml and the README."
)]
pub struct Cli {
    /// Log format on stderr (filter with RUST_LOG, e.g. RUST_LOG=stagesweep=debug)
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub config: ConfigArg,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Delete the images and build cache the policy selects, once, and report what happened
    Prune(PruneArgs),
    /// Show every decision (delete, keep, untouched) and why, without changing anything
    Plan(PlanArgs),
    /// Delete exactly what a saved plan lists (plan --output json > plan.json), after
    /// re-checking every image on the engine
    Apply(ApplyArgs),
    /// Validate the configuration and summarise its policies and build cache rules; when the
    /// engine answers, say what the host needs
    CheckConfig,
    /// Run passes on the configured schedule until stopped (systemd service, sidecar)
    Agent,
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// Configuration file [default: /etc/stagesweep/config.yaml; when it does not
    /// exist, a built-in policy deleting `stage=builder` images older than 1h and build
    /// cache unused for 7 days]
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "STAGESWEEP_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,
}

/// Flags that replace the configured policies with one ad-hoc policy named `cli` (and skip
/// the `build_cache:` rules: a one-off prune touches only the images it names).
#[derive(Debug, Clone, Default, Args)]
#[command(
    next_help_heading = "Ad-hoc policy (replaces the configured policies; skips build_cache rules)"
)]
pub struct AdhocArgs {
    /// Label predicate the image must satisfy: key, key=value or key!=value
    /// (repeatable; all must hold) [default: stage=builder]
    #[arg(long = "label", value_name = "PREDICATE")]
    pub labels: Vec<String>,
    /// Keep images younger than this (e.g. 30m, 1h, 7d) [default: 1h]
    #[arg(long, value_name = "DURATION")]
    pub min_age: Option<String>,
    /// Delete images older than this (e.g. 24h, 2w)
    #[arg(long, value_name = "DURATION")]
    pub max_age: Option<String>,
    /// Keep the N newest images per group
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Group for --keep-last: none, repository or label:<key> [default: none]
    #[arg(long, value_name = "GROUP")]
    pub group_by: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Plan and print, but delete nothing
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Output format on stdout
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Exit at once (code 4) when another pass holds the host lock, instead of waiting
    #[arg(long)]
    pub no_wait: bool,
    /// Lock file shared with the agent [default: lock_file from the config,
    /// /run/stagesweep/stagesweep.lock]
    #[arg(long, value_name = "PATH")]
    pub lock_file: Option<PathBuf>,
    #[command(flatten)]
    pub adhoc: AdhocArgs,
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Output format on stdout
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    pub output: Output,
    #[command(flatten)]
    pub adhoc: AdhocArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// The plan file: the JSON document of `stagesweep plan --output json`
    #[arg(value_name = "PLAN.json")]
    pub file: PathBuf,
    /// Refuse a plan older than this (on the engine's clock)
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub max_plan_age: humantime::Duration,
    /// Output format on stdout
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Exit at once (code 4) when another pass holds the host lock, instead of waiting
    #[arg(long)]
    pub no_wait: bool,
    /// Lock file shared with the agent [default: lock_file from the config,
    /// /run/stagesweep/stagesweep.lock]
    #[arg(long, value_name = "PATH")]
    pub lock_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A table and a summary line
    Text,
    /// One JSON document (see the README for its fields)
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines
    Text,
    /// One JSON object per event
    Json,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
