//! Answers that are not Docker API answers: not HTTP, cut off mid-answer, not the JSON a call
//! expects. A daemon killed mid-call, a proxy or something else on the socket produces them;
//! they become [`EngineError::Unreachable`] (the connection broke) or
//! [`EngineError::Garbled`] (it answered nonsense), both of which stop a pass.

use bollard::errors::Error as BollardError;

use super::transport::HINT_NOT_RUNNING;
use crate::engine::EngineError;

/// The connection closed before the answer was complete.
const CAUSE_CLOSED: &str = "the connection closed in the middle of an answer";

/// Classify protocol-level failures; `None` for anything else.
pub(super) fn classify(err: &BollardError, host: &str, what: &str) -> Option<EngineError> {
    let garbled = |cause: String| EngineError::Garbled {
        host: host.to_owned(),
        what: what.to_owned(),
        cause,
    };
    match err {
        BollardError::JsonDataError { message, .. } => {
            return Some(garbled(format!("not the JSON expected: {message}")));
        }
        BollardError::JsonSerdeError { err } => {
            return Some(garbled(format!("not the JSON expected: {err}")));
        }
        BollardError::StrParseError { err } => {
            return Some(garbled(format!("not UTF-8: {err}")));
        }
        BollardError::APIVersionParseError {} => {
            return Some(garbled("no API version in its /version answer".to_owned()));
        }
        _ => {}
    }
    let hyper = hyper_error_in_chain(err)?;
    if hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled() {
        return Some(EngineError::Unreachable {
            host: host.to_owned(),
            cause: CAUSE_CLOSED.to_owned(),
            hint: HINT_NOT_RUNNING.to_owned(),
        });
    }
    if hyper.is_parse() || hyper.is_parse_status() || hyper.is_parse_too_large() {
        return Some(garbled(format!("not HTTP: {hyper}")));
    }
    None
}

fn hyper_error_in_chain(err: &BollardError) -> Option<&hyper::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            return Some(h);
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "unix:///run/x/docker.sock";

    #[test]
    fn unreadable_json_is_garbled_and_names_the_host() {
        let err = BollardError::JsonDataError {
            message: "expected value".into(),
            column: 1,
        };
        let e = classify(&err, HOST, "list images").expect("classified");
        assert!(matches!(e, EngineError::Garbled { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains(HOST) && text.contains("list images"),
            "{text}"
        );
        assert!(e.is_gone());
    }

    #[test]
    fn a_version_answer_without_a_version_is_garbled() {
        let e = classify(&BollardError::APIVersionParseError {}, HOST, "negotiate")
            .expect("classified");
        assert!(matches!(e, EngineError::Garbled { .. }), "{e:?}");
    }

    #[test]
    fn other_errors_are_left_to_the_caller() {
        let err = BollardError::DockerResponseServerError {
            status_code: 500,
            message: "boom".into(),
        };
        assert_eq!(classify(&err, HOST, "x"), None);
    }
}
