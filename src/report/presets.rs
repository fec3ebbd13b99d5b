//! The `presets` listing of published figures (the rows `published::Store::select` picks).

use serde::Serialize;

use super::document::{Align, Document, TextTable};
use crate::published::{PublishedModel, Source, Store};

/// Version 2: rows carry `classes`, and `params_convention` names a `cost::Convention`
/// (`params` for the v3 rows that said `params_with_se`, `params_slim_checkpoint` for
/// `slim_checkpoint`).
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Serialize)]
pub struct PresetsJson<'a> {
    pub schema_version: u32,
    pub sources: Vec<&'a Source>,
    pub models: Vec<&'a PublishedModel>,
}

/// The JSON listing: the rows and the sources they cite.
pub fn json<'a>(store: &'a Store, rows: &[&'a PublishedModel]) -> PresetsJson<'a> {
    PresetsJson {
        schema_version: SCHEMA_VERSION,
        sources: store
            .sources
            .iter()
            .filter(|s| rows.iter().any(|r| r.source == s.id))
            .collect(),
        models: rows.to_vec(),
    }
}

/// The CSV listing: the selected rows exactly as `presets/published/models.csv` holds them
/// (snake_case headers, figures as printed, no formatting).
pub fn csv(rows: &[&PublishedModel]) -> anyhow::Result<String> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row)?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}

/// The table listing. Counts are in millions as printed, for the class count in `Classes`.
pub fn document(store: &Store, rows: &[&PublishedModel]) -> Document {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let mut table = TextTable::new(&[
        ("Source", Align::Left),
        ("Table", Align::Left),
        ("Model", Align::Left),
        ("Family", Align::Left),
        ("Alpha", Align::Right),
        ("Res", Align::Right),
        ("Variant", Align::Left),
        ("Quant", Align::Left),
        ("Top-1", Align::Right),
        ("Top-5", Align::Right),
        ("Mult-Adds (M)", Align::Right),
        ("Params (M)", Align::Right),
        ("Params convention", Align::Left),
        ("Classes", Align::Right),
        ("Size (MB)", Align::Right),
        ("Latency (ms)", Align::Left),
        ("Erratum", Align::Left),
    ]);
    for m in rows {
        table.push(vec![
            m.source.clone(),
            m.table.clone(),
            m.model.clone(),
            m.family.clone(),
            m.alpha.map_or("-".into(), |a| a.to_string()),
            m.resolution.map_or("-".into(), |r| r.to_string()),
            m.variant.clone(),
            if m.quantized { "yes" } else { "no" }.into(),
            dash(&m.top1),
            dash(&m.top5),
            dash(&m.mult_adds_m),
            dash(&m.params_m),
            m.params_convention.map_or_else(|| "-".into(), |c| c.to_string()),
            m.classes.map_or_else(|| "-".into(), |c| c.to_string()),
            dash(&m.size_mb),
            m.latency.clone().unwrap_or_else(|| "-".into()).replace(';', "; "),
            if m.erratum.is_some() { "yes (see JSON)" } else { "" }.into(),
        ]);
    }
    let mut doc = Document::default();
    doc.heading(format!("{} published figures", rows.len()));
    doc.main_table(table);
    let mut lines: Vec<String> = store
        .sources
        .iter()
        .filter(|s| rows.iter().any(|r| r.source == s.id))
        .map(|s| format!("{}: {} ({})", s.id, s.title, s.location))
        .collect();
    for m in rows {
        if let Some(e) = &m.erratum {
            lines.push(format!("erratum, {} {}: {e}", m.source, m.model));
        }
    }
    doc.lines(lines);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CSV of every row is the embedded file itself: same headers, same cells.
    #[test]
    fn csv_round_trips_the_data_file() {
        let store = Store::embedded();
        let rows = store.select(None, None, None, None);
        let text = csv(&rows).unwrap();
        let file = include_str!("../../presets/published/models.csv");
        let parse = |t: &str| -> Vec<csv::StringRecord> {
            csv::Reader::from_reader(t.as_bytes())
                .records()
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(text.lines().next(), file.lines().next());
        // Floats re-serialise without their trailing zero ("1.0" -> "1"); compare as numbers.
        for (ours, theirs) in parse(&text).iter().zip(parse(file).iter()) {
            for (a, b) in ours.iter().zip(theirs.iter()) {
                match (a.parse::<f64>(), b.parse::<f64>()) {
                    (Ok(x), Ok(y)) => assert_eq!(x, y, "{ours:?}"),
                    _ => assert_eq!(a, b, "{ours:?}"),
                }
            }
        }
        assert_eq!(parse(&text).len(), store.models.len());
    }

    #[test]
    fn the_table_states_convention_and_classes() {
        let store = Store::embedded();
        let rows = store.select(Some("v1"), Some(1.0), Some(224), Some("slim-v1"));
        let text = document(&store, &rows).to_markdown();
        assert!(text.contains("| Params convention | Classes |"), "{text}");
        assert!(
            text.contains("| 569 | 4.24 | params_slim_checkpoint | 1001 |"),
            "{text}"
        );
    }
}
