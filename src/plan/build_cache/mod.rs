//! The pure build cache planner: `(records, rules, images, now) -> CachePlan`. Every record of
//! BuildKit's cache gets an action and a reason under the `build_cache:` rules; no I/O, no
//! clock, no bollard. `decide` holds the algorithm, `reason` the reasons and their text, `unheld` the
//! shared records no listed image can hold.

mod decide;
mod reason;
mod unheld;

pub use decide::{CacheDecision, CacheDeletion, CachePlan, plan};
pub use reason::CacheReason;
