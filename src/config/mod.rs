//! Configuration: YAML text → raw serde structs → validated, typed [`Config`].
//!
//! Owns the schema (the contract in docs/configuration.md), every validation rule and the
//! embedded default. Durations, sizes, globs, label predicates and the schedule are
//! parsed here, once, at load. Must not talk to Docker or read the clock.

mod build_cache;
mod builds;
mod ctx;
mod describe;
mod disk;
mod error;
mod filter;
mod forecast;
mod history;
mod limits;
mod load;
mod policy;
mod policy_keys;
mod predicate;
mod raw;
pub mod schedule;
mod selectors;
mod space_group;
mod types;
mod validate;
mod values;

pub use build_cache::{CacheRule, SharedRecords, default_types as default_cache_types};
pub use disk::{DEFAULT_CONTAINERD_ROOT, DiskConfig, Measure, Watermarks};
pub use error::{ConfigError, Problem};
pub use forecast::{DEFAULT_FORECAST_WINDOW, ForecastConfig};
pub use history::{DEFAULT_HALF_LIFE, DEFAULT_HISTORY_PATH, GapPolicy, HistoryConfig};
pub use limits::MAX_CONFIG_BYTES;
pub use load::{
    AdhocPolicy, DEFAULT_YAML, adhoc_policy, embedded_default, load_default_file, load_file,
    parse_str, summary_lines,
};
pub use policy_keys::{Dangling, GroupBy, Order, Parents, When};
pub use predicate::{InvalidPredicate, LabelPredicate};
pub use space_group::SpaceGroup;
pub use types::*;

/// Where `stagesweep` looks for its configuration when neither `--config` nor
/// `STAGESWEEP_CONFIG` is given.
pub const DEFAULT_PATH: &str = "/etc/stagesweep/config.yaml";
