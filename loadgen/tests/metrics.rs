//! Prometheus metrics at --metrics-addr (with linger) and remote write, from the real binary.

mod common;

use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bin, start};

fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The value of the first series whose line starts with `prefix` and contains every `needle`.
fn value(text: &str, prefix: &str, needles: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(prefix) && needles.iter().all(|n| l.contains(n)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn metrics_follow_the_contract_and_linger() {
    let srv = start();
    let url = format!("{}/ping", srv.url());
    let mut child = Command::new(bin())
        .args([
            "--target",
            &url,
            "-n",
            "150",
            "-c",
            "3",
            "--metrics-addr",
            "127.0.0.1:0",
            "--metrics-linger",
            "5s",
            "--deployment",
            "docker",
            "--label",
            "team=perf",
            "--run-id",
            "r42",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut addr = None;
    for l in lines.by_ref() {
        let l = l.unwrap();
        if let Some(a) = l.strip_prefix("metrics at http://") {
            addr = Some(a.trim_end_matches("/metrics").to_string());
        }
        if l.contains("serving final metrics") {
            break;
        }
    }
    let addr = addr.expect("the bound address is printed");
    let t0 = Instant::now();
    let text = http_get(&addr, "/metrics");
    let labels = ["run=\"r42\"", "deployment=\"docker\"", "team=\"perf\""];
    let ep = "endpoint=\"GET /ping\"";
    let count = value(
        &text,
        "loadgen_request_duration_seconds_count",
        &[
            &labels[..],
            &[ep, "scenario=\"quick\"", "outcome=\"success\""],
        ]
        .concat(),
    );
    assert_eq!(count, Some(150.0), "{text}");
    assert!(
        text.contains("loadgen_request_duration_seconds_bucket{"),
        "a histogram with buckets"
    );
    assert_eq!(
        value(
            &text,
            "loadgen_requests_total",
            &[ep, "status=\"200\"", labels[0]]
        ),
        Some(150.0)
    );
    assert_eq!(
        value(
            &text,
            "loadgen_backend_requests_total",
            &["backend=\"test-a\"", labels[1]]
        ),
        Some(150.0)
    );
    // Three users, a run far shorter than the 10 s default max age: one connection each.
    assert_eq!(
        value(
            &text,
            loadgen::metrics::names::CONNECTIONS_OPENED.name,
            &[labels[0]]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            loadgen::metrics::names::CONNECTION_CLOSES.name,
            &["reason=\"max_age\"", labels[0]]
        ),
        Some(0.0)
    );
    for name in [
        "loadgen_target_rate",
        "loadgen_active_users",
        "loadgen_in_flight",
        "loadgen_dropped_iterations_total",
        "loadgen_late_iterations_total",
        "loadgen_schedule_lag_seconds",
        loadgen::metrics::names::CONNECTIONS_OPENED.name,
    ] {
        assert!(
            value(&text, name, &[labels[0], labels[1]]).is_some(),
            "{name} missing:\n{text}"
        );
    }
    assert_eq!(
        value(&text, "loadgen_errors_total", &["kind=\"timeout\""]),
        Some(0.0)
    );
    // The process lingers, then exits on its own.
    let status = child.wait().unwrap();
    assert!(status.success());
    let lingered = t0.elapsed();
    assert!(
        lingered > Duration::from_secs(3) && lingered < Duration::from_secs(10),
        "{lingered:?}"
    );
}

#[test]
fn remote_write_pushes_protobuf_snappy() {
    let srv = start();
    let got: Arc<Mutex<Vec<loadgen::metrics::remote_write::WriteRequest>>> = Arc::default();
    let headers_ok = Arc::new(Mutex::new(true));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    {
        let got = Arc::clone(&got);
        let headers_ok = Arc::clone(&headers_ok);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new().route(
                    "/api/v1/write",
                    axum::routing::post(
                        move |h: axum::http::HeaderMap, body: axum::body::Bytes| {
                            let got = Arc::clone(&got);
                            let headers_ok = Arc::clone(&headers_ok);
                            async move {
                                let ok = h.get("content-encoding").is_some_and(|v| v == "snappy")
                                    && h.get("content-type")
                                        .is_some_and(|v| v == "application/x-protobuf")
                                    && h.get("x-prometheus-remote-write-version").is_some();
                                if !ok {
                                    *headers_ok.lock().unwrap() = false;
                                }
                                match loadgen::metrics::remote_write::decode(&body) {
                                    Ok(w) => {
                                        got.lock().unwrap().push(w);
                                        axum::http::StatusCode::NO_CONTENT
                                    }
                                    Err(_) => axum::http::StatusCode::BAD_REQUEST,
                                }
                            }
                        },
                    ),
                );
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(l.local_addr().unwrap()).unwrap();
                axum::serve(l, app).await.unwrap();
            });
        });
    }
    let addr = addr_rx.recv().unwrap();
    let url = format!("{}/ping", srv.url());
    let rw = format!("http://{addr}/api/v1/write");
    let o = Command::new(bin())
        .args([
            "--target",
            &url,
            "--rate",
            "100",
            "--duration",
            "1500ms",
            "-q",
            "--remote-write",
            &rw,
            "--remote-write-interval",
            "300ms",
            "--deployment",
            "k8s-hpa",
            "--run-id",
            "rw1",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(*headers_ok.lock().unwrap(), "remote-write headers");
    let got = got.lock().unwrap();
    assert!(
        got.len() >= 3,
        "periodic pushes plus a final one: {}",
        got.len()
    );
    let last = got.last().unwrap();
    let series = last
        .timeseries
        .iter()
        .find(|t| {
            let l = |n: &str, v: &str| t.labels.iter().any(|x| x.name == n && x.value == v);
            l("__name__", "loadgen_requests_total")
                && l("status", "200")
                && l("run", "rw1")
                && l("deployment", "k8s-hpa")
        })
        .expect("loadgen_requests_total in the final push");
    assert_eq!(series.samples[0].value, 150.0);
    assert!(series.samples[0].timestamp > 1_600_000_000_000);
    for t in &last.timeseries {
        let names: Vec<&str> = t.labels.iter().map(|l| l.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "labels sorted by name");
    }
}

#[test]
fn a_run_label_names_the_run_instead_of_duplicating_it() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.json");
    let status = Command::new(bin())
        .args([
            "--target",
            &format!("{}/ping", srv.url()),
            "-n",
            "5",
            "-c",
            "1",
        ])
        .args([
            "--label",
            "run=r7",
            "--label",
            "deployment=k8s-hpa",
            "--quiet",
        ])
        .args(["--out", out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["run"], "r7");
    assert!(
        report["labels"].get("run").is_none(),
        "run is the run id, not a second label: {}",
        report["labels"]
    );
    assert_eq!(report["labels"]["deployment"], "k8s-hpa");
}

#[test]
fn histogram_samples_are_drained_every_second_without_a_scrape() {
    // Nobody scrapes and nothing pushes: the engine's 1 s ticker must still fold the queued
    // histogram samples into their buckets, or they pile up for the whole run.
    let srv = start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let metrics = Arc::new(loadgen::metrics::RunMetrics::enabled(
        "quick",
        &[("run".into(), "upkeep".into())],
    ));
    let data = rt.block_on(async {
        common::run_engine_on_ping(
            &srv.url(),
            2,
            Duration::from_millis(2500),
            Arc::clone(&metrics),
            None,
        )
        .await
    });
    assert!(data.totals.overall().successes > 0);
    // Ticks at 1.05 s and 2.05 s of a 2.5 s run; one is enough to prove the drain is wired.
    assert!(
        metrics.upkeeps() >= 1,
        "upkeep ran {} times",
        metrics.upkeeps()
    );
    // The drained samples are all still there when someone finally scrapes.
    let text = metrics.render();
    let count = value(
        &text,
        "loadgen_request_duration_seconds_count",
        &["outcome=\"success\""],
    )
    .unwrap();
    assert_eq!(count as u64, data.totals.overall().successes);
}

/// The cost of a run's last scale-out is exported with the run's labels; a figure that event never
/// reached is NaN rather than an older event's value.
#[test]
fn the_last_scale_event_is_exported_and_never_is_nan() {
    use loadgen::model::scale_events::ScaleEvent;
    let m = loadgen::metrics::RunMetrics::enabled(
        "s",
        &[("deployment".to_string(), "k8s-hpa".to_string())],
    );
    m.record_scale_events(&[
        ScaleEvent {
            time_to_ready_s: Some(9.0),
            time_to_first_new_backend_s: Some(9.5),
            recovery_s: Some(12.0),
            ..Default::default()
        },
        ScaleEvent {
            time_to_ready_s: Some(4.5),
            time_to_first_new_backend_s: None,
            recovery_s: Some(6.0),
            ..Default::default()
        },
    ]);
    let text = m.render();
    for line in [
        r#"loadgen_scale_events{deployment="k8s-hpa"} 2"#,
        r#"loadgen_scale_event_time_to_ready_seconds{deployment="k8s-hpa"} 4.5"#,
        r#"loadgen_scale_event_time_to_first_response_seconds{deployment="k8s-hpa"} NaN"#,
        r#"loadgen_scale_event_recovery_seconds{deployment="k8s-hpa"} 6"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

/// Every family a run can export, the `--watch` ones included, carries the HELP text of its
/// definition in `metrics::names`, so `promtool check metrics` has nothing to report.
#[test]
fn every_exported_family_has_the_help_text_of_its_definition() {
    use loadgen::metrics::names;
    let m = loadgen::metrics::RunMetrics::enabled("s", &[("run".into(), "help".into())]);
    let ep = m.endpoint("GET /ping");
    ep.duration[0].record(0.01);
    m.requests_counter(&ep, 0, "200").increment(1);
    m.backend_counter("pod-a").increment(1);
    let watch = m.watch_gauges();
    watch.ready.set(2.0);
    watch.cpu_utilization_percent.set(80.0);
    m.record_scale_events(&[loadgen::model::scale_events::ScaleEvent::default()]);
    m.cold_start_metrics().seconds.record(2.0);
    let text = m.render();
    for def in names::ALL {
        let help = format!("# HELP {} {}", def.name, def.help);
        assert!(text.contains(&help), "missing {help:?} in\n{text}");
    }
    let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(families, names::ALL.len(), "{text}");
}
