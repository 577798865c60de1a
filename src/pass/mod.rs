//! One pass end to end, for `prune`, `plan`, `apply` and the agent alike: gather its inputs
//! once (`inputs`: one `/info`, the listings, the data usage bounded by `data_usage`, the
//! history session of `history`, one disk measurement of `disk`, the tag times of
//! `tag_times`), plan, wait for builds, execute (over `high`, evicting in measured waves:
//! `evict`, `evict_plan`), and assemble the report (`pass_report`). `survey` gathers and
//! plans for `du`, as a dry run without per-image calls. `apply` executes a saved
//! plan instead of planning. None of the callers touches the history or the disk itself.

mod apply;
mod build_cache;
pub mod data_usage;
pub mod disk;
mod error;
mod evict;
mod evict_plan;
pub mod history;
pub mod host_hint;
mod inputs;
mod pass_report;
mod run;
mod survey;
mod tag_times;

pub use apply::{ApplyLimits, apply, check_plan};
pub use build_cache::CacheReport;
pub use error::PassError;
pub use history::HistoryUse;
pub use pass_report::PassReport;
pub use run::{PassOptions, execute_plan, run_pass, run_pass_with};
pub use survey::{Survey, survey};
