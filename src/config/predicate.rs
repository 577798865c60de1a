//! Label predicates (`key`, `key=value`, `key!=value`): strict parsing, so that a typo or
//! a pasted docker filter cannot silently select something else, and evaluation.

use std::fmt;

/// A label predicate: `key`, `key=value` or `key!=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelPredicate {
    /// The label is present (any value).
    Exists(String),
    /// The label is present with this value.
    Equals(String, String),
    /// The label is absent, or present with another value.
    NotEquals(String, String),
}

/// A label predicate that cannot be parsed: what is wrong, and the way out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({hint})")]
pub struct InvalidPredicate {
    /// What is wrong, naming the text.
    pub message: String,
    /// The way out.
    pub hint: String,
}

impl LabelPredicate {
    /// Parse `key`, `key=value` or `key!=value`.
    ///
    /// Strict, so that a typo cannot silently select something else: the key must not be
    /// empty; no space (or other whitespace) at either end of the text, of the key or of
    /// the value (`tier != prod` would otherwise mean the key `tier ` and the value ` prod`);
    /// and docker's filter syntax pasted as a predicate (`label=stage=builder`) is refused.
    ///
    /// # Errors
    /// Names the offending text and the way out.
    pub fn parse(text: &str) -> Result<Self, InvalidPredicate> {
        let bad = |message: String, hint: String| Err(InvalidPredicate { message, hint });
        let (key, op, value) = if let Some((k, v)) = text.split_once("!=") {
            (k, "!=", Some(v))
        } else if let Some((k, v)) = text.split_once('=') {
            (k, "=", Some(v))
        } else {
            (text, "", None)
        };
        if key.trim().is_empty() {
            return bad(
                format!("label predicate {text:?} has an empty key"),
                "use key, key=value or key!=value".to_owned(),
            );
        }
        if key.contains('=') {
            return bad(
                format!("label predicate {text:?} has more than one operator"),
                "use one of key, key=value or key!=value; a key cannot contain =".to_owned(),
            );
        }
        let spaced = |s: &str| s.trim() != s;
        if spaced(key) || value.is_some_and(spaced) {
            let fixed = format!("{}{op}{}", key.trim(), value.unwrap_or_default().trim());
            let around = if op.is_empty() || text.trim() != text {
                "at its ends".to_owned()
            } else {
                format!("around {op:?}")
            };
            return bad(
                format!("label predicate {text:?} has spaces {around}"),
                format!("write {fixed:?}: spaces would become part of the label key or value"),
            );
        }
        if key == "label" && value.is_some_and(|v| v.contains('=')) {
            let inner = value.unwrap_or_default();
            let ours = if op == "!=" {
                match inner.split_once('=') {
                    Some((k, v)) => format!("{k}!={v}"),
                    None => inner.to_owned(),
                }
            } else {
                inner.to_owned()
            };
            return bad(
                format!("label predicate {text:?} is docker's filter syntax"),
                format!(
                    "drop the label{op} prefix and write {ours:?}; on the command line, \
                     --filter takes docker's syntax"
                ),
            );
        }
        Ok(match value {
            None => LabelPredicate::Exists(key.to_owned()),
            Some(v) if op == "!=" => LabelPredicate::NotEquals(key.to_owned(), v.to_owned()),
            Some(v) => LabelPredicate::Equals(key.to_owned(), v.to_owned()),
        })
    }

    /// True for `key!=value`: the only predicate that holds on an image without the label.
    #[must_use]
    pub fn is_negative(&self) -> bool {
        matches!(self, LabelPredicate::NotEquals(..))
    }

    /// The label key the predicate reads.
    #[must_use]
    pub fn key(&self) -> &str {
        match self {
            LabelPredicate::Exists(k)
            | LabelPredicate::Equals(k, _)
            | LabelPredicate::NotEquals(k, _) => k,
        }
    }
}

impl fmt::Display for LabelPredicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabelPredicate::Exists(k) => f.write_str(k),
            LabelPredicate::Equals(k, v) => write!(f, "{k}={v}"),
            LabelPredicate::NotEquals(k, v) => write!(f, "{k}!={v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LabelPredicate as P;

    #[test]
    fn the_three_forms_round_trip() {
        let ok = [
            ("stage", P::Exists("stage".into())),
            ("stage=builder", P::Equals("stage".into(), "builder".into())),
            (
                "stage!=builder",
                P::NotEquals("stage".into(), "builder".into()),
            ),
            ("stage=", P::Equals("stage".into(), String::new())),
            (
                "description=two words",
                P::Equals("description".into(), "two words".into()),
            ),
            ("note=a=b", P::Equals("note".into(), "a=b".into())),
            ("label=stage", P::Equals("label".into(), "stage".into())),
        ];
        for (text, want) in ok {
            assert_eq!(P::parse(text), Ok(want.clone()), "{text}");
            assert_eq!(want.to_string(), text);
        }
    }

    #[test]
    fn mistakes_are_refused_with_the_way_out() {
        let cases = [
            ("", "has an empty key", "use key"),
            ("=builder", "has an empty key", "use key"),
            ("!=x", "has an empty key", "use key"),
            (" =x", "has an empty key", "use key"),
            (
                "tier != prod",
                "has spaces around \"!=\"",
                "write \"tier!=prod\"",
            ),
            (
                "tier!= prod",
                "has spaces around \"!=\"",
                "write \"tier!=prod\"",
            ),
            (
                "stage =builder",
                "has spaces around \"=\"",
                "write \"stage=builder\"",
            ),
            (
                " stage=builder",
                "has spaces at its ends",
                "write \"stage=builder\"",
            ),
            (
                "stage=builder\n",
                "has spaces at its ends",
                "write \"stage=builder\"",
            ),
            ("stage ", "has spaces at its ends", "write \"stage\""),
            (
                "a=b!=c",
                "has more than one operator",
                "a key cannot contain =",
            ),
            (
                "label=stage=builder",
                "is docker's filter syntax",
                "drop the label= prefix and write \"stage=builder\"",
            ),
            (
                "label!=stage=builder",
                "is docker's filter syntax",
                "write \"stage!=builder\"",
            ),
        ];
        for (text, message, hint) in cases {
            let err = P::parse(text).expect_err(text);
            assert!(err.message.contains(message), "{text:?}: {}", err.message);
            assert!(err.hint.contains(hint), "{text:?}: {}", err.hint);
            assert_eq!(err.to_string(), format!("{} ({})", err.message, err.hint));
        }
    }

    #[test]
    fn only_not_equals_is_negative() {
        let negative: Vec<bool> = ["a", "a=b", "a!=b"]
            .iter()
            .map(|t| P::parse(t).expect("valid").is_negative())
            .collect();
        assert_eq!(negative, [false, false, true]);
    }
}
