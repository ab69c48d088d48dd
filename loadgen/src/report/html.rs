//! The HTML report: one self-contained file per run, or one page comparing several runs.
//!
//! Why hand-written SVG and no JavaScript chart library: the file must open years later, offline, on
//! an air-gapped laptop or as a CI artifact, and show the same pictures. Everything (CSS, charts) is
//! inline, and a Content-Security-Policy forbids the page from loading anything at all, so a stray
//! external reference would show up as a broken page in review instead of as a silent network call.
//!
//! Every string that came from the user or the network (run names, labels, URLs, endpoint names,
//! status codes, backend host names, warnings) goes through [`escape`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::model::{LatencyStats, LoadMode, RunReport, hist};
use crate::watch::ReplicaTimeline;

/// Series colours. Distinct from each other and from the greys of text and grid, so a screenshot
/// can be checked for each series by colour.
pub mod colors {
    pub const THROUGHPUT: &str = "#1f77b4";
    pub const TARGET_RATE: &str = "#7f7f7f";
    pub const ERRORS: &str = "#d62728";
    pub const P50: &str = "#2ca02c";
    pub const P99: &str = "#9467bd";
    pub const MAX: &str = "#ff7f0e";
    pub const DISTRIBUTION: &str = "#17becf";
    pub const READY: &str = "#8c564b";
    pub const DESIRED: &str = "#e377c2";
    pub const CURRENT: &str = "#bcbd22";
    pub const CPU: &str = "#393b79";
    pub const PER_REPLICA: &str = "#637939";
    /// Scale events marked on the time axis.
    pub const MARKER: &str = "#555555";
    /// The single run's line on the latency-by-percentile chart.
    pub const PERCENTILES: &str = "#6b6ecf";
    /// One colour per run on the comparison page (cycled, dashed after the first round).
    pub const RUNS: [&str; 8] = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
    ];
    /// One colour per backend on the throughput-per-backend chart (none used by another chart,
    /// so a screenshot tells them apart); the busiest backends come first.
    pub const BACKENDS: [&str; 8] = [
        "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5",
    ];
}

/// Backends drawn one by one on the per-backend chart; the rest are summed as `other backends`.
const MAX_BACKEND_SERIES: usize = colors::BACKENDS.len();

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page for one run.
pub fn render_run(report: &RunReport) -> String {
    let mut body = String::new();
    let title = format!("loadgen report: {}", run_title(report));
    let _ = write!(
        body,
        "<header><h1>{}</h1><p class=\"sub\">{} &middot; {} &middot; started {} &middot; {}</p></header>",
        escape(&title),
        escape(&report.scenario),
        escape(&report.target),
        escape(&report.started_at),
        escape(&report.plan.description),
    );
    if report.interrupted {
        body.push_str("<p class=\"warn\">The run was interrupted: the report covers what ran.</p>");
    }
    body.push_str(&summary_section(report));
    body.push_str(&phases_section(report));

    let end = run_end(report);
    body.push_str("<section><h2>Over time</h2>");
    body.push_str(&throughput_chart(report, end));
    body.push_str(&backends_chart(report, end));
    body.push_str(&errors_chart(report, end));
    body.push_str(&latency_over_time_chart(report, end));
    body.push_str("</section>");

    body.push_str("<section><h2>Latency distribution</h2>");
    match hist::decode("latency", &report.histograms.latency) {
        Ok(h) if !h.is_empty() => {
            body.push_str(&distribution_chart(&h));
            body.push_str(&percentile_chart(
                "percentiles",
                "Latency by percentile",
                &[(label_of(report), colors::PERCENTILES, &h)],
            ));
        }
        Ok(_) => body.push_str("<p class=\"empty\">No requests completed.</p>"),
        Err(e) => {
            let _ = write!(body, "<p class=\"warn\">{}</p>", escape(&e.to_string()));
        }
    }
    body.push_str("</section>");

    if let Some(timeline) = &report.replicas {
        body.push_str(&replica_section(report, timeline, end));
    }
    body.push_str(&detail_tables(report));
    page(&title, &body)
}

/// One page overlaying several runs on one time axis (seconds since each run's start).
pub fn render_comparison(reports: &[(String, RunReport)]) -> String {
    let title = "loadgen comparison";
    let mut body = String::new();
    let _ = write!(
        body,
        "<header><h1>{}</h1><p class=\"sub\">{} runs, aligned on time since start</p></header>",
        title,
        reports.len()
    );
    if reports.is_empty() {
        body.push_str("<p class=\"empty\">No runs to compare.</p>");
        return page(title, &body);
    }
    body.push_str(&comparison_table(reports));

    let end = reports
        .iter()
        .map(|(_, r)| run_end(r))
        .fold(0.0_f64, f64::max);
    // The runs of a comparison share a plan: the first run's phases shade every chart.
    let bands = phase_bands(&reports[0].1);
    let style = |i: usize| {
        (
            colors::RUNS[i % colors::RUNS.len()],
            i >= colors::RUNS.len(),
        )
    };
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

    body.push_str("<section><h2>Over time</h2>");
    body.push_str(&line_chart(&Chart {
        id: "cmp-throughput",
        title: "Throughput".into(),
        y_label: "requests/s".into(),
        x_end: end,
        bands: bands.clone(),
        series: per_run(&|r| r.timeseries.iter().map(|p| (p.t_s, p.rps)).collect()),
        ..Chart::default()
    }));
    body.push_str(&line_chart(&Chart {
        id: "cmp-p99",
        title: "Latency p99".into(),
        y_label: "ms".into(),
        x_end: end,
        bands: bands.clone(),
        series: per_run(&|r| latency_points(r, |p| p.p99_ms)),
        ..Chart::default()
    }));
    body.push_str(&line_chart(&Chart {
        id: "cmp-p50",
        title: "Latency p50".into(),
        y_label: "ms".into(),
        x_end: end,
        bands: bands.clone(),
        series: per_run(&|r| latency_points(r, |p| p.p50_ms)),
        ..Chart::default()
    }));
    body.push_str(&line_chart(&Chart {
        id: "cmp-errors",
        title: "Errors".into(),
        y_label: "failures/s".into(),
        x_end: end,
        bands: bands.clone(),
        series: per_run(&|r| {
            let w = resolution(r);
            r.timeseries
                .iter()
                .map(|p| (p.t_s, p.failures as f64 / p.width(w)))
                .collect()
        }),
        ..Chart::default()
    }));
    let replica_series: Vec<Series> = reports
        .iter()
        .enumerate()
        .filter_map(|(i, (name, r))| {
            let timeline = r.replicas.as_ref()?;
            let (color, dashed) = style(i);
            Some(
                Series::segments(
                    name,
                    color,
                    step_segments(timeline, run_end(r), |s| s.ready),
                )
                .dashed(dashed),
            )
        })
        .filter(|s| s.has_points())
        .collect();
    if !replica_series.is_empty() {
        body.push_str(&line_chart(&Chart {
            id: "cmp-replicas",
            title: "Ready replicas".into(),
            y_label: "replicas".into(),
            x_end: end,
            bands: bands.clone(),
            series: replica_series,
            integer_y: true,
            ..Chart::default()
        }));
    }
    body.push_str("</section>");

    let hists: Vec<(String, &'static str, Histogram<u64>)> = reports
        .iter()
        .enumerate()
        .filter_map(|(i, (name, r))| {
            let h = hist::decode(name, &r.histograms.latency).ok()?;
            (!h.is_empty()).then(|| (name.clone(), style(i).0, h))
        })
        .collect();
    if !hists.is_empty() {
        body.push_str("<section><h2>Latency distribution</h2>");
        let refs: Vec<(String, &'static str, &Histogram<u64>)> =
            hists.iter().map(|(n, c, h)| (n.clone(), *c, h)).collect();
        body.push_str(&percentile_chart(
            "cmp-percentiles",
            "Latency by percentile",
            &refs,
        ));
        body.push_str("</section>");
    }
    page(title, &body)
}

/// The page for `loadgen report FILE... --html OUT`: one report gives the run page, several the
/// comparison page (the first is the baseline). `paths` name the runs when nothing better does.
pub fn render_files(paths: &[String], reports: &[RunReport]) -> String {
    match reports {
        [one] => render_run(one),
        _ => {
            let names = run_names(paths, reports);
            let runs: Vec<(String, RunReport)> =
                names.into_iter().zip(reports.iter().cloned()).collect();
            render_comparison(&runs)
        }
    }
}

/// Legend names for several runs: the `deployment` label, else the run id, else the file name;
/// repeated names get ` #2`, ` #3`, ... so every line of a chart can be told apart.
pub fn run_names(paths: &[String], reports: &[RunReport]) -> Vec<String> {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
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

// ---------------------------------------------------------------------------------------------
// Page pieces

const CSS: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;padding:16px 28px;color:#222;background:#fff;max-width:1100px}
h1{font-size:22px;margin:4px 0}h2{font-size:18px;margin:22px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:14px 0 4px}.sub{color:#555;margin:2px 0 10px;font-size:13px;word-break:break-all}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}.tables{display:flex;flex-wrap:wrap;gap:18px}
.chart{margin:8px 0 18px}.chart svg{width:100%;height:auto;display:block}
.legend{list-style:none;margin:2px 0 0 60px;padding:0;font-size:12px;display:flex;flex-wrap:wrap;gap:14px}
.legend li{display:flex;align-items:center;gap:5px}.sw{display:inline-block;width:14px;height:4px}
.sw.dash{background-image:linear-gradient(90deg,#fff 50%,transparent 50%);background-size:6px 4px}
.warn{color:#8a4b00;background:#fff6e0;border:1px solid #f0d9a8;padding:6px 10px}.empty{color:#777}
.pass{color:#1a7f37}.fail{color:#b42318;font-weight:600}.better{color:#1a7f37}.worse{color:#b42318}
";

/// Wraps a body into a complete document. The CSP forbids every fetch: the report can never reach
/// the network, whatever a future change puts in it.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{CSS}</style></head>\n<body>\n{body}\n\
         <footer class=\"sub\">Generated by loadgen. Self-contained: no scripts, no network.</footer>\n</body></html>\n",
        escape(title)
    )
}

fn run_title(r: &RunReport) -> String {
    match r.deployment() {
        Some(d) => format!("{} ({d})", r.run),
        None => r.run.clone(),
    }
}

fn label_of(r: &RunReport) -> String {
    r.deployment().unwrap_or(&r.run).to_string()
}

fn resolution(r: &RunReport) -> f64 {
    if r.timeseries_resolution_s > 0.0 {
        r.timeseries_resolution_s
    } else {
        1.0
    }
}

/// Where the time axis of a run ends: its duration, or the last data seen, whichever is later.
fn run_end(r: &RunReport) -> f64 {
    let ts_end = r
        .timeseries
        .last()
        .map(|p| p.t_s + p.width(resolution(r)))
        .unwrap_or(0.0);
    let replica_end = r
        .replicas
        .as_ref()
        .and_then(|t| t.samples.last())
        .map(|s| s.t_s)
        .unwrap_or(0.0);
    r.summary.duration_s.max(ts_end).max(replica_end)
}

/// Latency points, leaving out buckets with no completed request (0 there means "no data").
fn latency_points(r: &RunReport, f: impl Fn(&crate::model::TimePoint) -> f64) -> Vec<(f64, f64)> {
    r.timeseries
        .iter()
        .filter(|p| p.requests > 0)
        .map(|p| (p.t_s, f(p)))
        .collect()
}

fn summary_section(r: &RunReport) -> String {
    let s = &r.summary;
    let mut out = String::from("<section><h2>Summary</h2><div class=\"tables\">");
    out.push_str("<table id=\"summary\"><tbody>");
    let mut row = |k: &str, v: String| {
        let _ = write!(out, "<tr><th class=\"l\">{}</th><td>{}</td></tr>", k, v);
    };
    row("Requests", s.requests.to_string());
    row("Successes", s.successes.to_string());
    row("Failures", s.failures.to_string());
    row("Success rate", format!("{:.2} %", s.success_rate));
    row("Duration", format!("{:.2} s", s.duration_s));
    row("Throughput", format!("{} req/s", num(s.rps)));
    row(
        "Mode",
        match r.mode {
            LoadMode::Open => "open loop (latency from intended start)".into(),
            LoadMode::Closed => "closed loop".into(),
        },
    );
    if r.mode == LoadMode::Open {
        row("Dropped / late", format!("{} / {}", s.dropped, s.late));
    }
    row("Workers", r.workers.to_string());
    out.push_str("</tbody></table>");

    out.push_str("<table id=\"latency\"><thead><tr><th class=\"l\">ms</th>");
    for k in ["min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max"] {
        let _ = write!(out, "<th>{k}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    latency_row(&mut out, "latency", &s.latency_ms);
    if let Some(st) = &s.service_time_ms {
        latency_row(&mut out, "service time", st);
    }
    out.push_str("</tbody></table>");

    if !r.labels.is_empty() {
        out.push_str("<table id=\"labels\"><thead><tr><th class=\"l\">label</th><th class=\"l\">value</th></tr></thead><tbody>");
        for (k, v) in &r.labels {
            let _ = write!(
                out,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                escape(k),
                escape(v)
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</div>");

    if !r.thresholds.is_empty() {
        out.push_str("<h3>Thresholds</h3><table id=\"thresholds\"><thead><tr><th class=\"l\">threshold</th><th>actual</th><th>result</th></tr></thead><tbody>");
        for t in &r.thresholds {
            let _ = write!(
                out,
                "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                escape(&t.expr),
                num(t.actual),
                if t.passed { "pass" } else { "fail" },
                if t.passed { "passed" } else { "FAILED" },
            );
        }
        out.push_str("</tbody></table>");
    }
    if !r.warnings.is_empty() {
        out.push_str("<div class=\"warn\" id=\"spread-warnings\">");
        for w in &r.warnings {
            let _ = write!(out, "<p>{}</p>", escape(w));
        }
        out.push_str("</div>");
    }
    let g = &r.generator;
    if g.limited_by_generator || !g.warnings.is_empty() {
        out.push_str("<div class=\"warn\">");
        if g.limited_by_generator {
            out.push_str("<p><b>The generator was the bottleneck:</b> these numbers understate the target.</p>");
        }
        for w in &g.warnings {
            let _ = write!(out, "<p>{}</p>", escape(w));
        }
        out.push_str("</div>");
    }
    out.push_str("</section>");
    out
}

fn latency_row(out: &mut String, name: &str, l: &LatencyStats) {
    let _ = write!(out, "<tr><th class=\"l\">{name}</th>");
    for v in [l.min, l.mean, l.p50, l.p90, l.p95, l.p99, l.p999, l.max] {
        let _ = write!(out, "<td>{}</td>", num(v));
    }
    out.push_str("</tr>");
}

fn count_table(
    id: &str,
    title: &str,
    key: &str,
    map: &std::collections::BTreeMap<String, u64>,
) -> String {
    let mut out = format!(
        "<table id=\"{id}\"><thead><tr><th class=\"l\">{key}</th><th>{title}</th></tr></thead><tbody>"
    );
    if map.is_empty() {
        out.push_str("<tr><td class=\"l\" colspan=\"2\">none</td></tr>");
    }
    for (k, v) in map {
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td>{v}</td></tr>",
            escape(k)
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn detail_tables(r: &RunReport) -> String {
    let mut out = String::from("<section><h2>Details</h2>");
    if !r.endpoints.is_empty() {
        out.push_str("<table id=\"endpoints\"><thead><tr><th class=\"l\">endpoint</th><th class=\"l\">request</th><th>requests</th><th>failures</th><th>req/s</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr></thead><tbody>");
        for e in &r.endpoints {
            let _ = write!(
                out,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&e.name),
                escape(&e.method),
                escape(&e.path),
                e.requests,
                e.failures,
                num(e.rps),
                num(e.latency_ms.p50),
                num(e.latency_ms.p99),
                num(e.latency_ms.max),
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("<div class=\"tables\">");
    out.push_str(&count_table(
        "status-codes",
        "responses",
        "status",
        &r.summary.status_codes,
    ));
    out.push_str(&count_table("errors", "count", "error", &r.summary.errors));
    out.push_str(&count_table(
        "backends",
        "responses",
        "served by",
        &r.summary.backends,
    ));
    let g = &r.generator;
    let _ = write!(
        out,
        "<table id=\"generator\"><tbody><tr><th class=\"l\">generator threads</th><td>{}</td></tr>\
         <tr><th class=\"l\">CPU mean / max</th><td>{} % / {} %</td></tr>\
         <tr><th class=\"l\">schedule lag p99 / max</th><td>{} / {} ms</td></tr></tbody></table>",
        g.threads,
        num(g.cpu_percent_mean),
        num(g.cpu_percent_max),
        num(g.schedule_lag_ms.p99),
        num(g.schedule_lag_ms.max),
    );
    out.push_str("</div></section>");
    out
}

/// The scale events of a run as chart markers: `↑3` where the desired count rose to 3.
fn scale_markers(r: &RunReport) -> Vec<(f64, String)> {
    r.scale_events
        .iter()
        .map(|e| (e.t_s, format!("\u{2191}{}", e.to_replicas)))
        .collect()
}

/// What each scale-out cost (definitions in docs/autoscaling-cost.md).
fn scale_events_table(r: &RunReport) -> String {
    if r.scale_events.is_empty() {
        return String::new();
    }
    let secs = |v: Option<f64>| v.map_or("never".to_string(), |v| format!("{v:.1} s"));
    let window = |w: Option<&crate::analysis::WindowStats>| {
        w.map_or("–".to_string(), |w| {
            format!("{} / {}", num(w.p50_ms), num(w.p99_ms))
        })
    };
    let mut out = String::from(
        "<h3>Scale events</h3><table id=\"scale-events\"><thead><tr><th class=\"l\">at</th>\
         <th class=\"l\">replicas</th><th>to ready</th><th>to first new backend</th>\
         <th>p99 recovered</th><th>failed (shed)</th><th>p50 / p99 ms before</th>\
         <th>during</th><th>after</th></tr></thead><tbody>",
    );
    for e in &r.scale_events {
        let threshold = e
            .recovery_threshold_ms
            .map_or(String::new(), |t| format!(" (&le; {} ms)", num(t)));
        let _ = write!(
            out,
            "<tr><td class=\"l\">{:.1} s</td><td class=\"l\">{} &rarr; {}</td><td>{}</td><td>{}</td>\
             <td>{}{}</td><td>{} ({})</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.t_s,
            e.from_replicas.map_or("–".to_string(), |v| v.to_string()),
            e.to_replicas,
            secs(e.time_to_ready_s),
            secs(e.time_to_first_new_backend_s),
            secs(e.recovery_s),
            threshold,
            e.failed_during,
            e.shed_during,
            window(e.before.as_ref()),
            window(e.during.as_ref()),
            window(e.after.as_ref()),
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn throughput_chart(r: &RunReport, end: f64) -> String {
    let mut series = vec![Series::line(
        "throughput",
        colors::THROUGHPUT,
        r.timeseries.iter().map(|p| (p.t_s, p.rps)).collect(),
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
/// traffic (they do not when connections outlive the scale-out: docs/connections.md). Empty when
/// no response named its backend.
fn backends_chart(r: &RunReport, end: f64) -> String {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for p in &r.timeseries {
        for (b, n) in &p.backends {
            let t = totals.entry(b.as_str()).or_default();
            *t = t.saturating_add(*n);
        }
    }
    if totals.is_empty() {
        return String::new();
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

fn errors_chart(r: &RunReport, end: f64) -> String {
    let w = resolution(r);
    line_chart(&Chart {
        id: "errors",
        title: "Errors".into(),
        y_label: "failures/s".into(),
        x_end: end,
        bands: phase_bands(r),
        series: vec![Series::line(
            "failures/s",
            colors::ERRORS,
            r.timeseries
                .iter()
                .map(|p| (p.t_s, p.failures as f64 / p.width(w)))
                .collect(),
        )],
        markers: scale_markers(r),
        ..Chart::default()
    })
}

fn latency_over_time_chart(r: &RunReport, end: f64) -> String {
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

fn replica_section(r: &RunReport, t: &ReplicaTimeline, end: f64) -> String {
    let mut out = format!(
        "<section><h2>Replicas</h2><p class=\"sub\">{}{}{}</p>",
        escape(&t.target),
        t.namespace
            .as_deref()
            .map(|ns| format!(" in namespace {}", escape(ns)))
            .unwrap_or_default(),
        t.hpa
            .as_deref()
            .map(|h| format!(", scaled by HPA {}", escape(h)))
            .unwrap_or_else(|| ", no HPA found".into()),
    );
    for w in &t.warnings {
        let _ = write!(out, "<p class=\"warn\">{}</p>", escape(w));
    }
    // Drawn bottom to top: current under desired (dashed, so both show where they agree), ready on
    // top because it is the capacity that actually took traffic.
    let series: Vec<Series> = vec![
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
    if series.is_empty() {
        out.push_str("<p class=\"empty\">No replica samples were recorded.</p>");
    } else {
        out.push_str(&line_chart(&Chart {
            id: "replicas",
            title: "Replicas".into(),
            y_label: "replicas".into(),
            x_end: end,
            bands: phase_bands(r),
            series,
            integer_y: true,
            markers: scale_markers(r),
            ..Chart::default()
        }));
    }
    let cpu = Series::segments(
        "HPA CPU utilization",
        colors::CPU,
        step_segments(t, end, |s| s.cpu_utilization_percent),
    );
    if cpu.has_points() {
        out.push_str(&line_chart(&Chart {
            id: "cpu",
            title: "HPA CPU utilization".into(),
            y_label: "% of request".into(),
            x_end: end,
            bands: phase_bands(r),
            series: vec![cpu],
            ..Chart::default()
        }));
    }
    let per_replica = t.throughput_per_replica(&r.throughput_series());
    if !per_replica.is_empty() {
        out.push_str(&line_chart(&Chart {
            id: "per-replica",
            title: "Throughput per ready replica".into(),
            y_label: "requests/s per replica".into(),
            x_end: end,
            bands: phase_bands(r),
            series: vec![Series::line(
                "throughput / ready replicas",
                colors::PER_REPLICA,
                per_replica.iter().map(|p| (p.t_s, p.per_replica)).collect(),
            )],
            ..Chart::default()
        }));
    }
    let s = &t.summary;
    let opt_i = |v: Option<i32>| v.map_or("–".to_string(), |v| v.to_string());
    let opt_s = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1} s"));
    let mean_pr = t
        .mean_throughput_per_replica(&r.throughput_series())
        .map_or("–".to_string(), |v| format!("{} req/s", num(v)));
    let _ = write!(
        out,
        "<table id=\"scale-out\"><tbody>\
         <tr><th class=\"l\">replicas initial / max / final</th><td>{} / {} / {}</td></tr>\
         <tr><th class=\"l\">time to first scale-up (desired)</th><td>{}</td></tr>\
         <tr><th class=\"l\">time to first scale-up (ready)</th><td>{}</td></tr>\
         <tr><th class=\"l\">time to highest replica count</th><td>{}</td></tr>\
         <tr><th class=\"l\">max HPA CPU utilization</th><td>{}</td></tr>\
         <tr><th class=\"l\">mean throughput per ready replica</th><td>{}</td></tr></tbody></table>",
        opt_i(s.initial_replicas),
        opt_i(s.max_replicas),
        opt_i(s.final_replicas),
        opt_s(s.time_to_first_scale_up_s),
        opt_s(s.time_to_first_ready_scale_up_s),
        opt_s(s.time_to_max_replicas_s),
        s.max_cpu_utilization_percent
            .map_or("–".to_string(), |v| format!("{v} %")),
        mean_pr,
    );
    out.push_str(&scale_events_table(r));
    out.push_str("</section>");
    out
}

fn comparison_table(reports: &[(String, RunReport)]) -> String {
    let mut out = String::from(
        "<section><h2>Summary</h2><table id=\"comparison\"><thead><tr><th class=\"l\">run</th>\
         <th class=\"l\">deployment</th><th>requests</th><th>duration s</th><th>req/s</th><th>p50 ms</th>\
         <th>p99 ms</th><th>success %</th><th>max ready replicas</th></tr></thead><tbody>",
    );
    let base = &reports[0].1.summary;
    // Relative change against the first run; `higher_is_better` colours it.
    let change = |v: f64, b: f64, higher_is_better: bool| -> String {
        if reports.len() < 2 || b == 0.0 || !v.is_finite() || !b.is_finite() {
            return String::new();
        }
        let pct = (v - b) / b * 100.0;
        if pct.abs() < 0.05 {
            return String::new();
        }
        let class = if (pct > 0.0) == higher_is_better {
            "better"
        } else {
            "worse"
        };
        format!(" <span class=\"{class}\">({pct:+.1} %)</span>")
    };
    for (i, (name, r)) in reports.iter().enumerate() {
        let s = &r.summary;
        let color = colors::RUNS[i % colors::RUNS.len()];
        let _ = write!(
            out,
            "<tr><td class=\"l\"><span class=\"sw\" style=\"background:{color}\"></span> {}</td><td class=\"l\">{}</td>\
             <td>{}</td><td>{}{}</td><td>{}{}</td><td>{}{}</td><td>{}{}</td><td>{:.2}{}</td><td>{}</td></tr>",
            escape(name),
            escape(r.deployment().unwrap_or("")),
            s.requests,
            num(s.duration_s),
            change(s.duration_s, base.duration_s, false),
            num(s.rps),
            change(s.rps, base.rps, true),
            num(s.latency_ms.p50),
            change(s.latency_ms.p50, base.latency_ms.p50, false),
            num(s.latency_ms.p99),
            change(s.latency_ms.p99, base.latency_ms.p99, false),
            s.success_rate,
            change(s.success_rate, base.success_rate, true),
            r.replicas
                .as_ref()
                .and_then(|t| t.summary.max_replicas)
                .map_or("–".to_string(), |v| v.to_string()),
        );
    }
    out.push_str("</tbody></table></section>");
    out
}

/// A step function of one replica field, ending at `end`; unknown values break the line.
fn step_segments(
    t: &ReplicaTimeline,
    end: f64,
    f: impl Fn(&crate::watch::ReplicaSample) -> Option<i32>,
) -> Vec<Vec<(f64, f64)>> {
    let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for s in &t.samples {
        match f(s) {
            Some(v) => {
                let v = f64::from(v);
                match current.last() {
                    Some(&(_, prev)) if prev == v => {} // other fields changed, not this one
                    Some(&(_, prev)) => {
                        current.push((s.t_s, prev));
                        current.push((s.t_s, v));
                    }
                    None => current.push((s.t_s, v)),
                }
            }
            None => {
                if let Some(&(_, prev)) = current.last() {
                    current.push((s.t_s, prev));
                    segments.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if let Some(&(t_last, prev)) = current.last() {
        if end > t_last {
            current.push((end, prev));
        }
        segments.push(current);
    }
    segments
}

// ---------------------------------------------------------------------------------------------
// Charts

/// One line on a chart: one or more polylines (gaps between segments).
#[derive(Debug, Clone)]
struct Series {
    label: String,
    color: &'static str,
    segments: Vec<Vec<(f64, f64)>>,
    dashed: bool,
}

impl Series {
    fn line(label: &str, color: &'static str, points: Vec<(f64, f64)>) -> Self {
        Self::segments(label, color, vec![points])
    }

    fn segments(label: &str, color: &'static str, segments: Vec<Vec<(f64, f64)>>) -> Self {
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

    fn dashed(mut self, dashed: bool) -> Self {
        self.dashed = dashed;
        self
    }

    fn has_points(&self) -> bool {
        self.segments.iter().any(|s| !s.is_empty())
    }

    fn points(&self) -> impl Iterator<Item = &(f64, f64)> {
        self.segments.iter().flatten()
    }
}

/// How the x axis maps data to pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum XAxis {
    /// Seconds since the run start.
    #[default]
    Time,
    /// Percentile on the classic HdrHistogram scale: x = log10(1 / (1 - q)).
    Percentile,
}

#[derive(Debug, Clone, Default)]
struct Chart {
    id: &'static str,
    title: String,
    y_label: String,
    /// Right end of the time axis (the run's duration), so charts of one page line up.
    x_end: f64,
    series: Vec<Series>,
    /// Replica counts: integer ticks only.
    integer_y: bool,
    x_axis: XAxis,
    /// Phases of the run (name, start, end in seconds), shaded on time charts.
    bands: Vec<(String, f64, f64)>,
    /// Vertical marks on the time axis: (t_s, label), e.g. the scale events.
    markers: Vec<(f64, String)>,
}

/// A row per phase (the shape of the classic write-ups: load level, rps, mean, success).
fn phases_section(r: &RunReport) -> String {
    if r.phases.len() < 2 {
        return String::new();
    }
    let open = r.mode == LoadMode::Open;
    let mut out = String::from(
        "<section><h2>Phases</h2><table id=\"phases\"><thead><tr><th class=\"l\">phase</th>",
    );
    for k in [
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
    ] {
        let _ = write!(out, "<th>{k}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    for p in &r.phases {
        let errors: Vec<String> = p.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = write!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2} %</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&p.name),
            num(p.start_s),
            num(p.duration_s),
            escape(&p.target(open)),
            p.requests,
            num(p.rps),
            num(p.latency_ms.mean),
            p.success_rate,
            num(p.latency_ms.p50),
            num(p.latency_ms.p95),
            num(p.latency_ms.p99),
            p.service_time_ms.map_or("-".into(), |s| num(s.p99)),
            p.shed_503,
            escape(&errors.join(", ")),
        );
    }
    out.push_str("</tbody></table></section>");
    out
}

/// The phases of a run as chart bands (none for a single phase: nothing to tell apart).
fn phase_bands(r: &RunReport) -> Vec<(String, f64, f64)> {
    if r.phases.len() < 2 {
        return Vec::new();
    }
    r.phases
        .iter()
        .map(|p| (p.name.clone(), p.start_s, p.start_s + p.duration_s))
        .collect()
}

const W: f64 = 960.0;
const H: f64 = 280.0;
const ML: f64 = 64.0;
const MR: f64 = 16.0;
const MT: f64 = 12.0;
const MB: f64 = 40.0;

/// "Nice" tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten.
fn nice_ticks(lo: f64, hi: f64, target: usize, integer: bool) -> Vec<f64> {
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

/// Short number format for tables and ticks.
fn num(v: f64) -> String {
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

fn percentile_label(x: f64) -> String {
    // x = log10(1/(1-q)) => q = 1 - 10^-x
    let q = (1.0 - 10f64.powf(-x)) * 100.0;
    format!("{}%", num(q))
}

fn line_chart(c: &Chart) -> String {
    let mut out = format!(
        "<figure class=\"chart\" id=\"chart-{}\"><h3>{}</h3>",
        c.id,
        escape(&c.title)
    );
    if !c.series.iter().any(Series::has_points) {
        out.push_str("<p class=\"empty\">No data.</p></figure>");
        return out;
    }
    let (mut x_min, mut x_max): (f64, f64) = match c.x_axis {
        XAxis::Time => (0.0, c.x_end),
        XAxis::Percentile => (0.0, 0.0),
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
    if y_max <= 0.0 {
        y_max = 1.0;
    }
    let y_ticks = nice_ticks(0.0, y_max * 1.05, 5, c.integer_y);
    let y_top = y_ticks.last().copied().unwrap_or(y_max).max(y_max);
    let x_ticks: Vec<f64> = match c.x_axis {
        XAxis::Time => nice_ticks(x_min, x_max, 10, false),
        XAxis::Percentile => (0..=(x_max.ceil() as i32)).map(f64::from).collect(),
    };
    let pw = W - ML - MR;
    let ph = H - MT - MB;
    let sx = |x: f64| ML + (x - x_min) / (x_max - x_min) * pw;
    let sy = |y: f64| MT + ph - (y / y_top) * ph;

    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\" font-size=\"11\" font-family=\"sans-serif\">",
        escape(&c.title)
    );
    let _ = write!(
        out,
        "<rect class=\"plot\" x=\"{ML}\" y=\"{MT}\" width=\"{pw}\" height=\"{ph}\" fill=\"#fcfcfc\" stroke=\"#ccc\"/>"
    );
    if c.x_axis == XAxis::Time {
        // Every other phase shaded, each named on hover and at its top left.
        for (i, (name, t0, t1)) in c.bands.iter().enumerate() {
            let (a, b) = (sx(t0.max(x_min)), sx(t1.min(x_max)));
            if b <= a {
                continue;
            }
            let fill = if i % 2 == 0 { "#eef3f8" } else { "#fcfcfc" };
            let _ = write!(
                out,
                "<g class=\"phase\" data-phase=\"{n}\"><title>{n}</title><rect x=\"{a:.1}\" y=\"{MT}\" width=\"{:.1}\" height=\"{ph}\" fill=\"{fill}\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#888\" font-size=\"10\">{n}</text></g>",
                b - a,
                a + 3.0,
                MT + 11.0,
                n = escape(name),
            );
        }
    }
    for &t in &y_ticks {
        let y = sy(t);
        let _ = write!(
            out,
            "<line x1=\"{ML}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e6e6e6\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#444\">{}</text>",
            ML + pw,
            ML - 6.0,
            y + 4.0,
            num(t)
        );
    }
    for &t in &x_ticks {
        if t < x_min - 1e-9 || t > x_max + 1e-9 {
            continue;
        }
        let x = sx(t);
        let label = match c.x_axis {
            XAxis::Time => num(t),
            XAxis::Percentile => percentile_label(t),
        };
        // Keep the last label inside the picture.
        let anchor = if x > W - MR - 24.0 { "end" } else { "middle" };
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{MT}\" y2=\"{}\" stroke=\"#eeeeee\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"{anchor}\" fill=\"#444\">{}</text>",
            MT + ph,
            MT + ph + 15.0,
            label
        );
    }
    let x_label = match c.x_axis {
        XAxis::Time => "time since start (s)",
        XAxis::Percentile => "percentile",
    };
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">{x_label}</text>\
         <text transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\" fill=\"#444\">{}</text>",
        ML + pw / 2.0,
        H - 6.0,
        MT + ph / 2.0,
        escape(&c.y_label)
    );
    for (t, label) in &c.markers {
        if !t.is_finite() || *t < x_min || *t > x_max {
            continue;
        }
        let x = sx(*t);
        let _ = write!(
            out,
            "<g class=\"marker\" data-t=\"{t:.3}\"><title>{}</title><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{MT}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"1.5\" stroke-dasharray=\"3 3\"/><text x=\"{:.1}\" y=\"{}\" fill=\"{}\">{}</text></g>",
            escape(label),
            MT + ph,
            colors::MARKER,
            x + 3.0,
            MT + 11.0,
            colors::MARKER,
            escape(label),
        );
    }
    for s in &c.series {
        let n: usize = s.segments.iter().map(Vec::len).sum();
        let dash = if s.dashed {
            " stroke-dasharray=\"7 4\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<g class=\"series\" data-series=\"{}\" data-points=\"{n}\" stroke=\"{}\" fill=\"{}\">",
            escape(&s.label),
            s.color,
            s.color
        );
        for seg in &s.segments {
            let pts: Vec<String> = seg
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
                .collect();
            let _ = write!(
                out,
                "<polyline fill=\"none\" stroke-width=\"2.5\" stroke-linejoin=\"round\"{dash} points=\"{}\"/>",
                pts.join(" ")
            );
            // Markers where the line alone would be invisible or misleading (few points).
            if seg.len() <= 40 {
                for &(x, y) in seg {
                    let _ = write!(
                        out,
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" stroke=\"none\"/>",
                        sx(x),
                        sy(y)
                    );
                }
            }
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
    out.push_str(&legend(&c.series));
    out.push_str("</figure>");
    out
}

fn legend(series: &[Series]) -> String {
    let mut out = String::from("<ul class=\"legend\">");
    for s in series {
        let _ = write!(
            out,
            "<li><span class=\"sw{}\" style=\"background-color:{}\"></span>{}</li>",
            if s.dashed { " dash" } else { "" },
            s.color,
            escape(&s.label)
        );
    }
    out.push_str("</ul>");
    out
}

/// Latency histogram as bars over log-spaced latency bins (so a fast bulk and a slow tail are both
/// visible), heights in percent of requests.
fn distribution_chart(h: &Histogram<u64>) -> String {
    const BINS: usize = 40;
    let total = h.len() as f64;
    let lo = (h.min().max(1)) as f64;
    let hi = (h.max().max(1)) as f64 * 1.0001 + 1.0;
    let (llo, lhi) = (lo.log10(), hi.log10());
    let mut counts = [0u64; BINS];
    for v in h.iter_recorded() {
        let x = (v.value_iterated_to().max(1) as f64).log10();
        let i = (((x - llo) / (lhi - llo)) * BINS as f64).floor();
        let i = (i.max(0.0) as usize).min(BINS - 1);
        counts[i] += v.count_at_value();
    }
    let pct: Vec<f64> = counts.iter().map(|&c| c as f64 / total * 100.0).collect();
    let y_max = pct.iter().copied().fold(0.0, f64::max).max(1e-9);
    let y_ticks = nice_ticks(0.0, y_max * 1.05, 5, false);
    let y_top = y_ticks.last().copied().unwrap_or(y_max).max(y_max);
    let pw = W - ML - MR;
    let ph = H - MT - MB;
    let sx = |lx: f64| ML + (lx - llo) / (lhi - llo) * pw;
    let sy = |y: f64| MT + ph - (y / y_top) * ph;

    let mut out = String::from(
        "<figure class=\"chart\" id=\"chart-distribution\"><h3>Latency distribution</h3>",
    );
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"Latency distribution\" font-size=\"11\" font-family=\"sans-serif\">\
         <rect x=\"{ML}\" y=\"{MT}\" width=\"{pw}\" height=\"{ph}\" fill=\"#fcfcfc\" stroke=\"#ccc\"/>"
    );
    for &t in &y_ticks {
        let y = sy(t);
        let _ = write!(
            out,
            "<line x1=\"{ML}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e6e6e6\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#444\">{}</text>",
            ML + pw,
            ML - 6.0,
            y + 4.0,
            num(t)
        );
    }
    // Ticks at 1-2-5 milliseconds inside the range (values are microseconds).
    let mut decade = 10f64.powf(llo.floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let us = decade * m;
            if us >= lo && us <= hi {
                let x = sx(us.log10());
                let _ = write!(
                    out,
                    "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{MT}\" y2=\"{}\" stroke=\"#eeeeee\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">{}</text>",
                    MT + ph,
                    MT + ph + 15.0,
                    num(us / 1000.0)
                );
            }
        }
        decade *= 10.0;
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#444\">latency (ms, log scale)</text>\
         <text transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\" fill=\"#444\">% of requests</text>",
        ML + pw / 2.0,
        H - 6.0,
        MT + ph / 2.0
    );
    let nonzero = pct.iter().filter(|p| **p > 0.0).count();
    let _ = write!(
        out,
        "<g class=\"series\" data-series=\"latency distribution\" data-points=\"{nonzero}\" fill=\"{}\">",
        colors::DISTRIBUTION
    );
    let bw = pw / BINS as f64;
    for (i, p) in pct.iter().enumerate() {
        if *p <= 0.0 {
            continue;
        }
        let x = ML + i as f64 * bw;
        let y = sy(*p);
        let _ = write!(
            out,
            "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{:.2}% of requests</title></rect>",
            x + 0.5,
            (bw - 1.0).max(1.0),
            (MT + ph - y).max(1.0),
            p
        );
    }
    out.push_str("</g></svg></figure>");
    out
}

/// Quantiles drawn on the percentile chart: dense towards the tail, where the differences are.
const QUANTILES: [f64; 14] = [
    0.0, 0.25, 0.5, 0.75, 0.8, 0.9, 0.95, 0.97, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999,
];

fn percentile_chart(
    id: &'static str,
    title: &str,
    runs: &[(String, &'static str, &Histogram<u64>)],
) -> String {
    let series = runs
        .iter()
        .map(|(name, color, h)| {
            // Stop at the quantile that a histogram of this size can resolve.
            let n = h.len() as f64;
            let pts: Vec<(f64, f64)> = QUANTILES
                .iter()
                .filter(|q| **q == 0.0 || (1.0 - **q) * n >= 1.0)
                .map(|&q| {
                    (
                        (1.0 / (1.0 - q)).log10(),
                        h.value_at_quantile(q) as f64 / 1000.0,
                    )
                })
                .collect();
            Series::line(name, color, pts)
        })
        .collect();
    line_chart(&Chart {
        id,
        title: title.to_string(),
        y_label: "ms".into(),
        series,
        x_axis: XAxis::Percentile,
        ..Chart::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
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
    fn numbers_are_short() {
        assert_eq!(num(1234.56), "1235");
        assert_eq!(num(12.345), "12.35");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(150.0), "150");
        assert_eq!(num(f64::NAN), "–");
    }

    #[test]
    fn step_segments_hold_values_and_break_on_unknown() {
        let t = ReplicaTimeline {
            samples: vec![
                crate::watch::ReplicaSample {
                    t_s: 0.0,
                    ready: Some(1),
                    ..Default::default()
                },
                crate::watch::ReplicaSample {
                    t_s: 5.0,
                    ready: Some(3),
                    ..Default::default()
                },
                crate::watch::ReplicaSample {
                    t_s: 8.0,
                    ready: None,
                    ..Default::default()
                },
                crate::watch::ReplicaSample {
                    t_s: 9.0,
                    ready: Some(2),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let segs = step_segments(&t, 12.0, |s| s.ready);
        assert_eq!(
            segs,
            vec![
                vec![(0.0, 1.0), (5.0, 1.0), (5.0, 3.0), (8.0, 3.0)],
                vec![(9.0, 2.0), (12.0, 2.0)],
            ]
        );
    }

    #[test]
    fn line_chart_maps_points_into_the_plot_area() {
        let svg = line_chart(&Chart {
            id: "t",
            title: "T".into(),
            y_label: "y".into(),
            x_end: 10.0,
            series: vec![Series::line(
                "s",
                "#123456",
                vec![(0.0, 0.0), (10.0, 100.0)],
            )],
            ..Chart::default()
        });
        // x = 0 at the left edge, x = 10 at the right; y = 0 at the bottom, 100 at or below the top.
        let pts = svg
            .split(" points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let coords: Vec<(f64, f64)> = pts
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
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
    fn empty_chart_says_so() {
        let html = line_chart(&Chart {
            id: "e",
            title: "<E>".into(),
            series: vec![Series::line("s", "#000000", vec![(1.0, f64::NAN)])],
            ..Chart::default()
        });
        assert!(html.contains("No data."));
        assert!(html.contains("&lt;E&gt;"));
        assert!(!html.contains("<svg"));
    }
}
