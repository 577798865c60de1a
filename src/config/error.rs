//! A configuration's problems: each with its location (`file:line:column`, or the flag),
//! field path, message naming the value and the way out; all of them at once.

/// Every problem found in a configuration, each with its location, field path and hint.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render_problems(.problems))]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `file:line:column`, or the origin alone (e.g. `--max-age`) when there is no position.
    pub location: String,
    /// Field path such as `policies[1].keep_last` (empty when the whole document is at fault).
    pub path: String,
    /// What is wrong, naming the offending value.
    pub message: String,
    /// The way out.
    pub hint: Option<String>,
}

fn render_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| {
            let mut line = p.location.clone();
            if !p.path.is_empty() {
                line.push_str(": ");
                line.push_str(&p.path);
            }
            line.push_str(": ");
            line.push_str(&cut(&p.message));
            if let Some(h) = &p.hint {
                line.push_str(" (");
                line.push_str(h);
                line.push(')');
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A message cut to 500 characters: messages quote the offending value, which in a hostile
/// file can be a megabyte long.
fn cut(message: &str) -> std::borrow::Cow<'_, str> {
    const MAX_CHARS: usize = 500;
    match message.char_indices().nth(MAX_CHARS) {
        None => message.into(),
        Some((at, _)) => format!("{}… (cut)", &message[..at]).into(),
    }
}
