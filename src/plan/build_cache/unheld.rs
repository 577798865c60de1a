//! Records that claim `Shared` while no listed image can hold them. BuildKit calls a record
//! shared when its layer chain is an image's whole chain, or an ancestor of such a record.
//! A record that never became an image layer (a builder stage's steps) has no layer of its
//! own and inherits its parent's chain: when that chain is an image's (the stage's `FROM`
//! image), the record is reported `Shared` although deleting it takes nothing from any image
//! (seen on Docker 28.5 with the containerd image store; the API gives no layer digests to
//! tell them apart). What the API does allow is a count: an image's chain passes through at
//! most one record per depth of the record tree, so at most as many shared records per depth
//! can be held as there are images. The most recently used ones are taken as held; the rest
//! are unheld. Records whose depth is not a plain chain (several parents, a parent not
//! listed) are left as the engine says.

use std::collections::BTreeMap;

use crate::inventory::CacheRecord;

/// For each record: true when it claims `Shared` but is beyond what `images` images can hold
/// at its depth. `parents` are the records' parent links as indexes into `records`.
pub(super) fn unheld(records: &[CacheRecord], parents: &[Vec<usize>], images: usize) -> Vec<bool> {
    let depths = depths(records, parents);
    let mut by_depth: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if let (true, false, Some(d)) = (r.shared, r.in_use, depths[i]) {
            by_depth.entry(d).or_default().push(i);
        }
    }
    let mut unheld = vec![false; records.len()];
    for mut shared in by_depth.into_values() {
        // Newest first; ties by ID, so the plan is reproducible.
        shared.sort_by(|&a, &b| {
            (records[b].last_touched().cmp(&records[a].last_touched()))
                .then_with(|| records[a].id.cmp(&records[b].id))
        });
        for &i in shared.iter().skip(images) {
            unheld[i] = true;
        }
    }
    unheld
}

/// How many records each record's chain has, itself included: 1 for a record without
/// parents. `None` where the chain is not plain (several parents, a parent the listing does
/// not hold) or loops.
pub(super) fn depths(records: &[CacheRecord], parents: &[Vec<usize>]) -> Vec<Option<usize>> {
    let n = records.len();
    let mut depth: Vec<Option<Option<usize>>> = vec![None; n];
    let mut on_path = vec![false; n];
    for start in 0..n {
        let mut path = Vec::new();
        let mut at = start;
        // Walk up until a known depth, a root, or something that is not a plain chain.
        let base = loop {
            if let Some(known) = depth[at] {
                break known;
            }
            if on_path[at] {
                break None; // a loop: no sane engine sends one
            }
            on_path[at] = true;
            path.push(at);
            match (records[at].parents.len(), parents[at].as_slice()) {
                (0, _) => break Some(0),
                (1, [p]) => at = *p,
                _ => break None,
            }
        };
        // `path` runs from `start` up; its last entry sits on `base`.
        for (k, &i) in path.iter().rev().enumerate() {
            depth[i] = Some(base.map(|b| b + k + 1));
            on_path[i] = false;
        }
    }
    depth.into_iter().map(Option::flatten).collect()
}
