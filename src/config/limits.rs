//! Input budgets for the configuration file: a real configuration is a few KiB, so anything
//! far larger, deeper or alias-heavier is refused as a configuration error (exit 2) before it
//! can cost time or memory (billion-laughs alias bombs, deep nesting, huge scalars). The
//! parser (serde-saphyr) enforces the budget while it reads; the size cap comes first.

use serde_saphyr::options::AliasLimits;
use serde_saphyr::{Budget, Options};

/// Largest configuration accepted, in bytes (1 MiB).
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// The parser's budget: generous for any real configuration, small enough that the worst
/// input within it parses in milliseconds.
fn budget() -> Budget {
    let mut b = Budget::default();
    b.max_reader_input_bytes = Some(MAX_CONFIG_BYTES);
    b.max_events = 200_000;
    b.max_aliases = 1_000;
    b.max_anchors = 1_000;
    b.max_recorded_anchor_events = 100_000;
    b.max_recorded_anchor_bytes = MAX_CONFIG_BYTES;
    b.max_depth = 32;
    b.max_inclusion_depth = 0;
    b.max_documents = 2;
    b.max_nodes = 100_000;
    b.max_total_scalar_bytes = MAX_CONFIG_BYTES;
    b.max_merge_keys = 100;
    b
}

/// Parser options for configuration files: the budget, alias replay limits, no snippets
/// (messages carry `file:line:column` instead).
pub(super) fn options() -> Options {
    let mut aliases = AliasLimits::default();
    aliases.max_total_replayed_events = 100_000;
    aliases.max_replay_stack_depth = 16;
    aliases.max_alias_expansions_per_anchor = 1_000;
    let mut options = Options::default();
    options.budget = Some(budget());
    options.alias_limits = aliases;
    options.with_snippet = false;
    options
}

/// The hint for a refused input.
pub(super) const HINT: &str =
    "a configuration is a few KiB of plain YAML: at most 1 MiB, 32 levels deep, 1000 aliases";
