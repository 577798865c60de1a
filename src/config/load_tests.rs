//! Table-driven tests of the validation rules, defaults, ad-hoc policies and the summary.

use std::time::Duration;

use super::*;
use crate::config::*;

fn problems(text: &str) -> Vec<Problem> {
    match parse_str(text, "c.yaml") {
        Ok(_) => panic!("expected problems for:\n{text}"),
        Err(e) => e.problems,
    }
}

/// (YAML, location, field path, start of the message): each has exactly one problem.
#[rustfmt::skip]
const RULES: &[(&str, &str, &str, &str)] = &[
    ("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    min_age: soon\n", "c.yaml:5:14", "policies[0].min_age", "min_age \"soon\" is not a duration"),
    ("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    max_age: 24\n", "c.yaml:5:14", "policies[0].max_age", "max_age \"24\" is not a duration"),
    ("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    max_total_size: lots\n", "c.yaml:5:21", "policies[0].max_total_size", "max_total_size \"lots\" is not a size"),
    ("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    min_age: 2h\n    max_age: 1h\n", "c.yaml:6:14", "policies[0].max_age", "max_age 1h is shorter than min_age 2h"),
    ("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    max_age: 30m\n", "c.yaml:5:14", "policies[0].max_age", "max_age 30m is shorter than min_age 1h (the default)"),
    ("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    keep_last: 0\n", "c.yaml:5:16", "policies[0].keep_last", "keep_last 0 would keep nothing"),
    ("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    keep_last: -3\n", "c.yaml:5:16", "policies[0].keep_last", "keep_last -3 would keep nothing"),
    ("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    group_by: \"label:\"\n", "c.yaml:5:15", "policies[0].group_by", "group_by \"label:\" has an empty label key"),
    ("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    group_by: repo\n", "c.yaml:5:15", "policies[0].group_by", "group_by \"repo\" is not a grouping"),
    ("policies:\n  - name: p\n    match:\n      labels: [\"=builder\"]\n", "c.yaml:4:16", "policies[0].match.labels[0]", "label predicate \"=builder\" has an empty key"),
    ("policies:\n  - name: p\n    match:\n      references: [\"a[\"]\n", "c.yaml:4:20", "policies[0].match.references[0]", "invalid glob \"a[\""),
    ("policies:\n  - name: p\n    match:\n      dangling: maybe\n", "c.yaml:4:17", "policies[0].match.dangling", "dangling \"maybe\" is not true, false or any"),
    ("policies:\n  - name: p\n    match: {}\n", "c.yaml:3:12", "policies[0].match", "policy \"p\" has an empty match"),
    ("policies:\n  - name: p\n    min_age: 1h\n", "c.yaml:2:5", "policies[0].match", "policy \"p\" has an empty match"),
    ("policies:\n  - name: p\n    match:\n      dangling: any\n", "c.yaml:4:7", "policies[0].match", "policy \"p\" has an empty match"),
    ("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n      all_images: true\n", "c.yaml:5:19", "policies[0].match.all_images", "policy \"p\" sets all_images: true but also has a positive match criterion"),
    ("policies:\n  - name: p\n    match:\n      labels: [\"team!=infra\", \"stage!=final\"]\n", "c.yaml:4:16", "policies[0].match.labels[0]", "policy \"p\" has only negative label predicates (team!=infra, stage!=final), which select every image"),
    ("policies:\n  - name: p\n    match:\n      labels: [\"team!=infra\"]\n      dangling: any\n", "c.yaml:4:16", "policies[0].match.labels[0]", "policy \"p\" has only negative label predicates"),
    ("policies:\n  - name: p\n    match:\n      labels: [\"tier != prod\"]\n", "c.yaml:4:16", "policies[0].match.labels[0]", "label predicate \"tier != prod\" has spaces around \"!=\""),
    ("policies:\n  - name: p\n    match:\n      labels: [\"stage= builder\"]\n", "c.yaml:4:16", "policies[0].match.labels[0]", "label predicate \"stage= builder\" has spaces around \"=\""),
    ("policies:\n  - name: p\n    match:\n      labels: [\" stage=builder\"]\n", "c.yaml:4:16", "policies[0].match.labels[0]", "label predicate \" stage=builder\" has spaces at its ends"),
    ("policies:\n  - name: p\n    match:\n      labels: [\"stage\\t\"]\n", "c.yaml:4:16", "policies[0].match.labels[0]", "label predicate \"stage\\t\" has spaces at its ends"),
    ("policies:\n  - name: p\n    match:\n      labels: [label=stage=builder]\n", "c.yaml:4:16", "policies[0].match.labels[0]", "label predicate \"label=stage=builder\" is docker's filter syntax"),
    ("policies:\n  - name: p\n    match:\n      labels: [\"a=b!=c\"]\n", "c.yaml:4:16", "policies[0].match.labels[0]", "label predicate \"a=b!=c\" has more than one operator"),
    ("policies:\n  - name: p\n    match:\n      labels: [a=1, a=2]\n", "c.yaml:4:21", "policies[0].match.labels[1]", "policy \"p\" requires both a=1 and a=2, which no image satisfies"),
    ("policies:\n  - name: p\n    match:\n      labels: [\"a!=1\", stage, a=1]\n", "c.yaml:4:31", "policies[0].match.labels[2]", "policy \"p\" requires both a!=1 and a=1"),
    ("policies:\n  - name: p\n    match:\n      dangling: true\n      references: [\"app/*\"]\n", "c.yaml:4:17", "policies[0].match.dangling", "policy \"p\" sets dangling: true and references, which no image satisfies"),
    ("protect:\n  labels: [\"keep = yes\"]\n", "c.yaml:2:12", "protect.labels[0]", "label predicate \"keep = yes\" has spaces around \"=\""),
    ("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    min_age: 101y\n", "c.yaml:5:14", "policies[0].min_age", "min_age \"101y\" is longer than 100 years"),
    ("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    max_age: 5000000000000s\n", "c.yaml:5:14", "policies[0].max_age", "max_age \"5000000000000s\" is longer than 100 years"),
    ("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    max_total_size: 2EB\n", "c.yaml:5:21", "policies[0].max_total_size", "max_total_size \"2EB\" is larger than 1 EB"),
    ("policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    max_total_size: 100000EB\n", "c.yaml:5:21", "policies[0].max_total_size", "max_total_size \"100000EB\" is larger than 1 EB"),
    ("jitter: 200y\n", "c.yaml:1:9", "jitter", "jitter \"200y\" is longer than 100 years"),
    ("jitter: 1000000000000y\n", "c.yaml:1:9", "jitter", "jitter \"1000000000000y\" is not a duration"),
    ("shutdown_timeout: 1000y\n", "c.yaml:1:19", "shutdown_timeout", "shutdown_timeout \"1000y\" is longer than 100 years"),
    ("docker:\n  timeout: 101y\n", "c.yaml:2:12", "docker.timeout", "timeout \"101y\" is longer than 100 years"),
    ("schedule: \"@every 101y\"\n", "c.yaml:1:11", "schedule", "schedule \"@every 101y\" is longer than 100 years"),
    ("policies:\n  - name: \"\"\n    match: {all_images: true}\n", "c.yaml:2:11", "policies[0].name", "policy name \"\" is empty"),
    ("policies:\n  - match: {all_images: true}\n", "c.yaml:2:5", "policies[0].name", "policy has no name"),
    ("docker:\n  concurrency: 0\n", "c.yaml:2:16", "docker.concurrency", "concurrency 0 is outside 1..=64"),
    ("docker:\n  concurrency: 65\n", "c.yaml:2:16", "docker.concurrency", "concurrency 65 is outside 1..=64"),
    ("docker:\n  timeout: 500ms\n", "c.yaml:2:12", "docker.timeout", "timeout \"500ms\" is shorter than 1s"),
    ("docker:\n  timeout: 2500ms\n", "c.yaml:2:12", "docker.timeout", "timeout \"2500ms\" is not a whole number of seconds"),
    ("docker:\n  host: /var/run/docker.sock\n", "c.yaml:2:9", "docker.host", "docker host \"/var/run/docker.sock\" is not an engine address"),
    ("docker:\n  host: ssh://me@build-1\n", "c.yaml:2:9", "docker.host", "docker host \"ssh://me@build-1\" uses ssh://, which stagesweep does not support"),
    ("protect:\n  labels: [\"!=x\"]\n", "c.yaml:2:12", "protect.labels[0]", "label predicate \"!=x\" has an empty key"),
    ("protect:\n  references: [\"[a\"]\n", "c.yaml:2:16", "protect.references[0]", "invalid glob \"[a\""),
    ("schedule: \"0 */15 * * * *\"\n", "c.yaml:1:11", "schedule", "schedule \"0 */15 * * * *\" has 6 fields"),
    ("timezone: Berlin\n", "c.yaml:1:11", "timezone", "timezone \"Berlin\" is not an IANA time zone"),
    ("jitter: a bit\n", "c.yaml:1:9", "jitter", "jitter \"a bit\" is not a duration"),
    ("shutdown_timeout: 30\n", "c.yaml:1:19", "shutdown_timeout", "shutdown_timeout \"30\" is not a duration"),
    ("lock_file: stagesweep.lock\n", "c.yaml:1:12", "lock_file", "lock_file \"stagesweep.lock\" is not an absolute path"),
    ("metrics:\n  listen: localhost:9477\n", "c.yaml:2:11", "metrics.listen", "listen address \"localhost:9477\" is not ip:port"),
    ("builds:\n  lock_file: builds.lock\n", "c.yaml:2:14", "builds.lock_file", "builds.lock_file \"builds.lock\" is not an absolute path"),
    ("builds:\n  lock_file: /run/stagesweep/stagesweep.lock\n", "c.yaml:2:14", "builds.lock_file", "builds.lock_file \"/run/stagesweep/stagesweep.lock\" is the pass lock (lock_file)"),
    ("lock_file: /run/x.lock\nbuilds:\n  lock_file: /run/x.lock\n", "c.yaml:3:14", "builds.lock_file", "builds.lock_file \"/run/x.lock\" is the pass lock"),
    ("builds:\n  retry: 500ms\n", "c.yaml:2:10", "builds.retry", "retry \"500ms\" is shorter than 1s"),
    ("builds:\n  retry: often\n", "c.yaml:2:10", "builds.retry", "retry \"often\" is not a duration"),
    ("builds:\n  max_defer: 30\n", "c.yaml:2:14", "builds.max_defer", "max_defer \"30\" is not a duration"),
    ("build_cache:\n  - name: c\n    labels: [stage=builder]\n    unused_for: 1d\n", "c.yaml:3:13", "build_cache[0].labels", "build cache rules cannot select by labels"),
    ("build_cache:\n  - name: c\n    filters: [\"label=stage=builder\"]\n    unused_for: 1d\n", "c.yaml:3:14", "build_cache[0].filters", "build cache rules cannot select by filters"),
    ("build_cache:\n  - name: c\n    match:\n      labels: [stage=builder]\n    unused_for: 1d\n", "c.yaml:4:7", "build_cache[0].match", "build cache rules cannot select by match"),
    ("build_cache:\n  - name: c\n    types: [regular, layers]\n    unused_for: 1d\n", "c.yaml:3:22", "build_cache[0].types[1]", "\"layers\" is not a build cache type"),
    ("build_cache:\n  - name: c\n    types: []\n    unused_for: 1d\n", "c.yaml:2:5", "build_cache[0].types", "types: [] selects no record"),
    ("build_cache:\n  - name: c\n    shared: yes\n    unused_for: 1d\n", "c.yaml:3:13", "build_cache[0].shared", "shared \"yes\" is neither include nor exclude"),
    ("build_cache:\n  - name: c\n    unused_for: a week\n", "c.yaml:3:17", "build_cache[0].unused_for", "unused_for \"a week\" is not a duration"),
    ("build_cache:\n  - name: c\n    keep_storage: much\n", "c.yaml:3:19", "build_cache[0].keep_storage", "keep_storage \"much\" is not a size"),
    ("build_cache:\n  - name: c\n    types: [regular]\n", "c.yaml:2:5", "build_cache[0]", "build cache rule has neither unused_for nor keep_storage"),
    ("build_cache:\n  - unused_for: 1d\n", "c.yaml:2:5", "build_cache[0].name", "build cache rule has no name"),
    ("build_cache:\n  - name: c\n    unused_for: 1d\n  - name: c\n    unused_for: 2d\n", "c.yaml:4:11", "build_cache[1].name", "build cache rule name \"c\" is already used at line 2"),
];

#[test]
fn each_rule_reports_location_path_and_value() {
    for &(text, location, path, message) in RULES {
        let found = problems(text);
        assert_eq!(found.len(), 1, "{text}\n{found:#?}");
        let p = &found[0];
        assert_eq!(
            (p.location.as_str(), p.path.as_str()),
            (location, path),
            "{text}"
        );
        assert!(p.message.starts_with(message), "{text}\n{}", p.message);
        assert!(
            p.hint.as_deref().is_some_and(|h| !h.is_empty()) || p.message.contains("use "),
            "{text}: no way out"
        );
    }
}

#[test]
fn duplicate_policy_names_point_at_the_second() {
    let text = "policies:\n  - name: a\n    match: {all_images: true}\n  - name: a\n    match: {all_images: true}\n";
    let found = problems(text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].location, "c.yaml:4:11");
    assert_eq!(
        found[0].message,
        "policy name \"a\" is already used at line 2"
    );
}

#[test]
fn problems_accumulate_in_document_order() {
    let text = "\
docker:
  concurrency: 0
policies:
  - name: a
    match: {labels: [stage=builder]}
    min_age: 2h
    max_age: 1h
    keep_last: 0
  - name: a
timezone: Nowhere
";
    let found = problems(text);
    let at: Vec<_> = found.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(
        at,
        [
            "c.yaml:2:16",
            "c.yaml:7:14",
            "c.yaml:8:16",
            "c.yaml:9:5",
            "c.yaml:9:11",
            "c.yaml:10:11"
        ]
    );
}

#[test]
fn builds_section_is_typed() {
    let text = "builds:\n  lock_file: /srv/locks/builds.lock\n  lock: false\n  detect: false\n  retry: 2s\n  max_defer: 0s\n";
    let config = parse_str(text, "c.yaml").expect("valid");
    assert_eq!(
        config.builds,
        BuildsConfig {
            lock_file: "/srv/locks/builds.lock".into(),
            lock: false,
            detect: false,
            retry: Duration::from_secs(2),
            max_defer: Duration::ZERO,
        }
    );
    let found = problems("builds:\n  detekt: true\n");
    assert_eq!(found[0].path, "builds.detekt");
}

#[test]
fn all_images_widens_a_match_of_negative_predicates_only() {
    let text = "\
policies:
  - name: all-but-prod
    match:
      labels: [\"tier!=prod\", \"stagesweep.keep!=true\"]
      all_images: true
    min_age: 0s
";
    let config = parse_str(text, "c.yaml").expect("valid");
    let m = &config.policies[0].matcher;
    assert!(m.all_images);
    assert!(m.labels.iter().all(LabelPredicate::is_negative));
    let lines = summary_lines(&config);
    assert_eq!(
        lines[..2],
        [
            "all-but-prod: all images, labels tier!=prod and stagesweep.keep!=true, \
             dangling any, min_age 0s, parents delete, deletes every match older than min_age",
            "note: policy \"all-but-prod\" has min_age 0s: it relies on build coordination \
             alone; no grace period keeps an image that a running build still needs",
        ]
    );
}

#[test]
fn the_maxima_themselves_are_accepted() {
    let text = "\
schedule: \"@every 100y\"
jitter: 100y
shutdown_timeout: 100y
docker:
  timeout: 100y
policies:
  - name: p
    match: {labels: [stage=builder]}
    min_age: 100y
    max_age: 100y
    max_total_size: 1EB
";
    let config = parse_str(text, "c.yaml").expect("valid");
    let hundred_years = Duration::from_secs(3_155_760_000);
    assert_eq!(config.agent.jitter, hundred_years);
    assert_eq!(config.agent.schedule.interval(), Some(hundred_years));
    assert_eq!(
        config.policies[0].max_total_size,
        Some(1_000_000_000_000_000_000)
    );
    // The next tick is computable, not an overflow.
    let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .expect("valid")
        .to_utc();
    let next = config.agent.schedule.next_after(now, chrono_tz::UTC);
    assert_eq!(
        next.map(|t| t.format("%Y").to_string()).as_deref(),
        Some("2126")
    );
}

#[test]
fn jitter_longer_than_the_interval_is_fine() {
    let config = parse_str("schedule: \"@every 1m\"\njitter: 1h\n", "c.yaml").expect("valid");
    assert_eq!(config.agent.jitter, Duration::from_secs(3600));
}

#[test]
fn empty_file_is_defaults_without_policies() {
    for text in ["", "# nothing\n", "---\n", "policies: []\n", "policies:\n"] {
        let config = parse_str(text, "c.yaml").expect(text);
        assert!(config.policies.is_empty(), "{text}");
        assert_eq!(config.docker, DockerConfig::default());
        assert_eq!(config.agent.schedule.to_string(), "@hourly");
        assert_eq!(config.agent.timezone, chrono_tz::UTC);
        assert_eq!(config.agent.jitter, Duration::ZERO);
        assert!(config.agent.run_on_start);
        assert_eq!(
            config.agent.lock_file,
            std::path::Path::new("/run/stagesweep/stagesweep.lock")
        );
        assert_eq!(config.agent.shutdown_timeout, Duration::from_secs(30));
        assert!(config.metrics.enabled);
        assert_eq!(config.metrics.listen.to_string(), "127.0.0.1:9477");
        assert_eq!(config.builds, BuildsConfig::default());
        assert_eq!(
            config.builds.lock_file,
            std::path::Path::new("/run/stagesweep/builds.lock")
        );
        assert!(config.builds.detect);
        assert_eq!(config.builds.retry, Duration::from_secs(10));
        assert_eq!(config.builds.max_defer, Duration::from_secs(1800));
        assert_eq!(
            summary_lines(&config)[0],
            "no policies: nothing will be deleted"
        );
    }
}

#[test]
fn a_full_policy_is_typed() {
    let text = "\
policies:
  - name: builder-stages
    match:
      labels: [stage=builder, \"team!=infra\"]
      references: [\"app/*\"]
      dangling: false
    min_age: 90m
    max_age: 7d
    keep_last: 2
    group_by: label:com.example.project
    max_total_size: 10GB
";
    let config = parse_str(text, "c.yaml").expect("valid");
    let p = &config.policies[0];
    assert_eq!(p.name, "builder-stages");
    assert_eq!(p.matcher.labels.len(), 2);
    assert_eq!(p.matcher.references[0].pattern(), "app/*");
    assert_eq!(p.matcher.dangling, Dangling::Never);
    assert_eq!(p.min_age, Duration::from_secs(5400));
    assert_eq!(p.max_age, Some(Duration::from_secs(604_800)));
    assert_eq!(p.keep_last, Some(2));
    assert_eq!(p.group_by, GroupBy::Label("com.example.project".into()));
    assert_eq!(p.max_total_size, Some(10_000_000_000));
    assert_eq!(
        summary_lines(&config)[0],
        "builder-stages: labels stage=builder and team!=infra, references app/*, \
         dangling false (with a tag or digest), min_age 90m, max_age 7d, \
         keep_last 2 per label:com.example.project, max_total_size 10.0 GB per label:com.example.project, \
         parents delete"
    );
}

#[test]
fn embedded_default_is_the_builder_stage_policy() {
    let config = embedded_default();
    assert_eq!(config.policies.len(), 1);
    let p = &config.policies[0];
    assert_eq!(p.name, "builder-stages");
    assert_eq!(
        p.matcher.labels,
        [LabelPredicate::parse("stage=builder").expect("valid")]
    );
    assert_eq!(p.min_age, Duration::from_secs(3600));
    assert!(p.is_plain_prune());
    assert_eq!(p.group_by, GroupBy::None);
    assert_eq!(
        summary_lines(&config),
        [
            "builder-stages: labels stage=builder, dangling any, min_age 1h, parents delete, \
             deletes every match older than min_age",
            "stale-build-cache: build cache types regular, source.local, exec.cachemount, \
             source.git.checkout, shared excluded, unused_for 7d, in-use records never",
            "protect: no references or labels",
            "docker: $DOCKER_HOST or the local socket, timeout 1m, concurrency 4",
            "agent: schedule @hourly (UTC), jitter 0s, run_on_start true, \
             lock_file /run/stagesweep/stagesweep.lock",
            "history: /var/lib/stagesweep/history.json, gap_policy assume_used, catch_up 1m",
            "metrics: http://127.0.0.1:9477/metrics, stagesweep_group_bytes by policy, the 10 \
             largest groups, the rest as other",
            "builds: lock_file /run/stagesweep/builds.lock, detect true, retry 10s, max_defer 30m",
        ]
    );
}

#[test]
fn adhoc_policy_defaults_to_builder_stages() {
    let p = adhoc_policy(&AdhocPolicy::default()).expect("valid");
    assert_eq!(p.name, "cli");
    assert_eq!(
        p.matcher.labels,
        [LabelPredicate::Equals("stage".into(), "builder".into())]
    );
    assert_eq!(p.min_age, Duration::from_secs(3600));
    let flags = AdhocPolicy {
        labels: vec!["stage=build".into(), "ci".into()],
        filters: Vec::new(),
        min_age: Some("10m".into()),
        max_age: Some("2d".into()),
        keep_last: Some(3),
        group_by: Some("repository".into()),
    };
    let p = adhoc_policy(&flags).expect("valid");
    assert_eq!(p.matcher.labels.len(), 2);
    assert_eq!(p.max_age, Some(Duration::from_secs(172_800)));
    assert_eq!((p.keep_last, &p.group_by), (Some(3), &GroupBy::Repository));
}

#[test]
fn adhoc_problems_are_located_at_the_flag() {
    let flags = AdhocPolicy {
        labels: vec!["=x".into()],
        filters: Vec::new(),
        min_age: Some("2h".into()),
        max_age: Some("1h".into()),
        keep_last: Some(0),
        group_by: Some("label:".into()),
    };
    let err = adhoc_policy(&flags).expect_err("invalid");
    let at: Vec<_> = err.problems.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(at, ["--label", "--max-age", "--keep-last", "--group-by"]);
    assert!(err.problems.iter().all(|p| p.path.is_empty()));
    assert!(
        err.to_string()
            .starts_with("--label: label predicate \"=x\" has an empty key")
    );
    let bad_age = AdhocPolicy {
        min_age: Some("soon".into()),
        ..AdhocPolicy::default()
    };
    let err = adhoc_policy(&bad_age).expect_err("invalid");
    assert_eq!(err.problems[0].location, "--min-age");
}

#[test]
fn adhoc_labels_are_as_strict_as_a_file() {
    let cases = [
        (vec!["tier != prod"], "--label", "has spaces around \"!=\""),
        (
            vec!["label=stage=builder"],
            "--label",
            "is docker's filter syntax",
        ),
        (
            vec!["tier!=prod"],
            "--label",
            "has only negative label predicates (tier!=prod)",
        ),
    ];
    for (labels, at, want) in cases {
        let flags = AdhocPolicy {
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            ..AdhocPolicy::default()
        };
        let err = adhoc_policy(&flags).expect_err("invalid");
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(err.problems[0].location, at);
        assert!(err.problems[0].message.contains(want), "{err}");
        assert!(err.problems[0].hint.is_some(), "{err}");
    }
    let pasted = AdhocPolicy {
        labels: vec!["label!=stage=builder".into()],
        ..AdhocPolicy::default()
    };
    let hint = adhoc_policy(&pasted).expect_err("invalid").problems[0]
        .hint
        .clone()
        .unwrap_or_default();
    assert!(hint.contains("write \"stage!=builder\""), "{hint}");
    // A positive predicate next to a negative one is a normal policy.
    let mixed = AdhocPolicy {
        labels: vec!["stage=builder".into(), "tier!=prod".into()],
        ..AdhocPolicy::default()
    };
    assert_eq!(adhoc_policy(&mixed).expect("valid").matcher.labels.len(), 2);
}

#[test]
fn adhoc_docker_filters_map_onto_the_policy() {
    let flags = AdhocPolicy {
        filters: vec![
            "label=stage=builder".into(),
            "label!=team=infra".into(),
            "until=24h".into(),
            "dangling=true".into(),
        ],
        ..AdhocPolicy::default()
    };
    let p = adhoc_policy(&flags).expect("valid");
    assert_eq!(
        p.matcher.labels,
        [
            LabelPredicate::Equals("stage".into(), "builder".into()),
            LabelPredicate::NotEquals("team".into(), "infra".into()),
        ]
    );
    assert_eq!(p.min_age, Duration::from_secs(86_400));
    assert_eq!(p.matcher.dangling, Dangling::Only);
    // Without a label from either flag, the policy still selects stage=builder.
    let until_only = AdhocPolicy {
        filters: vec!["until=10m".into()],
        ..AdhocPolicy::default()
    };
    let p = adhoc_policy(&until_only).expect("valid");
    assert_eq!(
        p.matcher.labels,
        [LabelPredicate::Equals("stage".into(), "builder".into())]
    );
    assert_eq!(p.min_age, Duration::from_secs(600));
    // --label and --filter label=… add up; until= and --min-age cannot both be given.
    let both = AdhocPolicy {
        labels: vec!["project=web".into()],
        filters: vec!["label=stage".into(), "until=1h".into()],
        min_age: Some("2h".into()),
        ..AdhocPolicy::default()
    };
    let err = adhoc_policy(&both).expect_err("until twice");
    assert_eq!(err.problems.len(), 1, "{err}");
    assert!(
        err.to_string()
            .starts_with("--filter: filter \"until=1h\" sets the grace period a second time"),
        "{err}"
    );
}

#[test]
fn load_file_reports_an_unreadable_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.yaml");
    let err = load_file(&missing).expect_err("missing file");
    assert!(
        err.problems[0]
            .message
            .starts_with("cannot read configuration file")
    );
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, DEFAULT_YAML).expect("write");
    assert_eq!(load_file(&good).expect("valid").policies.len(), 1);
}

#[test]
fn build_cache_rules_are_typed_with_defaults() {
    let text = "\
build_cache:
  - name: mounts
    types: [exec.cachemount, exec.cachemount]
    shared: include
    keep_storage: 10GB
  - name: rest
    unused_for: 7d
";
    let config = parse_str(text, "c.yaml").expect("valid");
    let [mounts, rest] = &config.build_cache[..] else {
        panic!("two rules: {:?}", config.build_cache)
    };
    assert_eq!(
        mounts.types,
        [crate::inventory::CacheType::ExecCachemount],
        "deduplicated"
    );
    assert_eq!(mounts.shared, SharedRecords::Include);
    assert_eq!(
        (mounts.unused_for, mounts.keep_storage),
        (None, Some(10_000_000_000))
    );
    assert_eq!(rest.types, default_cache_types());
    assert_eq!(rest.shared, SharedRecords::Exclude);
    assert_eq!(rest.unused_for, Some(Duration::from_secs(7 * 86_400)));
    let lines = summary_lines(&config);
    assert!(
        lines.contains(
            &"mounts: build cache types exec.cachemount, shared included, \
             keep_storage 10.0 GB, in-use records never"
                .to_owned()
        ),
        "{lines:#?}"
    );
    assert!(lines.contains(&"no policies: nothing will be deleted".to_owned()));
}

#[test]
fn a_label_selector_on_build_cache_says_why_it_cannot_work() {
    let found =
        problems("build_cache:\n  - name: c\n    label: stage=builder\n    unused_for: 1d\n");
    let hint = found[0].hint.as_deref().unwrap_or_default();
    assert!(
        hint.contains("accepts a label filter on /build/prune and ignores it"),
        "{hint}"
    );
    assert!(hint.contains("delete every record"), "{hint}");
}

// ---- the history:, disk: and policy usage keys ----

fn problem_lines(text: &str) -> Vec<String> {
    match parse_str(text, "c.yaml") {
        Ok(_) => panic!("expected problems for:\n{text}"),
        Err(e) => e.to_string().lines().map(str::to_owned).collect(),
    }
}

const POLICY: &str = "policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n";

#[test]
fn defaults_and_every_key() {
    let c = parse_str(POLICY, "c.yaml").expect("valid");
    assert_eq!(c.history, HistoryConfig::default());
    assert_eq!(c.disk, None);
    assert_eq!(c.policies[0].order, Order::Lru);
    assert_eq!(c.policies[0].when, When::Always);
    assert_eq!(c.policies[0].parents, Parents::Delete);
    let text = format!(
        "{POLICY}    unused_for: 7d\n    order: oldest\n    when: disk_pressure\n    parents: keep\n\
         history:\n  enabled: false\n  path: /tmp/h.json\n  gap_policy: ignore\n  catch_up: 2m\n\
         disk:\n  high: \"90%\"\n  low: 70\n  inodes_high: 95\n  inodes_low: \"90 %\"\n  path: /data\n  containerd_root: /srv/containerd\n  check_every: 1m\n"
    );
    let c = parse_str(&text, "c.yaml").unwrap_or_else(|e| panic!("{e}"));
    let p = &c.policies[0];
    assert_eq!(p.unused_for, Some(Duration::from_secs(7 * 86_400)));
    assert_eq!((p.order, p.when), (Order::Oldest, When::DiskPressure));
    assert_eq!(p.parents, Parents::Keep);
    assert!(
        summary_lines(&c)[0].contains(", parents keep"),
        "{:?}",
        summary_lines(&c)
    );
    assert!(!p.is_plain_prune());
    assert_eq!(
        c.history,
        HistoryConfig {
            enabled: false,
            path: "/tmp/h.json".into(),
            gap_policy: GapPolicy::Ignore,
            catch_up: Duration::from_secs(120),
            half_life: crate::config::DEFAULT_HALF_LIFE,
        }
    );
    assert_eq!(
        c.disk,
        Some(DiskConfig {
            space: Watermarks { high: 90, low: 70 },
            inodes: Some(Watermarks { high: 95, low: 90 }),
            path: Some("/data".into()),
            containerd_root: Some("/srv/containerd".into()),
            measure: Measure::Statvfs,
            check_every: Some(Duration::from_secs(60)),
            forecast: crate::config::ForecastConfig::default(),
        })
    );
    let api = parse_str(
        "disk:\n  measure: api\n  max_images_bytes: 50GB\n",
        "c.yaml",
    )
    .expect("valid");
    let disk = api.disk.expect("a disk section");
    assert_eq!(
        disk.measure,
        Measure::Api {
            max_images_bytes: 50_000_000_000
        }
    );
    assert_eq!(
        disk.space,
        Watermarks { high: 85, low: 80 },
        "kubelet's defaults"
    );
}

#[test]
fn bad_values_name_the_value_and_the_way_out() {
    let cases = [
        (
            format!("{POLICY}    unused_for: a week\n"),
            "c.yaml:5:17: policies[0].unused_for: unused_for \"a week\" is not a duration",
        ),
        (
            format!("{POLICY}    order: newest\n"),
            "c.yaml:5:12: policies[0].order: order \"newest\" is not lru, oldest, lfu or size",
        ),
        (
            "history:\n  half_life: 5m\n".to_owned(),
            "c.yaml:2:14: history.half_life: half_life \"5m\" is not between 1h and 365d",
        ),
        (
            format!("{POLICY}    parents: prune\n"),
            "c.yaml:5:14: policies[0].parents: parents \"prune\" is not delete or keep",
        ),
        (
            format!("{POLICY}    when: sometimes\n"),
            "c.yaml:5:11: policies[0].when: when \"sometimes\" is not always or disk_pressure",
        ),
        (
            format!("{POLICY}    when: disk_pressure\n"),
            "c.yaml:5:11: policies[0].when: when: disk_pressure needs a disk: section",
        ),
        (
            "history:\n  path: state.json\n".to_owned(),
            "c.yaml:2:9: history.path: history.path \"state.json\" is not an absolute path",
        ),
        (
            "history:\n  gap_policy: panic\n".to_owned(),
            "c.yaml:2:15: history.gap_policy: gap_policy \"panic\" is not assume_used or ignore",
        ),
        (
            "disk:\n  high: 185\n".to_owned(),
            "c.yaml:2:9: disk.high: high 185 is not a percentage from 0 to 100",
        ),
        (
            "disk:\n  high: \"lots\"\n".to_owned(),
            "c.yaml:2:9: disk.high: high \"lots\" is not a percentage",
        ),
        (
            "disk:\n  high: 80\n  low: 80\n".to_owned(),
            "c.yaml:3:8: disk.low: disk.low 80% is not below disk.high 80%",
        ),
        (
            "disk:\n  inodes_high: 90\n".to_owned(),
            "c.yaml: disk.inodes_low: disk.inodes_high is set but disk.inodes_low is not",
        ),
        (
            "disk:\n  measure: api\n".to_owned(),
            "c.yaml:2:12: disk.measure: measure: api needs disk.max_images_bytes",
        ),
        (
            "disk:\n  measure: df\n".to_owned(),
            "c.yaml:2:12: disk.measure: measure \"df\" is not statvfs or api",
        ),
        (
            "disk:\n  max_images_bytes: 1GB\n".to_owned(),
            "c.yaml:2:21: disk.max_images_bytes: max_images_bytes is only used with measure: api",
        ),
        (
            "disk:\n  path: docker\n".to_owned(),
            "c.yaml:2:9: disk.path: disk.path \"docker\" is not an absolute path",
        ),
        (
            "disk:\n  containerd_root: containerd\n".to_owned(),
            "c.yaml:2:20: disk.containerd_root: disk.containerd_root \"containerd\" is not an absolute path",
        ),
        (
            "disk:\n  check_every: 60\n".to_owned(),
            "c.yaml:2:16: disk.check_every: check_every \"60\" is not a duration",
        ),
    ];
    for (text, start) in cases {
        let found = problem_lines(&text);
        assert_eq!(found.len(), 1, "{text}: {found:#?}");
        assert!(
            found[0].starts_with(start),
            "{text}\n{}\nwanted {start}",
            found[0]
        );
        assert!(found[0].ends_with(')'), "a hint: {}", found[0]);
    }
}

#[test]
fn lfu_size_and_half_life_are_described() {
    for (order, want, said) in [
        ("lfu", Order::Lfu, "order lfu (fewest recent uses first)"),
        (
            "size",
            Order::Size,
            "order size (largest first by idle day)",
        ),
    ] {
        let text = format!(
            "{POLICY}    max_total_size: 1GB\n    order: {order}\nhistory:\n  half_life: 3d\n"
        );
        let c = parse_str(&text, "c.yaml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.policies[0].order, want);
        assert_eq!(c.history.half_life, Duration::from_secs(3 * 86_400));
        let lines = summary_lines(&c);
        assert!(lines[0].contains(said), "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with(", catch_up 1m, half_life 3d")),
            "{lines:?}"
        );
    }
}
