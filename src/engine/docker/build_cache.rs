//! `POST /build/prune` for a set of records on the negotiated API version: one anchored `id`
//! filter `^(a|b|c)$` (20.10 matches `id` as a regular expression and refuses a filter with
//! several values, so one `type` per call: none is sent, the IDs name the records, whose type
//! never changes; in one call it deletes a child and then its parent), the `unused-for`
//! filter, and the
//! storage bound as `keep-storage` before API 1.48 or `reserved-space` + `max-used-space`
//! since (an older engine refuses a `/v1.48/` path, and ignores an unversioned
//! `reserved-space`). `all` only when the plan selected a shared, internal or frontend record.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::models::BuildPruneResponse;

use super::connect::DockerEngine;
use super::raw::{self, ApiVersion};
use crate::engine::{CachePrune, CachePruneReport, EngineError};

/// A duration as Go's `time.ParseDuration` reads it (all Docker 20.10 accepts): `604800s`.
fn go_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// `^(a|b)$` (`^a$` for one): exactly these records, each ID regex-escaped (BuildKit IDs are
/// alphanumeric anyway).
fn anchored(ids: &[String]) -> String {
    let escaped: Vec<String> = (ids.iter())
        .map(|id| {
            id.chars()
                .fold(String::with_capacity(id.len()), |mut out, c| {
                    if !c.is_ascii_alphanumeric() {
                        out.push('\\');
                    }
                    out.push(c);
                    out
                })
        })
        .collect();
    match &escaped[..] {
        [one] => format!("^{one}$"),
        many => format!("^({})$", many.join("|")),
    }
}

/// The path and query of the prune call for `request` on `api`.
pub(super) fn path(api: ApiVersion, request: &CachePrune) -> String {
    let mut filters: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    filters.insert("id", vec![anchored(&request.ids)]);
    if let Some(d) = request.unused_for {
        filters.insert("unused-for", vec![go_duration(d)]);
    }
    let filters =
        serde_json::to_string(&filters).expect("a map of strings always serializes to JSON");
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("filters", &filters);
    if request.all {
        query.append_pair("all", "1");
    }
    if let Some(bytes) = request.keep_storage {
        let bytes = bytes.to_string();
        if api >= ApiVersion::v1(48) {
            query.append_pair("reserved-space", &bytes);
            query.append_pair("max-used-space", &bytes);
        } else {
            query.append_pair("keep-storage", &bytes);
        }
    }
    format!("{}/build/prune?{}", api.prefix(), query.finish())
}

fn to_report(answer: BuildPruneResponse) -> CachePruneReport {
    CachePruneReport {
        deleted: answer.caches_deleted.unwrap_or_default(),
        reclaimed_bytes: (answer.space_reclaimed)
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0),
    }
}

impl DockerEngine {
    /// Delete one build cache record (see the module documentation).
    pub(super) async fn prune_one_record(
        &self,
        request: &CachePrune,
    ) -> Result<CachePruneReport, EngineError> {
        let path = path(ApiVersion::of(&self.docker), request);
        let what = match &request.ids[..] {
            [one] => format!("prune build cache record {one}"),
            many => format!("prune {} build cache records", many.len()),
        };
        let answer = self
            .call(&what, raw::post_build_prune(&self.docker, &path))
            .await?;
        Ok(to_report(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> CachePrune {
        CachePrune {
            ids: vec!["uf12l0ts3vv6bpgrorhfktszx".into()],
            all: false,
            unused_for: Some(Duration::from_secs(7 * 86_400)),
            keep_storage: Some(10_000_000_000),
        }
    }

    /// The query, decoded, as (key, value) pairs.
    fn query(path: &str) -> Vec<(String, String)> {
        let (_, q) = path.split_once('?').expect("a query");
        form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }

    #[test]
    fn filters_are_the_same_on_every_version_and_the_id_is_anchored() {
        for minor in [41, 44, 48, 52] {
            let p = path(ApiVersion::v1(minor), &request());
            assert!(p.starts_with(&format!("/v1.{minor}/build/prune?")), "{p}");
            let q = query(&p);
            assert_eq!(q[0].0, "filters");
            let filters: BTreeMap<String, Vec<String>> = serde_json::from_str(&q[0].1).unwrap();
            assert_eq!(filters["id"], ["^uf12l0ts3vv6bpgrorhfktszx$"]);
            assert!(
                !filters.contains_key("type"),
                "the IDs name the records: one call takes every type"
            );
            assert_eq!(filters["unused-for"], ["604800s"]);
            assert!(
                !filters.contains_key("label"),
                "the engine ignores label filters"
            );
            assert!(q.iter().all(|(k, _)| k != "all"), "all only when asked");
        }
    }

    #[test]
    fn the_storage_bound_follows_the_api_version() {
        let keys = |minor| -> Vec<(String, String)> {
            query(&path(ApiVersion::v1(minor), &request()))
                .into_iter()
                .skip(1)
                .collect()
        };
        let ten_gb = "10000000000".to_owned();
        for minor in [41, 44] {
            assert_eq!(keys(minor), [("keep-storage".to_owned(), ten_gb.clone())]);
        }
        for minor in [48, 52] {
            assert_eq!(
                keys(minor),
                [
                    ("reserved-space".to_owned(), ten_gb.clone()),
                    ("max-used-space".to_owned(), ten_gb.clone())
                ]
            );
        }
    }

    #[test]
    fn shared_records_ask_for_all_and_zero_guards_are_left_out() {
        let r = CachePrune {
            all: true,
            unused_for: None,
            keep_storage: None,
            ..request()
        };
        let q = query(&path(ApiVersion::v1(41), &r));
        assert_eq!(q[1], ("all".to_owned(), "1".to_owned()));
        assert_eq!(q.len(), 2);
        let filters: BTreeMap<String, Vec<String>> = serde_json::from_str(&q[0].1).unwrap();
        assert!(!filters.contains_key("unused-for"));
    }

    #[test]
    fn ids_are_escaped_and_alternated_and_durations_are_go_durations() {
        assert_eq!(anchored(&["a.b*c".into()]), r"^a\.b\*c$");
        assert_eq!(anchored(&["ab".into(), "cd".into()]), "^(ab|cd)$");
        assert_eq!(go_duration(Duration::from_secs(90)), "90s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn answers_map_to_reports() {
        let r = to_report(BuildPruneResponse {
            caches_deleted: Some(vec!["a".into()]),
            space_reclaimed: Some(6),
        });
        assert_eq!((r.deleted, r.reclaimed_bytes), (vec!["a".to_owned()], 6));
        let none = to_report(BuildPruneResponse::default());
        assert_eq!(none, CachePruneReport::default());
    }
}
