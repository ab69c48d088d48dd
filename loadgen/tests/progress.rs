//! Progress when nobody is at a terminal: plain lines on a pipe, while the run goes on.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bin, out, scenario_file, start};

#[test]
fn progress_lines_arrive_on_a_pipe_while_the_run_goes_on() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario_file(
        &dir,
        "s.yaml",
        "name: steps\nload:\n  phases:\n    - { name: slow, duration: 2s, rate: 20 }\n    \
         - { name: fast, duration: 3s, rate: 40 }\nrequests:\n  - { path: /ping }\n",
    );
    let o = out(&dir, "r.json");
    let started = Instant::now();
    let mut child = Command::new(bin())
        .args(["run", sc.to_str().unwrap(), "--target", &srv.url()])
        .args(["--progress-interval", "1s", "--out", o.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = Vec::new();
    for l in stderr.lines() {
        let l = l.unwrap();
        if l.starts_with("progress ") {
            // The line is read while the run lasts (5 s planned), not flushed at its end.
            let running = child.try_wait().unwrap().is_none();
            lines.push((started.elapsed(), running, l));
        }
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(lines.len() >= 3, "too few progress lines: {lines:?}");
    let (at, running, first) = &lines[0];
    assert!(*running && *at < Duration::from_secs(4), "{lines:?}");
    assert!(first.contains("/5s phase 1/2 slow rate 20/s"), "{first}");
    let last = &lines.last().unwrap().2;
    assert!(last.contains("phase 2/2 fast rate 40/s"), "{last}");
    for (_, _, l) in &lines {
        for part in [" requests ", " throughput ", "/s errors 0 p99 "] {
            assert!(l.contains(part), "{l}");
        }
    }
}

#[test]
fn quiet_prints_no_progress_lines() {
    let srv = start();
    let url = format!("{}/ping", srv.url());
    let o = Command::new(bin())
        .args(["--target", &url, "--rate", "20", "--duration", "2s"])
        .args(["--progress-interval", "500ms", "-q"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("progress "), "{err}");
}

#[test]
fn a_zero_progress_interval_is_a_usage_error() {
    let o = Command::new(bin())
        .args([
            "--target",
            "http://127.0.0.1:9/",
            "--progress-interval",
            "0s",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 100ms"));
}
