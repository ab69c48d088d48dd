//! The HTML report rendered from realistic run reports: charts carry the data, user strings are
//! escaped, nothing is fetched at view time, and the comparison page overlays every run.

use std::collections::BTreeMap;

use loadgen::model::phases::PhaseSummary;
use loadgen::model::replicas::{ReplicaSample, ReplicaTimeline};
use loadgen::model::{
    EndpointSummary, GeneratorStats, Histograms, LoadMode, PlanInfo, RunReport, SCHEMA_VERSION,
    Summary, ThresholdOutcome, TimePoint, hist,
};
use loadgen::report::html::{colors, render_comparison, render_run};

/// A 60 s open-loop run: rate ramps up, latency degrades, errors appear after 30 s; with a replica
/// timeline scaling 1 -> 3 -> 5 when `replicas` is set.
fn sample_report(run: &str, deployment: &str, rps_scale: f64, replicas: bool) -> RunReport {
    let mut latency = hist::new_hist();
    let mut timeseries = Vec::new();
    let mut requests = 0u64;
    let mut failures = 0u64;
    for t in 0..60u64 {
        let rps = (20.0 + 5.0 * t as f64) * rps_scale;
        let fails = if t >= 30 { (t - 29) % 7 } else { 0 };
        let p50 = 5.0 + t as f64 * 0.5;
        for i in 0..rps as u64 {
            // A bulk around p50 and a slow tail.
            let us = if i % 100 == 99 {
                p50 * 8_000.0
            } else {
                p50 * 1_000.0 + (i % 17) as f64 * 100.0
            };
            hist::record(&mut latency, us as u64);
        }
        requests += rps as u64;
        failures += fails;
        timeseries.push(TimePoint {
            t_s: t as f64,
            requests: rps as u64,
            failures: fails,
            rps,
            p50_ms: p50,
            p99_ms: p50 * 8.0,
            max_ms: p50 * 9.0,
            target_rate: rps,
            active_users: 0,
            in_flight: 10,
            backends: spread_over_backends(t, rps as u64),
            ..Default::default()
        });
    }
    let mut labels = BTreeMap::new();
    labels.insert("deployment".to_string(), deployment.to_string());
    let mut status_codes = BTreeMap::new();
    status_codes.insert("200".to_string(), requests - failures);
    status_codes.insert("503".to_string(), failures);
    let replicas = replicas.then(|| {
        let s = |t_s: f64, d: i32, r: i32, cpu: i32| ReplicaSample {
            t_s,
            desired: Some(d),
            current: Some(d),
            ready: Some(r),
            hpa_desired: Some(d),
            cpu_utilization_percent: Some(cpu),
        };
        let mut t = ReplicaTimeline {
            target: "deployment/workload".into(),
            namespace: Some("scalebench".into()),
            hpa: Some("workload".into()),
            interval_s: 1.0,
            samples: vec![
                s(0.0, 1, 1, 10),
                s(12.0, 3, 1, 160),
                s(16.0, 3, 3, 150),
                s(31.0, 5, 3, 120),
                s(36.0, 5, 5, 70),
            ],
            ..Default::default()
        };
        t.summary = t.compute_summary();
        t
    });
    let summary = Summary {
        requests,
        successes: requests - failures,
        failures,
        success_rate: (requests - failures) as f64 / requests as f64 * 100.0,
        duration_s: 60.0,
        rps: requests as f64 / 60.0,
        latency_ms: hist::stats(&latency),
        service_time_ms: Some(hist::stats(&latency)),
        status_codes,
        errors: BTreeMap::new(),
        backends: BTreeMap::from([("workload-7d9c8b6f5d-x2k4q".to_string(), requests)]),
        dropped: 0,
        late: 0,
        iterations: requests,
        retries: 0,
    };
    RunReport {
        schema_version: SCHEMA_VERSION,
        tool: "loadgen test".into(),
        run: run.into(),
        scenario: "ramp".into(),
        target: "http://127.0.0.1:8080".into(),
        mode: LoadMode::Open,
        labels,
        started_at: "2026-11-23T10:00:00Z".into(),
        started_at_unix_ms: 1_795_428_000_000,
        interrupted: false,
        workers: 1,
        plan: PlanInfo {
            description: "open loop: 20/s ramping to 315/s over 60s".into(),
            duration_s: Some(60.0),
            requests: None,
            concurrency: 100,
        },
        summary,
        endpoints: Vec::new(),
        timeseries,
        timeseries_resolution_s: 1.0,
        generator: GeneratorStats::default(),
        thresholds: Vec::new(),
        slowest_traces: Vec::new(),
        histograms: Histograms {
            encoding: hist::ENCODING.into(),
            unit: hist::UNIT.into(),
            latency: hist::encode(&latency),
            service_time: hist::encode(&latency),
            ..Default::default()
        },
        replicas,
        ..Default::default()
    }
}

/// The first pod serves everything until 16 s; then three pods share the load.
fn spread_over_backends(t: u64, requests: u64) -> BTreeMap<String, u64> {
    let pods: &[&str] = if t < 16 {
        &["pod-a"]
    } else {
        &["pod-a", "pod-b", "pod-c"]
    };
    let n = pods.len() as u64;
    pods.iter()
        .enumerate()
        .map(|(i, p)| {
            let share = requests / n + u64::from((i as u64) < requests % n);
            (p.to_string(), share)
        })
        .collect()
}

#[test]
fn run_page_draws_throughput_per_backend_over_time() {
    let report = sample_report("run-1", "k8s-hpa", 1.0, true);
    let html = render_run(&report);
    // pod-a is the busiest, so it gets the first colour.
    for (i, pod) in ["pod-a", "pod-b", "pod-c"].iter().enumerate() {
        let g = series_in_chart(&html, "backends", pod);
        assert_eq!(data_points(g), 60, "{pod}");
        assert!(g.contains(colors::BACKENDS[i]), "{pod}");
    }
    // pod-b is at zero (the baseline) before 16 s and above it after.
    let b = polyline_points(series_in_chart(&html, "backends", "pod-b"));
    let baseline = b[0].1;
    assert!(b[..16].iter().all(|p| p.1 == baseline), "{b:?}");
    assert!(b[16..].iter().all(|p| p.1 < baseline), "{b:?}");
    // The chart sits right after the total throughput.
    let at = |id: &str| html.find(&format!("id=\"chart-{id}\"")).unwrap();
    assert!(at("throughput") < at("backends") && at("backends") < at("errors"));
}

#[test]
fn a_run_without_backend_names_has_no_backend_chart_and_many_backends_are_folded() {
    let mut report = sample_report("run-1", "docker", 1.0, false);
    for p in &mut report.timeseries {
        p.backends.clear();
    }
    assert!(!render_run(&report).contains("chart-backends"));
    for p in &mut report.timeseries {
        p.backends = (0..12).map(|i| (format!("pod-{i:02}"), 1 + i)).collect();
    }
    let html = render_run(&report);
    series_in_chart(&html, "backends", "pod-11");
    series_in_chart(&html, "backends", "other backends (4)");
    let chart = &html[html.find("id=\"chart-backends\"").unwrap()..];
    let chart = &chart[..chart.find("</figure>").unwrap()];
    assert!(
        !chart.contains("data-series=\"pod-00\""),
        "the quietest are folded"
    );
}

#[test]
fn a_partial_last_second_is_drawn_at_its_true_rate_not_as_a_drop() {
    // A run of 300 to 700 per second ending 0.5 s into its last second (350 requests in it).
    let mut report = sample_report("run-1", "docker", 1.0, false);
    report.timeseries.truncate(5);
    for (i, p) in report.timeseries.iter_mut().enumerate() {
        p.t_s = i as f64;
        p.requests = 300 + 100 * i as u64;
        p.rps = p.requests as f64;
        p.failures = 10;
    }
    report.timeseries.push(TimePoint {
        t_s: 5.0,
        requests: 350,
        failures: 5,
        rps: 350.0,
        ..TimePoint::default()
    });
    loadgen::model::end_series(&mut report.timeseries, 5.5, 1.0);
    report.summary.duration_s = 5.5;
    assert_eq!(report.timeseries[5].rps, 700.0);
    let html = render_run(&report);
    let tp = polyline_points(series_in_chart(&html, "throughput", "throughput"));
    // SVG y grows downwards: the last point is as high as the one before (700/s), not at 0.
    let n = tp.len();
    assert!((tp[n - 1].1 - tp[n - 2].1).abs() < 1.0, "{tp:?}");
    let errors = polyline_points(series_in_chart(&html, "errors", "failures/s"));
    let n = errors.len();
    assert!(
        (errors[n - 1].1 - errors[n - 2].1).abs() < 1.0,
        "{errors:?}"
    );
}

/// The `<g class="series" ...>` element of a named series inside one chart.
fn series_in_chart<'a>(html: &'a str, chart_id: &str, series: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"chart-{chart_id}\""))
        .unwrap_or_else(|| panic!("chart {chart_id} missing"));
    let chart = &html[start..];
    let chart = &chart[..chart.find("</figure>").unwrap()];
    let at = chart
        .find(&format!("data-series=\"{series}\""))
        .unwrap_or_else(|| panic!("series {series} missing in chart {chart_id}"));
    let g = &chart[at..];
    &g[..g.find("</g>").unwrap()]
}

fn data_points(g: &str) -> usize {
    let v = g.split("data-points=\"").nth(1).unwrap();
    v[..v.find('"').unwrap()].parse().unwrap()
}

/// All (x, y) of the polylines of a series.
fn polyline_points(g: &str) -> Vec<(f64, f64)> {
    g.split(" points=\"")
        .skip(1)
        .flat_map(|p| {
            p[..p.find('"').unwrap()]
                .split(' ')
                .map(|xy| {
                    let (x, y) = xy.split_once(',').unwrap();
                    (x.parse::<f64>().unwrap(), y.parse::<f64>().unwrap())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn run_page_charts_carry_the_data() {
    let report = sample_report("run-1", "k8s-hpa", 1.0, true);
    let html = render_run(&report);

    let tp = series_in_chart(&html, "throughput", "throughput");
    assert_eq!(data_points(tp), 60);
    assert!(tp.contains(colors::THROUGHPUT));
    let pts = polyline_points(tp);
    assert_eq!(pts.len(), 60);
    // Throughput rises over the run: x increases, and y (SVG, downwards) decreases.
    assert!(
        pts.windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 < w[0].1),
        "{pts:?}"
    );

    let errors = series_in_chart(&html, "errors", "failures/s");
    assert_eq!(data_points(errors), 60);
    let flat_then_errors = polyline_points(errors);
    let baseline = flat_then_errors[0].1;
    assert!(
        flat_then_errors[..30].iter().all(|p| p.1 == baseline),
        "no errors before 30 s"
    );
    assert!(
        flat_then_errors[30..].iter().any(|p| p.1 < baseline),
        "errors after 30 s are drawn"
    );

    for (name, color) in [
        ("p50", colors::P50),
        ("p99", colors::P99),
        ("max", colors::MAX),
    ] {
        let g = series_in_chart(&html, "latency-over-time", name);
        assert_eq!(data_points(g), 60, "{name}");
        assert!(g.contains(color));
    }

    let dist = series_in_chart(&html, "distribution", "latency distribution");
    assert!(
        data_points(dist) >= 3,
        "bulk and tail bins: {}",
        data_points(dist)
    );
    assert!(dist.matches("<rect").count() >= 3);

    let pct = series_in_chart(&html, "percentiles", "k8s-hpa");
    assert!(data_points(pct) >= 8);

    // Replicas: step lines for ready and desired, CPU, throughput per replica, the scale-out table.
    let ready = series_in_chart(&html, "replicas", "ready");
    let ready_pts = polyline_points(ready);
    // Ready changes twice (1 -> 3 at 16 s, 3 -> 5 at 36 s): start, two steps of two points, and
    // the hold to the end of the run.
    assert_eq!(
        ready_pts.iter().map(|p| p.0).collect::<Vec<_>>().len(),
        1 + 2 * 2 + 1
    );
    assert_eq!(ready_pts[1].0, ready_pts[2].0, "a vertical step");
    assert!(ready_pts[2].1 < ready_pts[1].1, "up to more replicas");
    assert!(ready.contains(colors::READY));
    series_in_chart(&html, "replicas", "desired");
    series_in_chart(&html, "cpu", "HPA CPU utilization");
    assert_eq!(
        data_points(series_in_chart(
            &html,
            "per-replica",
            "throughput / ready replicas"
        )),
        60
    );
    assert!(html.contains("id=\"scale-out\""));
    assert!(
        html.contains("<td>1 / 5 / 5</td>"),
        "initial / max / final replicas"
    );
    assert!(html.contains("<td>12.0 s</td>"), "time to first scale-up");
    assert!(
        html.contains("<td>36.0 s</td>"),
        "time to the highest replica count"
    );

    // Summary tables.
    assert!(html.contains("id=\"summary\""));
    assert!(html.contains(&format!("<td>{}</td>", report.summary.requests)));
    assert!(html.contains("id=\"latency\""));
    assert!(html.contains("id=\"status-codes\""));
}

#[test]
fn run_without_watch_has_no_replica_section_and_empty_runs_render() {
    let report = sample_report("plain", "docker", 1.0, false);
    let html = render_run(&report);
    assert!(!html.contains("chart-replicas"));
    assert!(!html.contains("<h2>Replicas</h2>"));

    let mut empty = sample_report("empty", "docker", 1.0, false);
    empty.timeseries.clear();
    empty.histograms.latency = String::new();
    empty.summary = Summary::default();
    let html = render_run(&empty);
    assert!(html.contains("No requests completed."));
    assert!(html.contains("No data."));
    assert!(html.ends_with("</html>\n"));
}

#[test]
fn user_strings_are_escaped() {
    let mut report = sample_report("<script>alert(1)</script>", "dock\"er'", 1.0, true);
    report.target = "http://127.0.0.1:8080/?a=1&b=<2>".into();
    report
        .labels
        .insert("team<b>".into(), "\"><img src=x onerror=alert(2)>".into());
    report
        .summary
        .backends
        .insert("<svg onload=alert(3)>".into(), 1);
    report.summary.errors.insert("</table>".into(), 2);
    report.generator.warnings.push("<iframe>".into());
    if let Some(t) = report.replicas.as_mut() {
        t.warnings.push("watch <forbidden> & \"denied\"".into());
    }
    let html = render_run(&report);
    for raw in [
        "<script",
        "<img",
        "<svg onload",
        "<iframe",
        "</table>\"",
        "<forbidden>",
        "team<b>",
        "&b=<2>",
    ] {
        assert!(!html.contains(raw), "unescaped {raw:?}");
    }
    for escaped in [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "dock&quot;er'",
        "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;",
        "&lt;svg onload=alert(3)&gt;",
        "watch &lt;forbidden&gt; &amp; &quot;denied&quot;",
        "a=1&amp;b=&lt;2&gt;",
    ] {
        assert!(html.contains(escaped), "missing {escaped:?}");
    }
    let cmp = render_comparison(&[("<b>x</b>".to_string(), report)]);
    assert!(!cmp.contains("<b>x</b>"));
    assert!(cmp.contains("&lt;b&gt;x&lt;/b&gt;"));
}

#[test]
fn pages_are_self_contained() {
    let html = render_run(&sample_report("r", "k8s-hpa", 1.0, true));
    let cmp = render_comparison(&[
        ("a".into(), sample_report("a", "docker", 1.0, false)),
        ("b".into(), sample_report("b", "k8s-hpa", 2.0, true)),
    ]);
    for page in [&html, &cmp] {
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("Content-Security-Policy\" content=\"default-src 'none'"));
        for banned in [
            "<script", "<link", "src=\"", "href=", "url(", "@import", "<iframe",
        ] {
            assert!(!page.contains(banned), "{banned:?} in page");
        }
    }
}

#[test]
fn comparison_overlays_runs_with_a_legend_and_ratios() {
    let runs = vec![
        (
            "docker".to_string(),
            sample_report("run-a", "docker", 1.0, false),
        ),
        (
            "k8s-hpa".to_string(),
            sample_report("run-b", "k8s-hpa", 2.0, true),
        ),
        (
            "k8s-single".to_string(),
            sample_report("run-c", "k8s-single", 0.5, false),
        ),
    ];
    let html = render_comparison(&runs);
    for (i, (name, _)) in runs.iter().enumerate() {
        for chart in [
            "cmp-throughput",
            "cmp-p99",
            "cmp-p50",
            "cmp-errors",
            "cmp-percentiles",
        ] {
            let g = series_in_chart(&html, chart, name);
            assert!(g.contains(colors::RUNS[i]), "{chart}/{name}");
        }
        assert_eq!(
            data_points(series_in_chart(&html, "cmp-throughput", name)),
            60
        );
        // Legend entry with the run's colour.
        assert!(html.contains(&format!(
            "<li><span class=\"sw\" style=\"background-color:{}\"></span>{name}</li>",
            colors::RUNS[i]
        )));
    }
    // Throughput of the doubled run sits above the first at the same time.
    let a = polyline_points(series_in_chart(&html, "cmp-throughput", "docker"));
    let b = polyline_points(series_in_chart(&html, "cmp-throughput", "k8s-hpa"));
    assert!(a.iter().zip(&b).all(|(pa, pb)| pa.0 == pb.0 && pb.1 < pa.1));
    // Only the watched run has replicas.
    series_in_chart(&html, "cmp-replicas", "k8s-hpa");
    let replicas_chart = &html[html.find("chart-cmp-replicas").unwrap()..];
    let replicas_chart = &replicas_chart[..replicas_chart.find("</figure>").unwrap()];
    assert!(!replicas_chart.contains("data-series=\"docker\""));
    // One table row per run, with the change against the first run.
    assert_eq!(
        html.matches("<tr><td class=\"l\"><span class=\"sw\"")
            .count(),
        3
    );
    assert!(html.contains("(+100.0 %)"), "doubled throughput");
    assert!(
        html.contains("(-50."),
        "halved throughput (requests rounded down per second)"
    );
}

/// The scale events of a watched run are marked on every time chart (at the moment the desired
/// count rose) and listed in a table; spread warnings are shown in the summary, escaped.
#[test]
fn scale_events_are_marked_on_the_time_axis_and_tabled() {
    let mut report = sample_report("k8s", "k8s-hpa", 1.0, true);
    loadgen::analysis::analyse(&mut report, &loadgen::analysis::ScaleCostConfig::default());
    let times: Vec<f64> = report.scale_events.iter().map(|e| e.t_s).collect();
    assert_eq!(times, vec![12.0, 31.0]);
    report.warnings = vec!["load is pinned to 1 of 5 ready pods <b>".into()];
    let html = render_run(&report);
    for chart in ["throughput", "errors", "latency-over-time", "replicas"] {
        let start = html.find(&format!("id=\"chart-{chart}\"")).unwrap();
        let fig = &html[start..];
        let fig = &fig[..fig.find("</figure>").unwrap()];
        assert!(
            fig.contains("class=\"marker\" data-t=\"12.000\""),
            "{chart}"
        );
        assert!(
            fig.contains("class=\"marker\" data-t=\"31.000\""),
            "{chart}"
        );
        assert!(fig.contains("\u{2191}5"), "{chart}");
    }
    let table = &html[html.find("id=\"scale-events\"").expect("the table")..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(table.matches("<tr>").count(), 3, "header and two events");
    assert!(
        table.contains("<td class=\"l\">1 \u{2192} 3</td><td>4.0 s</td>"),
        "{table}"
    );
    assert!(
        html.contains("<p>load is pinned to 1 of 5 ready pods &lt;b&gt;</p>"),
        "warnings are shown, escaped"
    );
    // A run without events has neither.
    let plain = render_run(&sample_report("docker", "docker", 1.0, false));
    assert!(!plain.contains("class=\"marker\"") && !plain.contains("scale-events"));
}

// --- Hostile input ------------------------------------------------------------------------------

/// A string that would be markup, an attribute break-out or an entity if it were not escaped,
/// tagged with the field it is put in so each field is checked on its own.
fn hostile(field: &str) -> String {
    format!("<script>alert('{field}')</script>\"><img src=x onerror=alert(1)> &amp; & \"{field}\"")
}

/// The text as it must appear in the page (the four characters maud escapes; `'` is harmless
/// because every attribute value is double-quoted).
fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A run with a hostile string in every field the user or the network controls.
fn hostile_report() -> RunReport {
    let mut r = sample_report(&hostile("run"), &hostile("deployment"), 1.0, true);
    r.scenario = hostile("scenario");
    r.target = format!("http://127.0.0.1:8080/{}", hostile("target"));
    r.started_at = hostile("started_at");
    r.plan.description = hostile("plan");
    r.labels
        .insert(hostile("label key"), hostile("label value"));
    r.thresholds = vec![
        ThresholdOutcome {
            expr: hostile("threshold passed"),
            passed: true,
            actual: 1.0,
        },
        ThresholdOutcome {
            expr: hostile("threshold failed"),
            passed: false,
            actual: 2.0,
        },
    ];
    r.summary.errors.insert(hostile("error kind"), 3);
    r.summary.status_codes.insert(hostile("status"), 1);
    r.summary.backends.insert(hostile("summary backend"), 4);
    for p in &mut r.timeseries {
        p.backends.insert(hostile("x-served-by"), 2);
    }
    r.endpoints = vec![EndpointSummary {
        name: hostile("endpoint"),
        method: hostile("method"),
        path: hostile("path"),
        requests: 10,
        ..EndpointSummary::default()
    }];
    let phase = |name: &str, start_s: f64| PhaseSummary {
        name: hostile(name),
        start_s,
        duration_s: 30.0,
        requests: 10,
        errors: BTreeMap::from([(hostile(&format!("{name} error")), 1)]),
        ..PhaseSummary::default()
    };
    r.phases = vec![phase("phase one", 0.0), phase("phase two", 30.0)];
    r.generator.warnings = vec![hostile("generator warning")];
    let timeline = r.replicas.as_mut().unwrap();
    timeline.target = hostile("watch target");
    timeline.namespace = Some(hostile("namespace"));
    timeline.hpa = Some(hostile("hpa"));
    timeline.warnings = vec![hostile("watch warning")];
    loadgen::analysis::analyse(&mut r, &loadgen::analysis::ScaleCostConfig::default());
    r.warnings.push(hostile("spread warning"));
    r.error_messages.push(hostile("error message"));
    r
}

/// Every element the pages are made of; anything else in a page is injected markup.
const ELEMENTS: &[&str] = &[
    "html", "head", "meta", "title", "style", "body", "header", "footer", "section", "h1", "h2",
    "h3", "p", "b", "div", "span", "table", "thead", "tbody", "tr", "th", "td", "ul", "li",
    "figure", "svg", "g", "rect", "line", "polyline", "circle", "text",
];

/// Attributes that make a browser fetch or run something.
const FETCHING: &[&str] = &[
    "src",
    "srcset",
    "href",
    "xlink:href",
    "action",
    "formaction",
    "poster",
    "background",
    "data",
    "ping",
    "manifest",
];

/// (element, [(attribute, value)]) of every start tag. Text cannot hold a raw `<` or `>` and
/// values cannot hold a raw `"` in a page whose user strings are escaped, so splitting on them
/// is exact here; a page where they leak fails the checks below instead.
fn start_tags(page: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut tags = Vec::new();
    for chunk in page.split('<').skip(1) {
        let tag = &chunk[..chunk.find('>').expect("every tag is closed")];
        if tag.starts_with('/') || tag.starts_with('!') {
            continue;
        }
        let (name, mut rest) = tag.split_once(' ').unwrap_or((tag, ""));
        let mut attrs = Vec::new();
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                break;
            }
            let end = rest.find(['=', ' ']).unwrap_or(rest.len());
            let attr = rest[..end].to_string();
            rest = &rest[end..];
            let value = if let Some(v) = rest.strip_prefix("=\"") {
                let close = v.find('"').expect("a quoted value");
                rest = &v[close + 1..];
                v[..close].to_string()
            } else if let Some(v) = rest.strip_prefix('=') {
                // Unquoted: never written by the pages, but injected markup may be.
                let close = v.find(' ').unwrap_or(v.len());
                rest = &v[close..];
                v[..close].to_string()
            } else {
                String::new()
            };
            attrs.push((attr, value));
        }
        tags.push((name.to_string(), attrs));
    }
    tags
}

/// The page is made of the report's own elements only, runs nothing, fetches nothing.
fn assert_inert(page: &str) {
    assert!(page.contains(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">"
    ));
    for (name, attrs) in start_tags(page) {
        assert!(
            ELEMENTS.contains(&name.as_str()),
            "element <{name}> in the page"
        );
        for (attr, value) in attrs {
            assert!(!attr.starts_with("on"), "event handler {attr} on <{name}>");
            assert!(!FETCHING.contains(&attr.as_str()), "{attr} on <{name}>");
            let v = value.to_ascii_lowercase();
            assert!(
                !v.contains("javascript:") && !v.contains("url("),
                "{attr}={value}"
            );
            if attr == "xmlns" {
                assert_eq!(value, "http://www.w3.org/2000/svg");
            } else {
                assert!(!v.contains("://"), "a URL in {attr}={value} on <{name}>");
            }
        }
    }
    for raw in ["<script", "<img", "onerror=alert(1)>"] {
        assert!(!page.contains(raw), "{raw} in the page");
    }
}

#[test]
fn hostile_strings_in_every_user_field_come_out_escaped_and_the_page_stays_inert() {
    let page = render_run(&hostile_report());
    for field in [
        "run",
        "deployment",
        "scenario",
        "target",
        "started_at",
        "plan",
        "label key",
        "label value",
        "threshold passed",
        "threshold failed",
        "error kind",
        "status",
        "summary backend",
        "x-served-by",
        "endpoint",
        "method",
        "path",
        "phase one",
        "phase two",
        "phase one error",
        "phase two error",
        "generator warning",
        "watch target",
        "namespace",
        "hpa",
        "watch warning",
        "spread warning",
        "error message",
    ] {
        assert!(
            page.contains(&escaped(&hostile(field))),
            "{field} is missing or not escaped"
        );
    }
    // Backend and phase names are also attribute values (series and bands), escaped there too.
    let backend = escaped(&hostile("x-served-by"));
    assert!(page.contains(&format!("data-series=\"{backend}\"")));
    let phase = escaped(&hostile("phase one"));
    assert!(page.contains(&format!("data-phase=\"{phase}\"")));
    assert_inert(&page);
}

#[test]
fn hostile_run_names_on_the_comparison_page_come_out_escaped_and_the_page_stays_inert() {
    let runs = vec![
        (hostile("first run"), hostile_report()),
        (
            hostile("second run"),
            sample_report("b", &hostile("second deployment"), 2.0, false),
        ),
    ];
    let page = render_comparison(&runs);
    for field in [
        "first run",
        "second run",
        "deployment",
        "second deployment",
        "phase one",
    ] {
        assert!(
            page.contains(&escaped(&hostile(field))),
            "{field} is missing or not escaped"
        );
    }
    assert_inert(&page);
}

#[test]
fn the_inertness_check_catches_injected_markup() {
    // The checks above would pass on a page that showed nothing: make sure they can fail.
    let page = render_run(&sample_report("r", "docker", 1.0, false));
    assert_inert(&page);
    for injected in [
        "<img src=x>",
        "<p onclick=\"x\">",
        "<svg><a href=\"https://example.invalid\"></a></svg>",
        "<div style=\"background:url(x)\">",
    ] {
        let bad = page.replace("<footer", &format!("{injected}<footer"));
        let caught = std::panic::catch_unwind(|| assert_inert(&bad)).is_err();
        assert!(caught, "{injected} was not caught");
    }
}
