//! Keep-alive connection reuse against raw TCP servers that close connections on purpose:
//! which failures are resent on a fresh connection, and that every resend is counted.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{loadgen, out, report, run_scenario, scenario_file};

/// Reads one request head (no body: the tests send GETs); false at EOF.
fn read_head(r: &mut BufReader<TcpStream>) -> bool {
    let mut line = String::new();
    let mut any = false;
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line == "\r\n" => return any,
            Ok(_) => any = true,
        }
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

/// A server that handles each connection with `per_conn`; returns its URL and a request count.
fn serve(
    per_conn: impl Fn(BufReader<TcpStream>, &AtomicU64) + Send + Sync + 'static,
) -> (String, Arc<AtomicU64>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    let seen = Arc::new(AtomicU64::new(0));
    let s = Arc::clone(&seen);
    let per_conn = Arc::new(per_conn);
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let (s, f) = (Arc::clone(&s), Arc::clone(&per_conn));
            std::thread::spawn(move || f(BufReader::new(c), &s));
        }
    });
    (url, seen)
}

#[test]
fn request_on_a_connection_closed_while_idle_is_resent_and_counted() {
    // The server answers one request per connection (keep-alive, no `Connection: close`) and
    // closes it shortly after, while the client is idle: the keep-alive race. The next request
    // finds the connection closed before hyper wrote any of it, so the server never saw it and
    // it is resent once on a fresh connection.
    let (url, seen) = serve(|mut r, seen| {
        if read_head(&mut r) {
            seen.fetch_add(1, Ordering::Relaxed);
            let _ = r.get_mut().write_all(OK);
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario_file(
        &dir,
        "idle.yaml",
        "requests: [{ path: / }]\nload: { users: 1, requests: 4, think_time: 500ms }\n",
    );
    let o = out(&dir, "r.json");
    let code = run_scenario(&sc, &url, &[], &o);
    assert_eq!(code, 0);
    let r = report(&o);
    assert_eq!(r.summary.requests, 4);
    assert_eq!(r.summary.successes, 4, "{:?}", r.summary.errors);
    // Requests 2..4 each found their kept-alive connection closed and were resent.
    assert_eq!(r.summary.retries, 3);
    // Resends of unwritten requests never duplicate work on the server.
    assert_eq!(seen.load(Ordering::Relaxed), 4);
    let text = loadgen::report::summary::render(&r);
    assert!(text.contains("retries: 3"), "{text}");
}

#[test]
fn written_request_without_a_response_is_a_failure_not_a_silent_resend() {
    // The server reads the second request of a connection and closes without answering. The
    // request was written and may have been processed: it must be reported, never resent, even
    // though GET is idempotent.
    let (url, seen) = serve(|mut r, seen| {
        if read_head(&mut r) {
            seen.fetch_add(1, Ordering::Relaxed);
            let _ = r.get_mut().write_all(OK);
        }
        if read_head(&mut r) {
            seen.fetch_add(1, Ordering::Relaxed);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let o = out(&dir, "r.json");
    let code = loadgen(&[
        "--target",
        &url,
        "-c",
        "1",
        "-n",
        "2",
        "-q",
        "--out",
        o.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let r = report(&o);
    assert_eq!(r.summary.requests, 2);
    assert_eq!(r.summary.successes, 1);
    assert_eq!(r.summary.failures, 1);
    assert_eq!(
        r.summary.errors.get("reset"),
        Some(&1),
        "{:?}",
        r.summary.errors
    );
    assert_eq!(r.summary.retries, 0);
    assert_eq!(seen.load(Ordering::Relaxed), 2, "nothing was sent twice");
}
