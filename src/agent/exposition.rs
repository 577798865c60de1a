//! Which text format `/metrics` answers in, chosen from the request's `Accept` header as the
//! official Go client does (`expfmt.NegotiateIncludingOpenMetrics`): the media ranges in order
//! of preference (`q`), the first that is `OpenMetrics` (version 0.0.1, 1.0.0 or none) or
//! `text/plain` (version 0.0.4 or none) wins; anything else, or no header (`curl`), gets the
//! Prometheus text format 0.0.4, which every scraper and `promtool check metrics` read.
//! Prometheus itself asks for `OpenMetrics` first when its scrape config allows it.

use std::str::FromStr;

use mime::Mime;
use prometheus_client::registry::Registry;

/// A text exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/openmetrics-text; version=1.0.0`
    OpenMetrics,
    /// `text/plain; version=0.0.4`, the classic Prometheus text format.
    Text,
}

impl Format {
    /// The format for an `Accept` header value (absent: [`Format::Text`]).
    #[must_use]
    pub fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut ranges: Vec<(f32, Mime)> = accept
            .split(',')
            .filter_map(|r| Mime::from_str(r.trim()).ok())
            .map(|m| (quality(&m), m))
            .filter(|(q, _)| *q > 0.0)
            .collect();
        // Stable: equal preferences keep the order the client wrote them in.
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (_, m) in ranges {
            let version = m.get_param("version").map(|v| v.as_str().to_owned());
            let version = version.as_deref();
            let essence = m.essence_str();
            if essence == "text/plain" && matches!(version, None | Some("0.0.4")) {
                return Format::Text;
            }
            if essence == "application/openmetrics-text"
                && matches!(version, None | Some("0.0.1" | "1.0.0"))
            {
                return Format::OpenMetrics;
            }
        }
        Format::Text
    }

    /// The `Content-Type` of an answer in this format.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// The `q` parameter of a media range (1 when absent or unreadable).
fn quality(m: &Mime) -> f32 {
    m.get_param("q")
        .and_then(|q| q.as_str().parse::<f32>().ok())
        .filter(|q| (0.0..=1.0).contains(q))
        .unwrap_or(1.0)
}

/// `registry` in `format`.
#[must_use]
pub fn encode(registry: &Registry, format: Format) -> String {
    let mut out = String::new();
    let written = match format {
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, registry),
        Format::Text => prometheus_client::encoding::prometheus_text::encode(&mut out, registry),
    };
    written.expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_like_the_go_client() {
        let cases = [
            (None, Format::Text),
            (Some("*/*"), Format::Text),
            (Some("text/plain"), Format::Text),
            (Some("application/json"), Format::Text),
            (Some("application/openmetrics-text"), Format::OpenMetrics),
            // What Prometheus 2.x sends by default.
            (
                Some(
                    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                ),
                Format::OpenMetrics,
            ),
            // Prometheus with OpenMetrics scraping turned off.
            (Some("text/plain;version=0.0.4;q=1,*/*;q=0.1"), Format::Text),
            (
                Some("text/plain;version=0.0.4;q=0.3, application/openmetrics-text;q=0.9"),
                Format::OpenMetrics,
            ),
            (
                Some("application/openmetrics-text; version=2.0.0"),
                Format::Text,
            ),
            (
                Some("text/plain; version=9.9, application/openmetrics-text"),
                Format::OpenMetrics,
            ),
            (
                Some("application/openmetrics-text;q=0, text/plain"),
                Format::Text,
            ),
            (Some("garbage;;;,,"), Format::Text),
        ];
        for (accept, want) in cases {
            assert_eq!(Format::negotiate(accept), want, "Accept: {accept:?}");
        }
    }
}
