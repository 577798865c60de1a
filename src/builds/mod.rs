//! Coordination with running builds, so that a pass never deletes a stage a build still needs.
//!
//! The build lock file itself (builds hold it shared, deletions take it exclusively with
//! try-lock) is [`crate::locks::build_lock`]'s. `detect`: classic build steps seen in the container list (pure); `gate`: defer,
//! retry and give up around a pass's deletions; `hold`: `stagesweep hold -- CMD`, which runs a
//! build while holding the lock shared. Decides nothing about images: the planner does; this
//! only says "not now".

pub mod detect;
pub mod gate;
pub mod hold;

pub use detect::Build;
pub use gate::{BuildWait, Check, Coordination, Gate, GateOutcome};
