//! Builds in flight, as far as they can be seen without the build lock: the classic
//! builder runs every `RUN` step as a container created from a bare image ID (the previous
//! step's image, `sha256:…`), which people and tools almost never do. Pure: reads the
//! container list of the inventory, decides nothing about images.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::inventory::{Container, ImageId, short_id};

/// Something that makes deletions wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Build {
    /// The build lock is held shared: `stagesweep hold`, `flock -s`, or another pass that is
    /// deleting right now.
    LockHeld { path: PathBuf },
    /// A classic-builder step runs: a running container created from a bare image ID.
    ClassicStep { container: String, image: ImageId },
}

impl fmt::Display for Build {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Build::LockHeld { path } => write!(f, "build lock {} is held", path.display()),
            Build::ClassicStep { container, image } => write!(
                f,
                "classic build step running (container {} from image {})",
                short_id(container),
                image.short()
            ),
        }
    }
}

/// The classic-builder steps running now: running containers whose `Image` is a full bare
/// image ID (`sha256:<64 hex>` or the 64 digits alone). Short IDs and references do not count.
#[must_use]
pub fn classic_steps(containers: &[Container]) -> Vec<Build> {
    containers
        .iter()
        .filter(|c| c.state == "running")
        .filter_map(|c| {
            let image = c.image.parse::<ImageId>().ok()?;
            Some(Build::ClassicStep {
                container: c.id.clone(),
                image,
            })
        })
        .collect()
}

/// The builds as one line: `build lock … is held; classic build step running (…)`.
#[must_use]
pub fn describe(builds: &[Build]) -> String {
    builds
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::{build_step, container, fake_id};

    #[test]
    fn only_running_containers_from_a_bare_id_are_build_steps() {
        let mut short = container("short", "img", "running");
        short.image = fake_id("img").short();
        let mut bare_hex = container("hex", "img", "running");
        bare_hex.image = hex::encode(fake_id("img").as_bytes());
        let containers = [
            build_step("step", "img", "running"),
            bare_hex,
            build_step("done", "img", "exited"),
            build_step("created", "img", "created"),
            container("app", "app:1", "running"),
            short,
        ];
        let steps = classic_steps(&containers);
        let names: Vec<_> = steps
            .iter()
            .map(|b| match b {
                Build::ClassicStep { container, image } => {
                    assert_eq!(*image, fake_id("img"));
                    container.clone()
                }
                Build::LockHeld { .. } => panic!("no lock here"),
            })
            .collect();
        assert_eq!(names, [containers[0].id.clone(), containers[1].id.clone()]);
    }

    #[test]
    fn builds_render_in_text_and_json() {
        let step = build_step("step", "img", "running");
        let builds = [
            Build::LockHeld {
                path: "/run/stagesweep/builds.lock".into(),
            },
            classic_steps(std::slice::from_ref(&step)).remove(0),
        ];
        assert_eq!(
            describe(&builds),
            format!(
                "build lock /run/stagesweep/builds.lock is held; classic build step running \
                 (container {} from image {})",
                short_id(&step.id),
                fake_id("img").short()
            )
        );
        let json = serde_json::to_value(&builds).expect("serializes");
        assert_eq!(json[0]["kind"], "lock_held");
        assert_eq!(json[1]["kind"], "classic_step");
        assert_eq!(json[1]["image"], fake_id("img").to_string());
    }
}
