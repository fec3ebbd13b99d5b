//! The report of `sweep`: the trade-off table, the Pareto front, budgets and accuracy sources.
//! Every sentence is built here from the sweep's typed data (provenance, fits, budget outcome).

use super::Format;
use super::bench::environment_lines;
use super::document::{Align, Document, TextTable};
use super::units::{megabytes, millis};
use crate::arch::config::format_alpha;
use crate::infer::Precision;
use crate::sweep::member::distinct;
use crate::sweep::{
    Accuracy, Figure, Fit, FitOrigin, MeasuredOn, Metric, NoBest, Provenance, SweepReport, SweepRow,
    Unavailable,
};

/// The grid point as plots label it: "0.5-160"; a `--weights` file's row by the file.
pub(super) fn point_label(row: &SweepRow) -> String {
    match &row.weights {
        Some(file) => file.clone(),
        None => format!("{}-{}", format_alpha(row.alpha), row.resolution),
    }
}

/// The row as lists name it: "v1 0.5-160", and at int8 "v1 0.5-160 int8"; a `--weights`
/// file's row by the file ("mine.safetensors int8").
fn row_label(row: &SweepRow) -> String {
    match &row.weights {
        Some(file) => format!("{file}{}", int8_suffix(row.precision)),
        None => format!(
            "{} {}{}",
            row.member(),
            point_label(row),
            int8_suffix(row.precision)
        ),
    }
}

/// " int8" for int8, nothing for f32: how lists tell int8 rows and fits apart.
fn int8_suffix(precision: Precision) -> &'static str {
    match precision {
        Precision::F32 => "",
        Precision::Int8 => " int8",
    }
}

/// The weights a row ran: a `--weights` file, or the shipped backbone a `--data` row's top-1
/// was measured on.
fn row_weights(row: &SweepRow) -> Option<&str> {
    if let Some(file) = &row.weights {
        return Some(file);
    }
    match &row.top1.as_ref().ok()?.provenance {
        Provenance::Measured { model, .. } => Some(model),
        _ => None,
    }
}

/// `top1_provenance`/`top5_provenance` in CSV: where the figure comes from, or why there is
/// none (the JSON's `unavailable.reason`).
fn provenance_id(figure: &Figure) -> &'static str {
    match figure {
        Ok(a) if a.is_extrapolated() => "extrapolated",
        Ok(a) if a.is_estimated() => "estimated",
        Ok(Accuracy {
            provenance: Provenance::MeasuredAsGiven { .. },
            ..
        }) => "measured-as-given",
        Ok(a) if a.is_measured() => "measured",
        Ok(_) => "published",
        Err(Unavailable::NoFit) => "no-fit",
        Err(Unavailable::BeyondLimit { .. }) => "beyond-limit",
        Err(Unavailable::NotMeasured) => "not-measured",
        Err(Unavailable::NoPublishedFigure) => "no-published-figure",
    }
}

/// The id of the source the figure rests on: the published row's, or the estimating fit's points'.
fn source_id(report: &SweepReport, row: &SweepRow, metric: Metric) -> String {
    match row.figure(metric) {
        Ok(a) => match &a.provenance {
            Provenance::Published { source, .. } => source.clone(),
            Provenance::Measured { .. } => "measured".into(),
            Provenance::MeasuredAsGiven { .. } => "measured-as-given".into(),
            Provenance::Estimated { fit, .. } => report
                .fit(*fit, row.precision, metric)
                .map_or(String::new(), |f| f.source.to_string()),
        },
        Err(_) => String::new(),
    }
}

fn top_cell(figure: &Figure) -> String {
    match figure {
        Ok(a @ Accuracy { value, .. }) if let Some([low, high]) = a.interval() => format!(
            "{value:.1} ({low:.0}-{high:.0}){}",
            if figure.as_ref().is_ok_and(Accuracy::off_trained_resolution) {
                "~"
            } else {
                ""
            }
        ),
        Ok(a) if a.is_extrapolated() => format!("{:.1}?", a.value),
        Ok(a) if a.is_estimated() => format!("{:.1}*", a.value),
        Ok(a) => format!("{:.1}", a.value),
        Err(_) => "-".into(),
    }
}

/// "alpha 0.25-1.0, resolution 128-224".
fn span(fit: &Fit) -> String {
    let [a0, a1] = fit.alpha_range;
    let [r0, r1] = fit.resolution_range;
    format!(
        "alpha {}-{}, resolution {r0}-{r1}",
        format_alpha(a0),
        format_alpha(a1)
    )
}

/// "quadratic fit in (ln alpha, ln resolution) over the 16 published points of slim-v1 (...)".
fn describe_fit(fit: &Fit) -> String {
    let shape = fit.shape.name();
    let loo = format!(
        "leave-one-out error mean {:.2}, max {:.2} points",
        fit.loo_mean_abs, fit.loo_max_abs
    );
    match fit.origin {
        FitOrigin::Own => format!(
            "{shape} fit in (ln alpha, ln resolution) over the {} published points of {} ({}; {loo})",
            fit.points,
            fit.source,
            span(fit)
        ),
        FitOrigin::Shifted {
            donor,
            donor_source,
            donor_points,
            shift,
        } => format!(
            "the {shape} fit over the {donor_points} published points of {donor_source} {donor} ({}), shifted by {shift:+.2} to the {} published points of {} ({loo})",
            span(fit),
            fit.points,
            fit.source
        ),
    }
}

/// `sweep`'s CSV: raw numbers, snake_case headers, provenance as ids.
fn sweep_csv(report: &SweepReport) -> Document {
    let mut t = TextTable::new(&[
        ("family", Align::Left),
        ("minimalistic", Align::Left),
        ("alpha", Align::Right),
        ("resolution", Align::Right),
        ("precision", Align::Left),
        ("classes", Align::Right),
        ("mult_adds", Align::Right),
        ("params", Align::Right),
        ("params_deployed", Align::Right),
        ("weight_bytes_f32", Align::Right),
        ("weight_bytes_int8", Align::Right),
        ("activation_peak_bytes", Align::Right),
        ("latency_median_ms", Align::Right),
        ("latency_p90_ms", Align::Right),
        ("throughput", Align::Right),
        ("top1", Align::Right),
        ("top1_provenance", Align::Left),
        ("top1_source", Align::Left),
        ("top1_model", Align::Left),
        ("top5", Align::Right),
        ("top5_provenance", Align::Left),
        ("top5_source", Align::Left),
        ("top5_model", Align::Left),
        ("pareto", Align::Left),
        ("pareto_mult_adds", Align::Left),
        ("fits_budget", Align::Left),
        ("best", Align::Left),
        ("weights", Align::Left),
    ]);
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
    for r in &report.rows {
        let mut cells = vec![
            r.family.name().to_string(),
            r.minimalistic.to_string(),
            r.alpha.to_string(),
            r.resolution.to_string(),
            r.precision.to_string(),
            r.classes.to_string(),
            r.mult_adds.to_string(),
            r.params.to_string(),
            r.params_deployed.to_string(),
            r.weight_bytes_f32.to_string(),
            r.weight_bytes_int8.to_string(),
            r.activation_peak_bytes.to_string(),
            opt(r.latency_ms.as_ref().map(|l| l.median)),
            opt(r.latency_ms.as_ref().map(|l| l.p90)),
            opt(r.throughput),
        ];
        for metric in Metric::ALL {
            let figure = r.figure(metric);
            let model = match figure.as_ref().map(|a| &a.provenance) {
                Ok(Provenance::Published { model, .. } | Provenance::Measured { model, .. }) => model.clone(),
                Ok(Provenance::MeasuredAsGiven { weights, .. }) => weights.clone(),
                _ => String::new(),
            };
            cells.extend([
                opt(figure.as_ref().ok().map(|a| a.value)),
                provenance_id(figure).to_string(),
                source_id(report, r, metric),
                model,
            ]);
        }
        cells.extend([
            r.pareto.to_string(),
            r.pareto_mult_adds.to_string(),
            r.fits_budget.map_or(String::new(), |b| b.to_string()),
            r.best.to_string(),
            r.weights.clone().unwrap_or_default(),
        ]);
        t.push(cells);
    }
    let mut doc = Document::default();
    doc.main_table(t);
    doc
}

/// The lines under the table that say where the accuracy figures come from.
fn accuracy_lines(report: &SweepReport) -> Vec<String> {
    let limit = format!("{:.0}%", (report.max_extrapolation_ratio - 1.0) * 100.0);
    let figures = || {
        report
            .rows
            .iter()
            .flat_map(|r| Metric::ALL.map(|m| (r, m, r.figure(m))))
    };
    let mut lines = Vec::new();
    let published = distinct(
        figures().filter_map(|(_, _, f)| match f.as_ref().ok()?.provenance {
            Provenance::Published {
                ref source,
                ref table,
                ..
            } => Some(format!("{source} {table}")),
            Provenance::Estimated { .. }
            | Provenance::Measured { .. }
            | Provenance::MeasuredAsGiven { .. } => None,
        }),
    );
    if !published.is_empty() {
        lines.push(format!("published accuracy: {}", published.join("; ")));
    }
    let fits = distinct(
        figures().filter_map(|(r, metric, f)| match f.as_ref().ok()?.provenance {
            Provenance::Estimated { fit, .. } => Some((fit, r.precision, metric)),
            Provenance::Published { .. }
            | Provenance::Measured { .. }
            | Provenance::MeasuredAsGiven { .. } => None,
        }),
    );
    if let Some(data) = &report.data {
        lines.extend(measured_lines(report, data));
    }
    for (member, precision, metric) in fits {
        if let Some(fit) = report.fit(member, precision, metric) {
            lines.push(format!(
                "* {member}{} {}: {}",
                int8_suffix(precision),
                metric.name(),
                describe_fit(fit)
            ));
        }
    }
    let extrapolated = distinct(
        figures()
            .filter(|(_, _, f)| f.as_ref().is_ok_and(|a| a.is_extrapolated()))
            .map(|(r, _, _)| row_label(r)),
    );
    if !extrapolated.is_empty() {
        lines.push(format!(
            "? extrapolated: estimated up to {limit} beyond the widths or resolutions the fit was made on, so less reliable; not on the Pareto front and never best within budget: {}",
            extrapolated.join(", ")
        ));
    }
    for metric in Metric::ALL {
        let missing = |wanted: fn(&Unavailable) -> bool| {
            figures()
                .filter(|(_, m, f)| *m == metric && f.as_ref().is_err_and(wanted))
                .map(|(r, _, _)| r)
                .collect::<Vec<&SweepRow>>()
        };
        let no_fit = missing(|u| matches!(u, Unavailable::NoFit));
        if !no_fit.is_empty() {
            lines.push(format!(
                "{} -: no published figure and too few published points to estimate one ({})",
                metric.name(),
                no_fit.iter().map(|r| row_label(r)).collect::<Vec<_>>().join(", ")
            ));
        }
        let unpublished = missing(|u| matches!(u, Unavailable::NoPublishedFigure));
        if !unpublished.is_empty() {
            lines.push(format!(
                "{} -: your own weights have no published figure (measure one with --data DIR on folders named by the file's labels); not on the Pareto front, in the plot or best within budget: {}",
                metric.name(),
                distinct(unpublished.iter().map(|r| row_label(r))).join(", ")
            ));
        }
        let unmeasured = missing(|u| matches!(u, Unavailable::NotMeasured));
        if !unmeasured.is_empty() {
            lines.push(format!(
                "{} -: not measured (--data measures top-1 on your classes)",
                metric.name()
            ));
        }
        let too_far = missing(|u| matches!(u, Unavailable::BeyondLimit { .. }));
        if !too_far.is_empty() {
            let spans = distinct(too_far.iter().filter_map(|r| {
                let fit = report.fit(r.member(), r.precision, metric)?;
                Some(format!(
                    "{}{}: {}",
                    r.member(),
                    int8_suffix(r.precision),
                    span(fit)
                ))
            }));
            lines.push(format!(
                "{} -: no estimate more than {limit} beyond the span of the fit's points ({}): {}",
                metric.name(),
                spans.join("; "),
                too_far
                    .iter()
                    .map(|r| row_label(r))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    lines
}

/// What `--data`'s measured figures are: the data, the split, the interval, the rows run off
/// their trained resolution, the cost.
fn measured_lines(report: &SweepReport, data: &MeasuredOn) -> Vec<String> {
    let count = |f: fn(&crate::transfer::SplitCounts) -> usize| {
        data.classes.iter().map(|c| f(&c.counts)).sum::<usize>()
    };
    let names: Vec<&str> = data.classes.iter().map(|c| c.name.as_str()).collect();
    let mut lines = vec![format!(
        "top-1 measured: test accuracy of a softmax-regression head retrained on each backbone's features of {} ({} classes: {}; {} training, {} validation, {} test images, the same split for every row), 95% Wilson interval in parentheses",
        data.dir,
        names.len(),
        names.join(", "),
        count(|c| c.train),
        count(|c| c.validation),
        count(|c| c.test),
    )];
    for row in &report.rows {
        if let Ok(Accuracy {
            provenance: Provenance::MeasuredAsGiven { weights, images, .. },
            ..
        }) = &row.top1
        {
            lines.push(format!(
                "top-1 of {weights}: measured as given (its own classifier, not retrained; its labels matched to the class folders) on the same {images} test images"
            ));
        }
    }
    let off: Vec<String> = report
        .rows
        .iter()
        .filter(|r| r.top1.as_ref().is_ok_and(Accuracy::off_trained_resolution))
        .map(|r| format!("{} at {}", row_weights(r).unwrap_or_default(), r.resolution))
        .collect();
    if !off.is_empty() {
        lines.push(format!(
            "~ off the backbone's trained resolution (the pretrained weights run at another input size): {}",
            off.join(", ")
        ));
    }
    lines.push(format!(
        "features {:.2} s ({} computed, {} from the cache), training {:.2} s",
        data.feature_seconds, data.forwarded, data.cache_hits, data.training_seconds
    ));
    if !data.failed.is_empty() {
        lines.push(format!(
            "{} unreadable image(s) left out: {}",
            data.failed.len(),
            data.failed
                .iter()
                .map(|f| f.image.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    lines
}

/// `sweep --data`'s unreadable images, one line each, for stderr.
pub fn sweep_failures(report: &SweepReport) -> Vec<String> {
    report
        .data
        .iter()
        .flat_map(|d| &d.failed)
        .map(|f| crate::text::escape_controls(&format!("{}: {}", f.image, f.error)))
        .collect()
}

/// The budget's outcome.
fn budget_line(report: &SweepReport) -> String {
    match (report.best, report.no_best) {
        (Some(best), _) => format!("best within budget: {}", row_label(&report.rows[best])),
        (None, Some(NoBest::NoTrustedTop1)) => {
            let fitting: Vec<String> = report
                .rows
                .iter()
                .filter(|r| r.fits_budget == Some(true))
                .map(row_label)
                .collect();
            format!(
                "no best within budget: the rows that fit it have only an extrapolated top-1 estimate or none ({})",
                fitting.join(", ")
            )
        }
        (None, _) => "no row fits the budget".into(),
    }
}

/// `sweep`: the trade-off table. CSV gets raw values; the other formats readable ones.
pub fn sweep_document(report: &SweepReport, format: Format) -> Document {
    if format == Format::Csv {
        return sweep_csv(report);
    }
    let mut doc = Document::default();
    let timed = report.rows.iter().any(|r| r.latency_ms.is_some());
    let budget = report.budget.is_set();
    // The weights column names what ran: the shipped backbones of --data, --weights files.
    let measured = report.data.is_some() || report.rows.iter().any(|r| r.weights.is_some());
    let classes = distinct(report.rows.iter().map(|r| r.classes));
    let mut columns = vec![];
    if measured {
        columns.push(("weights", Align::Left));
    }
    columns.extend([
        ("family", Align::Left),
        ("alpha", Align::Right),
        ("res", Align::Right),
        ("precision", Align::Left),
    ]);
    // Rows of different classifiers (a --weights file's classes): each states its count.
    if classes.len() > 1 {
        columns.push(("classes", Align::Right));
    }
    columns.extend([
        ("mult-adds", Align::Right),
        ("params", Align::Right),
        ("f32 weights", Align::Right),
        ("int8 weights", Align::Right),
        ("peak act.", Align::Right),
    ]);
    if timed {
        columns.extend([
            ("median ms", Align::Right),
            ("p90 ms", Align::Right),
            ("images/s", Align::Right),
        ]);
    }
    columns.extend([
        ("top-1", Align::Right),
        ("top-5", Align::Right),
        ("pareto", Align::Left),
    ]);
    if budget {
        columns.push(("budget", Align::Left));
    }
    let mut t = TextTable::new(&columns);
    for r in &report.rows {
        let mut row = Vec::new();
        if measured {
            row.push(row_weights(r).unwrap_or("-").to_string());
        }
        row.extend([
            r.member().name(),
            format_alpha(r.alpha),
            r.resolution.to_string(),
            r.precision.to_string(),
        ]);
        if classes.len() > 1 {
            row.push(r.classes.to_string());
        }
        row.extend([
            format!("{:.1}M", r.mult_adds as f64 / 1e6),
            format!("{:.2}M", r.params as f64 / 1e6),
            megabytes(r.weight_bytes_f32),
            megabytes(r.weight_bytes_int8),
            megabytes(r.activation_peak_bytes),
        ]);
        if timed {
            match &r.latency_ms {
                Some(l) => row.extend([millis(l.median), millis(l.p90)]),
                None => row.extend(["-".into(), "-".into()]),
            }
            row.push(r.throughput.map_or("-".into(), |t| format!("{t:.1}")));
        }
        row.extend([
            top_cell(&r.top1),
            top_cell(&r.top5),
            if r.pareto { "*" } else { "" }.into(),
        ]);
        if budget {
            row.push(match (r.best, r.fits_budget) {
                (true, _) => "BEST".into(),
                (false, Some(true)) => "fits".into(),
                _ => String::new(),
            });
        }
        t.push(row);
    }
    let families: Vec<String> = report.families.iter().map(|m| m.name()).collect();
    let classes: Vec<String> = classes.iter().map(u32::to_string).collect();
    let sources: Vec<String> = match report.precisions.as_slice() {
        [one] => vec![report.accuracy_source.title_at(*one).to_string()],
        many => many
            .iter()
            .map(|p| format!("{} ({p})", report.accuracy_source.title_at(*p)))
            .collect(),
    };
    let rows = match report.precisions.len() {
        0 | 1 => format!("{} points", report.rows.len()),
        n => format!("{} points x {n} precisions", report.rows.len() / n),
    };
    doc.heading(format!(
        "MobileNet trade-off ({}): {rows}, {} classes, batch {}, accuracy from {}",
        families.join(", "),
        classes.join("/"),
        report.batch,
        sources.join(", ")
    ));
    doc.main_table(t);
    let mut lines = Vec::new();
    if timed {
        lines.extend(environment_lines(&report.environment));
    }
    let cost_axis = if report.timed() {
        "median latency"
    } else {
        "mult-adds"
    };
    lines.push(format!(
        "pareto *: no other row is both at least as fast ({cost_axis}) and at least as accurate (top-1), and better in one; {}",
        if report.data.is_some() {
            "every measured top-1 takes part"
        } else {
            "only published top-1 figures and estimates within their fit's span take part"
        }
    ));
    if report.precisions.contains(&Precision::Int8) {
        lines.push(
            "int8: TFLite's uint8 arithmetic (random weights with synthetic quantization; latency does not depend on the values), top-1 and top-5 of the quantized models, size budget on the uint8 weights"
                .into(),
        );
    }
    lines.extend(accuracy_lines(report));
    if budget {
        lines.push(budget_line(report));
    }
    doc.lines(lines);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Family;
    use crate::bench::Environment;
    use crate::cost::analyze;
    use crate::published::Store;
    use crate::sweep::{AccuracyModel, AccuracySource, Budget, Extrapolation, Member, Unavailable};

    /// A v1 and v3-small sweep of the given points, finished under a 30 MB budget.
    fn report(points: &[(Member, f64, u32)]) -> SweepReport {
        let members = [Member::standard(Family::V1), Member::standard(Family::V3Small)];
        let models =
            members.map(|m| AccuracyModel::new(&Store::embedded(), AccuracySource::Slim, m, Precision::F32));
        let budget = Budget {
            max_size_mb: Some(30.0),
            ..Budget::default()
        };
        let mut report = SweepReport::new(
            Environment::mock(1, crate::infer::EngineKind::Fast),
            1,
            0,
            AccuracySource::Slim,
            &models,
            budget,
        );
        for &(member, alpha, resolution) in points {
            let model = models.iter().find(|m| m.member == member).unwrap();
            let config = member.config(alpha, resolution).unwrap();
            report
                .rows
                .push(SweepRow::new(&config, &analyze(&config).totals, model));
        }
        report.finish();
        report
    }

    #[test]
    fn a_measured_figure_shows_its_interval_and_whether_it_ran_off_its_resolution() {
        let measured = |resolution| -> Figure {
            Ok(Accuracy {
                value: 82.0,
                provenance: Provenance::Measured {
                    data: "photos".into(),
                    model: "0.25_128".into(),
                    resolution,
                    trained_resolution: 128,
                    images: 50,
                    correct: 41,
                    interval: [69.2, 90.23],
                },
            })
        };
        assert_eq!(top_cell(&measured(128)), "82.0 (69-90)");
        assert_eq!(top_cell(&measured(160)), "82.0 (69-90)~");
        assert_eq!(provenance_id(&measured(160)), "measured");
        assert_eq!(provenance_id(&Err(Unavailable::NotMeasured)), "not-measured");
        assert!(
            measured(128).unwrap().is_trusted(),
            "a measurement may rest on the front"
        );
    }

    #[test]
    fn the_legend_is_built_from_the_provenance() {
        let (v1, v3) = (Member::standard(Family::V1), Member::standard(Family::V3Small));
        let r = report(&[(v1, 1.2, 224), (v1, 2.0, 1024), (v3, 1.0, 160)]);
        let lines = accuracy_lines(&r);
        let fit_lines: Vec<&String> = lines.iter().filter(|l| l.starts_with("* ")).collect();
        assert_eq!(fit_lines.len(), 3, "{lines:#?}");
        assert!(fit_lines[0].starts_with(
            "* v1 top-1: quadratic fit in (ln alpha, ln resolution) over the 16 published points of slim-v1 (alpha 0.25-1.0, resolution 128-224; leave-one-out error mean 0.18, max 0.50 points)"
        ));
        assert!(fit_lines[2].starts_with(
            "* v3-small top-1: the quadratic fit over the 22 published points of slim-v2 v2 (alpha 0.35-1.4, resolution 96-224), shifted by -4.86 to the 2 published points of slim-v3"
        ));
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("? extrapolated: estimated up to 25% beyond")
                    && l.ends_with(": v1 1.2-224"))
        );
        assert!(lines.contains(&"top-1 -: no estimate more than 25% beyond the span of the fit's points (v1: alpha 0.25-1.0, resolution 128-224): v1 2.0-1024".to_string()));
        assert!(lines.contains(&"top-5 -: no published figure and too few published points to estimate one (v3-small 1.0-160)".to_string()));
        // The in-span v3-small estimate is the only trusted row within 30 MB.
        assert_eq!(budget_line(&r), "best within budget: v3-small 1.0-160");
        let only_extrapolated = report(&[(v1, 1.2, 224)]);
        assert_eq!(
            budget_line(&only_extrapolated),
            "no best within budget: the rows that fit it have only an extrapolated top-1 estimate or none (v1 1.2-224)"
        );
        assert_eq!(budget_line(&report(&[(v1, 2.0, 224)])), "no row fits the budget");
    }

    #[test]
    fn a_weights_file_row_is_named_by_its_file_and_measured_as_given() {
        let config = Member::standard(Family::V1).config(0.25, 128).unwrap();
        let as_given: Figure = Ok(Accuracy {
            value: 90.0,
            provenance: Provenance::MeasuredAsGiven {
                data: "photos".into(),
                weights: "mine.safetensors".into(),
                images: 50,
                correct: 45,
                interval: [78.6, 95.65],
            },
        });
        assert_eq!(top_cell(&as_given), "90.0 (79-96)");
        assert_eq!(provenance_id(&as_given), "measured-as-given");
        assert!(as_given.as_ref().unwrap().is_measured() && as_given.as_ref().unwrap().is_trusted());
        let row = SweepRow {
            weights: Some("mine.safetensors".into()),
            precision: Precision::Int8,
            ..SweepRow::with_figures(
                &config,
                &analyze(&config).totals,
                as_given,
                Err(Unavailable::NotMeasured),
            )
        };
        assert_eq!(row_label(&row), "mine.safetensors int8");
        assert_eq!(point_label(&row), "mine.safetensors");
        assert_eq!(row_weights(&row), Some("mine.safetensors"));
        let json = serde_json::to_value(Unavailable::NoPublishedFigure).unwrap();
        assert_eq!(
            json["reason"],
            provenance_id(&Err(Unavailable::NoPublishedFigure))
        );
    }

    #[test]
    fn csv_provenance_ids_are_the_json_reasons() {
        let beyond = Unavailable::BeyondLimit {
            extrapolation: Extrapolation {
                ln_alpha: 1.0,
                ln_resolution: 0.0,
            },
        };
        for unavailable in [Unavailable::NoFit, beyond] {
            let json = serde_json::to_value(unavailable).unwrap();
            assert_eq!(json["reason"], provenance_id(&Err(unavailable)));
        }
    }
}
