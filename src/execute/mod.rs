//! Carrying out a plan: identity-checked deletion of images (`images`, `identity`,
//! `parents`, `children`) and of build cache records (`build_cache`), each with its outcome, and the
//! counts over a plan and its outcomes (`summary`). Decides
//! nothing the plan did not decide: it only leaves out what changed since the plan was made.

pub mod build_cache;
mod build_cache_summary;
mod children;
mod identity;
mod images;
mod outcome;
mod parents;
mod summary;

pub use build_cache::{CacheExecution, CacheOutcome, CacheResult, NO_PRUNE_API, request};
pub use build_cache_summary::{CacheSummary, summarize as summarize_build_cache};
pub use images::execute;
pub use outcome::{DeletionResult, Outcome};
pub use summary::{Summary, count_build_wait, summarize};
