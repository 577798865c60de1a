//! Deleting one planned image, and only that image: re-check its identity on the engine
//! right before the call, delete by ID wherever the daemon's own checks then apply, and read
//! the daemon's answer for what really happened.
//!
//! The rules, in order:
//! - the image is inspected by ID; gone → `already_gone`;
//! - a reference it did not have at inventory time (a new tag or digest) → `skipped`
//!   ("tagged since the inventory"): deleting by ID would remove that reference too; a tagged
//!   image whose tag time moved on and that is still tagged (tagged again under the same
//!   name) → `skipped` too;
//! - a planned reference that now names another image (the tag moved) is never touched: the
//!   image itself is still deleted by ID if the daemon allows it;
//! - an image with at most one tag (and digests of that same repository) is deleted by ID:
//!   the daemon then refuses in-use images and images with children itself, before it untags
//!   anything;
//! - otherwise its extra references are removed one by one, each resolved first and removed
//!   only while it still names the planned image, then the image is deleted by ID;
//! - an answer that untagged but deleted nothing is `untagged_only`, never `deleted`.
//!
//! Engines offer no conditional delete: between the inspect and the delete there remains a
//! window of one round trip, which the daemon's own checks (in use, children, several tags)
//! still cover.

use std::collections::HashMap;

use super::outcome::{Outcome, UnplannedRemoval};
use super::parents::Chains;
use crate::engine::{Engine, EngineError, ImageState, RemoveReport};
use crate::inventory::{Image, ImageId};

/// Containers found right before a wave, by the image they use (short container ID).
pub(super) type InUse = HashMap<ImageId, String>;

/// What deleting one image came to, with notes worth logging (references that moved), the
/// `Deleted` records of the engine's answers besides the image itself (its layers, and any
/// parents an engine removed along with it), and what the answers removed that the plan did
/// not ask for.
pub(super) struct Attempt {
    pub outcome: Outcome,
    pub notes: Vec<String>,
    pub also_deleted: Vec<ImageId>,
    pub unplanned: Vec<UnplannedRemoval>,
}

/// Delete `planned` if it is still the image that was planned. `in_use` is the containers'
/// images listed before this wave, or `None` when that listing failed; `chains` tells which
/// parents an engine that deletes parents along may take.
pub(super) async fn delete<E: Engine>(
    engine: &E,
    planned: &Image,
    chains: &Chains<'_>,
    in_use: Option<&InUse>,
) -> Attempt {
    let mut calls = Calls {
        engine,
        planned,
        chains,
        notes: Vec::new(),
        also_deleted: Vec::new(),
        unplanned: Vec::new(),
    };
    let outcome = match engine.inspect_image(&planned.id.to_string()).await {
        Err(EngineError::NotFound(_)) => Outcome::AlreadyGone,
        Err(e) => Outcome::Failed {
            error: format!("cannot re-check the image before deleting it: {e}"),
        },
        Ok(now) => calls.delete_checked(&now, in_use).await,
    };
    Attempt {
        outcome,
        notes: calls.notes,
        also_deleted: calls.also_deleted,
        unplanned: calls.unplanned,
    }
}

/// The calls of one attempt, and what their answers said besides the outcome.
struct Calls<'a, E> {
    engine: &'a E,
    planned: &'a Image,
    chains: &'a Chains<'a>,
    notes: Vec<String>,
    also_deleted: Vec<ImageId>,
    unplanned: Vec<UnplannedRemoval>,
}

impl<E: Engine> Calls<'_, E> {
    async fn delete_checked(&mut self, now: &ImageState, in_use: Option<&InUse>) -> Outcome {
        let planned = self.planned;
        if now.id != planned.id {
            return Outcome::Failed {
                error: format!(
                    "the engine answered an inspect of {} with image {}",
                    planned.id, now.id
                ),
            };
        }
        if let Some(reason) = changed_since_the_plan(planned, now) {
            return Outcome::Skipped { reason };
        }
        for gone in (planned.references.iter()).filter(|r| !now.references.contains(r)) {
            let note = whereabouts(self.engine, gone).await;
            self.notes.push(note);
        }
        if self.engine.deletes_parents() {
            match self.chains.unplanned_parent(self.engine, planned.id).await {
                Ok(None) => {}
                Ok(Some(p)) => {
                    return Outcome::Skipped {
                        reason: format!(
                            "the engine would also delete its untagged parent {}, which the plan \
                             keeps (it ignores noprune)",
                            p.short()
                        ),
                    };
                }
                Err(e) => return refused(&e, &[]),
            }
        }
        if !is_single_reference(&now.references, &now.digests) {
            let user = match in_use.map(|m| m.get(&planned.id)) {
                None => Some("could not re-check containers before removing its references".into()),
                Some(Some(c)) => Some(format!(
                    "used by container {c}, created after the inventory"
                )),
                Some(None) => None,
            };
            if let Some(reason) = user {
                return Outcome::Skipped { reason };
            }
            if let Some(done) = self.remove_extra_references(now).await {
                return done;
            }
        }
        self.by_id().await
    }

    /// Remove the image's extra references one by one, each only while it still names the
    /// planned image. `Some` ends the attempt (refused, failed, or the image went with one).
    async fn remove_extra_references(&mut self, now: &ImageState) -> Option<Outcome> {
        let id = self.planned.id;
        let mut removed: Vec<&str> = Vec::new();
        for reference in extra_references(now) {
            match self.engine.inspect_image(reference).await {
                Ok(named) if named.id == id => {}
                Ok(other) => {
                    let note = format!("reference {reference} moved to {}", other.id.short());
                    self.notes.push(note);
                    continue;
                }
                Err(EngineError::NotFound(_)) => continue,
                Err(e) => return Some(refused(&e, &removed)),
            }
            match self.engine.remove_image(reference).await {
                Ok(report) => {
                    self.check_untag_answer(reference, &report);
                    if self.deleted(&report) {
                        return Some(Outcome::Deleted);
                    }
                    removed.push(reference);
                }
                Err(EngineError::NotFound(_)) => removed.push(reference),
                Err(e) => return Some(refused(&e, &removed)),
            }
        }
        None
    }

    /// The answer to untagging one extra `reference` of the planned image: an untag of
    /// anything the plan did not know the image by, or an image deleted other than the
    /// planned one, is an unplanned removal — the reference moved to another image after the
    /// re-check, and the engine untagged (and, when it was that image's last reference,
    /// deleted) it.
    fn check_untag_answer(&mut self, reference: &str, report: &RemoveReport) {
        let planned = self.planned.id.to_string();
        // When the call deleted the planned image (the name was its last tag), the other
        // `Deleted` entries are its layers (and, on an engine that ignores `noprune`, its
        // parents, which the executor checks as `also_deleted`): the name named it.
        // Otherwise every `Deleted` entry is another image and its layers; the answer does
        // not tell them apart, so all are reported.
        let deleted: Vec<String> = if report.deleted.contains(&planned) {
            Vec::new()
        } else {
            report.deleted.clone()
        };
        let known = |u: &String| {
            u == reference
                || self.planned.references.contains(u)
                || self.planned.digests.contains(u)
        };
        let others: Vec<&String> = report.untagged.iter().filter(|u| !known(u)).collect();
        if deleted.is_empty() && others.is_empty() {
            return;
        }
        let untagged = if others.is_empty() {
            Some(reference.to_owned())
        } else {
            Some(
                std::iter::once(reference)
                    .chain(others.iter().map(|s| s.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        };
        self.unplanned.push(UnplannedRemoval {
            reference: untagged,
            deleted,
            while_deleting: planned,
            call: format!("DELETE /images/{reference}"),
        });
    }

    /// The answer to deleting the planned image by ID: every reference it untagged must be
    /// one the plan knew the image by; another one (added after the re-check) was removed
    /// unplanned. `Deleted` records of known images the plan keeps are reported by the
    /// executor (`note_alongside`).
    fn check_by_id_answer(&mut self, report: &RemoveReport) {
        let planned = self.planned;
        let known = |r: &String| planned.references.contains(r) || planned.digests.contains(r);
        for added in report.untagged.iter().filter(|u| !known(u)) {
            self.unplanned.push(UnplannedRemoval {
                reference: Some(added.clone()),
                deleted: Vec::new(),
                while_deleting: planned.id.to_string(),
                call: format!("DELETE /images/{}", planned.id),
            });
        }
    }

    /// The last call: `DELETE /images/<id>`, and what its answer means.
    async fn by_id(&mut self) -> Outcome {
        let name = self.planned.id.to_string();
        let answer = self.engine.remove_image(&name).await;
        if let Ok(report) = &answer {
            self.check_by_id_answer(report);
        }
        match answer {
            Ok(report) if self.deleted(&report) => Outcome::Deleted,
            Ok(report) if !report.untagged.is_empty() => Outcome::UntaggedOnly {
                untagged: report.untagged,
            },
            Ok(_) => Outcome::Failed {
                error: "the engine answered the delete without deleting or untagging anything"
                    .to_owned(),
            },
            Err(EngineError::NotFound(_)) => Outcome::AlreadyGone,
            Err(e) => {
                let mut outcome = refused(&e, &[]);
                if let Outcome::Skipped { reason } = &mut outcome
                    && !self.notes.is_empty()
                {
                    *reason = format!("{}; {reason}", self.notes.join("; "));
                }
                outcome
            }
        }
    }

    /// True when the answer lists the planned image among the deleted; keeps the other
    /// `Deleted` records.
    fn deleted(&mut self, report: &RemoveReport) -> bool {
        let mut hit = false;
        for id in report
            .deleted
            .iter()
            .filter_map(|d| d.parse::<ImageId>().ok())
        {
            if id == self.planned.id {
                hit = true;
            } else {
                self.also_deleted.push(id);
            }
        }
        hit
    }
}

/// Why the image is no longer the one planned, if it is not: a reference it did not have
/// (deleting it would remove that too), or a tag time that moved on (tagged again).
fn changed_since_the_plan(planned: &Image, now: &ImageState) -> Option<String> {
    let known = |r: &String| planned.references.contains(r) || planned.digests.contains(r);
    let added: Vec<&str> = (now.references.iter().chain(&now.digests))
        .filter(|r| !known(r))
        .map(String::as_str)
        .collect();
    if !added.is_empty() {
        return Some(format!("tagged since the inventory: {}", added.join(", ")));
    }
    // A rebuild that hit the cache tags the image again under the same name: in use again.
    // An image with no tag left was not tagged again: its tag moved away (the containerd
    // image store dates that too, when the image becomes a dangling record).
    let t = now.last_tagged?;
    let newer = planned.last_tagged.is_none_or(|p| t > p);
    (newer && !planned.references.is_empty() && !now.references.is_empty()).then(|| {
        let at = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        format!("tagged again since the inventory (at {at})")
    })
}

/// Where a planned reference went: "reference app:1 moved to 3f2a1c9d8e7b", or removed.
async fn whereabouts<E: Engine>(engine: &E, reference: &str) -> String {
    match engine.inspect_image(reference).await {
        Ok(other) => format!("reference {reference} moved to {}", other.id.short()),
        Err(EngineError::NotFound(_)) => format!("reference {reference} was removed"),
        Err(e) => format!("reference {reference} is no longer on it ({e})"),
    }
}

/// The daemon deletes by ID only an image with at most one tag, whose digest references (if
/// any) are all of one repository — the tag's, when it has one (moby's `isSingleReference`).
pub(super) fn is_single_reference(tags: &[String], digests: &[String]) -> bool {
    if tags.len() > 1 {
        return false;
    }
    let repo = tags
        .first()
        .map(|t| repository_of_tag(t))
        .or_else(|| digests.first().map(|d| repository_of_digest(d)));
    digests
        .iter()
        .all(|d| Some(repository_of_digest(d)) == repo)
}

/// `registry:5000/app:1` → `registry:5000/app`.
fn repository_of_tag(reference: &str) -> &str {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => reference,
    }
}

/// `app@sha256:…` → `app`.
fn repository_of_digest(reference: &str) -> &str {
    reference
        .split_once('@')
        .map_or(reference, |(repo, _)| repo)
}

/// The references to remove by name so that one tag (and its repository's digests) is left.
fn extra_references(now: &ImageState) -> Vec<&String> {
    let keep_tag = now.references.iter().min();
    let repo = keep_tag
        .map(|t| repository_of_tag(t))
        .or_else(|| now.digests.iter().min().map(|d| repository_of_digest(d)));
    let tags = now.references.iter().filter(|r| Some(*r) != keep_tag);
    let digests = (now.digests.iter()).filter(|d| Some(repository_of_digest(d)) != repo);
    tags.chain(digests).collect()
}

/// A refusal (409) is a skip with the daemon's reason; anything else is a failure.
fn refused(e: &EngineError, removed: &[&str]) -> Outcome {
    let partly = if removed.is_empty() {
        String::new()
    } else {
        format!(" (after removing its references {})", removed.join(", "))
    };
    match e {
        EngineError::Conflict(msg) => Outcome::Skipped {
            reason: format!("{msg}{partly}"),
        },
        other => Outcome::Failed {
            error: format!("{other}{partly}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn single_reference_follows_the_daemons_rule() {
        assert!(is_single_reference(&[], &[]));
        assert!(is_single_reference(&v(&["app:1"]), &[]));
        assert!(is_single_reference(
            &v(&["app:1"]),
            &v(&["app@sha256:aa", "app@sha256:bb"])
        ));
        assert!(is_single_reference(&[], &v(&["app@sha256:aa"])));
        assert!(!is_single_reference(&v(&["app:1", "app:2"]), &[]));
        assert!(!is_single_reference(
            &v(&["app:1"]),
            &v(&["other@sha256:aa"])
        ));
        assert!(!is_single_reference(
            &[],
            &v(&["app@sha256:aa", "other@sha256:bb"])
        ));
        assert!(is_single_reference(
            &v(&["registry:5000/app:1"]),
            &v(&["registry:5000/app@sha256:aa"])
        ));
    }

    #[test]
    fn extra_references_leave_one_tag_and_its_repositorys_digests() {
        let state = |tags: &[&str], digests: &[&str]| ImageState {
            id: ImageId::from_bytes([1; 32]),
            references: v(tags),
            digests: v(digests),
            created: None,
            last_tagged: None,
        };
        let s = state(&["b:2", "a:1", "a:3"], &["a@sha256:x", "b@sha256:y"]);
        assert_eq!(extra_references(&s), vec!["b:2", "a:3", "b@sha256:y"]);
        let s = state(&[], &["b@sha256:y", "a@sha256:x"]);
        assert_eq!(extra_references(&s), vec!["b@sha256:y"]);
        assert!(extra_references(&state(&["a:1"], &[])).is_empty());
    }
}
