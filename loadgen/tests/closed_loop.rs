//! Closed loop against a real server: exact counts, statuses, backends, error kinds, captures.

mod common;

use std::sync::atomic::Ordering;

use common::{loadgen, out, report, run_scenario, scenario_file, start};

#[test]
fn exact_counts_statuses_and_backends() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let o = out(&dir, "r.json");
    let url = format!("{}/ping", srv.url());
    let code = loadgen(&[
        "--target",
        &url,
        "-c",
        "3",
        "-n",
        "1000",
        "-q",
        "--out",
        o.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let r = report(&o);
    assert_eq!(r.summary.requests, 1000);
    assert_eq!(r.summary.successes, 1000);
    assert_eq!(r.summary.status_codes["200"], 1000);
    assert_eq!(r.summary.backends["test-a"], 1000);
    assert_eq!(
        srv.seen.ping.load(Ordering::Relaxed),
        1000,
        "the server saw exactly the requests"
    );
    assert_eq!(r.plan.concurrency, 3);
    assert!(r.summary.latency_ms.p50 > 0.0 && r.summary.latency_ms.p50 <= r.summary.latency_ms.p99);
    assert!(
        r.summary.service_time_ms.is_none(),
        "closed loop has no separate service time"
    );
    let total: u64 = r.timeseries.iter().map(|p| p.requests).sum();
    assert_eq!(total, 1000, "the time series holds every request");
    assert_eq!(r.schema_version, 1);
    assert!(!r.histograms.latency.is_empty());
}

#[test]
fn weighted_mix_counts_every_status() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario_file(
        &dir,
        "mix.yaml",
        "name: mix\nrequests:\n  - { name: ok, path: /status/200, weight: 3 }\n  - { name: missing, path: /status/404, weight: 1 }\n  - { name: boom, path: /status/503 }\n",
    );
    let o = out(&dir, "r.json");
    let code = run_scenario(&sc, &srv.url(), &["-c", "4", "-n", "2000"], &o);
    assert_eq!(code, 0);
    let r = report(&o);
    let seen = srv.seen.status.lock().unwrap().clone();
    assert_eq!(r.summary.requests, 2000);
    for code in [200u16, 404, 503] {
        assert_eq!(
            r.summary.status_codes[&code.to_string()],
            seen[&code],
            "status {code}"
        );
    }
    assert_eq!(r.summary.successes, seen[&200]);
    assert_eq!(r.summary.failures, seen[&404] + seen[&503]);
    // Weights 3:1:1 -> about 60% ok.
    let share = seen[&200] as f64 / 2000.0;
    assert!(
        (0.5..0.7).contains(&share),
        "share of weight-3 entry: {share}"
    );
    let eps: Vec<&str> = r.endpoints.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(eps, ["ok", "missing", "boom"]);
    assert_eq!(r.endpoints[1].status_codes["404"], seen[&404]);
}

#[test]
fn captures_flow_create_get_delete() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let sc = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/crud.yaml");
    let o = out(&dir, "r.json");
    let code = loadgen(&[
        "run",
        sc,
        "--target",
        &srv.url(),
        "-c",
        "5",
        "-n",
        "300",
        "-q",
        "--out",
        o.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let r = report(&o);
    let s = &srv.seen;
    assert_eq!(
        s.created.load(Ordering::Relaxed),
        300,
        "one create per iteration"
    );
    assert_eq!(
        s.got.load(Ordering::Relaxed),
        300,
        "every get found the captured id"
    );
    assert_eq!(
        s.deleted.load(Ordering::Relaxed),
        300,
        "every delete used the captured id"
    );
    assert_eq!(s.not_found.load(Ordering::Relaxed), 0);
    assert!(s.tasks.lock().unwrap().is_empty(), "nothing left behind");
    assert_eq!(r.summary.requests, 900);
    assert_eq!(r.summary.iterations, 300);
    assert_eq!(r.summary.failures, 0);
    let by: std::collections::HashMap<_, _> =
        r.endpoints.iter().map(|e| (e.name.as_str(), e)).collect();
    assert_eq!(by["create"].status_codes["201"], 300);
    assert_eq!(by["delete"].status_codes["204"], 300);
}

#[test]
fn failed_capture_stops_the_flow_and_is_counted() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario_file(
        &dir,
        "bad-capture.yaml",
        r#"requests:
  - name: flow
    steps:
      - { name: create, method: POST, path: /tasks, json: { title: x }, capture: { id: $.nope } }
      - { name: get, path: "/tasks/{{id}}" }
"#,
    );
    let o = out(&dir, "r.json");
    let code = run_scenario(&sc, &srv.url(), &["-c", "2", "-n", "20"], &o);
    assert_eq!(code, 0);
    let r = report(&o);
    assert_eq!(r.summary.requests, 20, "the get step never ran");
    assert_eq!(r.summary.errors["capture"], 20);
    assert_eq!(r.summary.failures, 20);
    assert_eq!(
        srv.seen.got.load(Ordering::Relaxed) + srv.seen.not_found.load(Ordering::Relaxed),
        0
    );
}

#[test]
fn error_kinds_refused_and_timeout() {
    // A port with nothing listening: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let o = out(&dir, "r.json");
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(
        loadgen(&[
            "--target",
            &url,
            "-c",
            "2",
            "-n",
            "10",
            "-q",
            "--out",
            o.to_str().unwrap()
        ]),
        0
    );
    let r = report(&o);
    assert_eq!(r.summary.errors["connect_refused"], 10);
    assert_eq!(r.summary.failures, 10);

    let srv = start();
    let url = format!("{}/slow?ms=500", srv.url());
    assert_eq!(
        loadgen(&[
            "--target",
            &url,
            "-c",
            "2",
            "-n",
            "4",
            "--timeout",
            "100ms",
            "-q",
            "--out",
            o.to_str().unwrap()
        ]),
        0
    );
    let r = report(&o);
    assert_eq!(r.summary.errors["timeout"], 4);
    assert!(
        r.summary.latency_ms.max < 400.0,
        "timed out at 100ms, not 500ms"
    );
}

#[test]
fn user_phases_ramp_up() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario_file(
        &dir,
        "ramp.yaml",
        "requests: [{ path: /slow?ms=50 }]\nload:\n  phases:\n    - { duration: 2s, users: 0, ramp_to: 10 }\n    - { duration: 1s, users: 10 }\n",
    );
    let o = out(&dir, "r.json");
    assert_eq!(run_scenario(&sc, &srv.url(), &[], &o), 0);
    let r = report(&o);
    assert_eq!(r.plan.concurrency, 10);
    // Users grow 0 -> 10 over 2 s then hold 1 s: about 5 users on average in the ramp, 10 after.
    // At 20 requests/s per user: ramp ~ 2*5*20 = 200, hold ~ 10*20 = 200.
    let n = r.summary.requests as f64;
    assert!((250.0..=450.0).contains(&n), "requests {n}");
    let first = r.timeseries.first().unwrap();
    let last_full = r.timeseries.iter().find(|p| p.t_s == 2.0).unwrap();
    assert!(
        first.rps < last_full.rps,
        "rate grows with users: {} -> {}",
        first.rps,
        last_full.rps
    );
    assert!(r.timeseries.iter().any(|p| p.active_users == 10));
}

#[test]
fn http2_multiplexes_over_few_connections() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let o = out(&dir, "r.json");
    let url = format!("{}/ping", srv.url());
    let code = loadgen(&[
        "--target",
        &url,
        "--http2",
        "--connections",
        "2",
        "-c",
        "8",
        "-n",
        "400",
        "-q",
        "--out",
        o.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let r = report(&o);
    assert_eq!(r.summary.status_codes["200"], 400);
    assert_eq!(srv.seen.ping.load(Ordering::Relaxed), 400);
}

#[test]
fn sampled_traceparent_lists_the_slowest_requests() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let o = out(&dir, "r.json");
    let url = format!("{}/ping", srv.url());
    assert_eq!(
        loadgen(&[
            "--target",
            &url,
            "-c",
            "2",
            "-n",
            "100",
            "--trace-sample",
            "1",
            "-q",
            "--out",
            o.to_str().unwrap()
        ]),
        0
    );
    let r = report(&o);
    assert_eq!(r.slowest_traces.len(), loadgen::model::MAX_TRACES);
    assert!(
        r.slowest_traces
            .windows(2)
            .all(|w| w[0].latency_ms >= w[1].latency_ms),
        "slowest first"
    );
    let t = &r.slowest_traces[0];
    assert_eq!(t.trace_id.len(), 32);
    assert!(t.trace_id.chars().all(|c| c.is_ascii_hexdigit()));
    let max = r.summary.latency_ms.max;
    // The histogram keeps 3 significant figures: equal within 0.1%.
    assert!(
        (t.latency_ms - max).abs() <= max * 0.001 + 0.001,
        "slowest traced {} vs max {max}",
        t.latency_ms
    );
    assert_eq!(t.status, "200");
    // Without sampling: none.
    assert_eq!(
        loadgen(&[
            "--target",
            &url,
            "-n",
            "20",
            "-q",
            "--out",
            o.to_str().unwrap()
        ]),
        0
    );
    assert!(report(&o).slowest_traces.is_empty());
}

#[test]
fn template_error_is_counted_apart_and_never_sent() {
    // The second step reads `other`, which it would only capture from its own response: it can
    // never be built. Each iteration sends the create and records a `template` error for the get.
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario_file(
        &dir,
        "unbuildable.yaml",
        r#"requests:
  - name: flow
    steps:
      - { name: create, method: POST, path: /tasks, json: { title: x } }
      - { name: get, path: "/tasks/{{other}}", capture: { other: $.id } }
"#,
    );
    let o = out(&dir, "r.json");
    let code = run_scenario(&sc, &srv.url(), &["-c", "2", "-n", "10"], &o);
    assert_eq!(code, 0);
    let r = report(&o);
    // Only the creates went on the wire; the unbuildable gets are not requests.
    assert_eq!(srv.seen.created.load(Ordering::Relaxed), 10);
    assert_eq!(
        srv.seen.got.load(Ordering::Relaxed) + srv.seen.not_found.load(Ordering::Relaxed),
        0
    );
    assert_eq!(r.summary.requests, 10);
    assert_eq!(r.summary.failures, 0);
    assert_eq!(r.summary.iterations, 10);
    assert_eq!(r.summary.errors["template"], 10);
    // duration_s is rounded to the millisecond; on a run of a few milliseconds that rounding
    // alone moves rps x duration_s by up to rps x 0.5 ms.
    assert!(
        (r.summary.rps * r.summary.duration_s - 10.0).abs() < 0.5 + r.summary.rps * 0.0005,
        "rps {} over {} s",
        r.summary.rps,
        r.summary.duration_s
    );
    let by: std::collections::HashMap<_, _> =
        r.endpoints.iter().map(|e| (e.name.as_str(), e)).collect();
    assert_eq!(by["get"].requests, 0);
    assert_eq!(by["get"].rps, 0.0);
    assert_eq!(by["get"].errors["template"], 10);
    assert_eq!(
        by["get"].latency_ms.max, 0.0,
        "no latency for what was never sent"
    );
    // The histograms hold exactly the sent requests.
    let lat = loadgen::model::hist::decode("latency", &r.histograms.latency).unwrap();
    assert_eq!(lat.len(), 10);
    let get = loadgen::model::hist::decode("get", &r.histograms.endpoints["get"].latency).unwrap();
    assert_eq!(get.len(), 0);
    // The summary says so.
    let text = loadgen::report::summary::render(&r);
    assert!(text.contains("template=10"), "{text}");
    assert!(text.contains("not sent: 10"), "{text}");
}

#[test]
fn every_time_point_counts_its_requests_per_backend() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario_file(
        &dir,
        "two.yaml",
        "name: two\nrequests:\n  - { name: a, path: /ping }\n  - { name: b, path: /fast }\nload: { users: 2, duration: 2500ms }\n",
    );
    let o = out(&dir, "r.json");
    assert_eq!(run_scenario(&sc, &srv.url(), &[], &o), 0);
    let r = report(&o);
    assert!(r.timeseries.len() >= 2, "{:?}", r.timeseries);
    for p in &r.timeseries {
        assert_eq!(
            p.backends.values().sum::<u64>(),
            p.requests,
            "every response named its backend: {p:?}"
        );
    }
    for name in ["test-a", "test-b"] {
        let per_point: u64 = r
            .timeseries
            .iter()
            .map(|p| p.backends.get(name).copied().unwrap_or(0))
            .sum();
        assert_eq!(per_point, r.summary.backends[name], "{name}");
    }
    // The JSON shape other tools read: `timeseries[i].backends: {name: count}`.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&o).unwrap()).unwrap();
    assert!(
        json["timeseries"][0]["backends"]["test-a"].is_u64(),
        "{json}"
    );
}
