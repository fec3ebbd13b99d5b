//! The trade-off plot: top-1 accuracy against mult-adds (log scale, like the paper's Figures 4
//! and 5) and against measured latency, a colour per member of the family, each point labelled
//! alpha-resolution, published points filled and estimated ones hollow, the Pareto front across
//! all members drawn. SVG from plotters' SVG backend, which writes `<text>` elements, so no font
//! files are needed to render it.

use plotters::prelude::*;

use super::{Member, SweepRow, member};

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

/// One plotted point.
struct Point {
    x: f64,
    y: f64,
    member: Member,
    label: String,
    pareto: bool,
    estimated: bool,
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
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
        let of = |p: &&Point| p.member == member;
        chart
            .draw_series(points.iter().filter(of).map(|p| {
                let style = if p.estimated {
                    colour.stroke_width(2)
                } else {
                    colour.filled()
                };
                Circle::new((p.x, p.y), 5, style)
            }))?
            .label(member.name())
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, colour.filled()));
    }
    if points.iter().any(|p| p.estimated) {
        // A legend entry only: hollow marks are estimates whatever their colour.
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label("hollow: estimated accuracy")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, BLACK.stroke_width(2)));
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

/// Renders the sweep as an SVG document. Rows without top-1 are left out; the latency panel is
/// drawn only when rows were timed.
pub fn render_svg(rows: &[SweepRow], title: &str) -> Result<String, String> {
    let cost_points: Vec<Point> = rows
        .iter()
        .filter_map(|r| {
            let top1 = r.top1.as_ref()?;
            Some(Point {
                x: r.mult_adds as f64 / 1e6,
                y: top1.value,
                member: r.member(),
                label: r.point().to_string(),
                pareto: false,
                estimated: top1.estimated,
            })
        })
        .collect();
    if cost_points.is_empty() {
        return Err("no row has a top-1 accuracy to plot".into());
    }
    // The front in mult-adds is recomputed here from the plotted points; the latency panel
    // uses the rows' own Pareto flags (computed on latency).
    let mut cost_points = cost_points;
    let flags: Vec<bool> = cost_points
        .iter()
        .map(|p| {
            !cost_points
                .iter()
                .any(|q| q.x <= p.x && q.y >= p.y && (q.x < p.x || q.y > p.y))
        })
        .collect();
    for (p, f) in cost_points.iter_mut().zip(flags) {
        p.pareto = f;
    }
    let latency_points: Vec<Point> = rows
        .iter()
        .filter_map(|r| {
            let top1 = r.top1.as_ref()?;
            Some(Point {
                x: r.latency_ms.as_ref()?.median,
                y: top1.value,
                member: r.member(),
                label: r.point().to_string(),
                pareto: r.pareto,
                estimated: top1.estimated,
            })
        })
        .collect();

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let draw = || -> Result<(), Box<dyn std::error::Error>> {
            root.fill(&WHITE)?;
            let (title_area, body) = root.split_vertically(40);
            title_area.draw(&Text::new(
                title.to_string(),
                (15, 10),
                ("sans-serif", 18).into_font(),
            ))?;
            if latency_points.is_empty() {
                panel(
                    &body,
                    "Accuracy vs mult-adds",
                    "mult-adds (millions, log scale)",
                    &cost_points,
                )?;
            } else {
                let (left, right) = body.split_horizontally(WIDTH / 2);
                panel(
                    &left,
                    "Accuracy vs mult-adds",
                    "mult-adds (millions, log scale)",
                    &cost_points,
                )?;
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
        draw().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{Config, Family};
    use crate::bench::Summary;
    use crate::cost::analyze;
    use crate::published::Store;
    use crate::sweep::{AccuracyModel, AccuracySource, Metric, mark_pareto};

    pub(crate) fn paper_grid(timed: bool) -> Vec<SweepRow> {
        let accuracy = AccuracyModel::new(
            &Store::embedded(),
            AccuracySource::Slim,
            Member::standard(Family::V1),
        );
        let mut rows = Vec::new();
        for alpha in [1.0, 0.75, 0.5, 0.25] {
            for res in [224, 192, 160, 128, 96] {
                let config = Config::paper(alpha, res).unwrap();
                let mut row = SweepRow::analytic(&config, &analyze(&config).totals);
                row.top1 = accuracy.lookup(alpha, res, Metric::Top1);
                if timed {
                    row.latency_ms = Summary::of(&[row.mult_adds as f64 / 5e7]);
                }
                rows.push(row);
            }
        }
        mark_pareto(&mut rows);
        rows
    }

    #[test]
    fn svg_has_both_panels_labels_and_the_front() {
        let svg = render_svg(&paper_grid(true), "MobileNet v1 trade-off").unwrap();
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
        let untimed = render_svg(&paper_grid(false), "x").unwrap();
        assert!(!untimed.contains("measured latency"));
    }

    #[test]
    fn each_family_has_its_colour_and_legend_entry() {
        let mut rows = paper_grid(false);
        let v2 = Member::standard(Family::V2);
        let accuracy = AccuracyModel::new(&Store::embedded(), AccuracySource::Slim, v2);
        for (alpha, res) in [(1.0, 224), (0.35, 96)] {
            let config = v2.config(alpha, res).unwrap();
            let mut row = SweepRow::analytic(&config, &analyze(&config).totals);
            row.top1 = accuracy.lookup(alpha, res, Metric::Top1);
            rows.push(row);
        }
        let svg = render_svg(&rows, "v1 and v2").unwrap();
        let fill = |c: RGBColor| format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
        let (v1_fill, v2_fill) = (fill(colour(rows[0].member())), fill(colour(v2)));
        assert_ne!(v1_fill, v2_fill);
        assert!(svg.contains(&v1_fill) && svg.contains(&v2_fill), "{svg}");
        // plotters writes each text element's content on its own line.
        assert!(svg.contains("\nv2\n") && svg.contains("\nv1\n"));
        // Plot labels drop the family (the colour says it): "0.35-96", not "v2 0.35-96".
        assert!(svg.contains("\n0.35-96\n") && !svg.contains("v2 0.35-96"));
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
        let mut rows = paper_grid(false);
        rows.iter_mut().for_each(|r| r.top1 = None);
        assert!(render_svg(&rows, "x").is_err());
    }
}
