//! The page comparing several runs: a summary table with the change against the first run, and
//! each run overlaid on one time axis (seconds since each run's start).

use std::collections::HashMap;

use hdrhistogram::Histogram;
use maud::{Markup, html};

use super::series::{
    failures_per_second, latency_points, phase_bands, run_end, step_segments, throughput,
};
use super::svg::{Chart, Series, line_chart, num};
use super::table::head;
use super::{colors, latency, page};
use crate::model::{RunReport, hist};

const TITLE: &str = "loadgen comparison";

pub(super) fn render(reports: &[(String, RunReport)]) -> String {
    let body = html! {
        header {
            h1 { (TITLE) }
            p class="sub" { (reports.len()) " runs, aligned on time since start" }
        }
        @if reports.is_empty() {
            p class="empty" { "No runs to compare." }
        } @else {
            (summary_table(reports))
            (over_time(reports))
            (distribution(reports))
        }
    };
    page::page(TITLE, body)
}

/// Legend names for several runs: the `deployment` label, else the run id, else the file name;
/// repeated names get ` #2`, ` #3`, ... so every line of a chart can be told apart.
pub fn run_names(paths: &[String], reports: &[RunReport]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    reports
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let base = r
                .deployment()
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .or_else(|| (!r.run.is_empty()).then(|| r.run.clone()))
                .or_else(|| {
                    paths.get(i).map(|p| {
                        std::path::Path::new(p)
                            .file_stem()
                            .map_or_else(|| p.clone(), |s| s.to_string_lossy().into_owned())
                    })
                })
                .unwrap_or_else(|| format!("run {}", i + 1));
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                base
            } else {
                format!("{base} #{n}")
            }
        })
        .collect()
}

/// The colour of the `i`th run, and whether its line is dashed (after the palette's first round).
fn style(i: usize) -> (&'static str, bool) {
    (
        colors::RUNS[i % colors::RUNS.len()],
        i >= colors::RUNS.len(),
    )
}

fn summary_table(reports: &[(String, RunReport)]) -> Markup {
    let base = &reports[0].1.summary;
    let columns = [
        "requests",
        "duration s",
        "req/s",
        "p50 ms",
        "p99 ms",
        "success %",
        "max ready replicas",
    ];
    html! {
        section {
            h2 { "Summary" }
            table id="comparison" {
                (head(&["run", "deployment"], &columns))
                tbody {
                    @for (i, (name, r)) in reports.iter().enumerate() {
                        @let s = &r.summary;
                        @let changed = |v: f64, b: f64, higher_is_better: bool| {
                            change(reports.len(), v, b, higher_is_better)
                        };
                        tr {
                            td class="l" {
                                span class="sw" style=(format!("background:{}", style(i).0)) {}
                                " " (name)
                            }
                            td class="l" { (r.deployment().unwrap_or("")) }
                            td { (s.requests) }
                            td { (num(s.duration_s)) (changed(s.duration_s, base.duration_s, false)) }
                            td { (num(s.rps)) (changed(s.rps, base.rps, true)) }
                            td { (num(s.latency_ms.p50)) (changed(s.latency_ms.p50, base.latency_ms.p50, false)) }
                            td { (num(s.latency_ms.p99)) (changed(s.latency_ms.p99, base.latency_ms.p99, false)) }
                            td { (format!("{:.2}", s.success_rate)) (changed(s.success_rate, base.success_rate, true)) }
                            td {
                                (r.replicas.as_ref().and_then(|t| t.summary.max_replicas)
                                    .map_or("–".to_string(), |v| v.to_string()))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The relative change of `v` against the first run's `b`, coloured by `higher_is_better`;
/// nothing for a single run, a zero base, or a change that rounds to nothing.
fn change(runs: usize, v: f64, b: f64, higher_is_better: bool) -> Markup {
    if runs < 2 || b == 0.0 || !v.is_finite() || !b.is_finite() {
        return html! {};
    }
    let pct = (v - b) / b * 100.0;
    if pct.abs() < 0.05 {
        return html! {};
    }
    let class = if (pct > 0.0) == higher_is_better {
        "better"
    } else {
        "worse"
    };
    html! { " " span class=(class) { (format!("({pct:+.1} %)")) } }
}

fn over_time(reports: &[(String, RunReport)]) -> Markup {
    let end = reports
        .iter()
        .map(|(_, r)| run_end(r))
        .fold(0.0_f64, f64::max);
    // The runs of a comparison share a plan: the first run's phases shade every chart.
    let bands = phase_bands(&reports[0].1);
    let per_run = |f: &dyn Fn(&RunReport) -> Vec<(f64, f64)>| -> Vec<Series> {
        reports
            .iter()
            .enumerate()
            .map(|(i, (name, r))| {
                let (color, dashed) = style(i);
                Series::line(name, color, f(r)).dashed(dashed)
            })
            .collect()
    };
    let chart = |id: &'static str, title: &str, y_label: &str, series: Vec<Series>| Chart {
        id,
        title: title.into(),
        y_label: y_label.into(),
        x_end: end,
        bands: bands.clone(),
        series,
        ..Chart::default()
    };
    let replicas: Vec<Series> = reports
        .iter()
        .enumerate()
        .filter_map(|(i, (name, r))| {
            let timeline = r.replicas.as_ref()?;
            let (color, dashed) = style(i);
            let steps = step_segments(timeline, run_end(r), |s| s.ready);
            Some(Series::segments(name, color, steps).dashed(dashed))
        })
        .filter(Series::has_points)
        .collect();
    html! {
        section {
            h2 { "Over time" }
            (line_chart(&chart("cmp-throughput", "Throughput", "requests/s", per_run(&throughput))))
            (line_chart(&chart("cmp-p99", "Latency p99", "ms", per_run(&|r| latency_points(r, |p| p.p99_ms)))))
            (line_chart(&chart("cmp-p50", "Latency p50", "ms", per_run(&|r| latency_points(r, |p| p.p50_ms)))))
            (line_chart(&chart("cmp-errors", "Errors", "failures/s", per_run(&failures_per_second))))
            @if !replicas.is_empty() {
                (line_chart(&Chart {
                    integer_y: true,
                    ..chart("cmp-replicas", "Ready replicas", "replicas", replicas)
                }))
            }
        }
    }
}

fn distribution(reports: &[(String, RunReport)]) -> Markup {
    let hists: Vec<(String, &'static str, Histogram<u64>)> = reports
        .iter()
        .enumerate()
        .filter_map(|(i, (name, r))| {
            let h = hist::decode(name, &r.histograms.latency).ok()?;
            (!h.is_empty()).then(|| (name.clone(), style(i).0, h))
        })
        .collect();
    let refs: Vec<(String, &'static str, &Histogram<u64>)> =
        hists.iter().map(|(n, c, h)| (n.clone(), *c, h)).collect();
    html! {
        @if !refs.is_empty() {
            section {
                h2 { "Latency distribution" }
                (latency::percentile_chart("cmp-percentiles", &refs))
            }
        }
    }
}
