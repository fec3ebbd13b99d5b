//! Published figures as data: the rows of `presets/published/*.csv`, embedded in the binary,
//! and their comparison with the cost model.
//!
//! Each row keeps its printed digits as a string, so the comparison knows the printed precision:
//! a published figure agrees when it is within one unit of its last printed digit of the
//! computed value (covering both rounding and the truncation some tables use). Known misprints
//! carry an erratum note in the data and are flagged, never matched.

mod compare;
mod table;
mod table2;

pub use compare::{Comparison, FigureCheck, Status, compare};
pub use table::{PaperTable2Row, PaperTable3Row, PublishedModel, SlimLayerRow, Source, Store, parse_figure};
pub use table2::{FigureCheckPct, Table2Check, compare_table2};
