//! Scalar parsers for configuration values: durations, sizes, listen addresses, time zones, engine hosts. Each returns the typed value or a [`Bad`]
//! (message naming the value, and the way out). Pure: knows nothing of YAML or locations.

use std::net::SocketAddr;
use std::time::Duration;

/// What is wrong with a value, and the way out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Bad {
    pub message: String,
    pub hint: Option<String>,
}

impl Bad {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// A message that already names the way out.
    pub fn bare(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }
}

const DURATION_HINT: &str = "write durations like 90s, 15m, 36h, 7d or 2w";

/// The longest duration any key accepts: 100 years (of 365.25 days, as humantime counts
/// `1y`). Longer ones mean a typo, and would overflow time arithmetic downstream.
pub(super) const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

/// The largest size any key accepts: 1 EB (10^18 bytes).
pub(super) const MAX_SIZE: u64 = 1_000_000_000_000_000_000;

/// A humantime duration (`90s`, `15m`, `36h`, `7d`, `2w`), at most [`MAX_DURATION`];
/// `field` names it in messages.
pub(super) fn duration(field: &str, text: &str) -> Result<Duration, Bad> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        Bad::new(
            format!("{field} {text:?} is not a duration: {e}"),
            DURATION_HINT,
        )
    })?;
    at_most_max(field, text, d)
}

/// `d` when it is at most [`MAX_DURATION`].
fn at_most_max(field: &str, text: &str, d: Duration) -> Result<Duration, Bad> {
    if d > MAX_DURATION {
        return Err(Bad::new(
            format!("{field} {text:?} is longer than 100 years"),
            "durations are at most 100y; did you mean a shorter unit?",
        ));
    }
    Ok(d)
}

/// The engine timeout: a duration of whole seconds, at least 1s.
pub(super) fn whole_seconds(field: &str, text: &str) -> Result<Duration, Bad> {
    let d = duration(field, text)?;
    if d < Duration::from_secs(1) {
        return Err(Bad::new(
            format!("{field} {text:?} is shorter than 1s"),
            "the engine timeout is kept in whole seconds; use 1s or more, e.g. 60s",
        ));
    }
    if d.subsec_nanos() != 0 {
        return Err(Bad::new(
            format!("{field} {text:?} is not a whole number of seconds"),
            "the engine timeout is kept in whole seconds; round it, e.g. 2s",
        ));
    }
    Ok(d)
}

/// A byte size (`500MB`, `10GB`, `10GiB`, or plain bytes), at most [`MAX_SIZE`].
pub(super) fn size(field: &str, text: &str) -> Result<u64, Bad> {
    let bytes = text
        .trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| {
            Bad::new(
                format!("{field} {text:?} is not a size"),
                "write sizes like 500MB, 10GB or 10GiB",
            )
        })?;
    // bytesize saturates at u64::MAX (about 18.4 EB): anything at or above the cap is refused.
    if bytes > MAX_SIZE {
        return Err(Bad::new(
            format!("{field} {text:?} is larger than 1 EB"),
            "sizes are at most 1EB; did you mean a smaller unit?",
        ));
    }
    Ok(bytes)
}

/// An `ip:port` socket address.
pub(super) fn listen(text: &str) -> Result<SocketAddr, Bad> {
    text.trim().parse().map_err(|_| {
        Bad::new(
            format!("listen address {text:?} is not ip:port"),
            "use an address like 127.0.0.1:9477 or [::]:9477",
        )
    })
}

/// An IANA time zone name.
pub(super) fn timezone(text: &str) -> Result<chrono_tz::Tz, Bad> {
    text.trim().parse().map_err(|_| {
        Bad::new(
            format!("timezone {text:?} is not an IANA time zone"),
            "use a name like UTC, Europe/Berlin or America/New_York",
        )
    })
}

/// An engine address with a scheme bollard understands.
pub(super) fn host(text: &str) -> Result<String, Bad> {
    const SCHEMES: [&str; 4] = ["unix://", "tcp://", "http://", "https://"];
    let text = text.trim();
    if text.starts_with("ssh://") {
        return Err(Bad::new(
            format!("docker host {text:?} uses ssh://, which stagesweep does not support"),
            "forward the socket (ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock HOST) and use unix:///tmp/docker.sock",
        ));
    }
    let rest = SCHEMES.iter().find_map(|s| text.strip_prefix(s));
    match rest {
        Some(rest) if !rest.is_empty() => Ok(text.to_owned()),
        _ => Err(Bad::new(
            format!("docker host {text:?} is not an engine address"),
            "use unix:///var/run/docker.sock or tcp://host:2375, or leave it out to use $DOCKER_HOST",
        )),
    }
}

/// A duration as people write it (`36h`, `7d`, `90s`); the text parses back to the same value.
pub(crate) fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() != 0 {
        return format!("{}ms", d.as_millis());
    }
    crate::units::fmt_duration(d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok = [
            ("90s", 90),
            ("15m", 900),
            ("36h", 129_600),
            ("7d", 604_800),
            ("2w", 1_209_600),
            ("1h 30m", 5_400),
            (" 1h ", 3_600),
            ("0s", 0),
        ];
        for (text, secs) in ok {
            assert_eq!(
                duration("min_age", text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for text in ["15", "soon", "", "-1h", "1 fortnight"] {
            let bad = duration("min_age", text).expect_err(text);
            assert!(
                bad.message
                    .starts_with(&format!("min_age {text:?} is not a duration"))
            );
            assert_eq!(bad.hint.as_deref(), Some(DURATION_HINT));
        }
    }

    #[test]
    fn whole_seconds_for_the_timeout() {
        assert_eq!(whole_seconds("timeout", "60s"), Ok(Duration::from_secs(60)));
        assert_eq!(whole_seconds("timeout", "2m"), Ok(Duration::from_secs(120)));
        let cases = [
            ("500ms", "is shorter than 1s"),
            ("0s", "is shorter than 1s"),
            ("1500ms", "is not a whole number of seconds"),
            ("60", "is not a duration"),
        ];
        for (text, want) in cases {
            let bad = whole_seconds("timeout", text).expect_err(text);
            assert!(bad.message.contains(want), "{text}: {}", bad.message);
        }
    }

    #[test]
    fn sizes() {
        let ok = [
            ("500MB", 500_000_000),
            ("10GB", 10_000_000_000),
            ("10GiB", 10 * 1024 * 1024 * 1024),
            ("1.5 GB", 1_500_000_000),
            ("1024", 1024),
        ];
        for (text, bytes) in ok {
            assert_eq!(size("max_total_size", text), Ok(bytes), "{text}");
        }
        for text in ["ten gigs", "10XB", ""] {
            let bad = size("max_total_size", text).expect_err(text);
            assert!(bad.message.contains("is not a size"), "{}", bad.message);
        }
    }

    #[test]
    fn listen_timezone_and_host() {
        assert!(listen("127.0.0.1:9477").is_ok());
        assert!(listen("[::]:9477").is_ok());
        assert!(listen("localhost:9477").is_err());
        assert!(listen("9477").is_err());
        assert_eq!(timezone("Europe/Berlin"), Ok(chrono_tz::Europe::Berlin));
        assert!(timezone("Mars/Olympus").is_err());
        assert!(host("unix:///var/run/docker.sock").is_ok());
        assert!(host("tcp://10.0.0.1:2375").is_ok());
        assert!(host("/var/run/docker.sock").is_err());
        assert!(host("tcp://").is_err());
    }

    #[test]
    fn format_duration_round_trips() {
        let cases = [
            (3_600, "1h"),
            (129_600, "36h"),
            (604_800, "7d"),
            (90, "90s"),
            (5_400, "90m"),
            (0, "0s"),
        ];
        for (secs, text) in cases {
            let d = Duration::from_secs(secs);
            assert_eq!(format_duration(d), text);
            assert_eq!(duration("x", text), Ok(d));
        }
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    }
}
