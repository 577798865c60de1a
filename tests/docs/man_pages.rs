//! The manual pages as a reader gets them: `stagesweep manpage` (both sections) rendered by
//! groff without warnings, every heading of docs/configuration.md a section of
//! `stagesweep.yaml(5)`. Needs groff (groff-base, see scripts/debian-packages.txt).

use crate::support;

use std::time::Duration;

use assert_cmd::Command;

fn stagesweep() -> Command {
    let mut cmd = support::cli::stagesweep();
    cmd.timeout(Duration::from_secs(30));
    cmd
}

/// A manual page as `stagesweep manpage` prints it.
fn manpage(args: &[&str]) -> String {
    let out = stagesweep()
        .arg("manpage")
        .args(args)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("utf-8 roff")
}

/// groff's `-man` output for `page` on a UTF-8 terminal, `-ww`: (plain text, warnings).
fn groff(page: &str) -> (String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P-cbou", "-rLL=100n"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("groff runs (package groff-base, see scripts/debian-packages.txt)");
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(page.as_bytes()).expect("write the page");
    drop(stdin);
    let out = child.wait_with_output().expect("groff ends");
    assert!(out.status.success(), "groff failed: {out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8 text");
    // Debian's groff prints \- as U+2212 or U+2010 on some setups: read both as '-'.
    let text = text.replace(['\u{2212}', '\u{2010}'], "-");
    (text, String::from_utf8(out.stderr).expect("utf-8 warnings"))
}

#[test]
fn the_configuration_man_page_has_every_heading_of_docs_configuration_md() {
    let page = manpage(&["--section", "5"]);
    assert!(page.contains(".TH STAGESWEEP.YAML 5"), "{page}");
    let (text, warnings) = groff(&page);
    assert_eq!(warnings, "", "groff -ww warns about stagesweep.yaml(5)");
    let lines: Vec<&str> = text.lines().collect();
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .expect("docs/configuration.md");
    let mut headings = 0;
    let mut fenced = false;
    for line in source.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        let (shown, indent) = match line.split_once(' ') {
            Some(("##", text)) if !fenced => (text, ""),
            Some(("###", text)) if !fenced => (text, "   "),
            _ => continue,
        };
        let shown = format!("{indent}{}", shown.replace('`', ""));
        assert!(
            lines.contains(&shown.as_str()),
            "{shown:?} is no section of stagesweep.yaml(5):\n{text}"
        );
        headings += 1;
    }
    assert!(headings > 10, "{headings} headings");
    for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"] {
        assert!(lines.contains(&section), "no {section}");
    }
    // The keys of a table are tags, their columns follow.
    assert!(text.contains("Type: duration"), "{text}");
}

#[test]
fn the_command_man_page_renders_without_warnings_and_names_the_configuration_page() {
    for args in [&[][..], &["--section", "1"][..]] {
        let page = manpage(args);
        assert!(page.contains(".TH stagesweep 1"), "{page}");
        let (text, warnings) = groff(&page);
        assert_eq!(warnings, "", "groff -ww warns about stagesweep(1)");
        assert!(text.contains("stagesweep.yaml(5)"), "{text}");
    }
    stagesweep()
        .args(["manpage", "--section", "3"])
        .assert()
        .code(2);
}
