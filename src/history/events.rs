//! What an engine event means for the history: container create/start and image
//! tag/load/import/pull/create are "used now", image delete is a removal; everything else
//! (die, destroy, untag, exec, …) changes nothing.

use crate::engine::{EngineEvent, EventKind};

/// An event's meaning, naming the image as the event does (an ID or a reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation<'e> {
    Used(&'e str),
    Removed(&'e str),
    Nothing,
}

/// Read one event.
#[must_use]
pub fn observe(e: &EngineEvent) -> Observation<'_> {
    match (e.kind, e.action.as_str()) {
        (EventKind::Container, "create" | "start") => e
            .image
            .as_deref()
            .map_or(Observation::Nothing, Observation::Used),
        (EventKind::Image, "tag" | "load" | "import" | "pull" | "create") => {
            Observation::Used(&e.actor)
        }
        (EventKind::Image, "delete") => Observation::Removed(&e.actor),
        _ => Observation::Nothing,
    }
}

/// Whether a use counts in the image's use count ([`super::Uses`]): every use but a
/// container start (a `docker run` is one use, its create; a restart is none).
#[must_use]
pub fn counts(e: &EngineEvent) -> bool {
    !(e.kind == EventKind::Container && e.action == "start")
}

/// Unix seconds of a `timeNano`.
#[must_use]
pub fn secs(time_nano: i64) -> i64 {
    time_nano.div_euclid(1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, action: &str, actor: &str, image: Option<&str>) -> EngineEvent {
        EngineEvent {
            time_nano: 1,
            kind,
            action: action.into(),
            actor: actor.into(),
            image: image.map(str::to_owned),
        }
    }

    #[test]
    fn uses_removals_and_the_rest() {
        use EventKind::{Container, Image};
        let cases = [
            (
                event(Container, "start", "c1", Some("bb:1")),
                Observation::Used("bb:1"),
            ),
            (
                event(Container, "create", "c1", Some("sha256:ab")),
                Observation::Used("sha256:ab"),
            ),
            (
                event(Container, "die", "c1", Some("bb:1")),
                Observation::Nothing,
            ),
            (
                event(Container, "exec_start: sh", "c1", Some("bb:1")),
                Observation::Nothing,
            ),
            (
                event(Image, "pull", "busybox:latest", None),
                Observation::Used("busybox:latest"),
            ),
            (
                event(Image, "load", "sha256:ab", None),
                Observation::Used("sha256:ab"),
            ),
            (
                event(Image, "tag", "sha256:ab", None),
                Observation::Used("sha256:ab"),
            ),
            (
                event(Image, "untag", "sha256:ab", None),
                Observation::Nothing,
            ),
            (
                event(Image, "delete", "sha256:ab", None),
                Observation::Removed("sha256:ab"),
            ),
        ];
        for (e, want) in &cases {
            assert_eq!(observe(e), *want, "{e:?}");
        }
        let counted: Vec<bool> = cases.iter().map(|(e, _)| counts(e)).collect();
        assert_eq!(
            &counted[..2],
            [false, true],
            "a start is no new use; create is"
        );
        assert_eq!(secs(1_700_000_000_999_999_999), 1_700_000_000);
    }
}
