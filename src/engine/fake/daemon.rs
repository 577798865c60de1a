//! The daemon's `DELETE /images/{name}` rules (force=false, noprune=true) on plain values, as
//! Docker 20.10 applies them (each message checked against a real daemon), or with
//! [`Rules::children_refuse`] off as the containerd image store and Podman do: an image with
//! children is deleted by ID (the children keep their layers).

/// How the daemon answers where engines differ.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules {
    /// An image with children is refused (409 "image has dependent child images"), as on
    /// Docker with overlay2; off, it is deleted.
    pub children_refuse: bool,
    /// Like Podman: deleting an image also deletes its untagged parents left without
    /// children, whatever `noprune` says.
    pub deletes_parents: bool,
}

impl Default for Rules {
    /// Docker 20.10's.
    fn default() -> Self {
        Self {
            children_refuse: true,
            deletes_parents: false,
        }
    }
}

use super::world::World;
use crate::engine::{EngineError, RemoveReport};
use crate::inventory::{Container, Image, ImageId, short_id};

pub(super) fn remove(
    world: &mut World,
    name: &str,
    rules: Rules,
) -> Result<RemoveReport, EngineError> {
    let World { images, containers } = world;
    let mut report = RemoveReport::default();
    if let Some((idx, reference)) = find_reference(images, name) {
        let id = images[idx].id;
        let in_use = containers.iter().find(|c| c.image_id == id);
        if let (1, Some(c)) = (images[idx].references.len(), in_use) {
            return Err(EngineError::Conflict(format!(
                "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                short_id(&c.id),
                id.short()
            )));
        }
        images[idx].references.retain(|r| *r != reference);
        report.untagged.push(reference);
        // Still referenced, or now an untagged parent: the untag was the whole job.
        if images[idx].references.is_empty() && !(rules.children_refuse && has_children(images, id))
        {
            report.untagged.append(&mut images[idx].digests);
            delete(images, containers, id, rules, &mut report)?;
        }
        return Ok(report);
    }
    let id = find_id(images, name)?;
    let idx = position(images, id);
    if images[idx].references.len() > 1 {
        return Err(EngineError::Conflict(format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            id.short()
        )));
    }
    check_conflict(images, containers, id, rules)?;
    report.untagged.append(&mut images[idx].references);
    report.untagged.append(&mut images[idx].digests);
    delete(images, containers, id, rules, &mut report)?;
    Ok(report)
}

/// Like Podman: [`remove`], then the untagged parents left without children and unused go
/// too.
pub(super) fn remove_with_parents(
    world: &mut World,
    name: &str,
    rules: Rules,
) -> Result<RemoveReport, EngineError> {
    let target = resolve(&world.images, name)?.id;
    let mut trial = world.clone();
    let mut report = remove(&mut trial, name, rules)?;
    let mut next = world
        .images
        .iter()
        .find(|i| i.id == target)
        .and_then(|i| i.parent_id);
    let deleted_target = !trial.images.iter().any(|i| i.id == target);
    while let Some(p) = next.filter(|_| deleted_target) {
        let Some(parent) = trial.images.iter().find(|i| i.id == p) else {
            break;
        };
        let orphaned = parent.references.is_empty()
            && !has_children(&trial.images, p)
            && !trial.containers.iter().any(|c| c.image_id == p);
        if !orphaned {
            break;
        }
        next = parent.parent_id;
        trial.images.retain(|i| i.id != p);
        report.deleted.push(p.to_string());
    }
    *world = trial;
    Ok(report)
}

/// The image `name` (a reference or an ID) names now, as `GET /images/{name}/json` finds it.
pub(super) fn resolve<'a>(images: &'a [Image], name: &str) -> Result<&'a Image, EngineError> {
    if let Some((idx, _)) = find_reference(images, name) {
        return Ok(&images[idx]);
    }
    let id = find_id(images, name)?;
    Ok(&images[position(images, id)])
}

/// `name` as a reference (`repo` means `repo:latest`): the image index and the reference.
fn find_reference(images: &[Image], name: &str) -> Option<(usize, String)> {
    let last = name.rsplit('/').next().unwrap_or(name);
    let full = if last.contains(':') || name.contains('@') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    };
    images
        .iter()
        .position(|i| i.references.contains(&full))
        .map(|idx| (idx, full))
}

/// `name` as a full ID, `sha256:`-prefixed or bare hex, or a unique hex prefix.
fn find_id(images: &[Image], name: &str) -> Result<ImageId, EngineError> {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    let not_found = || EngineError::NotFound(format!("No such image: {name}"));
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let hex = hex.to_ascii_lowercase();
    let mut hits = images
        .iter()
        .filter(|i| hex::encode(i.id.as_bytes()).starts_with(&hex));
    match (hits.next(), hits.next()) {
        (Some(one), None) => Ok(one.id),
        (Some(_), Some(_)) => Err(EngineError::Other(format!(
            "multiple IDs found with provided prefix: {hex}"
        ))),
        (None, _) => Err(not_found()),
    }
}

fn position(images: &[Image], id: ImageId) -> usize {
    images
        .iter()
        .position(|i| i.id == id)
        .expect("callers pass IDs of present images")
}

fn has_children(images: &[Image], id: ImageId) -> bool {
    images.iter().any(|i| i.parent_id == Some(id))
}

fn check_conflict(
    images: &[Image],
    containers: &[Container],
    id: ImageId,
    rules: Rules,
) -> Result<(), EngineError> {
    let conflict = |how: &str, what: String| {
        Err(EngineError::Conflict(format!(
            "conflict: unable to delete {} ({how}) - {what}",
            id.short()
        )))
    };
    if rules.children_refuse && has_children(images, id) {
        return conflict(
            "cannot be forced",
            "image has dependent child images".into(),
        );
    }
    if let Some(c) = containers.iter().find(|c| c.image_id == id) {
        let (how, kind) = if c.state == "running" {
            ("cannot be forced", "running")
        } else {
            ("must be forced", "stopped")
        };
        return conflict(
            how,
            format!(
                "image is being used by {kind} container {}",
                short_id(&c.id)
            ),
        );
    }
    Ok(())
}

/// Delete an untagged, unused image, childless unless the daemon does not mind (never its
/// parents: noprune).
fn delete(
    images: &mut Vec<Image>,
    containers: &[Container],
    id: ImageId,
    rules: Rules,
    report: &mut RemoveReport,
) -> Result<(), EngineError> {
    check_conflict(images, containers, id, rules)?;
    let removed = images.remove(position(images, id));
    report.deleted.push(removed.id.to_string());
    report.deleted.push(layer_id(removed.id));
    Ok(())
}

/// The `Deleted:` record the daemon adds for an image's own layer (not an image ID).
fn layer_id(image_id: ImageId) -> String {
    let mut bytes = *image_id.as_bytes();
    bytes.reverse();
    ImageId::from_bytes(bytes).to_string()
}
