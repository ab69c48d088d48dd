//! The replicas section of a watched run (`--watch`): replica counts, HPA CPU and throughput per
//! replica over time, the scale-out summary and what each scale-out cost.

use maud::{Markup, html};

use super::colors;
use super::series::{phase_bands, scale_markers, step_segments};
use super::svg::{Chart, Series, line_chart, num};
use super::table::{head, key_values};
use crate::model::RunReport;
use crate::model::replicas::ReplicaTimeline;
use crate::model::scale_events::WindowStats;

/// What a missing value reads as in the tables.
const NONE: &str = "–";

pub(super) fn section(r: &RunReport, t: &ReplicaTimeline, end: f64) -> Markup {
    let bands = phase_bands(r);
    // Drawn bottom to top: current under desired (dashed, so both show where they agree), ready on
    // top because it is the capacity that actually took traffic.
    let counts: Vec<Series> = vec![
        Series::segments(
            "current",
            colors::CURRENT,
            step_segments(t, end, |s| s.current),
        ),
        Series::segments(
            "desired",
            colors::DESIRED,
            step_segments(t, end, |s| s.desired),
        )
        .dashed(true),
        Series::segments("ready", colors::READY, step_segments(t, end, |s| s.ready)),
    ]
    .into_iter()
    .filter(Series::has_points)
    .collect();
    let cpu = Series::segments(
        "HPA CPU utilization",
        colors::CPU,
        step_segments(t, end, |s| s.cpu_utilization_percent),
    );
    let per_replica = t.throughput_per_replica(&r.throughput_series());
    html! {
        section {
            h2 { "Replicas" }
            p class="sub" {
                (t.target)
                @if let Some(ns) = &t.namespace { " in namespace " (ns) }
                @match (&t.hpa, t.target.starts_with("deployment/")) {
                    (Some(h), true) => { ", scaled by HPA " (h) }
                    (None, true) => ", no HPA found",
                    (Some(h), false) => { ", scaled by PodAutoscaler " (h) }
                    (None, false) => ", no PodAutoscaler found",
                }
            }
            @for w in &t.warnings {
                p class="warn" { (w) }
            }
            @if counts.is_empty() {
                p class="empty" { "No replica samples were recorded." }
            } @else {
                (line_chart(&Chart {
                    id: "replicas",
                    title: "Replicas".into(),
                    y_label: "replicas".into(),
                    x_end: end,
                    bands: bands.clone(),
                    series: counts,
                    integer_y: true,
                    markers: scale_markers(r),
                    ..Chart::default()
                }))
            }
            @if cpu.has_points() {
                (line_chart(&Chart {
                    id: "cpu",
                    title: "HPA CPU utilization".into(),
                    y_label: "% of request".into(),
                    x_end: end,
                    bands: bands.clone(),
                    series: vec![cpu],
                    ..Chart::default()
                }))
            }
            @if !per_replica.is_empty() {
                (line_chart(&Chart {
                    id: "per-replica",
                    title: "Throughput per ready replica".into(),
                    y_label: "requests/s per replica".into(),
                    x_end: end,
                    bands,
                    series: vec![Series::line(
                        "throughput / ready replicas",
                        colors::PER_REPLICA,
                        per_replica.iter().map(|p| (p.t_s, p.per_replica)).collect(),
                    )],
                    ..Chart::default()
                }))
            }
            (scale_out_table(r, t))
            (scale_events_table(r))
            (cold_starts_table(t))
        }
    }
}

/// Each cold start the clients measured (definitions in docs/autoscaling-cost.md).
fn cold_starts_table(t: &ReplicaTimeline) -> Markup {
    let secs = |v: Option<f64>| v.map_or(NONE.to_string(), |v| format!("{v:.2} s"));
    let merged = t.cold_starts.iter().any(|c| c.worker.is_some());
    html! {
        @if t.cold_starts_total > 0 {
            h3 { "Cold starts" }
            @if t.cold_starts_total > t.cold_starts.len() as u64 {
                p class="sub" {
                    (t.cold_starts_total) " cold starts; the first " (t.cold_starts.len()) " are listed."
                }
            }
            table id="cold-starts" {
                (head(if merged { &["at", "worker"] } else { &["at"] },
                    &["to first response", "held", "failed", "p99 first second", "ready seen at"]))
                tbody {
                    @for c in &t.cold_starts {
                        tr {
                            td class="l" { (format!("{:.2} s", c.t_s)) }
                            @if merged {
                                td class="l" { (c.worker.map_or(NONE.to_string(), |w| w.to_string())) }
                            }
                            td { (c.to_first_response_s.map_or("never".to_string(), |v| format!("{v:.2} s"))) }
                            td { (c.held) }
                            td { (c.failed) }
                            td { (c.p99_first_second_ms.map_or(NONE.to_string(), |v| format!("{} ms", num(v)))) }
                            td { (secs(c.ready_at_s)) }
                        }
                    }
                }
            }
        }
    }
}

fn scale_out_table(r: &RunReport, t: &ReplicaTimeline) -> Markup {
    let s = &t.summary;
    let count = |v: Option<i32>| v.map_or(NONE.to_string(), |v| v.to_string());
    let secs = |v: Option<f64>| v.map_or(NONE.to_string(), |v| format!("{v:.1} s"));
    let rows = [
        (
            "replicas initial / max / final",
            format!(
                "{} / {} / {}",
                count(s.initial_replicas),
                count(s.max_replicas),
                count(s.final_replicas)
            ),
        ),
        (
            "time to first scale-up (desired)",
            secs(s.time_to_first_scale_up_s),
        ),
        (
            "time to first scale-up (ready)",
            secs(s.time_to_first_ready_scale_up_s),
        ),
        (
            "time to highest replica count",
            secs(s.time_to_max_replicas_s),
        ),
        (
            "max HPA CPU utilization",
            s.max_cpu_utilization_percent
                .map_or(NONE.to_string(), |v| format!("{v} %")),
        ),
        (
            "mean throughput per ready replica",
            t.mean_throughput_per_replica(&r.throughput_series())
                .map_or(NONE.to_string(), |v| format!("{} req/s", num(v))),
        ),
    ];
    key_values("scale-out", &rows)
}

/// What each scale-out cost (definitions in docs/autoscaling-cost.md).
fn scale_events_table(r: &RunReport) -> Markup {
    let secs = |v: Option<f64>| v.map_or("never".to_string(), |v| format!("{v:.1} s"));
    let window = |w: Option<&WindowStats>| {
        w.map_or(NONE.to_string(), |w| {
            format!("{} / {}", num(w.p50_ms), num(w.p99_ms))
        })
    };
    html! {
        @if !r.scale_events.is_empty() {
            h3 { "Scale events" }
            table id="scale-events" {
                (head(&["at", "replicas"], &["to ready", "to first new backend", "p99 recovered",
                    "failed (shed)", "p50 / p99 ms before", "during", "after"]))
                tbody {
                    @for e in &r.scale_events {
                        tr {
                            td class="l" { (format!("{:.1} s", e.t_s)) }
                            td class="l" {
                                (e.from_replicas.map_or(NONE.to_string(), |v| v.to_string()))
                                " \u{2192} " (e.to_replicas)
                            }
                            td { (secs(e.time_to_ready_s)) }
                            td { (secs(e.time_to_first_new_backend_s)) }
                            td {
                                (secs(e.recovery_s))
                                @if let Some(t) = e.recovery_threshold_ms {
                                    " (\u{2264} " (num(t)) " ms)"
                                }
                            }
                            td { (e.failed_during) " (" (e.shed_during) ")" }
                            td { (window(e.before.as_ref())) }
                            td { (window(e.during.as_ref())) }
                            td { (window(e.after.as_ref())) }
                        }
                    }
                }
            }
        }
    }
}
