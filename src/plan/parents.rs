//! Untagged parents go with the image a policy deletes (`parents: delete`, the default):
//! what `docker rmi` does, planned explicitly instead of left to the daemon's cascade.
//!
//! A classic build leaves every step of a stage as an untagged image, parent of the next;
//! the tagged image at the end holds them all. Deleting only that image (`noprune`, as the
//! executor always asks) leaves the chain behind as untagged images no policy selects, and
//! they hold the image's layers. So once the plan is otherwise complete, the parent chain of
//! each deleted image is planned too, from the child up, as long as each parent
//!
//! - is matched by no policy (a policy that matches it decides it, keep or delete),
//! - has no tag and no digest (the daemon's own cascade stops there too),
//! - is not protected by a label predicate (an untagged image has no reference to protect),
//! - is not used by a container nor a parent of one (those carry their keep reason already),
//! - and has no child that stays: every child is deleted by a policy with `parents: delete`
//!   or is itself such a parent.
//!
//! Each gets its own decision ([`Reason::ParentOfDeleted`], naming its child and the policy)
//! and its own identity-checked deletion after its children. Runs last: no later step may
//! keep a child whose parent this step deleted.

use std::sync::Arc;

use super::graph::Graph;
use super::matching::Compiled;
use super::reason::{Action, Reason};
use crate::config::{Config, Parents};

/// What the step reads besides the per-image tables.
pub(super) struct Orphans<'g, 'a> {
    pub graph: &'g Graph<'a>,
    pub config: &'g Config,
    pub names: &'g [Arc<str>],
    pub compiled: &'g Compiled<'g>,
}

impl<'a> Orphans<'_, 'a> {
    /// Plan the untagged parents nothing else needs of every deleted image. `policy_of` gets
    /// the deleting policy of each parent planned here (the policy of the child it names).
    pub fn apply(&self, reasons: &mut [Option<Reason>], policy_of: &mut [Option<usize>]) {
        let graph = self.graph;
        let n = graph.len();
        let releases = |i: usize, reasons: &[Option<Reason>], policy_of: &[Option<usize>]| {
            let deleted = reasons[i]
                .as_ref()
                .is_some_and(|r| r.action() == Action::Delete);
            deleted
                && policy_of[i].is_some_and(|p| self.config.policies[p].parents == Parents::Delete)
        };
        // Per image: its children that hold it (they stay, or their policy keeps parents),
        // and the releasing child it would name (the smallest ID: the same for any order).
        let mut holding = vec![0u32; n];
        let mut named: Vec<Option<usize>> = vec![None; n];
        for (c, p) in graph.parent.iter().enumerate() {
            let Some(p) = *p else { continue };
            if releases(c, reasons, policy_of) {
                self.name_child(&mut named, p, c);
            } else {
                holding[p] += 1;
            }
        }
        let mut todo: Vec<usize> = (0..n)
            .filter(|&p| named[p].is_some() && holding[p] == 0)
            .collect();
        let mut values = Vec::new();
        while let Some(p) = todo.pop() {
            if !self.is_orphan(p, reasons, policy_of, &mut values) {
                continue;
            }
            let child = named[p].expect("only images with a releasing child are queued");
            let policy = policy_of[child].expect("a releasing child has a policy");
            reasons[p] = Some(Reason::ParentOfDeleted {
                child: graph.display(child),
                policy: Arc::clone(&self.names[policy]),
            });
            policy_of[p] = Some(policy);
            // Now p releases its own parent.
            if let Some(q) = graph.parent[p] {
                self.name_child(&mut named, q, p);
                holding[q] -= 1;
                if holding[q] == 0 {
                    todo.push(q);
                }
            }
        }
    }

    /// Record `c` as the child `p` names, when its ID is the smallest so far.
    fn name_child(&self, named: &mut [Option<usize>], p: usize, c: usize) {
        let images = self.graph.images;
        if named[p].is_none_or(|b| images[c].id < images[b].id) {
            named[p] = Some(c);
        }
    }

    /// Whether image `p` may go with its children: no policy decides it, nothing keeps it,
    /// no tag or digest, no protecting label.
    fn is_orphan(
        &self,
        p: usize,
        reasons: &[Option<Reason>],
        policy_of: &[Option<usize>],
        values: &mut Vec<Option<&'a str>>,
    ) -> bool {
        let images: &'a [crate::inventory::Image] = self.graph.images;
        let image = &images[p];
        let unmatched =
            policy_of[p].is_none() && matches!(reasons[p], None | Some(Reason::NoPolicyMatches));
        if !unmatched || !image.references.is_empty() || !image.digests.is_empty() {
            return false;
        }
        self.compiled.values(&image.labels, values);
        self.compiled.protected_by_label(values).is_none()
    }
}
