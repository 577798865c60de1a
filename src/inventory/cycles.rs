//! Parent links that loop. A real image store cannot hold a cycle (an image's parent is
//! an earlier image, named by the digest of its config); a proxy, a bug or an attacker can
//! still list one (`A → B → A`, or an image that is its own parent). Walking such a chain
//! upwards never ends, so every walk in the planner must be guarded against it.
//!
//! **Choice:** a pass *rejects* a listing with a cycle (exit 3, nothing deleted, the images
//! named: see [`super::Inventory::check_parents`]) rather than cutting the cycle and going
//! on. The planner's safety rules (the parents of in-use and of kept images stay) rest on the
//! parent links; a listing that lies about them cannot be trusted to say which images are
//! parents of what, and cutting a link at a guessed place could delete the parent of an
//! image a container uses. The planner still cuts cycles itself ([`cut_cycles`]), so that
//! `plan()` stays total and terminates on any input, but a pass never gets that far.

/// One removed link: `child → parent` closed a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub child: usize,
    pub parent: usize,
}

/// Break every cycle in `parent` (indexes into the same slice) by removing the link that
/// closes it; returns one [`Cut`] per cycle.
///
/// Linear in the number of images: each image is walked once.
pub fn cut_cycles(parent: &mut [Option<usize>]) -> Vec<Cut> {
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; parent.len()];
    let mut path = Vec::new();
    let mut cuts = Vec::new();
    for start in 0..parent.len() {
        if state[start] != NEW {
            continue;
        }
        let mut cur = start;
        loop {
            state[cur] = ON_PATH;
            path.push(cur);
            match parent[cur] {
                Some(p) if state[p] == NEW => cur = p,
                Some(p) if state[p] == ON_PATH => {
                    // `cur → p` closes a loop through the current path.
                    parent[cur] = None;
                    cuts.push(Cut {
                        child: cur,
                        parent: p,
                    });
                    break;
                }
                _ => break, // no parent, or a parent whose chain is known to end
            }
        }
        for i in path.drain(..) {
            state[i] = DONE;
        }
    }
    cuts
}

/// The images of the cycle that `cut` broke, in parent order from `cut.child`, read from the
/// links *after* the cut (`cut.parent` still leads back to `cut.child`).
pub fn cycle_of(parent: &[Option<usize>], cut: Cut) -> Vec<usize> {
    let mut members = vec![cut.child];
    let mut cur = cut.parent;
    while cur != cut.child && members.len() <= parent.len() {
        members.push(cur);
        match parent[cur] {
            Some(p) => cur = p,
            None => break,
        }
    }
    members
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn has_cycle(parent: &[Option<usize>]) -> bool {
        (0..parent.len()).any(|s| {
            let mut cur = parent[s];
            for _ in 0..=parent.len() {
                match cur {
                    None => return false,
                    Some(p) => cur = parent[p],
                }
            }
            true
        })
    }

    #[test]
    fn cuts_self_loops_two_cycles_and_loops_at_the_end_of_chains() {
        // 0 → 0; 1 → 2 → 1; 3 → 4 → 5 → 4; 6 → 7 (fine)
        let mut parent = vec![
            Some(0),
            Some(2),
            Some(1),
            Some(4),
            Some(5),
            Some(4),
            Some(7),
            None,
        ];
        let cuts = cut_cycles(&mut parent);
        let children: Vec<usize> = cuts.iter().map(|c| c.child).collect();
        assert_eq!(children, vec![0, 2, 5]);
        assert!(!has_cycle(&parent));
        assert_eq!(parent[6], Some(7), "acyclic links stay");
        assert_eq!(parent[3], Some(4));
        assert_eq!(cycle_of(&parent, cuts[0]), vec![0]);
        assert_eq!(cycle_of(&parent, cuts[1]), vec![2, 1]);
        assert_eq!(cycle_of(&parent, cuts[2]), vec![5, 4]);
    }

    #[test]
    fn an_acyclic_forest_is_left_alone() {
        let mut parent = vec![None, Some(0), Some(1), Some(0), None, Some(4)];
        let before = parent.clone();
        assert!(cut_cycles(&mut parent).is_empty());
        assert_eq!(parent, before);
    }

    proptest! {
        #[test]
        fn any_parent_array_ends_acyclic_cutting_one_link_per_cycle(
            raw in prop::collection::vec(prop::option::of(0usize..40), 1..40)
        ) {
            let n = raw.len();
            let before: Vec<Option<usize>> = raw.into_iter().map(|p| p.map(|p| p % n)).collect();
            let mut parent = before.clone();
            let cuts = cut_cycles(&mut parent);
            prop_assert!(!has_cycle(&parent));
            let changed: Vec<usize> = (0..n).filter(|&i| parent[i] != before[i]).collect();
            let mut children: Vec<usize> = cuts.iter().map(|c| c.child).collect();
            children.sort_unstable();
            prop_assert_eq!(changed, children);
            // Each cut closed a real cycle of the original links.
            for c in cuts {
                prop_assert_eq!(before[c.child], Some(c.parent));
                let members = cycle_of(&parent, c);
                let last = *members.last().expect("non-empty");
                prop_assert_eq!(before[last], Some(c.child));
            }
        }
    }
}
