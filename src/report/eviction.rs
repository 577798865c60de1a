//! The disk pressure line of a pass that evicted: where the disk stood, how many candidates
//! the waves took against what the estimate planned, where it ended and why. Pure
//! formatting of an [`EvictionReport`].

use std::fmt::Write as _;

use crate::execute::{EvictionEnd, EvictionReport};
use crate::pass::PassReport;

/// `disk space on /data at 96.0% >= high 85%: evicted 5 of 12 candidates in 2 measured
/// waves (the estimate planned 3); now 79.5%, low 80% reached`.
#[must_use]
pub fn line(report: &PassReport) -> Option<String> {
    report.eviction.as_ref().map(text)
}

fn percent(permille: u32) -> String {
    format!("{}.{}%", permille / 10, permille % 10)
}

/// The line for `e`.
#[must_use]
pub fn text(e: &EvictionReport) -> String {
    let deleted: usize = e.waves.iter().map(|w| w.deleted).sum();
    let waves = match e.waves.len() {
        1 => "1 measured wave".to_owned(),
        n => format!("{n} measured waves"),
    };
    let mut line = format!(
        "disk {} on {} at {} >= high {}%: ",
        e.resource,
        e.measured,
        percent(e.planned_permille),
        e.high_percent,
    );
    if e.candidates == 0 {
        line.push_str("no candidate to evict");
    } else {
        let _ = write!(
            line,
            "evicted {deleted} of {} candidates in {waves} (the estimate planned {})",
            e.candidates, e.estimated,
        );
    }
    let now = e.final_permille.map_or_else(
        || "not measured".to_owned(),
        |p| format!("now {}", percent(p)),
    );
    let end = match &e.end {
        EvictionEnd::LowReached => format!("{now}, low {}% reached", e.low_percent),
        EvictionEnd::NothingLeft if e.stuck => format!(
            "{now}, still at or over high {}% with nothing left that disk_pressure policies may evict",
            e.high_percent
        ),
        EvictionEnd::NothingLeft => format!(
            "{now}, above low {}% with nothing left to evict",
            e.low_percent
        ),
        EvictionEnd::Stopped => format!("{now}; the pass stopped"),
        EvictionEnd::NotMeasured { error } => {
            format!("could not measure again ({error}): the estimate's candidates only")
        }
    };
    line.push_str("; ");
    line.push_str(&end);
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::EvictionWave;

    fn report(end: EvictionEnd, stuck: bool) -> EvictionReport {
        let wave = |deleted| EvictionWave {
            images: 3,
            deleted,
            estimated_bytes: 300,
            used_permille_before: 960,
        };
        EvictionReport {
            measured: "/var/lib/containerd".into(),
            resource: "space".into(),
            high_percent: 85,
            low_percent: 80,
            planned_permille: 960,
            final_permille: Some(795),
            candidates: 12,
            estimated: 3,
            taken: 6,
            waves: vec![wave(3), wave(2)],
            end,
            stuck,
        }
    }

    #[test]
    fn the_line_says_what_was_evicted_against_the_estimate_and_why_it_ended() {
        assert_eq!(
            text(&report(EvictionEnd::LowReached, false)),
            "disk space on /var/lib/containerd at 96.0% >= high 85%: evicted 5 of 12 candidates \
             in 2 measured waves (the estimate planned 3); now 79.5%, low 80% reached"
        );
        let stuck = text(&report(EvictionEnd::NothingLeft, true));
        assert!(
            stuck.ends_with(
                "still at or over high 85% with nothing left that disk_pressure policies may evict"
            ),
            "{stuck}"
        );
        let short = text(&report(EvictionEnd::NothingLeft, false));
        assert!(
            short.ends_with("above low 80% with nothing left to evict"),
            "{short}"
        );
        let none = EvictionReport {
            candidates: 0,
            estimated: 0,
            taken: 0,
            waves: Vec::new(),
            final_permille: Some(960),
            ..report(EvictionEnd::NothingLeft, true)
        };
        assert_eq!(
            text(&none),
            "disk space on /var/lib/containerd at 96.0% >= high 85%: no candidate to evict; now \
             96.0%, still at or over high 85% with nothing left that disk_pressure policies may evict"
        );
        let blind = text(&report(
            EvictionEnd::NotMeasured {
                error: "gone".into(),
            },
            false,
        ));
        assert!(
            blind.ends_with("could not measure again (gone): the estimate's candidates only"),
            "{blind}"
        );
    }
}
