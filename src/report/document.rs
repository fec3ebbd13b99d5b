//! A small document model shared by the terminal, Markdown and CSV renderers.
//!
//! Text reaches a document unescaped (a file name may hold an ESC or a newline); the terminal
//! and Markdown renderers make every control character visible ([`escape_controls`]) in every
//! heading, line and cell, so a name cannot move the cursor or recolour the terminal. CSV and
//! JSON keep the text as it is: their quoting carries it.

use std::io::IsTerminal;

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};

use crate::text::escape_controls;

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table of already formatted cells.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextTable {
    pub header: Vec<String>,
    pub align: Vec<Align>,
    pub rows: Vec<Vec<String>>,
}

impl TextTable {
    /// A table whose columns are (name, alignment) pairs.
    pub fn new(columns: &[(&str, Align)]) -> Self {
        TextTable {
            header: columns.iter().map(|(name, _)| name.to_string()).collect(),
            align: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len());
        self.rows.push(row);
    }
}

/// One part of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section {
    /// A heading line.
    Heading(String),
    /// Plain lines of text.
    Lines(Vec<String>),
    /// A table; `main` marks the table CSV output is made of.
    Table { table: TextTable, main: bool },
}

/// An ordered list of sections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    pub sections: Vec<Section>,
}

impl Document {
    pub fn heading(&mut self, text: impl Into<String>) {
        self.sections.push(Section::Heading(text.into()));
    }

    pub fn lines(&mut self, lines: Vec<String>) {
        self.sections.push(Section::Lines(lines));
    }

    pub fn table(&mut self, table: TextTable) {
        self.sections.push(Section::Table { table, main: false });
    }

    /// The table that `--format csv` writes.
    pub fn main_table(&mut self, table: TextTable) {
        self.sections.push(Section::Table { table, main: true });
    }

    /// comfy-table rendering for terminals, tables as wide as their content.
    pub fn to_terminal(&self) -> String {
        self.to_terminal_width(None)
    }

    /// comfy-table rendering for terminals; with a `width`, tables wider than it wrap their
    /// cells to fit (see [`stdout_width`]).
    pub fn to_terminal_width(&self, width: Option<u16>) -> String {
        let mut out = String::new();
        for (i, section) in self.sections.iter().enumerate() {
            if i > 0 && matches!(section, Section::Heading(_)) {
                out.push('\n');
            }
            match section {
                Section::Heading(text) => {
                    out.push_str(&escape_controls(text));
                    out.push('\n');
                }
                Section::Lines(lines) => {
                    for line in lines {
                        out.push_str(&escape_controls(line));
                        out.push('\n');
                    }
                }
                Section::Table { table, .. } => {
                    let mut t = Table::new();
                    t.load_preset(presets::UTF8_FULL_CONDENSED);
                    match width {
                        Some(width) => t
                            .set_content_arrangement(ContentArrangement::Dynamic)
                            .set_width(width),
                        None => t.set_content_arrangement(ContentArrangement::Disabled),
                    };
                    t.set_header(table.header.iter().map(|h| Cell::new(escape_controls(h))));
                    for (i, align) in table.align.iter().enumerate() {
                        if let Some(column) = t.column_mut(i) {
                            column.set_cell_alignment(match align {
                                Align::Left => CellAlignment::Left,
                                Align::Right => CellAlignment::Right,
                            });
                        }
                    }
                    for row in &table.rows {
                        t.add_row(row.iter().map(|c| Cell::new(escape_controls(c))));
                    }
                    out.push_str(&t.to_string());
                    out.push('\n');
                }
            }
        }
        out
    }

    /// GitHub-flavoured Markdown.
    pub fn to_markdown(&self) -> String {
        let escape = |s: &str| escape_controls(s).replace('|', "\\|");
        let mut out = String::new();
        for section in &self.sections {
            match section {
                Section::Heading(text) => out.push_str(&format!("### {}\n\n", escape_controls(text))),
                Section::Lines(lines) => {
                    for line in lines {
                        out.push_str(&format!("{}  \n", escape_controls(line)));
                    }
                    out.push('\n');
                }
                Section::Table { table, .. } => {
                    out.push_str(&format!(
                        "| {} |\n",
                        table
                            .header
                            .iter()
                            .map(|h| escape(h))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    ));
                    let rule: Vec<&str> = table
                        .align
                        .iter()
                        .map(|a| if *a == Align::Right { "---:" } else { "---" })
                        .collect();
                    out.push_str(&format!("| {} |\n", rule.join(" | ")));
                    for row in &table.rows {
                        out.push_str(&format!(
                            "| {} |\n",
                            row.iter().map(|c| escape(c)).collect::<Vec<_>>().join(" | ")
                        ));
                    }
                    out.push('\n');
                }
            }
        }
        out
    }

    /// The main table as CSV (RFC 4180).
    pub fn to_csv(&self) -> anyhow::Result<String> {
        let table = self
            .sections
            .iter()
            .find_map(|s| match s {
                Section::Table { table, main: true } => Some(table),
                _ => None,
            })
            .ok_or_else(|| anyhow::anyhow!("this report has no table to write as CSV"))?;
        Ok(std::iter::once(&table.header)
            .chain(&table.rows)
            .map(|row| csv_line(row))
            .collect())
    }
}

/// The width of the terminal standard output writes to, None when it is not a terminal (a pipe
/// or a file) or the width is unknown: what [`Document::to_terminal_width`] takes.
pub fn stdout_width() -> Option<u16> {
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(stdout).map(|(width, _)| width.0)
}

/// One CSV record with its line break (RFC 4180): a field holding a comma, a quote or a line
/// break is quoted, its quotes doubled.
pub fn csv_line(fields: &[String]) -> String {
    let mut line = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            line.push('"');
            line.push_str(&field.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(field);
        }
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Document {
        let mut t = TextTable::new(&[("name", Align::Left), ("value", Align::Right)]);
        t.push(vec!["a|b".into(), "1,000".into()]);
        let mut d = Document::default();
        d.heading("Title");
        d.main_table(t);
        d
    }

    #[test]
    fn markdown_escapes_pipes_and_aligns() {
        let md = doc().to_markdown();
        assert!(
            md.contains("| name | value |\n| --- | ---: |\n| a\\|b | 1,000 |"),
            "{md}"
        );
    }

    #[test]
    fn csv_quotes_commas() {
        assert_eq!(doc().to_csv().unwrap(), "name,value\na|b,\"1,000\"\n");
        let fields = ["plain", "say \"hi\"", "two\nlines", ""].map(String::from);
        assert_eq!(csv_line(&fields), "plain,\"say \"\"hi\"\"\",\"two\nlines\",\n");
    }

    /// A document with an ESC, a BEL and a newline in a heading, a line and a cell.
    fn hostile() -> Document {
        let mut t = TextTable::new(&[("name\u{7}", Align::Left)]);
        t.push(vec!["\u{1b}[31mred\u{1b}[0m.jpg".into()]);
        let mut d = Document::default();
        d.heading("on \u{1b}]0;title\u{7}");
        d.lines(vec!["two\nlines".into()]);
        d.main_table(t);
        d
    }

    #[test]
    fn terminal_and_markdown_escape_control_characters() {
        for text in [
            hostile().to_terminal(),
            hostile().to_markdown(),
            hostile().to_terminal_width(Some(30)),
        ] {
            assert!(!text.contains(['\u{1b}', '\u{7}']), "{text:?}");
            assert!(text.contains("\\x1b[31mred\\x1b[0m.jpg"), "{text}");
            assert!(text.contains("on \\x1b]0;title\\x07"), "{text}");
            assert!(text.contains("two\\nlines"), "{text}");
            assert!(text.contains("name\\x07"), "{text}");
        }
        assert_eq!(
            hostile().to_csv().unwrap(),
            "name\u{7}\n\u{1b}[31mred\u{1b}[0m.jpg\n",
            "CSV keeps the data"
        );
    }

    #[test]
    fn a_width_wraps_wide_tables_to_fit() {
        let mut t = TextTable::new(&[
            ("image", Align::Left),
            ("label", Align::Left),
            ("p", Align::Right),
        ]);
        t.push(vec![
            "a/very/long/directory/name/with/a/photo_of_a_cat.jpg".into(),
            "tabby, tabby cat, Egyptian cat, tiger cat".into(),
            "95.75%".into(),
        ]);
        let mut d = Document::default();
        d.table(t);
        let wide = d.to_terminal();
        assert!(wide.lines().any(|l| l.chars().count() > 60), "{wide}");
        let narrow = d.to_terminal_width(Some(60));
        assert!(narrow.lines().all(|l| l.chars().count() <= 60), "{narrow}");
        assert!(
            narrow.contains("95.75%") && narrow.contains("photo_of_a_cat"),
            "{narrow}"
        );
        assert_eq!(
            d.to_terminal_width(Some(500)),
            wide,
            "a narrower table is left as it is"
        );
    }

    #[test]
    fn terminal_has_every_cell() {
        let text = doc().to_terminal();
        assert!(text.starts_with("Title\n"));
        assert!(text.contains("a|b") && text.contains("1,000"));
    }
}
