//! `stagesweep du`: where the space goes, grouped (`group`: the arithmetic, each byte
//! counted once, top N plus `other`), rendered as a table (`text`) or JSON (the rows
//! serialize as they are). Pure over a plan and its inventory.

mod group;
mod rows;
mod text;

pub use group::{DuInput, group};
pub use rows::{DuReport, DuRow, RowKind, State};
pub use text::render_text;
