//! `GET /events` through bollard: filtered to containers and images, `since`/`until` as Unix
//! seconds with nanoseconds, each message mapped to an [`EngineEvent`].

use std::collections::HashMap;

use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt as _;

use super::classify::classify;
use super::connect::DockerEngine;
use crate::engine::{EngineEvent, EventKind, EventStream};

/// `timeNano` as the API's `seconds.nanoseconds`.
pub(super) fn api_time(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let sub = nanos.rem_euclid(1_000_000_000);
    format!("{secs}.{sub:09}")
}

impl DockerEngine {
    pub(super) fn event_stream(&self, since: Option<i64>, until: Option<i64>) -> EventStream {
        let filters = HashMap::from([("type", vec!["container", "image"])]);
        let mut opts = EventsOptionsBuilder::new().filters(&filters);
        if let Some(s) = since {
            opts = opts.since(&api_time(s));
        }
        if let Some(u) = until {
            opts = opts.until(&api_time(u));
        }
        let host = self.host.clone();
        let timeout = self.timeout_secs;
        self.docker
            .events(Some(opts.build()))
            .filter_map(move |item| {
                let out = match item {
                    Ok(message) => to_event(message).map(Ok),
                    Err(e) => Some(Err(classify(e, &host, timeout, "read events"))),
                };
                std::future::ready(out)
            })
            .boxed()
    }
}

/// Only container and image events with a time; anything else is skipped.
fn to_event(m: EventMessage) -> Option<EngineEvent> {
    let kind = match m.typ? {
        EventMessageTypeEnum::CONTAINER => EventKind::Container,
        EventMessageTypeEnum::IMAGE => EventKind::Image,
        _ => return None,
    };
    let time_nano = m
        .time_nano
        .or_else(|| m.time.map(|t| t.saturating_mul(1_000_000_000)))?;
    let actor = m.actor.unwrap_or_default();
    let mut attributes = actor.attributes.unwrap_or_default();
    Some(EngineEvent {
        time_nano,
        kind,
        action: m.action.unwrap_or_default(),
        actor: actor.id.unwrap_or_default(),
        image: attributes.remove("image"),
    })
}

#[cfg(test)]
mod tests {
    use bollard::models::EventActor;

    use super::*;

    #[test]
    fn times_go_out_as_seconds_dot_nanoseconds() {
        assert_eq!(api_time(1_700_000_000_000_000_042), "1700000000.000000042");
        assert_eq!(api_time(5), "0.000000005");
    }

    #[test]
    fn messages_map_to_events_and_other_types_are_skipped() {
        let message = |typ, action: &str| EventMessage {
            typ: Some(typ),
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("c1".into()),
                attributes: Some(HashMap::from([("image".into(), "bb:latest".into())])),
            }),
            time: Some(1_700_000_000),
            time_nano: None,
            ..EventMessage::default()
        };
        let e = to_event(message(EventMessageTypeEnum::CONTAINER, "start")).expect("kept");
        assert_eq!(
            e,
            EngineEvent {
                time_nano: 1_700_000_000_000_000_000,
                kind: EventKind::Container,
                action: "start".into(),
                actor: "c1".into(),
                image: Some("bb:latest".into()),
            }
        );
        assert_eq!(
            to_event(message(EventMessageTypeEnum::NETWORK, "connect")),
            None
        );
        assert_eq!(to_event(EventMessage::default()), None);
    }
}
