//! The policy keys beside the matcher and the retention rules: `group_by`, `dangling`,
//! `unused_for`, `order`, `when` and `parents`, typed and validated. Pure.

use std::fmt;
use std::time::Duration;

use super::ctx::{Ctx, join};
use super::raw::RawPolicy;
use super::values::{self, Bad};

/// `dangling:` — `true` (only images with no reference, neither `repo:tag` nor
/// `repo@sha256:…`), `false` (only images with one) or `any`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dangling {
    #[default]
    Any,
    Only,
    Never,
}

/// `group_by:` — `none`, `repository` or `label:<key>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum GroupBy {
    #[default]
    None,
    Repository,
    Label(String),
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupBy::None => f.write_str("none"),
            GroupBy::Repository => f.write_str("repository"),
            GroupBy::Label(k) => write!(f, "label:{k}"),
        }
    }
}

/// `order:` of a policy: the order in which `max_total_size` and `when: disk_pressure`
/// evict. (`keep_last` always ranks by build or tag time.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Least recently used first (`last_used`, else `first_seen`, else `Created`). Default;
    /// without history it is the same as `oldest`.
    #[default]
    Lru,
    /// Oldest first, by build or tag time (the later of `Created` and `LastTagTime`).
    /// (`when: disk_pressure` evicts by `lru` under `oldest`.)
    Oldest,
    /// Fewest recent uses first (the history's use counts decayed to now, `history.half_life`),
    /// ties by last use (as `lru`).
    Lfu,
    /// Largest first among the images idle for the same number of whole days (by last use as
    /// `lru`): the most idle day first, and within a day the largest own bytes first.
    Size,
}

/// `parents:` of a policy: what happens to the untagged parent chain of an image it deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Parents {
    /// Delete the untagged parents that nothing else needs, each by its own identity-checked
    /// call, after their children (what `docker rmi` does). Default.
    #[default]
    Delete,
    /// Leave them (they stay as untagged images no policy selects, unless one does).
    Keep,
}

/// `when:` of a policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum When {
    /// Every pass (default).
    #[default]
    Always,
    /// Only while the disk is at or over `disk.high`, least recently used first, until the
    /// estimate reaches `disk.low`.
    DiskPressure,
}

/// The policy keys of this module, validated.
pub(super) struct PolicyUsage {
    pub unused_for: Option<Duration>,
    pub order: Order,
    pub when: When,
    pub parents: Parents,
}

pub(super) fn policy_usage(ctx: &mut Ctx, raw: &RawPolicy, base: &str) -> Option<PolicyUsage> {
    let unused_for = raw.unused_for.as_ref().map(|s| {
        ctx.check(s, &join(base, "unused_for"), |t| {
            values::duration("unused_for", t)
        })
    });
    let order = raw
        .order
        .as_ref()
        .map(|s| ctx.check(s, &join(base, "order"), order));
    let when = raw
        .when
        .as_ref()
        .map(|s| ctx.check(s, &join(base, "when"), when));
    let parents = raw
        .parents
        .as_ref()
        .map(|s| ctx.check(s, &join(base, "parents"), parents));
    Some(PolicyUsage {
        unused_for: unused_for.unwrap_or(None),
        order: order.unwrap_or(Some(Order::Lru))?,
        when: when.unwrap_or(Some(When::Always))?,
        parents: parents.unwrap_or(Some(Parents::Delete))?,
    })
}

fn order(text: &str) -> Result<Order, Bad> {
    match text.trim() {
        "lru" => Ok(Order::Lru),
        "oldest" => Ok(Order::Oldest),
        "lfu" => Ok(Order::Lfu),
        "size" => Ok(Order::Size),
        _ => Err(Bad::new(
            format!("order {text:?} is not lru, oldest, lfu or size"),
            "it orders the evictions of max_total_size and disk_pressure: lru by last use, \
             lfu by fewest recent uses, size largest first by idle day (all three need the \
             history), oldest by build or tag time",
        )),
    }
}

fn when(text: &str) -> Result<When, Bad> {
    match text.trim() {
        "always" => Ok(When::Always),
        "disk_pressure" => Ok(When::DiskPressure),
        _ => Err(Bad::new(
            format!("when {text:?} is not always or disk_pressure"),
            "always deletes at every pass; disk_pressure only while the disk is over disk.high",
        )),
    }
}

fn parents(text: &str) -> Result<Parents, Bad> {
    match text.trim() {
        "delete" => Ok(Parents::Delete),
        "keep" => Ok(Parents::Keep),
        _ => Err(Bad::new(
            format!("parents {text:?} is not delete or keep"),
            "delete also deletes the untagged parents nothing else needs of an image the \
             policy deletes (as docker rmi does); keep leaves them",
        )),
    }
}

/// `none`, `repository` or `label:<key>`.
pub(super) fn group_by(text: &str) -> Result<GroupBy, Bad> {
    let text = text.trim();
    match text {
        "none" => Ok(GroupBy::None),
        "repository" => Ok(GroupBy::Repository),
        _ => match text.strip_prefix("label:") {
            Some(key) if !key.trim().is_empty() => Ok(GroupBy::Label(key.trim().to_owned())),
            Some(_) => Err(Bad::new(
                format!("group_by {text:?} has an empty label key"),
                "name the label to group by, e.g. label:com.example.project",
            )),
            None => Err(Bad::new(
                format!("group_by {text:?} is not a grouping"),
                "use none, repository or label:<key>",
            )),
        },
    }
}

/// `true` (no tag or digest), `false` (with a tag or digest) or `any`.
pub(super) fn dangling(text: &str) -> Result<Dangling, Bad> {
    match text.trim() {
        "any" => Ok(Dangling::Any),
        "true" => Ok(Dangling::Only),
        "false" => Ok(Dangling::Never),
        _ => Err(Bad::new(
            format!("dangling {text:?} is not true, false or any"),
            "true selects untagged images only, false tagged images only, any both",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_by_forms() {
        assert_eq!(group_by("none"), Ok(GroupBy::None));
        assert_eq!(group_by("repository"), Ok(GroupBy::Repository));
        assert_eq!(
            group_by("label:com.example.project"),
            Ok(GroupBy::Label("com.example.project".into()))
        );
        let empty = group_by("label:").expect_err("empty key");
        assert!(empty.message.contains("empty label key"));
        let other = group_by("repo").expect_err("unknown");
        assert_eq!(other.message, "group_by \"repo\" is not a grouping");
    }

    #[test]
    fn dangling_forms() {
        assert_eq!(dangling("any"), Ok(Dangling::Any));
        assert_eq!(dangling("true"), Ok(Dangling::Only));
        assert_eq!(dangling("false"), Ok(Dangling::Never));
        assert!(dangling("yes").is_err());
    }
}
