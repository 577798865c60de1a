//! What `stagesweep du` (and the agent's per-group gauges) group the space by: the policy
//! that selected each image, its reference's repository, or the value of one of its labels.

use std::fmt;
use std::str::FromStr;

/// A grouping of the space: `policy`, `repo`, `label:<key>` or a bare label key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SpaceGroup {
    /// The policy whose decision covers the image (`(no policy)` for untouched images).
    Policy,
    /// The familiar repository of the image's first reference (`(untagged)` without one).
    Repository,
    /// The value of this label (`(no <key> label)` without it).
    Label(String),
}

impl FromStr for SpaceGroup {
    type Err = String;

    /// `policy`, `repo`, `label:<key>` (for a label literally named `policy` or `repo`), or
    /// any other word, read as a label key.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = match s {
            "policy" => return Ok(SpaceGroup::Policy),
            "repo" => return Ok(SpaceGroup::Repository),
            _ => s.strip_prefix("label:").unwrap_or(s),
        };
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err(format!(
                "cannot group by {s:?}: use policy, repo, a label key (e.g. project) or label:<key>"
            ));
        }
        Ok(SpaceGroup::Label(key.to_owned()))
    }
}

impl fmt::Display for SpaceGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpaceGroup::Policy => f.write_str("policy"),
            SpaceGroup::Repository => f.write_str("repo"),
            SpaceGroup::Label(key) => write!(f, "label:{key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_name_the_grouping_and_label_prefix_frees_the_reserved_ones() {
        let parse = |s: &str| s.parse::<SpaceGroup>();
        assert_eq!(parse("policy"), Ok(SpaceGroup::Policy));
        assert_eq!(parse("repo"), Ok(SpaceGroup::Repository));
        assert_eq!(parse("project"), Ok(SpaceGroup::Label("project".into())));
        assert_eq!(parse("label:repo"), Ok(SpaceGroup::Label("repo".into())));
        assert_eq!(
            parse("label:policy").map(|g| g.to_string()).as_deref(),
            Ok("label:policy")
        );
        for bad in ["", "label:", "a b"] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains("label:<key>"), "{e}");
        }
    }
}
