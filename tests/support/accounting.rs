//! Checks on a `--output json` report that hold whatever the executor's outcome kinds are:
//! every planned deletion has exactly one outcome, and the summary's outcome counters add
//! up to the number planned. Written against the report, not the executor's internals.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// What a report says about its planned deletions.
#[derive(Debug)]
pub struct Accounting {
    /// IDs of the images planned for deletion.
    pub planned: BTreeSet<String>,
    /// Outcome kind → count.
    pub by_kind: BTreeMap<String, usize>,
}

impl Accounting {
    pub fn count(&self, kind: &str) -> usize {
        self.by_kind.get(kind).copied().unwrap_or(0)
    }
}

/// Check `doc` (a `prune --output json` report) and return its accounting; panics naming
/// what does not add up.
pub fn check(doc: &Value) -> Accounting {
    let images = doc["images"].as_array().expect("images[]");
    let mut planned = BTreeSet::new();
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for im in images {
        let id = im["id"].as_str().expect("id").to_owned();
        let outcome = &im["outcome"];
        if im["action"] == "delete" {
            let kind = outcome["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("planned deletion {id} has no outcome: {im}"));
            *by_kind.entry(kind.to_owned()).or_default() += 1;
            planned.insert(id);
        } else {
            assert!(
                outcome.is_null(),
                "{id} was not planned but has an outcome: {im}"
            );
        }
    }
    let summary = &doc["summary"];
    let mut counted = 0;
    for (kind, n) in &by_kind {
        // Each outcome kind has a summary counter of the same name.
        let in_summary = summary[kind.as_str()]
            .as_u64()
            .unwrap_or_else(|| panic!("summary has no counter for outcome {kind}: {summary}"));
        assert_eq!(
            usize::try_from(in_summary).ok(),
            Some(*n),
            "summary.{kind} vs outcomes {kind}: {summary}"
        );
        counted += n;
    }
    assert_eq!(counted, planned.len(), "outcomes vs planned deletions");
    Accounting { planned, by_kind }
}
