//! `build_cache:` rules: raw → validated [`CacheRule`]s, and their `check-config` lines.
//!
//! Rules: a non-empty unique name; known `types` (not an empty list); `shared` is
//! `include` or `exclude`; a valid `unused_for` and `keep_storage`, at least one of them; and
//! never a label selector, because the engine accepts a `label` filter on `/build/prune` and
//! ignores it (it would delete every record).

use std::collections::HashMap;
use std::time::Duration;

use serde_saphyr::Location;

use super::ctx::{Ctx, join};
use super::raw::{RawCacheRule, S};
use super::values::{self, Bad};
use crate::inventory::CacheType;

/// One `build_cache:` rule. For each record, the first rule that selects it decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRule {
    /// Unique among the rules; shown in reasons, logs and metrics.
    pub name: String,
    /// Record types the rule selects. Default: every type but `internal` and `frontend`.
    pub types: Vec<CacheType>,
    /// Whether records also referenced by an image are selected. Default `exclude`.
    pub shared: SharedRecords,
    /// Records not used for this long (by `LastUsedAt`) are deleted. Default: none.
    pub unused_for: Option<Duration>,
    /// Then the least recently used records go until the rule's records total at most this
    /// many bytes. Default: none.
    pub keep_storage: Option<u64>,
}

impl CacheRule {
    /// Whether the rule selects a record of this type, shared or not (in-use records are
    /// selected too; the planner keeps them).
    #[must_use]
    pub fn selects(&self, kind: &CacheType, shared: bool) -> bool {
        self.selects_type(kind) && (!shared || self.shared == SharedRecords::Include)
    }

    /// Whether the rule's `types` name this type.
    #[must_use]
    pub fn selects_type(&self, kind: &CacheType) -> bool {
        self.types.contains(kind)
    }
}

/// `shared:` — records also referenced by an image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SharedRecords {
    /// Never select them (deleting them frees nothing while the image exists).
    #[default]
    Exclude,
    /// Select them too.
    Include,
}

/// The types a rule selects without `types:`.
#[must_use]
pub fn default_types() -> Vec<CacheType> {
    vec![
        CacheType::Regular,
        CacheType::SourceLocal,
        CacheType::ExecCachemount,
        CacheType::SourceGitCheckout,
    ]
}

const LABEL_HINT: &str = "the engine accepts a label filter on /build/prune and ignores it, so \
     it would delete every record; select build cache by types, shared, unused_for and \
     keep_storage, and images by labels under policies:";

/// Validate every rule, in order, and check that names are unique.
pub(super) fn rules(ctx: &mut Ctx, raw: Vec<S<RawCacheRule>>) -> Vec<CacheRule> {
    let mut seen: HashMap<String, Location> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, spanned) in raw.into_iter().enumerate() {
        let base = format!("build_cache[{i}]");
        let raw = &spanned.value;
        let name = name(ctx, raw.name.as_ref(), spanned.referenced, &base);
        if let (Some(n), Some(at)) = (&name, &raw.name) {
            if let Some(first) = seen.get(n) {
                let bad = Bad::new(
                    format!(
                        "build cache rule name {n:?} is already used at line {}",
                        first.line()
                    ),
                    "names must be unique: they appear in reasons, logs and metrics",
                );
                ctx.push(at.referenced, &join(&base, "name"), bad);
            } else {
                seen.insert(n.clone(), at.referenced);
            }
        }
        let rejected = no_label_selectors(ctx, raw, &base);
        let rule = rule(ctx, raw, spanned.referenced, &base);
        if let (Some(name), Some(rule), false) = (name, rule, rejected) {
            out.push(CacheRule { name, ..rule });
        }
    }
    out
}

fn name(ctx: &mut Ctx, raw: Option<&S<String>>, at: Location, base: &str) -> Option<String> {
    let path = join(base, "name");
    match raw.map(|n| (n, n.value.trim())) {
        None => ctx.push(
            at,
            &path,
            Bad::new("build cache rule has no name", "add name: <unique name>"),
        ),
        Some((n, "")) => ctx.push(
            n.referenced,
            &path,
            Bad::new(
                format!("build cache rule name {:?} is empty", n.value),
                "give the rule a unique name, e.g. stale-cache",
            ),
        ),
        Some((_, name)) => return Some(name.to_owned()),
    }
    None
}

/// A label selector in any spelling is an error that says why. Returns true when one was found.
fn no_label_selectors(ctx: &mut Ctx, raw: &RawCacheRule, base: &str) -> bool {
    let tried = [
        ("labels", &raw.labels),
        ("label", &raw.label),
        ("match", &raw.matcher),
        ("filters", &raw.filters),
    ];
    let mut found = false;
    for (key, value) in tried {
        if let Some(v) = value {
            let bad = Bad::new(
                format!("build cache rules cannot select by {key}"),
                LABEL_HINT,
            );
            ctx.push(v.referenced, &join(base, key), bad);
            found = true;
        }
    }
    found
}

/// Everything but the name (filled in by the caller).
fn rule(ctx: &mut Ctx, raw: &RawCacheRule, at: Location, base: &str) -> Option<CacheRule> {
    let types = match &raw.types {
        None => Some(default_types()),
        Some(list) => types(ctx, list, at, &join(base, "types")),
    };
    let shared = raw.shared.as_ref().map(|s| {
        ctx.check(s, &join(base, "shared"), |t| match t.trim() {
            "exclude" => Ok(SharedRecords::Exclude),
            "include" => Ok(SharedRecords::Include),
            other => Err(Bad::new(
                format!("shared {other:?} is neither include nor exclude"),
                "shared records are also used by an image; exclude (the default) leaves them alone",
            )),
        })
    });
    let unused_for = raw.unused_for.as_ref().map(|s| {
        ctx.check(s, &join(base, "unused_for"), |t| {
            values::duration("unused_for", t)
        })
    });
    let keep_storage = raw.keep_storage.as_ref().map(|s| {
        ctx.check(s, &join(base, "keep_storage"), |t| {
            values::size("keep_storage", t)
        })
    });
    if raw.unused_for.is_none() && raw.keep_storage.is_none() {
        let bad = Bad::new(
            "build cache rule has neither unused_for nor keep_storage",
            "add unused_for: 7d to delete records unused for a week, keep_storage: 10GB to \
             delete the least recently used beyond 10 GB, or both",
        );
        ctx.push(at, base, bad);
        return None;
    }
    Some(CacheRule {
        name: String::new(),
        types: types?,
        shared: shared.unwrap_or(Some(SharedRecords::Exclude))?,
        unused_for: unused_for.unwrap_or(None),
        keep_storage: keep_storage.unwrap_or(None),
    })
}

fn types(ctx: &mut Ctx, raw: &[S<String>], at: Location, path: &str) -> Option<Vec<CacheType>> {
    if raw.is_empty() {
        let bad = Bad::new(
            "types: [] selects no record",
            "remove types to select every type but internal and frontend, or name some",
        );
        ctx.push(at, path, bad);
        return None;
    }
    let mut out: Vec<CacheType> = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (i, s) in raw.iter().enumerate() {
        let parsed = ctx.check(s, &format!("{path}[{i}]"), |t| {
            CacheType::parse(t.trim())
                .filter(|_| !t.trim().is_empty())
                .ok_or_else(|| {
                    Bad::new(
                        format!("{t:?} is not a build cache type"),
                        format!("use one of {}", CacheType::NAMES.join(", ")),
                    )
                })
        });
        match parsed {
            Some(t) if !out.contains(&t) => out.push(t),
            Some(_) => {}
            None => ok = false,
        }
    }
    ok.then_some(out)
}
