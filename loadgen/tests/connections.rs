//! Connection lifetime against a raw HTTP/1.1 server on 127.0.0.1 that counts the connections it
//! accepts: max age, max requests, no keep-alive, server-side closes, the JSON and summary, and the
//! `--start-at` barrier.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{bin, loadgen, out, report, run_scenario, scenario_file};

/// What the server saw: connections accepted and the requests each one carried.
#[derive(Default)]
struct Seen {
    accepted: AtomicU64,
    per_conn: Mutex<Vec<u64>>,
    asked_close: AtomicU64,
}

impl Seen {
    fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
    fn requests(&self) -> u64 {
        self.per_conn.lock().unwrap().iter().sum()
    }
}

/// Reads one request head; `Some(asked_close)`, or None at EOF.
fn read_head(r: &mut BufReader<TcpStream>) -> Option<bool> {
    let mut line = String::new();
    let mut any = false;
    let mut close = false;
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) if line == "\r\n" => return any.then_some(close),
            Ok(_) => {
                any = true;
                let l = line.to_ascii_lowercase();
                close |= l.starts_with("connection:") && l.contains("close");
            }
        }
    }
}

/// A keep-alive HTTP/1.1 server. Each connection is backend `conn-N` (in `x-served-by`); with
/// `close_every`, the server itself closes a connection after that many responses
/// (`Connection: close`), as the workload's `--max-connection-age` will.
fn serve(close_every: Option<u64>) -> (String, Arc<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let s = Arc::clone(&seen);
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let s = Arc::clone(&s);
            let n = s.accepted.fetch_add(1, Ordering::Relaxed);
            let slot = {
                let mut v = s.per_conn.lock().unwrap();
                v.push(0);
                v.len() - 1
            };
            std::thread::spawn(move || {
                let mut r = BufReader::new(c);
                let mut served = 0u64;
                while let Some(asked_close) = read_head(&mut r) {
                    served += 1;
                    s.per_conn.lock().unwrap()[slot] += 1;
                    if asked_close {
                        s.asked_close.fetch_add(1, Ordering::Relaxed);
                    }
                    let close = asked_close || close_every.is_some_and(|k| served >= k);
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-served-by: conn-{n}\r\n{}\r\nok",
                        if close { "connection: close\r\n" } else { "" }
                    );
                    if r.get_mut().write_all(resp.as_bytes()).is_err() || close {
                        break;
                    }
                }
            });
        }
    });
    (url, seen)
}

fn quick(url: &str, o: &std::path::Path, extra: &[&str]) -> u8 {
    let mut args = vec!["--target", url, "-q", "--out", o.to_str().unwrap()];
    args.extend_from_slice(extra);
    loadgen(&args)
}

/// A quick-form run that must succeed without a single failed request; its report.
fn run_clean(url: &str, extra: &[&str]) -> loadgen::model::RunReport {
    let dir = tempfile::tempdir().unwrap();
    let o = out(&dir, "r.json");
    assert_eq!(quick(url, &o, extra), 0);
    let r = report(&o);
    assert_eq!(r.summary.failures, 0, "{:?}", r.summary.errors);
    assert!(r.summary.errors.is_empty(), "{:?}", r.summary.errors);
    r
}

#[test]
fn max_age_recycles_each_workers_connection_without_errors() {
    let (url, seen) = serve(None);
    let r = run_clean(
        &url,
        &["-c", "4", "-d", "3s", "--connection-max-age", "500ms"],
    );
    let c = &r.connections;
    // 4 workers × 3 s / (450..500 ms) ≈ 24..27; generous bounds for a busy machine.
    assert!(
        (12..=60).contains(&c.opened),
        "opened {} connections: {c:?}",
        c.opened
    );
    assert_eq!(c.opened, seen.accepted(), "the server saw every one");
    assert_eq!(c.reconnects, c.opened - 4, "all but each worker's first");
    assert_eq!(c.closed.get("max_age"), Some(&c.reconnects), "{c:?}");
    assert_eq!(c.max_age_s, Some(0.5));
    assert_eq!(seen.requests(), r.summary.requests);
    assert!(c.connect_ms.max > 0.0 && c.connect_ms.p50 <= c.connect_ms.max);
    let text = loadgen::report::summary::render(&r);
    assert!(
        text.contains("connections: max age 500ms (jitter 10%); opened"),
        "{text}"
    );
}

#[test]
fn open_loop_honours_the_max_age_too() {
    let (url, seen) = serve(None);
    let r = run_clean(
        &url,
        &["--rate", "100", "-d", "2s", "--connection-max-age", "300ms"],
    );
    let c = &r.connections;
    // At least one worker sends all along: 2 s / 300 ms ≈ 6 connections for it alone.
    assert!(c.reconnects >= 3, "{c:?}");
    assert_eq!(c.closed.get("max_age"), Some(&c.reconnects), "{c:?}");
    assert_eq!(c.opened, seen.accepted());
}

#[test]
fn max_requests_recycles_exactly_every_n_requests() {
    let (url, seen) = serve(None);
    let r = run_clean(
        &url,
        &[
            "-c",
            "1",
            "-n",
            "95",
            "--connection-max-requests",
            "10",
            "--connection-max-age",
            "forever",
        ],
    );
    let mut per_conn = seen.per_conn.lock().unwrap().clone();
    per_conn.sort_unstable();
    assert_eq!(per_conn, [5, 10, 10, 10, 10, 10, 10, 10, 10, 10]);
    assert_eq!(r.connections.opened, 10);
    assert_eq!(r.connections.closed.get("max_requests"), Some(&9));
    assert_eq!(r.connections.max_requests, Some(10));
    assert_eq!(r.connections.max_age_s, None);
}

#[test]
fn no_keepalive_opens_one_connection_per_request_and_says_so() {
    let (url, seen) = serve(None);
    let r = run_clean(&url, &["-c", "2", "-n", "50", "--no-keepalive"]);
    assert_eq!(seen.accepted(), 50);
    assert_eq!(
        seen.asked_close.load(Ordering::Relaxed),
        50,
        "Connection: close sent"
    );
    let c = &r.connections;
    assert_eq!(
        (c.opened, c.keepalive, c.max_requests),
        (50, false, Some(1))
    );
    assert_eq!(c.closed.get("no_keepalive"), Some(&50));
    assert_eq!(
        r.summary.backends.len(),
        50,
        "one backend name per connection"
    );
}

#[test]
fn server_closing_connections_is_a_reconnect_not_an_error() {
    let (url, seen) = serve(Some(5));
    let r = run_clean(
        &url,
        &["-c", "1", "-n", "50", "--connection-max-age", "forever"],
    );
    assert_eq!(r.summary.retries, 0, "nothing had to be resent");
    assert_eq!(seen.accepted(), 10);
    let c = &r.connections;
    assert_eq!((c.opened, c.reconnects), (10, 9));
    assert_eq!(c.closed.get("server"), Some(&10), "{c:?}");
}

#[test]
fn forever_keeps_one_connection_per_worker_and_the_json_says_which_lifetime() {
    let (url, seen) = serve(None);
    let dir = tempfile::tempdir().unwrap();
    let o = out(&dir, "r.json");
    let code = quick(
        &url,
        &o,
        &["-c", "3", "-d", "1500ms", "--connection-max-age", "forever"],
    );
    assert_eq!(code, 0);
    assert_eq!(seen.accepted(), 3);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&o).unwrap()).unwrap();
    let c = &json["connections"];
    assert!(c["max_age_s"].is_null(), "{c}");
    assert_eq!(c["keepalive"], true);
    assert_eq!(c["lifetime"], "max age forever");
    assert_eq!(c["opened"], 3);
    assert_eq!(c["reconnects"], 0);
}

#[test]
fn default_lifetime_is_ten_seconds_with_jitter() {
    let (url, seen) = serve(None);
    // One user: with more, whoever starts first may claim all the requests, so how many
    // connections open would depend on scheduling, not on the lifetime.
    let c = run_clean(&url, &["-c", "1", "-n", "20"]).connections;
    assert_eq!(c.max_age_s, Some(10.0));
    assert_eq!(c.max_age_jitter, 0.1);
    assert!(c.keepalive);
    assert_eq!(c.max_requests, None);
    // Well inside ten seconds: the one connection carried every request, none was recycled.
    assert_eq!((c.opened, c.reconnects), (1, 0), "{c:?}");
    assert_eq!(*seen.per_conn.lock().unwrap(), [20]);
}

#[test]
fn scenario_keys_set_the_lifetime_and_flags_override_them() {
    let (url, seen) = serve(None);
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario_file(
        &dir,
        "life.yaml",
        "requests: [{ path: / }]\nload: { users: 1, requests: 12, connection_max_age: forever, connection_max_requests: 4 }\n",
    );
    let o = out(&dir, "r.json");
    assert_eq!(run_scenario(&sc, &url, &[], &o), 0);
    let c = report(&o).connections;
    assert_eq!((c.max_age_s, c.max_requests, c.opened), (None, Some(4), 3));
    assert_eq!(seen.accepted(), 3);
    // The flag replaces the file's key; the other key stays.
    assert_eq!(
        run_scenario(&sc, &url, &["--connection-max-requests", "6"], &o),
        0
    );
    let c = report(&o).connections;
    assert_eq!((c.max_age_s, c.max_requests, c.opened), (None, Some(6), 2));
    let sc = scenario_file(
        &dir,
        "nokeep.yaml",
        "requests: [{ path: / }]\nload: { users: 1, requests: 3, keepalive: false }\n",
    );
    assert_eq!(run_scenario(&sc, &url, &[], &o), 0);
    assert_eq!(report(&o).connections.opened, 3);
}

fn run_bin(args: &[&str]) -> (i32, String) {
    let o = Command::new(bin()).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn bad_lifetime_values_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let url = "http://127.0.0.1:9/";
    for (args, msg) in [
        (vec!["--connection-max-age", "0"], "forever"),
        (vec!["--connection-max-age", "soon"], "forever"),
        (vec!["--connection-max-requests", "0"], "count"),
        (
            vec!["--no-keepalive", "--connection-max-age", "5s"],
            "cannot be used with",
        ),
        (vec!["--http2", "--connection-max-requests", "5"], "--http2"),
    ] {
        let mut a = vec!["--target", url, "-n", "1"];
        a.extend(args.iter());
        let (code, stderr) = run_bin(&a);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(msg), "{args:?}: {stderr}");
    }
    for (key, msg) in [
        ("connection_max_age: 0", "forever"),
        ("connection_max_age: sometimes", "forever"),
        ("keepalive: maybe", "keepalive"),
        ("connection_max_requests: 0", "at least 1"),
        (
            "keepalive: false, connection_max_requests: 3",
            "cannot be combined",
        ),
    ] {
        let sc = scenario_file(
            &dir,
            "bad.yaml",
            &format!("requests: [{{ path: / }}]\nload: {{ requests: 1, {key} }}\n"),
        );
        let (code, stderr) = run_bin(&["run", sc.to_str().unwrap(), "--target", url]);
        assert_eq!(code, 2, "{key}: {stderr}");
        assert!(stderr.contains(msg), "{key}: {stderr}");
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn start_at_waits_until_the_moment() {
    let (url, _seen) = serve(None);
    let dir = tempfile::tempdir().unwrap();
    let o = out(&dir, "r.json");
    let at = unix_now() + 2.0;
    let t0 = std::time::Instant::now();
    let at_s = format!("{at:.3}");
    assert_eq!(
        quick(&url, &o, &["-n", "5", "-c", "1", "--start-at", &at_s]),
        0
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t0.elapsed()
    );
    let r = report(&o);
    let started = r.started_at_unix_ms as f64 / 1000.0;
    assert!(started >= at - 0.01, "started {started} before {at}");
    assert!(started < at + 1.0, "started {started}, well after {at}");
    // RFC 3339 works the same; a moment a few seconds past starts at once.
    let past = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(5));
    let t0 = std::time::Instant::now();
    assert_eq!(
        quick(
            &url,
            &o,
            &["-n", "5", "-c", "1", "--start-at", &past.to_string()]
        ),
        0
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn start_at_rejects_bad_times_with_exit_2() {
    let url = "http://127.0.0.1:9/";
    let hour_ago = format!("{:.0}", unix_now() - 3600.0);
    let in_two_days = format!("{:.0}", unix_now() + 2.0 * 86400.0);
    for (v, msg) in [
        ("tomorrow", "RFC 3339"),
        (hour_ago.as_str(), "in the past"),
        (in_two_days.as_str(), "ahead"),
    ] {
        let (code, stderr) = run_bin(&["--target", url, "-n", "1", "--start-at", v]);
        assert_eq!(code, 2, "{v}: {stderr}");
        assert!(stderr.contains(msg), "{v}: {stderr}");
    }
}

#[test]
fn http2_replaces_shared_connections_at_their_max_age_without_errors() {
    // The axum test server speaks h2c with prior knowledge, as `--http2` on http:// sends it.
    let srv = common::start();
    let url = format!("{}/ping", srv.url());
    let r = run_clean(
        &url,
        &[
            "--http2",
            "--connections",
            "1",
            "-c",
            "4",
            "-d",
            "2s",
            "--connection-max-age",
            "400ms",
        ],
    );
    let c = &r.connections;
    // One shared connection replaced every 360..400 ms over 2 s: about 5; generous bounds.
    assert!((3..=12).contains(&c.opened), "{c:?}");
    assert_eq!(c.reconnects, c.opened - 1, "{c:?}");
    assert_eq!(c.closed.get("max_age"), Some(&c.reconnects), "{c:?}");
    assert_eq!(r.summary.requests, r.summary.successes);
}

#[test]
fn ctrl_c_while_waiting_for_start_at_exits_130_without_sending() {
    let (url, seen) = serve(None);
    let at = format!("{:.0}", unix_now() + 30.0);
    let mut child = Command::new(bin())
        .args(["--target", &url, "-n", "5", "--start-at", &at])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the "waiting ..." line: the handler for Ctrl-C is installed by then.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("waiting") {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "loadgen ended early");
    }
    let t0 = std::time::Instant::now();
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
        assert!(t0.elapsed() < Duration::from_secs(10), "did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    assert_eq!(seen.accepted(), 0, "nothing was sent before the start");
}
