//! The `du` table: one line per group, then the total and the notes.

use std::fmt::Write as _;

use comfy_table::{CellAlignment, Table, presets};

use super::rows::{DuReport, RowKind};
use crate::units::fmt_bytes;

/// How the bytes are counted, said under every table.
pub const COUNTED_ONCE: &str = "bytes are counted once: each layer for the image that added it; \
     layers that images of different groups or without a common parent share are on the shared line";

/// The table, the total and the notes.
#[must_use]
pub fn render_text(report: &DuReport) -> String {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table.set_header([
        "GROUP",
        "COUNT",
        "SIZE",
        "RECLAIMABLE",
        "PRESSURE",
        "PROTECTED",
        "KEPT",
        "OLDEST USE",
    ]);
    for row in &report.groups {
        let name = match row.kind {
            RowKind::Images => row.group.clone(),
            _ => format!("({})", row.group),
        };
        let oldest = row.oldest_last_use.map_or_else(
            || "-".to_owned(),
            |t| {
                let secs = (report.planned_at - t).num_seconds().max(0).cast_unsigned();
                format!("{} ago", crate::units::fmt_age(secs))
            },
        );
        table.add_row([
            name,
            row.count.to_string(),
            fmt_bytes(row.bytes),
            fmt_bytes(row.reclaimable_bytes),
            fmt_bytes(row.pressure_bytes),
            fmt_bytes(row.protected_bytes),
            fmt_bytes(row.kept_bytes),
            oldest,
        ]);
    }
    for c in 1..7 {
        if let Some(column) = table.column_mut(c) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = format!("{table}\n");
    let engine = match report.engine_total_bytes {
        Some(t) if t == report.total_bytes => " (the engine's total)".to_owned(),
        Some(t) => format!(" (the engine says {})", fmt_bytes(t)),
        None => String::new(),
    };
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "total {}{engine}, grouped by {}; {COUNTED_ONCE}",
        fmt_bytes(report.total_bytes),
        report.by
    );
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}
