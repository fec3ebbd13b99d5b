//! A small document model shared by the terminal, Markdown and CSV renderers.

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};

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

    /// comfy-table rendering for terminals.
    pub fn to_terminal(&self) -> String {
        let mut out = String::new();
        for (i, section) in self.sections.iter().enumerate() {
            if i > 0 && matches!(section, Section::Heading(_)) {
                out.push('\n');
            }
            match section {
                Section::Heading(text) => {
                    out.push_str(text);
                    out.push('\n');
                }
                Section::Lines(lines) => {
                    for line in lines {
                        out.push_str(line);
                        out.push('\n');
                    }
                }
                Section::Table { table, .. } => {
                    let mut t = Table::new();
                    t.load_preset(presets::UTF8_FULL_CONDENSED)
                        .set_content_arrangement(ContentArrangement::Disabled)
                        .set_header(table.header.iter().map(Cell::new));
                    for (i, align) in table.align.iter().enumerate() {
                        if let Some(column) = t.column_mut(i) {
                            column.set_cell_alignment(match align {
                                Align::Left => CellAlignment::Left,
                                Align::Right => CellAlignment::Right,
                            });
                        }
                    }
                    for row in &table.rows {
                        t.add_row(row.iter().map(Cell::new));
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
        let escape = |s: &str| s.replace('|', "\\|");
        let mut out = String::new();
        for section in &self.sections {
            match section {
                Section::Heading(text) => out.push_str(&format!("### {text}\n\n")),
                Section::Lines(lines) => {
                    for line in lines {
                        out.push_str(&format!("{line}  \n"));
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

    #[test]
    fn terminal_has_every_cell() {
        let text = doc().to_terminal();
        assert!(text.starts_with("Title\n"));
        assert!(text.contains("a|b") && text.contains("1,000"));
    }
}
