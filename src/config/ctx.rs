//! The validation context: problems accumulate (cargo-deny style) with `file:line:column`
//! of the offending value (or the flag name for ad-hoc policies) and the field path.

use serde_saphyr::Location;

use super::error::{ConfigError, Problem};
use super::raw::S;
use super::values::Bad;

/// Collects problems while a configuration is validated.
pub(super) struct Ctx {
    origin: String,
    /// Ad-hoc flags: the location of a problem is the flag name, not a file position.
    flags: bool,
    problems: Vec<(u64, u64, Problem)>,
}

impl Ctx {
    /// A context for a file (or text) named `origin`.
    pub fn file(origin: &str) -> Self {
        Self {
            origin: origin.to_owned(),
            flags: false,
            problems: Vec::new(),
        }
    }

    /// A context for `stagesweep prune` flags.
    pub fn flags() -> Self {
        Self {
            origin: String::new(),
            flags: true,
            problems: Vec::new(),
        }
    }

    /// True for the ad-hoc flags of `prune` and `plan` (problems are located at the flag).
    pub fn for_flags(&self) -> bool {
        self.flags
    }

    /// Record a problem with the value at `at`, found under field `path`.
    pub fn push(&mut self, at: Location, path: &str, bad: Bad) {
        let (line, column) = (at.line(), at.column());
        let (location, path) = if self.flags {
            (flag_for(path), String::new())
        } else if at == Location::UNKNOWN {
            (self.origin.clone(), path.to_owned())
        } else {
            (format!("{}:{line}:{column}", self.origin), path.to_owned())
        };
        let problem = Problem {
            location,
            path,
            message: bad.message,
            hint: bad.hint,
        };
        self.problems.push((line, column, problem));
    }

    /// Run a parser on a spanned string; record its problem at the value's position.
    pub fn check<T>(
        &mut self,
        value: &S<String>,
        path: &str,
        parse: impl FnOnce(&str) -> Result<T, Bad>,
    ) -> Option<T> {
        match parse(&value.value) {
            Ok(v) => Some(v),
            Err(bad) => {
                self.push(value.referenced, path, bad);
                None
            }
        }
    }

    /// Succeed with `value` when no problem was recorded; otherwise fail with every
    /// problem, in document order.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.problems.is_empty() {
            return Ok(value);
        }
        let mut problems = self.problems;
        problems.sort_by_key(|(line, column, _)| (*line, *column));
        Err(ConfigError {
            problems: problems.into_iter().map(|(_, _, p)| p).collect(),
        })
    }
}

/// `min_age` → `--min-age`; `match.labels[0]` → `--label`.
fn flag_for(path: &str) -> String {
    let field = path.rsplit('.').next().unwrap_or(path);
    let field = field.split('[').next().unwrap_or(field);
    match field {
        "labels" => "--label".to_owned(),
        "" => "flags".to_owned(),
        f => format!("--{}", f.replace('_', "-")),
    }
}

/// `base.field`, or `field` when `base` is empty.
pub(super) fn join(base: &str, field: &str) -> String {
    if base.is_empty() {
        field.to_owned()
    } else {
        format!("{base}.{field}")
    }
}
