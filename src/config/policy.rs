//! Policy validation: one raw policy → [`Policy`], shared by configuration files and the
//! ad-hoc flags of `stagesweep prune`. Rules: a non-empty unique name; a match with a
//! positive criterion unless `match.all_images: true` (and not both); no contradictory
//! criteria; valid, bounded durations, size, globs, label predicates and `group_by`;
//! `min_age <= max_age`; `keep_last >= 1`.

use std::collections::HashMap;
use std::time::Duration;

use serde_saphyr::Location;

use super::ctx::{Ctx, join};
use super::policy_keys;
use super::policy_keys::{Dangling, GroupBy};
use super::predicate::LabelPredicate;
use super::raw::{RawMatch, RawPolicy, S};
use super::selectors::{globs, labels};
use super::types::{Matcher, Policy};
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
        .map(|s| ctx.check(s, &join(base, "group_by"), policy_keys::group_by));
    let max_total_size = raw.max_total_size.as_ref().map(|s| {
        ctx.check(s, &join(base, "max_total_size"), |t| {
            values::size("max_total_size", t)
        })
    });
    let all_references = all_references(ctx, raw, base, matcher.as_ref());
    let usage = policy_keys::policy_usage(ctx, raw, base);
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
        parents: usage.parents,
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

/// `match:`. A match must say what an image has to *have*: a positive criterion (a label
/// predicate `key` or `key=value`, a reference glob, or `dangling: true|false`). Without one
/// (nothing at all, or only `key!=value` predicates, which hold on every image without that
/// label) it selects every image, or every image but a few, which is an error unless the
/// policy says so with `all_images: true`; with one, `all_images: true` is an error.
/// Criteria that no image can satisfy together are errors too.
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
    let raw_labels = m.labels.as_deref().unwrap_or_default();
    let raw_references = m.references.as_deref().unwrap_or_default();
    let labels = labels(ctx, raw_labels, &join(&path, "labels"));
    let references = globs(ctx, raw_references, &join(&path, "references"));
    let dangling = match &m.dangling {
        Some(s) => ctx.check(s, &join(&path, "dangling"), policy_keys::dangling),
        None => Some(Dangling::Any),
    };
    // A label, glob or `dangling` that did not parse is reported on its own; the match is
    // judged as a whole only when every part of it is valid.
    let dangling = dangling?;
    if labels.len() < raw_labels.len() || references.len() < raw_references.len() {
        return None;
    }
    let matcher = Matcher {
        labels,
        references,
        dangling,
        all_images: m.all_images.as_ref().is_some_and(|s| s.value),
    };
    let who = name.map_or_else(|| "policy".to_owned(), |n| format!("policy {n:?}"));
    let ok = breadth(ctx, &matcher, m, at, &path, &who) && contradictions(ctx, m, &path, &who);
    ok.then_some(matcher)
}

/// A match without a positive criterion needs `all_images: true`, and one with a positive
/// criterion must not have it. True when the match says what it means.
fn breadth(
    ctx: &mut Ctx,
    matcher: &Matcher,
    raw: &RawMatch,
    at: Location,
    path: &str,
    who: &str,
) -> bool {
    let positive = matcher.labels.iter().any(|p| !p.is_negative())
        || !matcher.references.is_empty()
        || matcher.dangling != Dangling::Any;
    if positive && matcher.all_images {
        let s = raw
            .all_images
            .as_ref()
            .expect("all_images is set when true");
        let bad = Bad::new(
            format!("{who} sets all_images: true but also has a positive match criterion"),
            "remove all_images; it is only for a match with no criterion or only key!=value \
             predicates",
        );
        ctx.push(s.referenced, &join(path, "all_images"), bad);
        return false;
    }
    if positive || matcher.all_images {
        return true;
    }
    if let Some(first) = raw.labels.as_deref().unwrap_or_default().first() {
        let list: Vec<String> = matcher.labels.iter().map(ToString::to_string).collect();
        let bad = Bad::new(
            format!(
                "{who} has only negative label predicates ({}), which select every image \
                 without those labels",
                list.join(", ")
            ),
            if ctx.for_flags() {
                "add a positive --label (key or key=value); a configuration file can say \
                 match.all_images: true if every other image is meant"
            } else {
                "add a positive criterion (key or key=value, references, dangling), or \
                 set match.all_images: true if every other image is meant"
            },
        );
        ctx.push(first.referenced, &format!("{path}.labels[0]"), bad);
    } else {
        let bad = Bad::new(
            format!("{who} has an empty match, which would select every image"),
            "add match.labels or match.references, or set match.all_images: true if you \
             mean it",
        );
        ctx.push(at, path, bad);
    }
    false
}

/// Criteria that no image can satisfy together: `dangling: true` with `references` (a
/// dangling image has no reference), `key=a` with `key=b`, `key=a` with `key!=a`. Each is
/// reported at the later criterion. True when there is none.
fn contradictions(ctx: &mut Ctx, m: &RawMatch, path: &str, who: &str) -> bool {
    let mut ok = true;
    if let (Some(d), Some(refs)) = (&m.dangling, &m.references)
        && d.value.trim() == "true"
        && !refs.is_empty()
    {
        let bad = Bad::new(
            format!("{who} sets dangling: true and references, which no image satisfies"),
            "a dangling image has no reference; remove references, or dangling: true",
        );
        ctx.push(d.referenced, &join(path, "dangling"), bad);
        ok = false;
    }
    let raw = m.labels.as_deref().unwrap_or_default();
    let parsed: Vec<_> = raw
        .iter()
        .map(|s| LabelPredicate::parse(&s.value).ok())
        .collect();
    for (i, p) in parsed.iter().enumerate() {
        let Some(p) = p else { continue };
        let clash = parsed[..i].iter().flatten().find(|q| excludes(q, p));
        if let Some(q) = clash {
            let bad = Bad::new(
                format!("{who} requires both {q} and {p}, which no image satisfies"),
                "remove one of the two label predicates",
            );
            ctx.push(raw[i].referenced, &format!("{path}.labels[{i}]"), bad);
            ok = false;
        }
    }
    ok
}

/// True when no label set satisfies both predicates.
fn excludes(first: &LabelPredicate, second: &LabelPredicate) -> bool {
    use LabelPredicate::{Equals, NotEquals};
    match (first, second) {
        (Equals(key, value), Equals(other_key, other_value)) => {
            key == other_key && value != other_value
        }
        (Equals(key, value), NotEquals(other_key, other_value))
        | (NotEquals(other_key, other_value), Equals(key, value)) => {
            key == other_key && value == other_value
        }
        _ => false,
    }
}
