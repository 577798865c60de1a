//! The plan file: the one schema `plan --output json` writes and `stagesweep apply` reads
//! (`document`), and reading it back as a plan over just what it deletes (`read`,
//! `build_cache`), refused when it cannot be applied. Writing it from a pass is the
//! report's (`crate::report::json`).

mod build_cache;
mod document;
mod read;

pub use build_cache::SavedCache;
pub use document::{Document, FileCache, FileImage, FileOutcome, FileRecord, JSON_VERSION};
pub use read::{PlanFileError, SavedPlan, check, parse, read};
