//! The page of one run: summary, the capacity search (for a capacity report), phases, charts
//! over time, the latency distribution, replicas (when watched) and the detail tables.

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::series::{
    failures_per_second, latency_points, phase_bands, resolution, run_end, scale_markers,
    throughput,
};
use super::svg::{Chart, Series, line_chart, num};
use super::table::{head, key_values};
use super::{capacity, colors, latency, page, replicas};
use crate::model::{LatencyStats, LoadMode, RunReport, hist};

/// Backends drawn one by one on the per-backend chart; the rest are summed as `other backends`.
const MAX_BACKEND_SERIES: usize = colors::BACKENDS.len();

pub(super) fn render(report: &RunReport) -> String {
    let title = format!("loadgen report: {}", run_title(report));
    let end = run_end(report);
    let body = html! {
        header {
            h1 { (title) }
            p class="sub" {
                (report.scenario) " \u{b7} " (report.target) " \u{b7} started "
                (report.started_at) " \u{b7} " (report.plan.description)
            }
        }
        @if report.interrupted {
            p class="warn" { "The run was interrupted: the report covers what ran." }
        }
        (summary_section(report))
        @if let Some(c) = &report.capacity {
            (capacity::section(c))
        }
        (phases_section(report))
        section {
            h2 { "Over time" }
            (throughput_chart(report, end))
            (backends_chart(report, end))
            (errors_chart(report, end))
            (latency_over_time_chart(report, end))
        }
        (distribution_section(report))
        @if let Some(timeline) = &report.replicas {
            (replicas::section(report, timeline, end))
        }
        (detail_tables(report))
    };
    page::page(&title, body)
}

fn run_title(r: &RunReport) -> String {
    match r.deployment() {
        Some(d) => format!("{} ({d})", r.run),
        None => r.run.clone(),
    }
}

fn summary_section(r: &RunReport) -> Markup {
    let s = &r.summary;
    let mode = match r.mode {
        LoadMode::Open => "open loop (latency from intended start)",
        LoadMode::Closed => "closed loop",
    };
    let mut rows = vec![
        ("Requests", s.requests.to_string()),
        ("Successes", s.successes.to_string()),
        ("Failures", s.failures.to_string()),
        ("Success rate", format!("{:.2} %", s.success_rate)),
        ("Duration", format!("{:.2} s", s.duration_s)),
        ("Throughput", format!("{} req/s", num(s.rps))),
        ("Mode", mode.to_string()),
    ];
    if r.mode == LoadMode::Open {
        rows.push(("Dropped / late", format!("{} / {}", s.dropped, s.late)));
    }
    rows.push(("Workers", r.workers.to_string()));
    let g = &r.generator;
    html! {
        section {
            h2 { "Summary" }
            div class="tables" {
                (key_values("summary", &rows))
                table id="latency" {
                    (head(&["ms"], &["min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max"]))
                    tbody {
                        (latency_row("latency", &s.latency_ms))
                        @if let Some(st) = &s.service_time_ms {
                            (latency_row("service time", st))
                        }
                    }
                }
                @if !r.labels.is_empty() {
                    table id="labels" {
                        (head(&["label", "value"], &[]))
                        tbody {
                            @for (k, v) in &r.labels {
                                tr { td class="l" { (k) } td class="l" { (v) } }
                            }
                        }
                    }
                }
            }
            @if !r.thresholds.is_empty() {
                h3 { "Thresholds" }
                table id="thresholds" {
                    (head(&["threshold"], &["actual", "result"]))
                    tbody {
                        @for t in &r.thresholds {
                            tr {
                                td class="l" { (t.expr) }
                                td { (num(t.actual)) }
                                @if t.passed {
                                    td class="pass" { "passed" }
                                } @else {
                                    td class="fail" { "FAILED" }
                                }
                            }
                        }
                    }
                }
            }
            @if !r.error_messages.is_empty() {
                div class="warn" id="error-messages" {
                    p { b { "Why requests failed" } " (the first distinct messages):" }
                    @for m in &r.error_messages { p { (m) } }
                }
            }
            @if !r.warnings.is_empty() {
                div class="warn" id="spread-warnings" {
                    @for w in &r.warnings { p { (w) } }
                }
            }
            @if g.limited_by_generator || !g.warnings.is_empty() {
                div class="warn" {
                    @if g.limited_by_generator {
                        p {
                            b { "The generator was the bottleneck:" }
                            " these numbers understate the target."
                        }
                    }
                    @for w in &g.warnings { p { (w) } }
                }
            }
        }
    }
}

fn latency_row(name: &str, l: &LatencyStats) -> Markup {
    html! {
        tr {
            th class="l" { (name) }
            @for v in [l.min, l.mean, l.p50, l.p90, l.p95, l.p99, l.p999, l.max] {
                td { (num(v)) }
            }
        }
    }
}

/// A row per phase (the shape of the classic write-ups: load level, rps, mean, success).
fn phases_section(r: &RunReport) -> Markup {
    let open = r.mode == LoadMode::Open;
    let columns = [
        "start s",
        "duration s",
        "target",
        "requests",
        "req/s",
        "mean ms",
        "success",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "service p99 ms",
        "503 shed",
        "errors",
    ];
    html! {
        @if r.phases.len() >= 2 {
            section {
                h2 { "Phases" }
                table id="phases" {
                    (head(&["phase"], &columns))
                    tbody {
                        @for p in &r.phases {
                            tr {
                                td class="l" { (p.name) }
                                td { (num(p.start_s)) }
                                td { (num(p.duration_s)) }
                                td { (p.target(open)) }
                                td { (p.requests) }
                                td { (num(p.rps)) }
                                td { (num(p.latency_ms.mean)) }
                                td { (format!("{:.2} %", p.success_rate)) }
                                td { (num(p.latency_ms.p50)) }
                                td { (num(p.latency_ms.p95)) }
                                td { (num(p.latency_ms.p99)) }
                                td { (p.service_time_ms.map_or("-".into(), |s| num(s.p99))) }
                                td { (p.shed_503) }
                                td {
                                    @for (i, (k, v)) in p.errors.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        (k) " " (v)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn throughput_chart(r: &RunReport, end: f64) -> Markup {
    let mut series = vec![Series::line(
        "throughput",
        colors::THROUGHPUT,
        throughput(r),
    )];
    if r.timeseries.iter().any(|p| p.target_rate > 0.0) {
        series.push(
            Series::line(
                "target rate",
                colors::TARGET_RATE,
                r.timeseries
                    .iter()
                    .map(|p| (p.t_s, p.target_rate))
                    .collect(),
            )
            .dashed(true),
        );
    }
    line_chart(&Chart {
        id: "throughput",
        title: "Throughput".into(),
        y_label: "requests/s".into(),
        x_end: end,
        bands: phase_bands(r),
        series,
        markers: scale_markers(r),
        ..Chart::default()
    })
}

/// Throughput per `x-served-by` backend over time: whether replicas added during the run get
/// traffic (they do not when connections outlive the scale-out: docs/connections.md). Nothing
/// when no response named its backend.
fn backends_chart(r: &RunReport, end: f64) -> Markup {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for p in &r.timeseries {
        for (b, n) in &p.backends {
            let t = totals.entry(b.as_str()).or_default();
            *t = t.saturating_add(*n);
        }
    }
    if totals.is_empty() {
        return html! {};
    }
    let mut order: Vec<(&str, u64)> = totals.into_iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let w = resolution(r);
    let series_of = |pick: &dyn Fn(&BTreeMap<String, u64>) -> u64| -> Vec<(f64, f64)> {
        r.timeseries
            .iter()
            .map(|p| (p.t_s, pick(&p.backends) as f64 / p.width(w)))
            .collect()
    };
    let mut series: Vec<Series> = order
        .iter()
        .take(MAX_BACKEND_SERIES)
        .enumerate()
        .map(|(i, (name, _))| {
            Series::line(
                name,
                colors::BACKENDS[i],
                series_of(&|m| m.get(*name).copied().unwrap_or(0)),
            )
        })
        .collect();
    if order.len() > MAX_BACKEND_SERIES {
        let shown: Vec<&str> = order[..MAX_BACKEND_SERIES]
            .iter()
            .map(|(n, _)| *n)
            .collect();
        series.push(
            Series::line(
                &format!("other backends ({})", order.len() - MAX_BACKEND_SERIES),
                colors::TARGET_RATE,
                series_of(&|m| {
                    m.iter()
                        .filter(|(k, _)| !shown.contains(&k.as_str()))
                        .map(|(_, v)| *v)
                        .sum()
                }),
            )
            .dashed(true),
        );
    }
    line_chart(&Chart {
        id: "backends",
        title: "Throughput per backend (x-served-by)".into(),
        y_label: "requests/s".into(),
        x_end: end,
        bands: phase_bands(r),
        series,
        ..Chart::default()
    })
}

fn errors_chart(r: &RunReport, end: f64) -> Markup {
    line_chart(&Chart {
        id: "errors",
        title: "Errors".into(),
        y_label: "failures/s".into(),
        x_end: end,
        bands: phase_bands(r),
        series: vec![Series::line(
            "failures/s",
            colors::ERRORS,
            failures_per_second(r),
        )],
        markers: scale_markers(r),
        ..Chart::default()
    })
}

fn latency_over_time_chart(r: &RunReport, end: f64) -> Markup {
    line_chart(&Chart {
        id: "latency-over-time",
        title: "Latency percentiles".into(),
        y_label: "ms".into(),
        x_end: end,
        bands: phase_bands(r),
        series: vec![
            Series::line("p50", colors::P50, latency_points(r, |p| p.p50_ms)),
            Series::line("p99", colors::P99, latency_points(r, |p| p.p99_ms)),
            Series::line("max", colors::MAX, latency_points(r, |p| p.max_ms)).dashed(true),
        ],
        markers: scale_markers(r),
        ..Chart::default()
    })
}

fn distribution_section(r: &RunReport) -> Markup {
    let label = r.deployment().unwrap_or(&r.run).to_string();
    html! {
        section {
            h2 { "Latency distribution" }
            @match hist::decode("latency", &r.histograms.latency) {
                Ok(h) if !h.is_empty() => {
                    (latency::distribution_chart(&h))
                    (latency::percentile_chart(
                        "percentiles",
                        &[(label, colors::PERCENTILES, &h)],
                    ))
                }
                Ok(_) => p class="empty" { "No requests completed." },
                Err(e) => p class="warn" { (e.to_string()) },
            }
        }
    }
}

fn count_table(id: &str, title: &str, key: &str, map: &BTreeMap<String, u64>) -> Markup {
    html! {
        table id=(id) {
            (head(&[key], &[title]))
            tbody {
                @if map.is_empty() {
                    tr { td class="l" colspan="2" { "none" } }
                }
                @for (k, v) in map {
                    tr { td class="l" { (k) } td { (v) } }
                }
            }
        }
    }
}

fn detail_tables(r: &RunReport) -> Markup {
    let g = &r.generator;
    let generator = [
        ("generator threads", g.threads.to_string()),
        (
            "CPU mean / max",
            format!(
                "{} % / {} %",
                num(g.cpu_percent_mean),
                num(g.cpu_percent_max)
            ),
        ),
        (
            "schedule lag p99 / max",
            format!(
                "{} / {} ms",
                num(g.schedule_lag_ms.p99),
                num(g.schedule_lag_ms.max)
            ),
        ),
    ];
    let endpoint_columns = [
        "requests", "failures", "req/s", "p50 ms", "p99 ms", "max ms",
    ];
    html! {
        section {
            h2 { "Details" }
            @if !r.endpoints.is_empty() {
                table id="endpoints" {
                    (head(&["endpoint", "request"], &endpoint_columns))
                    tbody {
                        @for e in &r.endpoints {
                            tr {
                                td class="l" { (e.name) }
                                td class="l" { (e.method) " " (e.path) }
                                td { (e.requests) }
                                td { (e.failures) }
                                td { (num(e.rps)) }
                                td { (num(e.latency_ms.p50)) }
                                td { (num(e.latency_ms.p99)) }
                                td { (num(e.latency_ms.max)) }
                            }
                        }
                    }
                }
            }
            div class="tables" {
                (count_table("status-codes", "responses", "status", &r.summary.status_codes))
                (count_table("errors", "count", "error", &r.summary.errors))
                (count_table("backends", "responses", "served by", &r.summary.backends))
                (key_values("generator", &generator))
            }
        }
    }
}
