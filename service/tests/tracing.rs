//! OTLP/http trace export, only when OTEL_EXPORTER_OTLP_ENDPOINT is set, continuing an incoming
//! W3C traceparent. A bare-bones collector on 127.0.0.1 records the export requests; the protobuf
//! payload carries trace and span ids as raw bytes, so they can be found without decoding it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{signal, start_with_env, wait_exit};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_SPAN_ID: &str = "b7ad6b7169203331";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Accepts OTLP/http requests for up to `limit`, sending (path, body) of each.
fn fake_collector(limit: Duration) -> (u16, mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let mut stream = reader.into_inner();
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            if tx.send((path, body)).is_err() {
                break;
            }
        }
    });
    (port, rx)
}

/// SIGTERM (shutdown flushes the batch exporter), a clean exit, then every export body received,
/// concatenated; each export went to the traces path.
async fn stop_and_collect(
    mut p: common::Proc,
    exports: mpsc::Receiver<(String, Vec<u8>)>,
) -> Vec<u8> {
    signal(p.child.id(), "TERM");
    let code =
        tokio::task::spawn_blocking(move || wait_exit(&mut p.child, Duration::from_secs(15)))
            .await
            .unwrap();
    assert_eq!(code, Some(0));
    let mut all = Vec::new();
    while let Ok((path, body)) = exports.recv_timeout(Duration::from_secs(2)) {
        assert_eq!(path, "/v1/traces");
        all.extend(body);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_and_continue_the_incoming_trace() {
    let (port, exports) = fake_collector(Duration::from_secs(30));
    let endpoint = format!("http://127.0.0.1:{port}");
    let p = start_with_env(
        &["--drain-delay", "0s"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "workload-under-test"),
        ],
    );
    let client = reqwest::Client::new();
    let r = client
        .get(format!("http://{}/tasks/7", p.app))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let all = stop_and_collect(p, exports).await;
    assert!(!all.is_empty(), "no OTLP export arrived");
    assert!(
        contains(&all, &hex(TRACE_ID)),
        "the span did not continue the incoming trace id"
    );
    assert!(
        contains(&all, &hex(PARENT_SPAN_ID)),
        "the incoming span is not the parent"
    );
    assert!(
        contains(&all, b"workload-under-test"),
        "service name missing"
    );
    assert!(
        contains(&all, b"GET /tasks/{id}"),
        "span is not named after the route template"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_zero_ratio_only_requests_whose_parent_is_sampled_are_traced() {
    const UNSAMPLED_TRACE_ID: &str = "1bf7651916cd43dd8448eb211c80319d";
    let (port, exports) = fake_collector(Duration::from_secs(30));
    let endpoint = format!("http://127.0.0.1:{port}");
    let p = start_with_env(
        &["--drain-delay", "0s", "--trace-sample-ratio", "0"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
    );
    let client = reqwest::Client::new();
    let get = |path: &'static str, traceparent: Option<String>| {
        let mut req = client.get(format!("http://{}{path}", p.app));
        if let Some(tp) = traceparent {
            req = req.header("traceparent", tp);
        }
        req.send()
    };
    // No trace context: not traced at ratio 0.
    assert_eq!(get("/ping", None).await.unwrap().status(), 200);
    // A context whose sampled flag is off (flags 00): not traced either.
    let unsampled = format!("00-{UNSAMPLED_TRACE_ID}-{PARENT_SPAN_ID}-00");
    assert_eq!(get("/ping", Some(unsampled)).await.unwrap().status(), 200);
    // A sampled context (flags 01): continued, whatever the ratio.
    let sampled = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");
    assert_eq!(get("/tasks/7", Some(sampled)).await.unwrap().status(), 404);

    let all = stop_and_collect(p, exports).await;
    assert!(
        contains(&all, &hex(TRACE_ID)),
        "the sampled request was not traced"
    );
    assert!(
        contains(&all, b"GET /tasks/{id}"),
        "the sampled request's span is missing"
    );
    assert!(
        !contains(&all, b"GET /ping"),
        "an unsampled or context-less request was traced at ratio 0"
    );
    assert!(
        !contains(&all, &hex(UNSAMPLED_TRACE_ID)),
        "an unsampled parent was continued"
    );
}

/// An https:// endpoint cannot work (the exporter has no TLS), so the workload refuses it at
/// start with a usage error instead of losing every span in the background.
#[test]
fn an_https_otlp_endpoint_is_refused_at_start_with_exit_2() {
    let out = std::process::Command::new(common::BIN)
        .args(["--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:4318")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("https://127.0.0.1:4318") && stderr.contains("only http:// is supported"),
        "{stderr}"
    );
}
