//! The pure planner: `(inventory, config, inputs, now) -> Plan`, for images and for the
//! build cache.
//!
//! Every image gets an action and a reason. No I/O, no clock, no bollard types. `decide`
//! holds the algorithm, `retention` the grouping and ranking, `pressure` the disk
//! watermarks (`watermarks` the arithmetic, `eviction` the order it leaves to the pass),
//! `seen` what the history adds, `ranking` the orders `lfu` and `size`, `parents` the untagged parents that go with a deleted
//! image, `order` the plan order and deletion waves, `par` the threads, `text` the human
//! rendering of reasons; `build_cache` plans BuildKit's records under the `build_cache:`
//! rules.

mod age;
pub mod build_cache;
mod bytes;
mod decide;
mod decision;
mod eviction;
mod graph;
mod matching;
mod order;
mod par;
mod parents;
mod pressure;
mod ranking;
mod reason;
mod recheck;
mod retention;
mod seen;
mod text;
mod text_usage;
pub mod watermarks;

pub use crate::history::Source;
pub use age::age as image_age;
pub use bytes::own_bytes;
pub use decide::{plan, plan_with};
pub use decision::{Decision, Deletion, Plan};
pub use eviction::{Evictee, EvictionOrder};
pub use ranking::{Ranked, RecentUses};
pub use reason::{Action, Reason};
pub use recheck::still_deleted_by;
pub use seen::Usage;
pub use text::{fmt_age, fmt_duration};
pub use watermarks::DiskFigures;
