//! `stagesweep completions SHELL` and `stagesweep manpage`: generated, never written twice.
//! Completions and `stagesweep(1)` come from the clap definition in [`super::cli`], so they
//! never drift from the real flags; `stagesweep.yaml(5)` is `docs/configuration.md`, embedded
//! at build time and rendered to roff by [`super::man_config`]. The Debian package ships
//! their output (see `scripts/package.sh`).

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;
use roff::{Roff, bold, roman};

use super::cli::{Cli, ManSection};
use super::man_config::{ascii, config_page};
use super::{CmdError, stdout};

/// Print the completion script for `shell`.
pub fn completions(shell: Shell) -> Result<(), CmdError> {
    stdout::print(|out| write_completions(shell, out))
}

/// Print a manual page ([`write_manpage`]).
pub fn manpage(section: ManSection) -> Result<(), CmdError> {
    stdout::print(|out| write_manpage(section, out))
}

/// Write the completion script for `shell` to `out`.
fn write_completions(shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    // Into memory first: clap_complete panics on a write error (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    out.write_all(&script)
}

/// Write a manual page in roff to `out`: `stagesweep(1)` (subcommands with their one-line
/// summary; `stagesweep SUBCOMMAND --help` has their flags) or `stagesweep.yaml(5)`.
fn write_manpage(section: ManSection, out: &mut dyn Write) -> io::Result<()> {
    let page = match section {
        ManSection::Commands => commands_page(),
        ManSection::Config => config_page(),
    };
    out.write_all(page.as_bytes())
}

/// `stagesweep(1)`, with a SEE ALSO naming the configuration file's page.
fn commands_page() -> String {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .expect("rendering into memory cannot fail");
    let mut page = String::from_utf8(page).expect("clap_mangen writes UTF-8");
    let mut see_also = Roff::new();
    see_also
        .control("SH", ["SEE ALSO"])
        .text([bold("stagesweep.yaml"), roman("(5)")]);
    page.push_str(&see_also.to_roff());
    ascii(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_every_subcommand() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            write_completions(shell, &mut out).expect("generate");
            let text = String::from_utf8(out).expect("utf-8");
            for sub in ["prune", "plan", "check-config", "agent", "healthcheck"] {
                assert!(text.contains(sub), "{shell}: no {sub}");
            }
        }
    }

    #[test]
    fn the_manpage_is_roff_with_the_subcommands() {
        let mut out = Vec::new();
        write_manpage(ManSection::Commands, &mut out).expect("render");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with(".ie \\n(.g .ds Aq"), "{}", &text[..80]);
        assert!(text.contains(".TH stagesweep 1"));
        for sub in ["prune", "agent", "completions"] {
            assert!(text.contains(sub), "no {sub}");
        }
        assert!(text.contains(".SH \"SEE ALSO\"\n\\fBstagesweep.yaml\\fR(5)\n"));
    }
}
