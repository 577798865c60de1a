//! The checks of the selectors that protection and policies share: reference globs and
//! label predicates, each value checked and its problem recorded at its position.

use super::ctx::Ctx;
use super::predicate::LabelPredicate;
use super::raw::S;
use super::types::RefGlob;
use super::values::Bad;

/// Label predicates at `path`, each checked.
pub(super) fn labels(ctx: &mut Ctx, raw: &[S<String>], path: &str) -> Vec<LabelPredicate> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, s)| {
            ctx.check(s, &format!("{path}[{i}]"), |t| {
                LabelPredicate::parse(t).map_err(|e| Bad::new(e.message, e.hint))
            })
        })
        .collect()
}

/// Reference globs at `path`, each checked.
pub(super) fn globs(ctx: &mut Ctx, raw: &[S<String>], path: &str) -> Vec<RefGlob> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, s)| {
            ctx.check(s, &format!("{path}[{i}]"), |t| {
                RefGlob::new(t).map_err(|m| {
                    Bad::new(
                        m,
                        "globs match repo:tag and repo@sha256:… references, e.g. *:latest or \
                         registry.example.com/base/*",
                    )
                })
            })
        })
        .collect()
}
