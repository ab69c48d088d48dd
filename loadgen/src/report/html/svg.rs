//! The SVG chart kit: line charts (over time or over percentiles) and bar charts, with their
//! scales, ticks, legends and marks, drawn server-side into markup.
//!
//! Why server-side SVG and no JavaScript chart library: the page must open years later, offline,
//! and show the same pictures, and its content policy forbids scripts anyway. The kit knows
//! nothing of runs: callers hand it points. Points it cannot draw (NaN, infinities) are left out,
//! so a `NaN` never reaches a path and one bad value never flattens a whole axis.

use maud::{Markup, html};

use super::colors;

/// The picture in SVG units (it scales to the page width) and the margins around the plot.
pub(super) const W: f64 = 960.0;
pub(super) const H: f64 = 280.0;
const ML: f64 = 64.0;
const MR: f64 = 16.0;
const MT: f64 = 12.0;
const MB: f64 = 40.0;
/// The plot area's width and height.
const PW: f64 = W - ML - MR;
const PH: f64 = H - MT - MB;

/// One line on a chart: one or more polylines (gaps between segments).
#[derive(Debug, Clone)]
pub(super) struct Series {
    label: String,
    color: &'static str,
    segments: Vec<Vec<(f64, f64)>>,
    dashed: bool,
}

impl Series {
    pub(super) fn line(label: &str, color: &'static str, points: Vec<(f64, f64)>) -> Self {
        Self::segments(label, color, vec![points])
    }

    /// Non-finite points are dropped here, once, so scales and paths only ever see numbers.
    pub(super) fn segments(
        label: &str,
        color: &'static str,
        segments: Vec<Vec<(f64, f64)>>,
    ) -> Self {
        let segments = segments
            .into_iter()
            .map(|seg| {
                seg.into_iter()
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .collect::<Vec<_>>()
            })
            .filter(|seg| !seg.is_empty())
            .collect();
        Self {
            label: label.to_string(),
            color,
            segments,
            dashed: false,
        }
    }

    pub(super) fn dashed(mut self, dashed: bool) -> Self {
        self.dashed = dashed;
        self
    }

    pub(super) fn has_points(&self) -> bool {
        self.segments.iter().any(|s| !s.is_empty())
    }

    fn points(&self) -> impl Iterator<Item = &(f64, f64)> {
        self.segments.iter().flatten()
    }
}

/// How the x axis maps data to pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) enum XAxis {
    /// Seconds since the run start.
    #[default]
    Time,
    /// Percentile on the classic HdrHistogram scale: x = log10(1 / (1 - q)).
    Percentile,
}

/// A line chart.
#[derive(Debug, Clone, Default)]
pub(super) struct Chart {
    /// The figure's id is `chart-{id}`.
    pub(super) id: &'static str,
    pub(super) title: String,
    pub(super) y_label: String,
    /// Right end of the time axis (the run's duration), so charts of one page line up.
    pub(super) x_end: f64,
    pub(super) series: Vec<Series>,
    /// Replica counts: integer ticks only.
    pub(super) integer_y: bool,
    pub(super) x_axis: XAxis,
    /// Phases of the run (name, start, end in seconds), shaded on time charts.
    pub(super) bands: Vec<(String, f64, f64)>,
    /// Vertical marks on the time axis: (t_s, label), e.g. the scale events.
    pub(super) markers: Vec<(f64, String)>,
}

/// A bar chart of one series: bars over spans of the x axis.
#[derive(Debug, Clone, Default)]
pub(super) struct Bars {
    /// The figure's id is `chart-{id}`.
    pub(super) id: &'static str,
    pub(super) title: String,
    pub(super) x_label: String,
    pub(super) y_label: String,
    /// The x axis in data units (for example log10 of microseconds).
    pub(super) x_domain: (f64, f64),
    /// Ticks on the x axis: (position in data units, label).
    pub(super) x_ticks: Vec<(f64, String)>,
    /// The series name (`data-series`).
    pub(super) label: String,
    pub(super) color: &'static str,
    pub(super) bars: Vec<Bar>,
}

/// One bar: its span on the x axis, its height, and what hovering over it says.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Bar {
    pub(super) x0: f64,
    pub(super) x1: f64,
    pub(super) y: f64,
    pub(super) title: String,
}

/// A linear map from a data interval onto a pixel interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Scale {
    d0: f64,
    d1: f64,
    r0: f64,
    r1: f64,
}

impl Scale {
    /// Maps `domain` onto `range`. An empty, reversed or non-finite domain becomes one unit wide
    /// from its start, so nothing divides by zero.
    pub(super) fn new((d0, d1): (f64, f64), (r0, r1): (f64, f64)) -> Self {
        let d0 = if d0.is_finite() { d0 } else { 0.0 };
        let d1 = if d1.is_finite() && d1 > d0 {
            d1
        } else {
            d0 + 1.0
        };
        Self { d0, d1, r0, r1 }
    }

    pub(super) fn at(&self, v: f64) -> f64 {
        self.r0 + (v - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)
    }
}

/// "Nice" tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten. None for a
/// non-finite or reversed range.
pub(super) fn nice_ticks(lo: f64, hi: f64, target: usize, integer: bool) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() || hi < lo {
        return Vec::new();
    }
    let span = (hi - lo).max(f64::EPSILON);
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let mut step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    if integer {
        step = step.max(1.0).round();
    }
    // From the first multiple of `step` at or above `lo` to the first at or above `hi`, so an axis
    // can end on a round number.
    let first = (lo / step - 1e-9).ceil() * step;
    let last = (hi / step - 1e-9).ceil() * step;
    (0..=(target * 4))
        .map(|i| first + i as f64 * step)
        .take_while(|v| *v <= last + step * 1e-9)
        .collect()
}

/// Short number format for tables and ticks; `–` for what is not a number.
pub(super) fn num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    let s = if a >= 1000.0 || a == 0.0 || (a >= 100.0 && v.fract() == 0.0) {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The tick label of a position on the percentile axis: x = log10(1/(1-q)), so q = 1 - 10^-x.
fn percentile_label(x: f64) -> String {
    let q = (1.0 - 10f64.powf(-x)) * 100.0;
    format!("{}%", num(q))
}

/// A coordinate as written into the SVG: one decimal is finer than a pixel.
fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// The `points` of a polyline.
fn path(points: &[(f64, f64)], x: Scale, y: Scale) -> String {
    points
        .iter()
        .map(|&(a, b)| format!("{},{}", px(x.at(a)), px(y.at(b))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The y axis from 0 to a round number at or above `y_max`, with 5 % headroom.
fn y_axis(y_max: f64, integer: bool) -> (Vec<f64>, Scale) {
    let y_max = if y_max > 0.0 && y_max.is_finite() {
        y_max
    } else {
        1.0
    };
    let ticks = nice_ticks(0.0, y_max * 1.05, 5, integer);
    let top = ticks.last().copied().unwrap_or(y_max).max(y_max);
    (ticks, Scale::new((0.0, top), (MT + PH, MT)))
}

/// What every chart draws around its data: the plot area, the grid with its labels and the axis
/// titles.
struct Frame<'a> {
    title: &'a str,
    x: Scale,
    y: Scale,
    y_ticks: &'a [f64],
    x_ticks: &'a [(f64, String)],
    x_label: &'a str,
    y_label: &'a str,
}

/// The `<svg>` of a chart: the frame, then `underlay` (under the grid), then `content`.
fn svg(f: &Frame, underlay: Markup, content: Markup) -> Markup {
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {W} {H}")) role="img"
            aria-label=(f.title) font-size="11" font-family="sans-serif" {
            rect class="plot" x=(ML) y=(MT) width=(PW) height=(PH) fill="#fcfcfc" stroke="#ccc" {}
            (underlay)
            @for &t in f.y_ticks {
                @let y = f.y.at(t);
                line x1=(ML) x2=(ML + PW) y1=(px(y)) y2=(px(y)) stroke="#e6e6e6" {}
                text x=(ML - 6.0) y=(px(y + 4.0)) text-anchor="end" fill="#444" { (num(t)) }
            }
            @for (t, label) in f.x_ticks {
                @let x = f.x.at(*t);
                // Keep the last label inside the picture.
                @let anchor = if x > W - MR - 24.0 { "end" } else { "middle" };
                line x1=(px(x)) x2=(px(x)) y1=(MT) y2=(MT + PH) stroke="#eeeeee" {}
                text x=(px(x)) y=(MT + PH + 15.0) text-anchor=(anchor) fill="#444" { (label) }
            }
            text x=(ML + PW / 2.0) y=(H - 6.0) text-anchor="middle" fill="#444" { (f.x_label) }
            text transform=(format!("translate(14 {}) rotate(-90)", MT + PH / 2.0))
                text-anchor="middle" fill="#444" { (f.y_label) }
            (content)
        }
    }
}

/// A figure that has nothing to draw says so instead of showing empty axes.
fn no_data(id: &str, title: &str) -> Markup {
    html! {
        figure class="chart" id=(format!("chart-{id}")) {
            h3 { (title) }
            p class="empty" { "No data." }
        }
    }
}

pub(super) fn line_chart(c: &Chart) -> Markup {
    if !c.series.iter().any(Series::has_points) {
        return no_data(c.id, &c.title);
    }
    let (mut x_min, mut x_max): (f64, f64) = match c.x_axis {
        XAxis::Time if c.x_end.is_finite() => (0.0, c.x_end),
        XAxis::Time | XAxis::Percentile => (0.0, 0.0),
    };
    let mut y_max: f64 = 0.0;
    for p in c.series.iter().flat_map(Series::points) {
        x_min = x_min.min(p.0);
        x_max = x_max.max(p.0);
        y_max = y_max.max(p.1);
    }
    if x_max <= x_min {
        x_max = x_min + 1.0;
    }
    let (y_ticks, y) = y_axis(y_max, c.integer_y);
    let x = Scale::new((x_min, x_max), (ML, ML + PW));
    let x_ticks: Vec<(f64, String)> = match c.x_axis {
        XAxis::Time => nice_ticks(x_min, x_max, 10, false)
            .into_iter()
            .map(|t| (t, num(t)))
            .collect(),
        XAxis::Percentile => (0..=(x_max.ceil() as i32))
            .map(f64::from)
            .map(|t| (t, percentile_label(t)))
            .collect(),
    };
    let x_ticks: Vec<(f64, String)> = x_ticks
        .into_iter()
        .filter(|(t, _)| *t >= x_min - 1e-9 && *t <= x_max + 1e-9)
        .collect();
    let frame = Frame {
        title: &c.title,
        x,
        y,
        y_ticks: &y_ticks,
        x_ticks: &x_ticks,
        x_label: match c.x_axis {
            XAxis::Time => "time since start (s)",
            XAxis::Percentile => "percentile",
        },
        y_label: &c.y_label,
    };
    let bands = if c.x_axis == XAxis::Time {
        &c.bands[..]
    } else {
        &[]
    };
    // Every other phase shaded, each named on hover and at its top left.
    let underlay = html! {
        @for (i, (name, t0, t1)) in bands.iter().enumerate() {
            @let (a, b) = (x.at(t0.max(x_min)), x.at(t1.min(x_max)));
            @if b > a {
                g class="phase" data-phase=(name) {
                    title { (name) }
                    rect x=(px(a)) y=(MT) width=(px(b - a)) height=(PH)
                        fill=(if i % 2 == 0 { "#eef3f8" } else { "#fcfcfc" }) {}
                    text x=(px(a + 3.0)) y=(px(MT + 11.0)) fill="#888" font-size="10" { (name) }
                }
            }
        }
    };
    let content = html! {
        @for (t, label) in &c.markers {
            @if t.is_finite() && *t >= x_min && *t <= x_max {
                @let at = x.at(*t);
                g class="marker" data-t=(format!("{t:.3}")) {
                    title { (label) }
                    line x1=(px(at)) x2=(px(at)) y1=(MT) y2=(MT + PH) stroke=(colors::MARKER)
                        stroke-width="1.5" stroke-dasharray="3 3" {}
                    text x=(px(at + 3.0)) y=(MT + 11.0) fill=(colors::MARKER) { (label) }
                }
            }
        }
        @for s in &c.series {
            g class="series" data-series=(s.label) data-points=(s.points().count())
                stroke=(s.color) fill=(s.color) {
                @for seg in &s.segments {
                    polyline fill="none" stroke-width="2.5" stroke-linejoin="round"
                        stroke-dasharray=[s.dashed.then_some("7 4")] points=(path(seg, x, y)) {}
                    // Dots where the line alone would be invisible or misleading (few points).
                    @if seg.len() <= 40 {
                        @for &(a, b) in seg {
                            circle cx=(px(x.at(a))) cy=(px(y.at(b))) r="2.5" stroke="none" {}
                        }
                    }
                }
            }
        }
    };
    html! {
        figure class="chart" id=(format!("chart-{}", c.id)) {
            h3 { (c.title) }
            (svg(&frame, underlay, content))
            (legend(&c.series))
        }
    }
}

fn legend(series: &[Series]) -> Markup {
    html! {
        ul class="legend" {
            @for s in series {
                li {
                    span.sw.dash[s.dashed] style=(format!("background-color:{}", s.color)) {}
                    (s.label)
                }
            }
        }
    }
}

/// Bars of no height, or with a coordinate that is not a number, are not drawn.
pub(super) fn bar_chart(c: &Bars) -> Markup {
    let bars: Vec<&Bar> = c
        .bars
        .iter()
        .filter(|b| b.x0.is_finite() && b.x1.is_finite() && b.y.is_finite() && b.y > 0.0)
        .collect();
    if bars.is_empty() {
        return no_data(c.id, &c.title);
    }
    let (y_ticks, y) = y_axis(bars.iter().map(|b| b.y).fold(0.0, f64::max), false);
    let x = Scale::new(c.x_domain, (ML, ML + PW));
    let frame = Frame {
        title: &c.title,
        x,
        y,
        y_ticks: &y_ticks,
        x_ticks: &c.x_ticks,
        x_label: &c.x_label,
        y_label: &c.y_label,
    };
    let content = html! {
        g class="series" data-series=(c.label) data-points=(bars.len()) fill=(c.color) {
            @for b in &bars {
                @let (left, top) = (x.at(b.x0), y.at(b.y));
                rect x=(px(left + 0.5)) y=(px(top)) width=(px((x.at(b.x1) - left - 1.0).max(1.0)))
                    height=(px((MT + PH - top).max(1.0))) {
                    title { (b.title) }
                }
            }
        }
    };
    html! {
        figure class="chart" id=(format!("chart-{}", c.id)) {
            h3 { (c.title) }
            (svg(&frame, html! {}, content))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The (x, y) pairs of every polyline in a piece of SVG.
    fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.split(" points=\"")
            .skip(1)
            .map(|p| {
                p[..p.find('"').unwrap()]
                    .split(' ')
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    fn chart(series: Vec<Series>) -> Chart {
        Chart {
            id: "t",
            title: "T".into(),
            y_label: "y".into(),
            x_end: 10.0,
            series,
            ..Chart::default()
        }
    }

    fn assert_only_numbers(svg: &str) {
        for bad in ["NaN", "inf"] {
            assert!(!svg.contains(bad), "{bad} in {svg}");
        }
    }

    #[test]
    fn a_scale_maps_its_domain_onto_its_range_either_way_round() {
        let x = Scale::new((0.0, 10.0), (64.0, 944.0));
        assert_eq!((x.at(0.0), x.at(5.0), x.at(10.0)), (64.0, 504.0, 944.0));
        let y = Scale::new((0.0, 100.0), (240.0, 12.0));
        assert_eq!((y.at(0.0), y.at(100.0)), (240.0, 12.0));
    }

    #[test]
    fn a_scale_over_an_empty_or_broken_domain_still_gives_numbers() {
        for domain in [
            (3.0, 3.0),
            (5.0, 1.0),
            (f64::NAN, 1.0),
            (0.0, f64::INFINITY),
        ] {
            let s = Scale::new(domain, (0.0, 100.0));
            assert!(s.at(2.0).is_finite(), "{domain:?}");
        }
    }

    #[test]
    fn nice_ticks_are_round_and_cover_the_range() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5, false),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(
            nice_ticks(0.0, 1234.0, 5, false),
            vec![0.0, 500.0, 1000.0, 1500.0]
        );
        assert_eq!(nice_ticks(0.0, 0.042, 5, false).last(), Some(&0.05));
        assert_eq!(nice_ticks(0.0, 5.25, 5, true), vec![0.0, 2.0, 4.0, 6.0]);
        assert_eq!(nice_ticks(0.0, 0.3, 5, true), vec![0.0, 1.0]);
    }

    #[test]
    fn nice_ticks_of_a_range_that_is_not_one_are_none() {
        assert!(nice_ticks(0.0, f64::NAN, 5, false).is_empty());
        assert!(nice_ticks(0.0, f64::INFINITY, 5, false).is_empty());
        assert!(nice_ticks(5.0, 1.0, 5, false).is_empty());
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(1234.56), "1235");
        assert_eq!(num(12.345), "12.35");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(150.0), "150");
        assert_eq!(num(f64::NAN), "–");
        assert_eq!(num(f64::NEG_INFINITY), "–");
    }

    #[test]
    fn percentile_ticks_name_the_quantile() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
    }

    #[test]
    fn line_chart_maps_points_into_the_plot_area() {
        let svg = line_chart(&chart(vec![Series::line(
            "s",
            "#123456",
            vec![(0.0, 0.0), (10.0, 100.0)],
        )]))
        .into_string();
        // x = 0 at the left edge, x = 10 at the right; y = 0 at the bottom, 100 at or below the top.
        let coords = &polylines(&svg)[0];
        assert_eq!(coords.len(), 2);
        assert_eq!(coords[0], (ML, H - MB));
        assert_eq!(coords[1].0, W - MR);
        assert!(
            coords[1].1 >= MT && coords[1].1 < (H - MB) / 2.0,
            "{coords:?}"
        );
        assert!(svg.contains("data-points=\"2\""));
    }

    #[test]
    fn segments_are_separate_polylines_and_short_ones_get_dots() {
        let svg = line_chart(&chart(vec![Series::segments(
            "s",
            "#123456",
            vec![vec![(0.0, 1.0), (2.0, 1.0)], vec![(5.0, 2.0), (8.0, 2.0)]],
        )]))
        .into_string();
        let lines = polylines(&svg);
        assert_eq!(lines.len(), 2, "a gap between the segments");
        assert!(lines[0][1].0 < lines[1][0].0);
        assert_eq!(svg.matches("<circle").count(), 4);
        let long: Vec<(f64, f64)> = (0..41).map(|i| (f64::from(i), 1.0)).collect();
        let svg = line_chart(&chart(vec![Series::line("s", "#123456", long)])).into_string();
        assert_eq!(svg.matches("<circle").count(), 0, "a long line needs none");
    }

    #[test]
    fn points_that_are_not_numbers_are_left_out_and_never_printed() {
        let svg = line_chart(&chart(vec![Series::line(
            "s",
            "#123456",
            vec![
                (1.0, f64::NAN),
                (2.0, f64::INFINITY),
                (f64::NEG_INFINITY, 3.0),
                (3.0, 5.0),
                (4.0, 6.0),
            ],
        )]))
        .into_string();
        assert!(svg.contains("data-points=\"2\""), "{svg}");
        assert_eq!(polylines(&svg)[0].len(), 2);
        assert_only_numbers(&svg);
    }

    #[test]
    fn an_axis_that_is_not_a_number_or_is_huge_still_draws_numbers() {
        let mut c = chart(vec![Series::line(
            "s",
            "#123456",
            vec![(0.0, 1.0), (5.0, f64::MAX)],
        )]);
        c.x_end = f64::INFINITY;
        let svg = line_chart(&c).into_string();
        assert_only_numbers(&svg);
        let pts = &polylines(&svg)[0];
        assert_eq!(pts[1], (W - MR, MT), "the largest value at the top right");
    }

    #[test]
    fn empty_chart_says_so() {
        let html = line_chart(&Chart {
            id: "e",
            title: "<E>".into(),
            series: vec![Series::line("s", "#000000", vec![(1.0, f64::NAN)])],
            ..Chart::default()
        })
        .into_string();
        assert!(html.contains("No data."));
        assert!(html.contains("&lt;E&gt;"));
        assert!(!html.contains("<svg"));
    }

    #[test]
    fn bands_shade_their_span_and_markers_outside_the_axis_are_left_out() {
        let mut c = chart(vec![Series::line("s", "#123456", vec![(0.0, 1.0)])]);
        c.bands = vec![
            ("warm <up>".into(), 0.0, 4.0),
            ("plateau".into(), 4.0, 10.0),
            ("after".into(), 12.0, 14.0),
        ];
        c.markers = vec![
            (5.0, "\u{2191}3".into()),
            (f64::NAN, "nan".into()),
            (11.0, "late".into()),
        ];
        let svg = line_chart(&c).into_string();
        assert_eq!(svg.matches("class=\"phase\"").count(), 2, "{svg}");
        assert!(svg.contains("data-phase=\"warm &lt;up&gt;\""));
        let rect = svg.split("data-phase=\"plateau\"").nth(1).unwrap();
        assert!(
            rect.contains("x=\"416.0\" y=\"12\" width=\"528.0\""),
            "{rect}"
        );
        assert_eq!(svg.matches("class=\"marker\"").count(), 1);
        assert!(svg.contains("data-t=\"5.000\""));
    }

    #[test]
    fn the_legend_names_each_series_in_its_colour_and_marks_dashed_ones() {
        let svg = line_chart(&chart(vec![
            Series::line("solid", "#111111", vec![(0.0, 1.0)]),
            Series::line("dashed", "#222222", vec![(0.0, 2.0)]).dashed(true),
        ]))
        .into_string();
        assert!(svg.contains(
            "<li><span class=\"sw\" style=\"background-color:#111111\"></span>solid</li>"
        ));
        assert!(svg.contains("<span class=\"sw dash\" style=\"background-color:#222222\">"));
        assert_eq!(svg.matches("stroke-dasharray=\"7 4\"").count(), 1);
    }

    #[test]
    fn percentile_axis_ticks_every_nine() {
        let svg = line_chart(&Chart {
            id: "p",
            x_axis: XAxis::Percentile,
            series: vec![Series::line("s", "#123456", vec![(0.0, 1.0), (3.0, 9.0)])],
            ..Chart::default()
        })
        .into_string();
        for label in [">0%<", ">90%<", ">99%<", ">99.9%<"] {
            assert!(svg.contains(label), "{label}");
        }
        assert!(svg.contains(">percentile<"));
    }

    #[test]
    fn bar_chart_draws_bars_with_height_and_leaves_out_the_rest() {
        let bar = |x0: f64, y: f64| Bar {
            x0,
            x1: x0 + 1.0,
            y,
            title: format!("{y} <%>"),
        };
        let svg = bar_chart(&Bars {
            id: "b",
            title: "B".into(),
            x_domain: (0.0, 4.0),
            label: "bars".into(),
            color: "#17becf",
            bars: vec![
                bar(0.0, 10.0),
                bar(1.0, 0.0),
                bar(2.0, f64::NAN),
                bar(3.0, 5.0),
            ],
            ..Bars::default()
        })
        .into_string();
        assert!(
            svg.contains("data-series=\"bars\" data-points=\"2\""),
            "{svg}"
        );
        assert!(svg.contains("<title>10 &lt;%&gt;</title>"));
        let heights: Vec<f64> = svg
            .split(" height=\"")
            .skip(2) // the plot area's
            .map(|h| h[..h.find('"').unwrap()].parse().unwrap())
            .collect();
        assert_eq!(heights.len(), 2);
        assert!((heights[0] / heights[1] - 2.0).abs() < 0.01, "{heights:?}");
        let empty = bar_chart(&Bars {
            id: "b",
            bars: vec![bar(0.0, 0.0)],
            ..Bars::default()
        })
        .into_string();
        assert!(empty.contains("No data.") && !empty.contains("<svg"));
    }
}
