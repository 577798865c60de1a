//! The command-line interface (clap derive). Doc comments are the help text.

// The doc comments here are read by people in a terminal, not by rustdoc.
#![allow(clippy::doc_markdown)]

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

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
                  error, 3 docker unreachable, 4 host lock busy or a build in progress (prune \
                  --no-wait, or longer than builds.max_defer), 5 environment error (lock file, \
                  I/O, listener). `hold` exits with its command's status.\n\
                  Configuration reference: man stagesweep.yaml (stagesweep manpage --section 5), \
                  docs/configuration.md, config/default.yaml."
)]
pub struct Cli {
    /// Log format on stderr (filter with RUST_LOG, e.g. RUST_LOG=stagesweep=debug)
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Fewer log lines: -q warnings and errors only, -qq errors only (overrides RUST_LOG)
    #[arg(long, short = 'q', global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,

    /// More log lines: -v every decision (debug), -vv trace, -vvv also the libraries' debug
    /// (overrides RUST_LOG)
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

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
    /// Run a command (a build) while holding the build lock shared: no deletion runs meanwhile
    #[command(override_usage = "stagesweep hold [OPTIONS] -- <CMD> [ARGS]...")]
    Hold(HoldArgs),
    /// Ask a running agent whether it is alive: exit 0 when its health endpoint answers 2xx,
    /// 1 otherwise (for a container HEALTHCHECK; the image has no curl)
    Healthcheck(HealthcheckArgs),
    /// Print a shell completion script to stdout
    Completions(CompletionsArgs),
    /// Show where the space goes, grouped by policy, repository or label: images and build
    /// cache, counted once, and how much a pass would reclaim now; changes nothing
    Du(DuArgs),
    /// Print a manual page (roff) to stdout: stagesweep(1), or with --section 5
    /// stagesweep.yaml(5), the configuration file
    Manpage(ManpageArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ManpageArgs {
    /// Which page
    #[arg(long, value_enum, default_value_t = ManSection::Commands)]
    pub section: ManSection,
}

/// The manual pages `stagesweep manpage` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ManSection {
    /// stagesweep(1): the commands and their flags
    #[value(name = "1")]
    Commands,
    /// stagesweep.yaml(5): the configuration file, every key (made from docs/configuration.md)
    #[value(name = "5")]
    Config,
}

#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// URL to GET (http:// only) [default: /livez on the agent's metrics.listen address
    /// from the configuration, with 0.0.0.0 and [::] read as loopback]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Give up after this long (e.g. 3s, 500ms)
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
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
    /// Label predicate the image must satisfy: key, key=value or key!=value, no spaces
    /// around = or != (repeatable; all must hold) [default: stage=builder, unless a label
    /// comes from --filter]
    #[arg(long = "label", value_name = "PREDICATE")]
    pub labels: Vec<String>,
    /// A docker image prune filter: label=KEY[=VALUE] and label!=KEY=VALUE (as --label),
    /// until=DURATION (as --min-age: docker deletes only images created more than DURATION
    /// ago), dangling=true|false (images without / with a reference). Other filters are
    /// refused (repeatable)
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
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
    /// Exit at once (code 4) when another pass holds the host lock or a build is in
    /// progress, instead of waiting
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
    /// List only these decisions (comma-separated or repeated) [default: all]; the summary
    /// line still counts every image
    #[arg(long, value_enum, value_delimiter = ',', value_name = "ACTION")]
    pub only: Vec<Only>,
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

/// `stagesweep hold [--lock-file PATH] [--timeout D] -- CMD ARGS...`
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "The lock is released when CMD exits, or by the kernel if anything dies. \
                        SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are forwarded to \
                        CMD (SIGINT and SIGQUIT only when not in the foreground of a terminal, \
                        which sends them to CMD itself).\n\
                        Exit status: CMD's, or 128+N when signal N ended it; 4 when --timeout \
                        ran out, 5 when the lock file cannot be used, 126 when CMD cannot be \
                        run, 127 when it is not found.\n\
                        Without stagesweep: flock -s /run/stagesweep/builds.lock CMD ARGS..."
)]
pub struct HoldArgs {
    /// Build lock file [default: builds.lock_file from the config,
    /// /run/stagesweep/builds.lock]
    #[arg(long, value_name = "PATH")]
    pub lock_file: Option<PathBuf>,
    /// Give up (exit 4) when a deletion batch holds the lock longer than this (e.g. 30s, 5m)
    /// [default: wait until it is done]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
    /// The command to run and its arguments, best after `--`
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

/// `stagesweep du [--by GROUP] [--output text|json] [--top N]`
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Columns: COUNT images in the group (records for the build cache); \
                        SIZE its bytes, counted once: each layer for the image that added it, \
                        layers that images of different groups or without a common parent \
                        share on the (shared) line, BuildKit's records no image shares on the \
                        (build cache) line; the lines add up to what the engine stores \
                        (LayersSize plus those records). SIZE splits into RECLAIMABLE (a pass \
                        now would delete it), PRESSURE (only a when: disk_pressure policy \
                        would, over high), PROTECTED (in use, the parent of an image in use, \
                        protected by a reference or label) and KEPT (everything else: young, \
                        retained, no policy, shared). OLDEST USE: the least recent last use \
                        in the group, from the history (read only).\n\
                        The plan is made as `plan` makes it, without inspecting images for \
                        their tag time: a tagged image an old Created makes reclaimable may be \
                        kept by a pass that learns it was tagged recently."
)]
pub struct DuArgs {
    /// Group by: policy, repo (the repository of the first reference), a label key (e.g.
    /// project), or label:<key> for a label named policy or repo
    #[arg(long, value_name = "GROUP", default_value = "policy", value_parser = clap::value_parser!(crate::config::SpaceGroup))]
    pub by: crate::config::SpaceGroup,
    /// Output format on stdout
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Show the N largest groups and sum the others into one line named other [default: all]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(usize))]
    pub top: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A table and a summary line
    Text,
    /// One JSON document (its fields: docs/output.md)
    Json,
}

/// A kind of decision, for `plan --only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Only {
    /// Images the plan deletes
    Delete,
    /// Images a policy matched but the plan keeps (in use, protected, young, retained)
    Keep,
    /// Images no policy matches
    Untouched,
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
