//! Rendering a pass for people and tools: `text` (tables, summary lines), `json` (the
//! document that is also the plan file), `build_cache` (its section of both), `eviction`
//! (the disk pressure line), `du` (where the space goes). Pure
//! formatting; nothing here talks to the engine or decides.

pub mod build_cache;
pub mod du;
pub mod eviction;
mod json;
mod text;

pub use json::to_json;
pub use text::{
    ALL_ACTIONS, MAX_CELL_CHARS, NO_SHARING_DATA, cache_summary_line, held_back, outcome_text,
    render_text, report_summary_line, summary_line,
};
