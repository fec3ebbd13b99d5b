//! The trade-off plot: top-1 accuracy against mult-adds (log scale, like the paper's Figures 4
//! and 5) and against measured latency, a colour per member of the family, each point labelled
//! alpha-resolution; f32 rows circles and int8 rows triangles, published points filled,
//! estimated ones hollow and extrapolated estimates crossed; each panel's Pareto front across
//! all members and precisions drawn (the rows' own flags, which leave extrapolated estimates
//! out). SVG from plotters' SVG backend, which writes `<text>`
//! elements, so no font files are needed to render it.

use plotters::prelude::*;

use super::sweep::point_label;
use crate::infer::Precision;
use crate::sweep::{Accuracy, Member, SweepReport, member};

/// Why no plot was drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("no row has a top-1 accuracy to plot")]
    NothingToPlot,
    #[error("drawing the plot failed: {0}")]
    Drawing(String),
}

/// A colour per member (the categorical palette of matplotlib's tab10, readable on white).
fn colour(member: Member) -> RGBColor {
    const PALETTE: [RGBColor; 6] = [
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
    ];
    let index = member::ALL.iter().position(|m| *m == member).unwrap_or(0);
    PALETTE[index % PALETTE.len()]
}

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 560;

/// A log-axis tick label with as many decimals as its size needs: "0.25", "1.5", "300".
fn tick(value: f64) -> String {
    let text = if value >= 10.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// How a point is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Published,
    Estimated,
    Extrapolated,
}

impl Mark {
    fn of(accuracy: &Accuracy) -> Self {
        if accuracy.is_extrapolated() {
            Mark::Extrapolated
        } else if accuracy.is_estimated() {
            Mark::Estimated
        } else {
            Mark::Published
        }
    }
}

/// One plotted point.
struct Point {
    x: f64,
    y: f64,
    member: Member,
    precision: Precision,
    label: String,
    pareto: bool,
    mark: Mark,
}

/// Marker radius in pixels.
const SIZE: i32 = 5;

/// A point's marker: a circle at f32, a triangle at int8; filled when published, hollow when
/// estimated.
fn marker<DB: DrawingBackend>(p: &Point, colour: RGBColor) -> DynElement<'static, DB, (f64, f64)> {
    let style = if p.mark == Mark::Estimated {
        colour.stroke_width(2)
    } else {
        colour.filled()
    };
    match p.precision {
        Precision::F32 => Circle::new((p.x, p.y), SIZE, style).into_dyn(),
        Precision::Int8 => TriangleMarker::new((p.x, p.y), SIZE + 1, style).into_dyn(),
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn panel(
    area: &Area<'_>,
    title: &str,
    x_desc: &str,
    points: &[Point],
) -> Result<(), Box<dyn std::error::Error>> {
    let (mut x_min, mut x_max) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.x), hi.max(p.x)));
    let (mut y_min, mut y_max) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.y), hi.max(p.y)));
    // Room for labels and a visible range when all points coincide.
    x_min /= 1.3;
    x_max *= 1.3;
    y_min = (y_min - 3.0).floor();
    y_max = (y_max + 3.0).ceil();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d((x_min..x_max).log_scale(), y_min..y_max)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .y_labels(8)
        .max_light_lines(1)
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_desc(x_desc)
        .y_desc("ImageNet top-1 (%)")
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .draw()?;

    let mut front: Vec<(f64, f64)> = points.iter().filter(|p| p.pareto).map(|p| (p.x, p.y)).collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(LineSeries::new(front, BLACK.stroke_width(2)))?
        .label("Pareto front")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    let mut members: Vec<Member> = Vec::new();
    for p in points {
        if !members.contains(&p.member) {
            members.push(p.member);
        }
    }
    for member in members {
        let colour = colour(member);
        let of = |mark| move |p: &&Point| p.member == member && p.mark == mark;
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.member == member && p.mark != Mark::Extrapolated)
                    .map(|p| marker(p, colour)),
            )?
            .label(member.name())
            .legend(move |(x, y)| Circle::new((x + 10, y), SIZE, colour.filled()));
        chart.draw_series(
            points
                .iter()
                .filter(of(Mark::Extrapolated))
                .map(|p| Cross::new((p.x, p.y), 5, colour.stroke_width(2))),
        )?;
    }
    // Legend entries only: a mark's shape says its precision and where its accuracy comes from,
    // whatever its colour.
    if points.iter().any(|p| p.precision == Precision::Int8) {
        chart
            .draw_series(std::iter::empty::<TriangleMarker<(f64, f64), i32>>())?
            .label("triangle: int8 (circle: f32)")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), SIZE + 1, BLACK.filled()));
    }
    if points.iter().any(|p| p.mark == Mark::Estimated) {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label("hollow: estimated accuracy")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.stroke_width(2)));
    }
    if points.iter().any(|p| p.mark == Mark::Extrapolated) {
        chart
            .draw_series(std::iter::empty::<Cross<(f64, f64), i32>>())?
            .label("cross: extrapolated estimate, not on the front")
            .legend(|(x, y)| Cross::new((x + 10, y), 5, BLACK.stroke_width(2)));
    }
    chart.draw_series(points.iter().map(|p| {
        Text::new(
            p.label.clone(),
            (p.x * 1.04, p.y + 0.4),
            ("sans-serif", 12).into_font().color(&BLACK),
        )
    }))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// "MobileNet v1, v2: top-1 from TF-slim float checkpoints vs cost, 38 points, 4 thread(s)";
/// with int8 rows "... from TF-slim float checkpoints (f32), TF-slim quantized checkpoints
/// (int8) vs cost, 16 points x 2 precisions, ...".
fn title(report: &SweepReport) -> String {
    let families: Vec<String> = report.families.iter().map(|m| m.name()).collect();
    let threads = if report.timed() {
        format!(", {} thread(s)", report.environment.threads)
    } else {
        String::new()
    };
    let (sources, rows) = match report.precisions.as_slice() {
        [_, _, ..] => (
            report
                .precisions
                .iter()
                .map(|p| format!("{} ({p})", report.accuracy_source.title_at(*p)))
                .collect::<Vec<_>>()
                .join(", "),
            format!(
                "{} points x {} precisions",
                report.rows.len() / report.precisions.len(),
                report.precisions.len()
            ),
        ),
        one => (
            report
                .accuracy_source
                .title_at(one.first().copied().unwrap_or(Precision::F32))
                .to_string(),
            format!("{} points", report.rows.len()),
        ),
    };
    format!(
        "MobileNet {}: top-1 from {sources} vs cost, {rows}{threads}",
        families.join(", "),
    )
}

/// Renders the sweep as an SVG document. Rows without top-1 are left out; the latency panel is
/// drawn only when rows were timed.
pub fn sweep_plot_svg(report: &SweepReport) -> Result<String, PlotError> {
    let points = |x: &dyn Fn(&crate::sweep::SweepRow) -> Option<f64>, latency: bool| -> Vec<Point> {
        report
            .rows
            .iter()
            .filter_map(|r| {
                let top1 = r.top1.as_ref().ok()?;
                Some(Point {
                    x: x(r)?,
                    y: top1.value,
                    member: r.member(),
                    precision: r.precision,
                    label: point_label(r),
                    pareto: if latency { r.pareto } else { r.pareto_mult_adds },
                    mark: Mark::of(top1),
                })
            })
            .collect()
    };
    let cost_points = points(&|r| Some(r.mult_adds as f64 / 1e6), false);
    if cost_points.is_empty() {
        return Err(PlotError::NothingToPlot);
    }
    let latency_points = if report.timed() {
        points(&|r| r.latency_ms.as_ref().map(|l| l.median), true)
    } else {
        Vec::new()
    };
    let title = title(report);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let draw = || -> Result<(), Box<dyn std::error::Error>> {
            root.fill(&WHITE)?;
            let (title_area, body) = root.split_vertically(40);
            title_area.draw(&Text::new(title, (15, 10), ("sans-serif", 18).into_font()))?;
            let mult_adds_panel = |area: &Area<'_>| {
                panel(
                    area,
                    "Accuracy vs mult-adds",
                    "mult-adds (millions, log scale)",
                    &cost_points,
                )
            };
            if latency_points.is_empty() {
                mult_adds_panel(&body)?;
            } else {
                let (left, right) = body.split_horizontally(WIDTH / 2);
                mult_adds_panel(&left)?;
                panel(
                    &right,
                    "Accuracy vs measured latency",
                    "median latency (ms, log scale)",
                    &latency_points,
                )?;
            }
            root.present()?;
            Ok(())
        };
        draw().map_err(|e| PlotError::Drawing(e.to_string()))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Family;
    use crate::bench::{Environment, Summary};
    use crate::cost::analyze;
    use crate::published::Store;
    use crate::sweep::{AccuracyModel, AccuracySource, Budget, SweepRow};

    /// A sweep of `members` over `points` (each member's configs), timed or not.
    fn sweep(members: &[Member], points: &[(f64, u32)], timed: bool) -> SweepReport {
        sweep_at(members, &[Precision::F32], points, timed)
    }

    /// As [`sweep`], a row per point and precision.
    fn sweep_at(
        members: &[Member],
        precisions: &[Precision],
        points: &[(f64, u32)],
        timed: bool,
    ) -> SweepReport {
        let models: Vec<AccuracyModel> = members
            .iter()
            .flat_map(|&m| precisions.iter().map(move |&p| (m, p)))
            .map(|(m, p)| AccuracyModel::new(&Store::embedded(), AccuracySource::Slim, m, p))
            .collect();
        let environment = Environment::mock(3, crate::infer::EngineKind::Fast);
        let mut report = SweepReport::new(
            environment,
            1,
            0,
            AccuracySource::Slim,
            &models,
            Budget::default(),
        );
        for model in &models {
            for &(alpha, res) in points {
                let config = model.member.config(alpha, res).unwrap();
                let mut row = SweepRow::new(&config, &analyze(&config).totals, model);
                if timed {
                    row.latency_ms = Summary::of(&[row.mult_adds as f64 / 5e7]);
                }
                report.rows.push(row);
            }
        }
        report.finish();
        report
    }

    fn paper_grid() -> Vec<(f64, u32)> {
        let mut points = Vec::new();
        for alpha in [1.0, 0.75, 0.5, 0.25] {
            for res in [224, 192, 176, 160, 128] {
                points.push((alpha, res));
            }
        }
        points
    }

    const V1: Member = Member::standard(Family::V1);

    #[test]
    fn svg_has_both_panels_labels_and_the_front() {
        let svg = sweep_plot_svg(&sweep(&[V1], &paper_grid(), true)).unwrap();
        assert!(svg.starts_with("<svg"));
        for text in [
            "Accuracy vs mult-adds",
            "Accuracy vs measured latency",
            "0.5-160",
            "Pareto front",
            "estimated accuracy",
            "v1",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
        assert!(svg.contains("<polyline"));
        let untimed = sweep_plot_svg(&sweep(&[V1], &paper_grid(), false)).unwrap();
        assert!(!untimed.contains("measured latency"));
    }

    #[test]
    fn the_title_comes_from_the_report() {
        let timed = sweep(&[V1, Member::standard(Family::V2)], &[(1.0, 224)], true);
        assert_eq!(
            title(&timed),
            "MobileNet v1, v2: top-1 from TF-slim float checkpoints vs cost, 2 points, 3 thread(s)"
        );
        let untimed = sweep(&[V1], &[(1.0, 224)], false);
        assert_eq!(
            title(&untimed),
            "MobileNet v1: top-1 from TF-slim float checkpoints vs cost, 1 points"
        );
        assert!(sweep_plot_svg(&untimed).unwrap().contains("1 points"));
    }

    #[test]
    fn extrapolated_estimates_are_crossed_and_off_the_front() {
        // 1.2 is beyond v1's widest published alpha (1.0): extrapolated, the most accurate and
        // the most costly, but not on the front.
        let report = sweep(&[V1], &[(1.0, 224), (1.2, 224), (0.5, 160)], false);
        assert!(report.rows[1].top1.as_ref().unwrap().is_extrapolated());
        assert!(!report.rows[1].pareto_mult_adds && report.rows[0].pareto_mult_adds);
        let svg = sweep_plot_svg(&report).unwrap();
        assert!(svg.contains("extrapolated estimate, not on the front"), "{svg}");
        assert!(svg.contains("\n1.2-224\n"));
        let published_only = sweep_plot_svg(&sweep(&[V1], &[(1.0, 224)], false)).unwrap();
        assert!(!published_only.contains("extrapolated") && !published_only.contains("estimated accuracy"));
    }

    #[test]
    fn each_family_has_its_colour_and_legend_entry() {
        let v2 = Member::standard(Family::V2);
        let report = sweep(&[V1, v2], &[(1.0, 224), (0.35, 96)], false);
        let svg = sweep_plot_svg(&report).unwrap();
        let fill = |c: RGBColor| format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
        let (v1_fill, v2_fill) = (fill(colour(V1)), fill(colour(v2)));
        assert_ne!(v1_fill, v2_fill);
        assert!(svg.contains(&v1_fill) && svg.contains(&v2_fill), "{svg}");
        // plotters writes each text element's content on its own line.
        assert!(svg.contains("\nv2\n") && svg.contains("\nv1\n"));
        // Plot labels drop the family (the colour says it): "0.35-96", not "v2 0.35-96".
        assert!(svg.contains("\n0.35-96\n") && !svg.contains("v2 0.35-96"));
    }

    #[test]
    fn int8_rows_are_triangles_with_a_legend_entry() {
        let both = sweep_at(&[V1], &Precision::ALL, &[(1.0, 224), (0.5, 160)], true);
        assert_eq!(both.rows.len(), 4);
        let svg = sweep_plot_svg(&both).unwrap();
        assert!(svg.contains("triangle: int8 (circle: f32)"), "{svg}");
        // plotters draws a triangle as a polygon, a circle as a circle.
        assert!(svg.contains("<polygon") && svg.contains("<circle"));
        assert_eq!(
            title(&both),
            "MobileNet v1: top-1 from TF-slim float checkpoints (f32), TF-slim quantized checkpoints (int8) vs cost, 2 points x 2 precisions, 3 thread(s)"
        );
        let f32_only = sweep_plot_svg(&sweep(&[V1], &[(1.0, 224)], true)).unwrap();
        assert!(!f32_only.contains("triangle") && !f32_only.contains("<polygon"));
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick(0.2), "0.2");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(1.5), "1.5");
        assert_eq!(tick(300.0), "300");
        assert_eq!(tick(0.200000001), "0.2");
    }

    #[test]
    fn nothing_to_plot_is_an_error() {
        // The minimalistic v3 has one published point and no fit: no top-1 off it.
        let report = sweep(&[member::ALL[4]], &[(1.0, 192)], false);
        assert!(matches!(sweep_plot_svg(&report), Err(PlotError::NothingToPlot)));
    }
}
