//! `loadgen capacity` end to end: the real binary against a target whose capacity is known.
//!
//! The target answers 200 while a token bucket (400 per second, 40 deep) has a token and 500
//! after, so at an offered rate r above 400/s about 400/r of the requests succeed: with the
//! objective `success_rate>99%` the capacity is 400/s (404/s exactly). The search uses short steps
//! (1.5 s, 0.5 s of it settling) so it takes about 15 s; the band is generous (15 % below, 5 %
//! above) because this is a functional check on a shared machine, not a measurement.

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use common::{bin, out, report};
use serde_json::Value;

/// Tokens per second and bucket depth of the target.
const RATE: f64 = 400.0;
const BURST: f64 = 40.0;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Starts the token-bucket target (`/` answers 200 or 500; `/down` always 500) on 127.0.0.1:0.
fn start_bucket() -> String {
    let bucket = Arc::new(Mutex::new(Bucket {
        tokens: BURST,
        at: Instant::now(),
    }));
    let app = Router::new()
        .route(
            "/",
            get(|State(b): State<Arc<Mutex<Bucket>>>| async move {
                let mut b = b.lock().unwrap();
                let now = Instant::now();
                b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * RATE).min(BURST);
                b.at = now;
                if b.tokens >= 1.0 {
                    b.tokens -= 1.0;
                    StatusCode::OK
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }),
        )
        .route("/down", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .with_state(bucket);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    format!(
        "http://{}",
        rx.recv_timeout(Duration::from_secs(10)).unwrap()
    )
}

fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(bin()).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const SHORT_STEPS: &[&str] = &[
    "--step-duration",
    "1500ms",
    "--step-warmup",
    "500ms",
    "--threads",
    "1",
];

/// `loadgen capacity --target URL --out PATH` with short steps and `extra`.
fn capacity(url: &str, path: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["capacity", "--target", url, "--out", path.to_str().unwrap()];
    args.extend_from_slice(SHORT_STEPS);
    args.extend_from_slice(extra);
    run(&args)
}

fn json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn capacity_lands_where_the_target_starts_failing_and_the_report_says_how() {
    let url = start_bucket();
    let dir = tempfile::tempdir().unwrap();
    let path = out(&dir, "cap.json");
    let started = Instant::now();
    let (code, stdout, stderr) = capacity(
        &url,
        &path,
        &[
            "--threshold",
            "success_rate>99%",
            "--threshold",
            "p99<500ms",
            "--start-rate",
            "50",
        ],
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));

    let v = json(&path);
    let c = &v["capacity"];
    let cap = c["capacity_rps"].as_f64().expect("a capacity");
    assert!(
        (RATE * 0.85..=RATE * 1.05).contains(&cap),
        "capacity {cap}/s for a target failing past {RATE}/s\n{stdout}\n{stderr}"
    );
    assert_eq!(c["stop"], "converged");
    assert_eq!(c["bounded"], false);
    let upper = c["upper_rps"].as_f64().unwrap();
    assert!((upper - cap) / cap <= 0.05, "bracket {cap}..{upper}");
    assert_eq!(
        c["objectives"],
        serde_json::json!(["success_rate>99%", "p99<500ms"])
    );
    assert_eq!(c["settings"]["precision"], 0.05);
    assert_eq!(c["settings"]["step_duration"], 1.5);
    assert_eq!(
        (c["replicas"].as_i64(), &c["replicas_observed"]),
        (Some(1), &Value::Bool(false))
    );

    // Every step tried, rising by x2 from the start rate, then narrowing.
    let steps = c["steps"].as_array().unwrap();
    let rates: Vec<f64> = steps
        .iter()
        .map(|s| s["target_rps"].as_f64().unwrap())
        .collect();
    assert_eq!(&rates[..4], &[50.0, 100.0, 200.0, 400.0], "{rates:?}");
    for s in steps {
        for key in [
            "achieved_rps",
            "requests",
            "success_rate",
            "latency_ms",
            "objectives",
            "verdict",
        ] {
            assert!(s.get(key).is_some(), "step without {key}: {s}");
        }
        assert!((s["judged_s"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    }
    let failed = steps
        .iter()
        .find(|s| s["verdict"]["kind"] == "fail")
        .expect("a failing step");
    assert!(
        failed["verdict"]["broken"][0]
            .as_str()
            .unwrap()
            .starts_with("success_rate>99% (actual "),
        "{failed}"
    );

    // The rest is the run report of the capacity step: the judged phase, objectives passed.
    let r = report(&path);
    let phases: Vec<&str> = r.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(phases, ["settle", "measure"]);
    assert_eq!(r.phases[1].target_from, cap);
    assert!(r.thresholds.iter().all(|t| t.passed), "{:?}", r.thresholds);

    // The terminal: a row per step and the capacity line.
    assert!(stdout.contains("achieved"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "capacity: {}",
            loadgen::report::capacity::rate(cap)
        )),
        "{stdout}"
    );
    assert!(stdout.contains("generator-bound") || stdout.contains("fail"));

    // `compare` of two capacity reports gives the headline; `merge` and `report` still read it.
    let mut hpa = v.clone();
    hpa["capacity"]["capacity_rps"] = (cap * 4.0).into();
    hpa["capacity"]["replicas"] = 5.into();
    hpa["capacity"]["replicas_observed"] = true.into();
    hpa["capacity"]["capacity_per_replica_rps"] = (cap * 4.0 / 5.0).into();
    let hpa_path = out(&dir, "k8s-hpa.json");
    std::fs::write(&hpa_path, serde_json::to_string(&hpa).unwrap()).unwrap();
    let (code, stdout, stderr) = run(&[
        "compare",
        path.to_str().unwrap(),
        hpa_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("k8s-hpa.json over cap.json: capacity x4.00, per replica x0.80"),
        "{stdout}"
    );
    assert!(stdout.contains("on 5 replica(s)"), "{stdout}");
    assert!(stdout.contains("(assumed: no --watch)"), "{stdout}");
    let merged = out(&dir, "merged.json");
    let (code, _, stderr) = run(&[
        "merge",
        path.to_str().unwrap(),
        path.to_str().unwrap(),
        "-q",
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report(&merged).summary.requests, 2 * r.summary.requests);
    let html = out(&dir, "cap.html");
    let (code, _, stderr) = run(&[
        "report",
        path.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    // The page shows the search, not only the step it chose: a row per step, each verdict.
    let page = std::fs::read_to_string(&html).unwrap();
    let table = page
        .split("<table id=\"capacity-steps\">")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .expect("a capacity-steps table");
    assert_eq!(table.matches("<tr class=").count(), steps.len(), "{table}");
    assert!(table.contains("<tr class=\"fail\">"), "{table}");
    assert!(
        page.contains(&format!(
            "capacity: {}",
            loadgen::report::capacity::rate(cap)
        )),
        "no capacity line in the page"
    );
}

#[test]
fn a_first_step_that_fails_reports_the_capacity_below_the_start_rate() {
    let url = format!("{}/down", start_bucket());
    let dir = tempfile::tempdir().unwrap();
    let path = out(&dir, "cap.json");
    let (code, stdout, stderr) = capacity(
        &url,
        &path,
        &["--threshold", "success_rate>99%", "--start-rate", "20"],
    );
    assert_eq!(code, 99, "no rate met the objectives\n{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "capacity: below 20/s (the first step already broke success_rate>99% (actual 0))"
        ),
        "{stdout}"
    );
    let v = json(&path);
    assert_eq!(v["capacity"]["capacity_rps"], Value::Null);
    assert_eq!(v["capacity"]["stop"], "below-start-rate");
    assert_eq!(v["capacity"]["steps"].as_array().unwrap().len(), 1);
    assert!(
        v["capacity"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("below the start rate")
    );
}

#[test]
fn a_max_duration_bounds_the_search_and_the_report_says_so() {
    let url = start_bucket();
    let dir = tempfile::tempdir().unwrap();
    let path = out(&dir, "cap.json");
    let (code, _, stderr) = capacity(
        &url,
        &path,
        &[
            "--threshold",
            "success_rate>99%",
            "--start-rate",
            "20",
            "--max-duration",
            "4s",
            "-q",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let c = &json(&path)["capacity"];
    assert_eq!(c["stop"], "max-duration");
    assert_eq!(c["bounded"], true);
    // 1.5 s steps: two fit in 4 s (a third would end after it), both passing well below 400/s.
    assert_eq!(c["steps"].as_array().unwrap().len(), 2);
    assert_eq!(c["capacity_rps"], 40.0);
    assert!(c["notes"][0].as_str().unwrap().contains("--max-duration"));
}

#[test]
fn bad_capacity_input_exits_2_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "capacity needs at least one objective"),
        (
            &["--threshold", "p99<1s", "--precision", "0"],
            "--precision 0 must be above 0",
        ),
        (
            &["--threshold", "p99<1s", "--precision", "150%"],
            "invalid value '150%' for '--precision",
        ),
        (
            &["--threshold", "p99<1s", "--max-rate", "10"],
            "--max-rate 10 is below --start-rate 50",
        ),
        (
            &["--threshold", "p99<1s", "--rate", "10"],
            "capacity sets the load itself",
        ),
        (
            &["--threshold", "p99<1s", "--step-warmup", "20s"],
            "--step-warmup 20s must be shorter than --step-duration 15s",
        ),
        (&["--threshold", "p99<<1s"], "invalid threshold"),
    ];
    for (extra, message) in cases {
        let mut args = vec!["capacity", "--target", "http://127.0.0.1:9/"];
        args.extend_from_slice(extra);
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn a_scenario_brings_its_request_mix_and_its_thresholds_as_objectives() {
    let url = start_bucket();
    let dir = tempfile::tempdir().unwrap();
    let scenario = common::scenario_file(
        &dir,
        "mix.yaml",
        "name: mix\n\
         load: { rate: 5, duration: 1h, max_in_flight: 20 }\n\
         requests:\n  - { name: root, path: / }\n\
         thresholds: [ 'success_rate>99%' ]\n",
    );
    let path = out(&dir, "cap.json");
    let mut args = vec![
        "capacity",
        scenario.to_str().unwrap(),
        "--target",
        &url,
        "--start-rate",
        "40",
        "--max-rate",
        "80",
        "-q",
        "--out",
        path.to_str().unwrap(),
    ];
    args.extend_from_slice(SHORT_STEPS);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    let v = json(&path);
    let c = &v["capacity"];
    assert_eq!(c["objectives"], serde_json::json!(["success_rate>99%"]));
    // The search replaced the scenario's load block: 40/s, then 80/s (the --max-rate), both
    // passing; the scenario's own 5/s for an hour never ran.
    let rates: Vec<f64> = c["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["target_rps"].as_f64().unwrap())
        .collect();
    assert_eq!(rates, [40.0, 80.0]);
    assert_eq!(
        (c["stop"].as_str(), c["capacity_rps"].as_f64()),
        (Some("max-rate"), Some(80.0))
    );
    assert_eq!(v["scenario"], "mix");
    assert_eq!(v["endpoints"][0]["name"], "root");
    assert_eq!(
        v["plan"]["concurrency"], 20,
        "the scenario's max_in_flight is kept"
    );

    // Request flags describe the quick form's one request: refused beside a scenario.
    let (code, _, stderr) = run(&[
        "capacity",
        scenario.to_str().unwrap(),
        "--target",
        &url,
        "--body",
        "{}",
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("a scenario has its own requests"),
        "{stderr}"
    );
}
