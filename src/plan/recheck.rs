//! Would the current configuration still delete this image? Asked by `stagesweep apply`
//! right before it deletes what a reviewed plan lists: the plan was made with the
//! configuration of its day, and since then `protect:` may have grown, a policy may be gone,
//! or its `min_age` may have been raised. Pure: the image as the engine lists it now, the
//! plan's decision, the configuration and `now` in; the reason to keep it out.

use chrono::{DateTime, Utc};

use super::age::age;
use super::decision::Decision;
use super::matching::{Compiled, Names};
use crate::config::Config;
use crate::inventory::Image;
use crate::units::fmt_duration;

/// Why the current configuration keeps `image` although the plan's `decision` deletes it;
/// `None` when it would still delete it (as far as protection, the deciding policy and its
/// `min_age` tell: history-based rules are the plan's).
#[must_use]
pub fn still_deleted_by(
    image: &Image,
    decision: &Decision,
    config: &Config,
    now: DateTime<Utc>,
) -> Option<String> {
    let compiled = Compiled::new(config);
    let mut names = Names::default();
    compiled.names(image, &mut names);
    if let Some(g) = compiled.protected_by_reference(&names) {
        let pattern = config.protect.references[g].pattern();
        return Some(format!(
            "the configuration protects it now (protect.references {pattern})"
        ));
    }
    let mut values = Vec::new();
    compiled.values(&image.labels, &mut values);
    if let Some(k) = compiled.protected_by_label(&values) {
        let predicate = &config.protect.labels[k];
        return Some(format!(
            "the configuration protects it now (protect.labels {predicate})"
        ));
    }
    let Some(name) = decision.policy.as_deref() else {
        return Some("the plan names no policy for it".to_owned());
    };
    let Some(policy) = config.policies.iter().find(|p| p.name == name) else {
        return Some(format!(
            "policy {name} is not in the configuration any more"
        ));
    };
    match age(image, now) {
        Some(a) if a >= policy.min_age => None,
        Some(a) => Some(format!(
            "younger than the min_age {} of policy {name} now (age {})",
            fmt_duration(policy.min_age.as_secs()),
            fmt_duration(a.as_secs())
        )),
        None => Some("its age cannot be told now".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::parse_str;
    use crate::engine::fake::image;
    use crate::plan::{Action, Reason};

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("valid")
    }

    fn deleted_by(policy: &str) -> Decision {
        Decision {
            image: 0,
            action: Action::Delete,
            policy: Some(Arc::from(policy)),
            reason: Reason::Matched {
                policy: Arc::from(policy),
                age_secs: 7200,
                min_age_secs: 3600,
            },
        }
    }

    const CONFIG: &str =
        "policies:\n  - name: p\n    match:\n      labels: [stage=builder]\n    min_age: 1h\n";

    #[test]
    fn an_image_the_configuration_still_deletes_passes() {
        let config = parse_str(CONFIG, "c.yaml").expect("valid");
        let img = image("a")
            .label("stage", "builder")
            .age(now(), std::time::Duration::from_secs(7200))
            .build();
        assert_eq!(
            still_deleted_by(&img, &deleted_by("p"), &config, now()),
            None
        );
    }

    #[test]
    fn protection_a_gone_policy_and_a_raised_min_age_keep_it() {
        let two_hours = std::time::Duration::from_secs(7200);
        let img = image("a")
            .tag("app:1")
            .label("stage", "builder")
            .label("keep", "yes")
            .age(now(), two_hours)
            .build();
        let with = |extra: &str| parse_str(&format!("{CONFIG}{extra}"), "c.yaml").expect("valid");
        let why = |config: &Config, policy: &str| {
            still_deleted_by(&img, &deleted_by(policy), config, now()).unwrap_or_default()
        };
        assert!(
            why(&with("protect:\n  references: [\"app:*\"]\n"), "p")
                .contains("protect.references app:*")
        );
        assert!(
            why(&with("protect:\n  labels: [keep=yes]\n"), "p").contains("protect.labels keep=yes")
        );
        assert!(why(&with(""), "gone").contains("policy gone is not in the configuration"));
        let raised = parse_str(&CONFIG.replace("1h", "3h"), "c.yaml").expect("valid");
        assert!(why(&raised, "p").contains("younger than the min_age 3h"));
    }
}
