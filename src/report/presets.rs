//! The `presets` listing of published figures (the rows `published::Store::select` picks).

use serde::Serialize;

use super::document::{Align, Document, TextTable};
use crate::published::{PublishedModel, Source, Store};

#[derive(Serialize)]
pub struct PresetsJson<'a> {
    pub schema_version: u32,
    pub sources: Vec<&'a Source>,
    pub models: Vec<&'a PublishedModel>,
}

/// The JSON listing: the rows and the sources they cite.
pub fn json<'a>(store: &'a Store, rows: &[&'a PublishedModel]) -> PresetsJson<'a> {
    PresetsJson {
        schema_version: 1,
        sources: store
            .sources
            .iter()
            .filter(|s| rows.iter().any(|r| r.source == s.id))
            .collect(),
        models: rows.to_vec(),
    }
}

/// The table listing.
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
