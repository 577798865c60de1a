//! Carrying out a plan: identity-checked deletion of images (`images`, `identity`,
//! `parents`, `children`) and of build cache records (`build_cache`), each with its outcome, and the
//! counts over a plan and its outcomes (`summary`; `eviction`: what an eviction under disk
//! pressure did, measured). Decides
//! nothing the plan did not decide: it only leaves out what changed since the plan was made.

pub mod build_cache;
mod build_cache_summary;
mod children;
mod eviction;
mod identity;
mod images;
mod outcome;
mod parents;
mod summary;

pub use build_cache::{CacheExecution, CacheOutcome, CacheResult, NO_PRUNE_API, request};
pub use build_cache_summary::{CacheSummary, summarize as summarize_build_cache};
pub use eviction::{EvictionEnd, EvictionReport, EvictionWave};
pub use images::{Run, execute, execute_some};
pub use outcome::{DeletionResult, Outcome, UnplannedRemoval};
pub use summary::{Summary, count_build_wait, summarize};
