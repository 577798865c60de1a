//! `stagesweep.yaml(5)`: `docs/configuration.md`, embedded at build time, rendered to roff
//! (its title becomes DESCRIPTION, `##` sections `.SH`, deeper ones `.SS`; tables of keys
//! become tagged paragraphs, as man pages list options).

use std::fmt::Write as _;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use roff::{Inline, Roff, bold, italic, roman};

/// The configuration reference: the one source of `stagesweep.yaml(5)`.
pub const CONFIGURATION_MD: &str = include_str!("../../docs/configuration.md");

/// `stagesweep.yaml(5)`: NAME and SYNOPSIS, then `docs/configuration.md` (its title becomes
/// DESCRIPTION, `##` sections `.SH`, deeper ones `.SS`), then SEE ALSO.
#[must_use]
pub fn config_page() -> String {
    let mut r = Markdown::default();
    let title = format!("stagesweep {}", env!("CARGO_PKG_VERSION"));
    r.roff
        .control("TH", ["STAGESWEEP.YAML", "5", "\"\"", &title, "File Formats"])
        // Paths and keys read better unhyphenated and ragged-right.
        .control("nh", [])
        .control("ad", ["l"])
        .control("SH", ["NAME"])
        .text([roman(
            "stagesweep.yaml - the configuration file of stagesweep, a garbage collector for Docker build leftovers",
        )])
        .control("SH", ["SYNOPSIS"])
        .text([
            bold("/etc/stagesweep/config.yaml"),
            roman(", or the file named by "),
            bold("--config"),
            roman(" or "),
            bold("STAGESWEEP_CONFIG"),
        ]);
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    for event in Parser::new_ext(CONFIGURATION_MD, options) {
        r.event(event);
    }
    r.flush();
    r.roff.control("SH", ["SEE ALSO"]).text([
        bold("stagesweep"),
        roman("(1), "),
        roman("/usr/share/doc/stagesweep/docs/ (the whole reference), "),
        roman("/usr/share/doc/stagesweep/examples/ (example configurations)"),
    ]);
    ascii(&r.roff.render())
}

/// Non-ASCII characters as groff's `\[uXXXX]` escapes: the page renders the same whatever
/// input encoding the formatter assumes.
pub(super) fn ascii(roff: &str) -> String {
    let mut out = String::with_capacity(roff.len());
    for c in roff.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let _ = write!(out, "\\[u{:04X}]", u32::from(c));
        }
    }
    out
}

/// Markdown events to roff: headings, paragraphs, lists, code blocks, and tables as tagged
/// paragraphs (`.TP`, one per row; a table of keys reads as man pages list options).
#[derive(Default)]
struct Markdown {
    roff: Roff,
    /// The text line being built.
    line: Vec<Inline>,
    /// Its plain text (headings, table headers).
    plain: String,
    bold: usize,
    italic: usize,
    /// Open lists: the next number of an ordered one, `None` for bullets.
    lists: Vec<Option<u64>>,
    /// Paragraphs seen in the current list item (the second one needs `.IP`).
    item_paragraphs: usize,
    code_block: Option<String>,
    /// An open link: where it points, and where its text starts in `plain`.
    link: Option<(String, usize)>,
    table: Option<Table>,
}

#[derive(Default)]
struct Table {
    in_head: bool,
    header: Vec<String>,
    row: Vec<Vec<Inline>>,
}

impl Markdown {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => match &mut self.code_block {
                Some(code) => code.push_str(&text),
                None => self.push(&text),
            },
            Event::Code(code) => {
                self.plain.push_str(&code);
                self.line.push(bold(code.to_string()));
            }
            Event::SoftBreak => self.push(" "),
            Event::HardBreak => {
                self.flush();
                self.roff.control("br", []);
            }
            _ => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Heading { .. } | Tag::TableCell => {
                self.line.clear();
                self.plain.clear();
            }
            Tag::Paragraph => self.paragraph(),
            Tag::List(first) => {
                self.flush();
                if !self.lists.is_empty() {
                    self.roff.control("RS", ["2"]);
                }
                self.lists.push(first);
            }
            Tag::Item => {
                self.flush();
                self.item_paragraphs = 0;
                let bullet = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}.", *n - 1)
                    }
                    _ => "\\(bu".to_owned(),
                };
                let indent = if bullet.ends_with('.') { "4" } else { "2" };
                self.roff.control("IP", [bullet.as_str(), indent]);
            }
            Tag::CodeBlock(_) => {
                self.flush();
                self.code_block = Some(String::new());
            }
            Tag::Emphasis => self.italic += 1,
            Tag::Strong => self.bold += 1,
            Tag::Link { dest_url, .. } => {
                self.link = Some((dest_url.to_string(), self.plain.len()));
            }
            Tag::Table(_) => {
                self.flush();
                self.table = Some(Table {
                    in_head: true,
                    ..Table::default()
                });
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Heading(level) => {
                let text = std::mem::take(&mut self.plain);
                self.line.clear();
                let (name, text) = match level {
                    HeadingLevel::H1 => ("SH", "DESCRIPTION".to_owned()),
                    HeadingLevel::H2 => ("SH", text),
                    _ => ("SS", text),
                };
                self.roff.control(name, []).text([roman(text)]);
            }
            TagEnd::Paragraph | TagEnd::Item => self.flush(),
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
                if !self.lists.is_empty() {
                    self.roff.control("RE", []);
                }
            }
            TagEnd::CodeBlock => self.code(),
            TagEnd::Emphasis => self.italic -= 1,
            TagEnd::Strong => self.bold -= 1,
            TagEnd::Link => self.end_link(),
            TagEnd::TableCell => {
                let cell = std::mem::take(&mut self.line);
                let plain = std::mem::take(&mut self.plain);
                if let Some(table) = &mut self.table {
                    if table.in_head {
                        table.header.push(plain);
                    }
                    table.row.push(cell);
                }
            }
            TagEnd::TableHead => {
                if let Some(table) = &mut self.table {
                    table.in_head = false;
                    table.row.clear();
                }
            }
            TagEnd::TableRow => self.row(),
            TagEnd::Table => self.table = None,
            _ => {}
        }
    }

    /// Text in the current style.
    fn push(&mut self, text: &str) {
        self.plain.push_str(text);
        let text = text.to_owned();
        self.line.push(if self.bold > 0 {
            bold(text)
        } else if self.italic > 0 {
            italic(text)
        } else {
            roman(text)
        });
    }

    /// Emit the text line being built, if any.
    fn flush(&mut self) {
        if !self.line.is_empty() {
            self.roff.text(std::mem::take(&mut self.line));
        }
        self.plain.clear();
    }

    fn paragraph(&mut self) {
        self.flush();
        if self.lists.is_empty() {
            self.roff.control("PP", []);
        } else {
            if self.item_paragraphs > 0 {
                self.roff.control("IP", []);
            }
            self.item_paragraphs += 1;
        }
    }

    /// A fenced block, unfilled and indented.
    fn code(&mut self) {
        let code = self.code_block.take().unwrap_or_default();
        if self.lists.is_empty() {
            self.roff.control("PP", []);
        }
        self.roff.control("RS", ["4"]).control("nf", []);
        for line in code.lines() {
            self.roff.text([roman(line)]);
        }
        self.roff.control("fi", []).control("RE", []);
    }

    /// After a link's text: where it points, unless the text says so already or it is an
    /// anchor of this page.
    fn end_link(&mut self) {
        let Some((dest, start)) = self.link.take() else {
            return;
        };
        let target = if dest.contains("://") {
            dest
        } else {
            let path = dest.split('#').next().unwrap_or_default();
            let path = match path.strip_prefix("../") {
                Some(up) => up.to_owned(),
                None if path.is_empty() || path == "configuration.md" => return,
                None => format!("docs/{path}"),
            };
            let name = path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            if self
                .plain
                .get(start..)
                .is_some_and(|text| text.contains(name))
            {
                return;
            }
            path
        };
        self.line.push(roman(format!(" ({target})")));
    }

    /// A table row as a tagged paragraph: the first cell is the tag (after its column's
    /// name, unless that is a key or kind), the others follow as `column: value` lines.
    fn row(&mut self) {
        let Some(table) = &mut self.table else { return };
        let cells = std::mem::take(&mut table.row);
        let header = &table.header;
        self.roff.control("TP", []);
        let mut cells = cells.into_iter().enumerate().filter(|(_, c)| !c.is_empty());
        if let Some((i, tag)) = cells.next() {
            let name = header.get(i).map_or("", String::as_str);
            let mut line = Vec::new();
            if !(name.is_empty() || ["Key", "Kind"].contains(&name) || name.starts_with('-')) {
                line.extend([italic(name), roman(": ")]);
            }
            line.extend(tag);
            self.roff.text(line);
        }
        let mut first = true;
        for (i, cell) in cells {
            if !first {
                self.roff.control("br", []);
            }
            first = false;
            let name = header.get(i).map_or("", String::as_str);
            let mut line = Vec::new();
            if !(name.is_empty() || name == "Meaning") {
                line.extend([italic(name), roman(": ")]);
            }
            line.extend(cell);
            self.roff.text(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_page_has_a_section_for_every_heading() {
        let page = config_page();
        assert!(page.contains(".TH STAGESWEEP.YAML 5"), "{}", &page[..200]);
        assert!(page.is_ascii(), "non-ASCII is escaped");
        let headings: Vec<(usize, String)> = CONFIGURATION_MD
            .lines()
            .filter(|l| l.starts_with("## ") || l.starts_with("### "))
            .map(|l| {
                let (hashes, text) = l.split_once(' ').expect("a heading");
                (hashes.len(), text.replace('`', ""))
            })
            .collect();
        assert!(headings.len() > 10, "{headings:?}");
        for (level, text) in headings {
            let macro_name = if level == 2 { "SH" } else { "SS" };
            let expected = Roff::new()
                .control(macro_name, [])
                .text([roman(text.as_str())])
                .to_roff();
            assert!(page.contains(&expected), "no {expected:?}");
        }
    }

    #[test]
    fn tables_become_tagged_paragraphs_and_code_stays_unfilled() {
        let mut r = Markdown::default();
        let md = "| Key | Type | Meaning |\n|---|---|---|\n| `host` | string | Where. |\n\n\
                  ```sh\n.dot first\n```\n";
        for event in Parser::new_ext(md, Options::ENABLE_TABLES) {
            r.event(event);
        }
        r.flush();
        let roff = r.roff.to_roff();
        assert_eq!(
            roff,
            ".TP\n\\fBhost\\fR\n\\fIType\\fR: string\n.br\nWhere.\n\
             .PP\n.RS 4\n.nf\n\\&.dot first\n.fi\n.RE\n"
        );
    }
}
