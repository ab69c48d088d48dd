//! The binary: exit codes for thresholds, bad input, Ctrl-C; `--out -`; merge and compare.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{bin, out, report, start};

fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(bin()).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn thresholds_set_the_exit_code() {
    let srv = start();
    let url = format!("{}/ping", srv.url());
    let (code, stdout, _) = run(&[
        "--target",
        &url,
        "-n",
        "200",
        "-c",
        "2",
        "--threshold",
        "p99<5s",
        "--threshold",
        "success_rate>99.5%",
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("passed"));
    let (code, _, stderr) = run(&[
        "--target",
        &url,
        "-n",
        "200",
        "-c",
        "2",
        "-q",
        "--threshold",
        "p99<5s",
        "--threshold",
        "rps>100000000",
    ]);
    assert_eq!(code, 99);
    assert!(
        stderr.contains("threshold failed: rps>100000000"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("p99<5s"),
        "only the failed one is named: {stderr}"
    );
    let bad = format!("{}/status/500", srv.url());
    let (code, _, stderr) = run(&[
        "--target",
        &bad,
        "-n",
        "50",
        "-q",
        "--threshold",
        "success_rate>=99%",
    ]);
    assert_eq!(code, 99);
    assert!(stderr.contains("success_rate>=99%"), "{stderr}");
}

#[test]
fn bad_input_is_a_clear_usage_error() {
    let (code, _, stderr) = run(&["--target", "127.0.0.1:8080", "-n", "1"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no scheme"), "{stderr}");
    let (code, _, stderr) = run(&["--target", "http://127.0.0.1:1/", "--threshold", "p98<1ms"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown metric"), "{stderr}");
    let (code, _, stderr) = run(&["--target", "http://127.0.0.1:1/", "--duration", "soon"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid duration"), "{stderr}");
    let (code, _, stderr) = run(&[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--target"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let sc = out(&dir, "bad.yaml");
    std::fs::write(&sc, "requests:\n  - path: /ping\n    methd: GET\n").unwrap();
    let (code, _, stderr) = run(&[
        "run",
        sc.to_str().unwrap(),
        "--target",
        "http://127.0.0.1:1",
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains(&format!("{}:3:", sc.display())),
        "file:line:column: {stderr}"
    );
    assert!(stderr.contains("methd"), "{stderr}");
    let (code, _, stderr) = run(&["run", "/nonexistent.yaml"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read scenario"), "{stderr}");
}

#[test]
fn out_dash_writes_json_to_stdout() {
    let srv = start();
    let url = format!("{}/ping", srv.url());
    let (code, stdout, stderr) = run(&["--target", &url, "-n", "20", "-c", "1", "--out", "-"]);
    assert_eq!(code, 0);
    let r = loadgen::model::RunReport::from_json("stdout", &stdout)
        .expect("stdout is exactly the JSON report");
    assert_eq!(r.summary.requests, 20);
    assert!(
        stderr.contains("requests 20"),
        "the summary went to stderr: {stderr}"
    );
}

#[test]
fn ctrl_c_writes_a_partial_report_and_exits_130() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let o = out(&dir, "r.json");
    let url = format!("{}/ping", srv.url());
    let mut child = Command::new(bin())
        .args([
            "--target",
            &url,
            "--rate",
            "100",
            "--duration",
            "60s",
            "-q",
            "--out",
            o.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once requests arrive, the Ctrl-C handler is in place (it is installed before the first
    // is sent); a fixed sleep instead would race the process's start on a busy machine.
    let pings = || srv.seen.ping.load(Ordering::Relaxed);
    let waited = Instant::now();
    while pings() < 100 {
        assert!(child.try_wait().unwrap().is_none(), "loadgen ended early");
        assert!(waited.elapsed() < Duration::from_secs(30), "no requests");
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent_before = pings();
    let t0 = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "loadgen did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stopped_in = t0.elapsed();
    assert_eq!(status.code(), Some(130));
    let r = report(&o);
    assert!(r.interrupted);
    assert_eq!(
        r.summary.requests,
        pings(),
        "every request sent is in the report"
    );
    // What was sent before the signal, plus at most what 100/s adds while it stops.
    let stopping = (stopped_in.as_secs_f64() * 100.0).ceil() as u64 + 20;
    assert!(
        (sent_before..=sent_before + stopping).contains(&r.summary.requests),
        "{sent_before} sent before the signal, stopped in {stopped_in:?}: {}",
        r.summary.requests
    );
    assert_eq!(r.summary.dropped, 0, "an interrupt is not a drop");
    assert!(r.summary.duration_s < 30.0, "far short of the 60 s asked");
}

#[test]
fn merge_equals_the_union_and_compare_prints_ratios() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, m) = (
        out(&dir, "a.json"),
        out(&dir, "b.json"),
        out(&dir, "m.json"),
    );
    let fast = format!("{}/ping", srv.url());
    let slow = format!("{}/slow?ms=20", srv.url());
    assert_eq!(
        run(&[
            "--target",
            &fast,
            "-n",
            "300",
            "-c",
            "3",
            "-q",
            "--out",
            a.to_str().unwrap()
        ])
        .0,
        0
    );
    assert_eq!(
        run(&[
            "--target",
            &slow,
            "-n",
            "100",
            "-c",
            "5",
            "-q",
            "--out",
            b.to_str().unwrap()
        ])
        .0,
        0
    );
    let (code, _, stderr) = run(&[
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        m.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (ra, rb, rm) = (report(&a), report(&b), report(&m));
    assert_eq!(rm.workers, 2);
    assert_eq!(rm.summary.requests, 400);
    assert_eq!(
        rm.summary.successes,
        ra.summary.successes + rb.summary.successes
    );
    assert_eq!(rm.summary.status_codes["200"], 400);
    // Percentiles of the merge are those of the union of the raw distributions.
    use loadgen::model::hist;
    let mut union = hist::decode("a", &ra.histograms.latency).unwrap();
    union
        .add(hist::decode("b", &rb.histograms.latency).unwrap())
        .unwrap();
    assert_eq!(rm.summary.latency_ms, hist::stats(&union));
    assert_eq!(hist::decode("m", &rm.histograms.latency).unwrap(), union);
    // 25% of the requests took >= 20 ms: p90 comes from the slow run, p50 from the fast one.
    assert!(rm.summary.latency_ms.p90 >= 20.0);
    assert!(rm.summary.latency_ms.p50 < 20.0);
    // Merging is associative: merge(merge(a, b), a) == merge(a, b, a).
    let (m2, m3) = (out(&dir, "m2.json"), out(&dir, "m3.json"));
    assert_eq!(
        run(&[
            "merge",
            m.to_str().unwrap(),
            a.to_str().unwrap(),
            "--out",
            m2.to_str().unwrap(),
            "-q"
        ])
        .0,
        0
    );
    assert_eq!(
        run(&[
            "merge",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            a.to_str().unwrap(),
            "--out",
            m3.to_str().unwrap(),
            "-q"
        ])
        .0,
        0
    );
    let (r2, r3) = (report(&m2), report(&m3));
    assert_eq!(r2.summary.latency_ms, r3.summary.latency_ms);
    assert_eq!(r2.summary.requests, 700);
    // Thresholds on merge.
    let (code, _, stderr) = run(&[
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        m.to_str().unwrap(),
        "-q",
        "--threshold",
        "p99<1ms",
    ]);
    assert_eq!(code, 99, "{stderr}");

    let (code, stdout, _) = run(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("a.json") && stdout.contains("b.json"),
        "{stdout}"
    );
    assert!(
        stdout.contains("x1.00"),
        "the baseline row compares to itself: {stdout}"
    );
    let (code, _, stderr) = run(&["compare", a.to_str().unwrap(), "/nonexistent.json"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent.json"), "{stderr}");
}

#[test]
fn absurd_load_values_are_usage_errors_not_panics() {
    // 5 requests at 1e-300/s would take longer than any Duration: a clear error, exit 2.
    let (code, _, stderr) = run(&[
        "--target",
        "http://127.0.0.1:1/",
        "--rate",
        "1e-300",
        "-n",
        "5",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("10-year limit"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let (code, _, stderr) = run(&[
        "--target",
        "http://127.0.0.1:1/",
        "-c",
        "1",
        "--duration",
        "500000years",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("duration"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // Closed-loop user phases that last no time at all.
        (
            "zero-users.yaml",
            "requests: [{ path: / }]\nload:\n  phases:\n    - { duration: 0s, users: 5 }\n    - { duration: 0s, users: 10 }\n",
            "no duration",
        ),
        // Open-loop phases whose sum overflows.
        (
            "long-rate.yaml",
            "requests: [{ path: / }]\nload:\n  phases:\n    - { duration: 400000000000years, rate: 5 }\n    - { duration: 400000000000years, rate: 5 }\n",
            "10-year limit",
        ),
        (
            "bad-ramp.yaml",
            "requests: [{ path: / }]\nload: { rate: 10, ramp_to: 1e400, duration: 10s }\n",
            "ramp_to",
        ),
    ];
    for (name, text, msg) in cases {
        let sc = out(&dir, name);
        std::fs::write(&sc, text).unwrap();
        let (code, _, stderr) = run(&[
            "run",
            sc.to_str().unwrap(),
            "--target",
            "http://127.0.0.1:1",
        ]);
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(stderr.contains(msg), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

#[test]
fn closed_stdout_still_writes_the_report_and_does_not_panic() {
    // `loadgen ... --out r.json | head -1`: the reader goes away before the summary is printed.
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let o = out(&dir, "r.json");
    let url = format!("{}/ping", srv.url());
    let mut child = Command::new(bin())
        .args([
            "--target",
            &url,
            "-n",
            "50",
            "-c",
            "2",
            "--out",
            o.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let res = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(report(&o).summary.requests, 50);

    // `--out - | head -1`: the JSON itself goes to the closed pipe; still no panic.
    let mut child = Command::new(bin())
        .args(["--target", &url, "-n", "20", "-c", "2", "--out", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let res = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn merge_of_crafted_reports_is_a_usage_error() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let a = out(&dir, "a.json");
    let url = format!("{}/ping", srv.url());
    let (code, _, _) = run(&[
        "--target",
        &url,
        "-n",
        "10",
        "-q",
        "--out",
        a.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let real: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    let crafted = |name: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = real.clone();
        f(&mut v);
        let p = out(&dir, name);
        std::fs::write(&p, v.to_string()).unwrap();
        p
    };
    let huge = crafted("huge.json", &|v| v["summary"]["requests"] = u64::MAX.into());
    let late = crafted("late.json", &|v| v["started_at_unix_ms"] = u64::MAX.into());
    let long = crafted("long.json", &|v| v["summary"]["duration_s"] = 1e300.into());
    for (bad, msg) in [
        (&huge, "requests"),
        (&late, "started_at_unix_ms"),
        (&long, "duration_s"),
    ] {
        let m = out(&dir, "m.json");
        let (code, _, stderr) = run(&[
            "merge",
            a.to_str().unwrap(),
            bad.to_str().unwrap(),
            "-q",
            "--out",
            m.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{msg}: {stderr}");
        assert!(stderr.contains(msg), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn compare_fits_the_width_it_is_given_with_metrics_as_rows_when_runs_do_not_fit() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let reports: Vec<String> = ["docker.json", "k8s-single.json", "k8s-hpa.json"]
        .iter()
        .map(|name| {
            let o = out(&dir, name);
            let target = format!("{}/ping", srv.url());
            let args = ["--target", &target, "-n", "50", "-c", "2", "-q", "--out"];
            let (code, _, stderr) = run(&[&args[..], &[o.to_str().unwrap()]].concat());
            assert_eq!(code, 0, "{stderr}");
            o.to_str().unwrap().to_string()
        })
        .collect();
    let compare = |columns: Option<&str>| {
        let mut c = Command::new(bin());
        c.arg("compare").args(&reports).env_remove("COLUMNS");
        if let Some(columns) = columns {
            c.env("COLUMNS", columns);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let width = |t: &str| t.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let first_cell = |l: &str| {
        l.trim_start_matches('│')
            .split('┆')
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    };
    // Not a terminal, no width: a row per run, the scale columns no run fills left out.
    let wide = compare(None);
    assert!(width(&wide) > 120, "{wide}");
    assert!(
        wide.contains("vs first") && !wide.contains("max replicas"),
        "{wide}"
    );
    assert!(
        wide.lines().any(|l| first_cell(l) == "k8s-hpa.json"),
        "{wide}"
    );
    // A 120-column terminal (COLUMNS, as shells set it): metrics as rows, runs as columns.
    let narrow = compare(Some("120"));
    assert!(width(&narrow) <= 120, "{narrow}");
    let rows: Vec<String> = narrow.lines().map(first_cell).collect();
    for metric in [
        "deployment",
        "requests",
        "duration",
        "rps",
        "p50",
        "p99",
        "success",
    ] {
        assert!(
            rows.iter().any(|r| r == metric),
            "no {metric} row: {narrow}"
        );
    }
    let header = narrow.lines().nth(1).unwrap();
    assert!(
        header.contains("docker.json") && header.contains("k8s-hpa.json"),
        "{narrow}"
    );
    // Narrower still: as many tables as it takes, each run once, every line within the width.
    let tight = compare(Some("50"));
    assert!(width(&tight) <= 50, "{tight}");
    let runs_part = tight.split("phase by phase").next().unwrap();
    for r in ["docker.json", "k8s-single.json", "k8s-hpa.json"] {
        assert_eq!(runs_part.matches(r).count(), 1, "{tight}");
    }
    assert!(
        tight.contains("phase by phase"),
        "the phase table follows, fitted too"
    );
    // --width wins over COLUMNS; an absurd width is a usage error.
    let (code, stdout, _) = run(&[
        &["compare", "--width", "400"],
        &reports[..].iter().map(String::as_str).collect::<Vec<_>>()[..],
    ]
    .concat());
    assert_eq!((code, stdout.contains("vs first")), (0, true), "{stdout}");
    let (code, _, stderr) = run(&["compare", "--width", "3", &reports[0]]);
    assert_eq!(code, 2, "{stderr}");
}
