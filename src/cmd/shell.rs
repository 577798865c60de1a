//! `stagesweep completions SHELL` and `stagesweep manpage`: generated from the clap
//! definition in [`super::cli`], so they never drift from the real flags. The Debian package
//! ships their output (see `scripts/package.sh`).

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;

use super::CmdError;
use super::cli::Cli;

/// Write the completion script for `shell` to `out`.
pub fn completions(shell: Shell, out: &mut dyn Write) -> Result<(), CmdError> {
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    // Into memory first: clap_complete panics on a write error (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    finish(out.write_all(&script).and_then(|()| out.flush()))
}

/// Write the manual page, `stagesweep(1)` in roff, to `out`. Subcommands are listed with
/// their one-line summary; `stagesweep SUBCOMMAND --help` has their flags.
pub fn manpage(out: &mut dyn Write) -> Result<(), CmdError> {
    let command = Cli::command();
    finish(
        clap_mangen::Man::new(command)
            .render(out)
            .and_then(|()| out.flush()),
    )
}

/// A reader that stopped early (`| head`) is not a failure.
fn finish(written: io::Result<()>) -> Result<(), CmdError> {
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other
            .map_err(|e| CmdError::Other(anyhow::Error::from(e).context("cannot write to stdout"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_every_subcommand() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            completions(shell, &mut out).expect("generate");
            let text = String::from_utf8(out).expect("utf-8");
            for sub in ["prune", "plan", "check-config", "agent", "healthcheck"] {
                assert!(text.contains(sub), "{shell}: no {sub}");
            }
        }
    }

    #[test]
    fn the_manpage_is_roff_with_the_subcommands() {
        let mut out = Vec::new();
        manpage(&mut out).expect("render");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with(".ie \\n(.g .ds Aq"), "{}", &text[..80]);
        assert!(text.contains(".TH stagesweep 1"));
        for sub in ["prune", "agent", "completions"] {
            assert!(text.contains(sub), "no {sub}");
        }
    }
}
