//! Policy validation: one raw policy → [`Policy`], shared by configuration files and the
//! ad-hoc flags of `stagesweep prune`. Rules: a non-empty unique name; a non-empty match
//! unless `match.all_images: true`; valid durations, size, globs, label predicates and
//! `group_by`; `min_age <= max_age`; `keep_last >= 1`.

use std::collections::HashMap;
use std::time::Duration;

use serde_saphyr::Location;

use super::raw::{RawMatch, RawPolicy, S};
use super::types::{Dangling, GroupBy, Matcher, Policy};
use super::validate::{Ctx, globs, join, labels};
use super::values::{self, Bad};

/// Default `min_age` of a policy.
pub(super) const DEFAULT_MIN_AGE: Duration = Duration::from_secs(3600);

/// Validate every policy, in order, and check that names are unique.
pub(super) fn policies(ctx: &mut Ctx, raw: Vec<S<RawPolicy>>) -> Vec<Policy> {
    let mut seen: HashMap<String, Location> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, spanned) in raw.into_iter().enumerate() {
        let base = format!("policies[{i}]");
        if let Some(name) = &spanned.value.name {
            let key = name.value.trim().to_owned();
            if let Some(first) = seen.get(&key).filter(|_| !key.is_empty()) {
                let bad = Bad::new(
                    format!(
                        "policy name {key:?} is already used at line {}",
                        first.line()
                    ),
                    "names must be unique: they appear in reasons, logs and metrics",
                );
                ctx.push(name.referenced, &join(&base, "name"), bad);
            } else {
                seen.insert(key, name.referenced);
            }
        }
        if let Some(p) = policy(ctx, &spanned.value, spanned.referenced, &base) {
            out.push(p);
        }
    }
    out
}

/// Validate one policy found at `at` under field path `base`.
pub(super) fn policy(ctx: &mut Ctx, raw: &RawPolicy, at: Location, base: &str) -> Option<Policy> {
    let name = name(ctx, raw.name.as_ref(), at, base);
    let matcher = matcher(ctx, raw.matcher.as_ref(), at, base, name.as_deref());
    let min_age = raw.min_age.as_ref().map(|s| {
        ctx.check(s, &join(base, "min_age"), |t| {
            values::duration("min_age", t)
        })
    });
    let max_age = raw.max_age.as_ref().map(|s| {
        ctx.check(s, &join(base, "max_age"), |t| {
            values::duration("max_age", t)
        })
    });
    let min = min_age.unwrap_or(Some(DEFAULT_MIN_AGE));
    if let (Some(min), Some(Some(max)), Some(s)) = (min, max_age, &raw.max_age)
        && min > max
    {
        let default = if raw.min_age.is_none() {
            " (the default)"
        } else {
            ""
        };
        let bad = Bad::new(
            format!(
                "max_age {} is shorter than min_age {}{default}",
                values::format_duration(max),
                values::format_duration(min)
            ),
            "images younger than min_age are never deleted; make max_age at least min_age",
        );
        ctx.push(s.referenced, &join(base, "max_age"), bad);
    }
    let keep_last = raw.keep_last.as_ref().map(|s| keep_last(ctx, s, base));
    let group_by = raw
        .group_by
        .as_ref()
        .map(|s| ctx.check(s, &join(base, "group_by"), values::group_by));
    let max_total_size = raw.max_total_size.as_ref().map(|s| {
        ctx.check(s, &join(base, "max_total_size"), |t| {
            values::size("max_total_size", t)
        })
    });
    let all_references = all_references(ctx, raw, base, matcher.as_ref());
    let usage = super::usage::policy_usage(ctx, raw, base);
    let usage = usage?;
    Some(Policy {
        name: name?,
        matcher: matcher?,
        min_age: min?,
        max_age: max_age.unwrap_or(None),
        keep_last: keep_last.unwrap_or(None),
        group_by: group_by.unwrap_or(Some(GroupBy::None))?,
        max_total_size: max_total_size.unwrap_or(None),
        all_references,
        unused_for: usage.unused_for,
        order: usage.order,
        when: usage.when,
    })
}

/// `all_references: true` only means something when `match.references` selects by name.
fn all_references(ctx: &mut Ctx, raw: &RawPolicy, base: &str, m: Option<&Matcher>) -> bool {
    let Some(s) = raw.all_references.as_ref().filter(|s| s.value) else {
        return false;
    };
    if m.is_some_and(|m| m.references.is_empty()) {
        let bad = Bad::new(
            "all_references: true without match.references",
            "all_references lets a policy that selects images by reference glob remove their \
             other references too; add match.references, or remove all_references",
        );
        ctx.push(s.referenced, &join(base, "all_references"), bad);
    }
    true
}

fn name(ctx: &mut Ctx, raw: Option<&S<String>>, at: Location, base: &str) -> Option<String> {
    let Some(name) = raw else {
        let bad = Bad::new(
            "policy has no name",
            "add name: <unique name> to the policy",
        );
        ctx.push(at, &join(base, "name"), bad);
        return None;
    };
    let trimmed = name.value.trim();
    if trimmed.is_empty() {
        let bad = Bad::new(
            format!("policy name {:?} is empty", name.value),
            "give the policy a unique name, e.g. builder-stages",
        );
        ctx.push(name.referenced, &join(base, "name"), bad);
        return None;
    }
    Some(trimmed.to_owned())
}

fn keep_last(ctx: &mut Ctx, raw: &S<i64>, base: &str) -> Option<usize> {
    match usize::try_from(raw.value) {
        Ok(n) if n >= 1 => Some(n),
        _ => {
            let bad = Bad::new(
                format!("keep_last {} would keep nothing", raw.value),
                "use keep_last: 1 or more, or remove keep_last to delete every matched image \
                 older than min_age",
            );
            ctx.push(raw.referenced, &join(base, "keep_last"), bad);
            None
        }
    }
}

/// `match:`; an empty match (every image) is an error unless `all_images: true`.
fn matcher(
    ctx: &mut Ctx,
    raw: Option<&S<RawMatch>>,
    at: Location,
    base: &str,
    name: Option<&str>,
) -> Option<Matcher> {
    let path = join(base, "match");
    let empty = RawMatch::default();
    let (m, at) = raw.map_or((&empty, at), |s| (&s.value, s.referenced));
    let labels = labels(
        ctx,
        m.labels.as_deref().unwrap_or_default(),
        &join(&path, "labels"),
    );
    let references = globs(
        ctx,
        m.references.as_deref().unwrap_or_default(),
        &join(&path, "references"),
    );
    let dangling = m
        .dangling
        .as_ref()
        .map(|s| ctx.check(s, &join(&path, "dangling"), values::dangling));
    let all_images = m.all_images.as_ref().is_some_and(|s| s.value);
    let has_criteria = m.labels.as_ref().is_some_and(|v| !v.is_empty())
        || m.references.as_ref().is_some_and(|v| !v.is_empty())
        // An invalid `dangling` is reported on its own; don't also call the match empty.
        || matches!(dangling, Some(Some(Dangling::Only | Dangling::Never) | None));
    let who = name.map_or_else(|| "policy".to_owned(), |n| format!("policy {n:?}"));
    if !has_criteria && !all_images {
        let bad = Bad::new(
            format!("{who} has an empty match, which would select every image"),
            "add match.labels or match.references, or set match.all_images: true if you mean it",
        );
        ctx.push(at, &path, bad);
        return None;
    }
    if has_criteria && all_images {
        let s = m.all_images.as_ref().expect("all_images is set when true");
        let bad = Bad::new(
            format!("{who} sets all_images: true but also has match criteria"),
            "remove all_images, or remove the criteria to really select every image",
        );
        ctx.push(s.referenced, &join(&path, "all_images"), bad);
        return None;
    }
    Some(Matcher {
        labels,
        references,
        dangling: dangling.unwrap_or(Some(Dangling::Any))?,
        all_images,
    })
}
