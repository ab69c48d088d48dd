//! Connection rules on the real application on 127.0.0.1 port 0, seen from raw sockets:
//! stalled clients are cut off, idle ones are kept (until the idle timeout), the connection limit
//! turns connections away, old connections close with `Connection: close` (HTTP/1) or GOAWAY
//! (HTTP/2).

mod common;

use std::time::{Duration, Instant};

use common::{TestApp, find_metric, spawn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PING: &[u8] = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";

/// One HTTP/1.1 exchange on `stream`: writes `request`, returns the response head (lowercase)
/// once head and body (Content-Length) are in.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("a response within 10 s")
            .unwrap();
        assert!(n > 0, "connection closed before a full response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                return head.to_string();
            }
        }
    }
}

/// Waits (bounded by `limit`) until the server closes `stream`; returns how long that took.
/// Bytes the server sends first are an error: the callers expect no answer.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut chunk = [0u8; 1024];
    match tokio::time::timeout(limit, stream.read(&mut chunk)).await {
        Ok(Ok(0)) | Ok(Err(_)) => start.elapsed(),
        Ok(Ok(n)) => panic!(
            "expected a close, got {:?}",
            String::from_utf8_lossy(&chunk[..n])
        ),
        Err(_) => panic!("still open after {limit:?}"),
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr).await.unwrap()
}

fn config() -> workload::Config {
    let mut c = common::config();
    c.header_read_timeout = Duration::from_secs(1);
    c.idle_timeout = Duration::from_secs(30);
    c.max_connection_age = Duration::ZERO;
    c
}

/// Connections age out after 1 s (0.9 to 1.1 s with jitter); nothing else closes them sooner.
fn aging_config() -> workload::Config {
    let mut c = config();
    c.header_read_timeout = Duration::from_secs(10);
    c.max_connection_age = Duration::from_secs(1);
    c
}

#[tokio::test]
async fn a_stalled_partial_request_head_is_closed_after_the_header_read_timeout() {
    let app = spawn(config()).await;
    let mut slowloris = connect(&app).await;
    slowloris
        .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut silent = connect(&app).await;
    let took = closed_within(&mut slowloris, Duration::from_secs(10)).await;
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");
    // A client that connects and sends nothing is held no longer.
    closed_within(&mut silent, Duration::from_secs(5)).await;
    // Meanwhile the server answers others.
    assert_eq!(app.get("/ping").await.status(), 200);
}

#[tokio::test]
async fn a_quiet_keep_alive_connection_is_idle_not_stalled_until_the_idle_timeout() {
    let mut c = config();
    c.idle_timeout = Duration::from_secs(3);
    let app = spawn(c).await;
    let mut conn = connect(&app).await;
    assert!(exchange(&mut conn, PING).await.starts_with("http/1.1 200"));
    // Quiet for longer than the header read timeout: still served on the same connection.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let head = exchange(&mut conn, PING).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    let idle_from = Instant::now();
    closed_within(&mut conn, Duration::from_secs(10)).await;
    let idle = idle_from.elapsed();
    assert!(
        idle >= Duration::from_millis(2500),
        "closed after {idle:?} idle"
    );
}

#[tokio::test]
async fn past_the_connection_limit_new_connections_are_closed_at_once_and_counted() {
    let mut c = config();
    c.max_connections = 3;
    let app = spawn(c).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = connect(&app).await;
        assert!(exchange(&mut conn, PING).await.starts_with("http/1.1 200"));
        held.push(conn);
    }
    let mut extra = connect(&app).await;
    let _ = extra.write_all(PING).await;
    let took = closed_within(&mut extra, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(2), "closed after {took:?}");
    let rejected = find_metric(
        &app.metrics_text().await,
        "http_server_rejected_requests_total",
        &[("reason", "connection_limit")],
    );
    assert_eq!(rejected, Some(1.0));
    assert_eq!(
        find_metric(
            &app.metrics_text().await,
            "http_server_open_connections",
            &[]
        ),
        Some(3.0)
    );
    // A freed slot is usable again.
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut conn = connect(&app).await;
        conn.write_all(PING).await.unwrap();
        let mut first = [0u8; 12];
        if conn.read_exact(&mut first).await.is_ok() {
            again = Some(first);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(&again.expect("a slot frees up"), b"HTTP/1.1 200");
}

#[tokio::test]
async fn past_its_max_age_an_http1_connection_answers_connection_close_then_closes() {
    let app = spawn(aging_config()).await;
    let mut conn = connect(&app).await;
    let young = exchange(&mut conn, PING).await;
    assert!(!young.contains("connection: close"), "{young}");
    // Idle past the age (at most 1.1 s with jitter): not closed while idle...
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // ...the next response carries the close and the socket closes after it.
    let old = exchange(&mut conn, PING).await;
    assert!(old.starts_with("http/1.1 200"), "{old}");
    assert!(old.contains("connection: close"), "{old}");
    assert!(old.contains("x-served-by: test-host"), "{old}");
    closed_within(&mut conn, Duration::from_secs(2)).await;
}

/// Reads HTTP/2 frames until a GOAWAY; returns its error code and whether a response HEADERS
/// frame for stream 1 came before it. Acknowledges the server's SETTINGS and PINGs.
async fn read_until_goaway(stream: &mut TcpStream, limit: Duration) -> (u32, bool) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut answered = false;
    loop {
        let mut head = [0u8; 9];
        tokio::time::timeout_at(deadline, stream.read_exact(&mut head))
            .await
            .expect("a GOAWAY in time")
            .expect("the connection stays up until the GOAWAY");
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).await.unwrap();
        match kind {
            0x1 if stream_id == 1 => answered = true,
            0x4 if flags & 0x1 == 0 => stream
                .write_all(&[0, 0, 0, 4, 1, 0, 0, 0, 0])
                .await
                .unwrap(),
            0x6 if flags & 0x1 == 0 => {
                let mut ack = vec![0, 0, 8, 6, 1, 0, 0, 0, 0];
                ack.extend_from_slice(&payload);
                stream.write_all(&ack).await.unwrap();
            }
            0x7 => {
                let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
                return (code, answered);
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn past_its_max_age_an_http2_connection_gets_goaway() {
    let app = spawn(aging_config()).await;
    let mut conn = connect(&app).await;
    let opened = Instant::now();
    // h2c with prior knowledge: preface, empty SETTINGS, then GET /ping on stream 1
    // (HPACK: :method GET, :scheme http, :path "/ping", :authority "x"; END_STREAM|END_HEADERS).
    let block: &[u8] = &[
        0x82, 0x86, 0x04, 5, b'/', b'p', b'i', b'n', b'g', 0x01, 1, b'x',
    ];
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&[0, 0, block.len() as u8, 1, 0x5, 0, 0, 0, 1]);
    out.extend_from_slice(block);
    conn.write_all(&out).await.unwrap();
    let (code, answered) = read_until_goaway(&mut conn, Duration::from_secs(10)).await;
    let at = opened.elapsed();
    assert!(answered, "the request before the age was answered");
    assert_eq!(code, 0, "GOAWAY with NO_ERROR");
    assert!(
        at >= Duration::from_millis(850),
        "GOAWAY after {at:?}, before the age"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_leave_ping_fast() {
    const IDLE: usize = 2000;
    // Client and server sockets live in this process: two descriptors per connection.
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap();
    assert!(
        limit >= 2 * IDLE as u64 + 256,
        "the open-files hard limit ({limit}) is too low for this test"
    );
    let mut c = config();
    c.header_read_timeout = Duration::from_secs(30);
    c.idle_timeout = Duration::from_secs(120);
    let app = spawn(c).await;
    let mut idle = Vec::with_capacity(IDLE);
    for chunk in 0..IDLE / 100 {
        let batch = (0..100).map(|_| async {
            let mut conn = TcpStream::connect(app.addr).await.unwrap();
            assert!(exchange(&mut conn, PING).await.starts_with("http/1.1 200"));
            conn
        });
        idle.extend(futures::future::join_all(batch).await);
        assert_eq!(idle.len(), (chunk + 1) * 100);
    }
    let open = find_metric(
        &app.metrics_text().await,
        "http_server_open_connections",
        &[],
    );
    assert!(open >= Some(IDLE as f64), "open connections: {open:?}");

    let mut conn = connect(&app).await;
    let mut times = Vec::with_capacity(200);
    for _ in 0..200 {
        let start = Instant::now();
        assert!(exchange(&mut conn, PING).await.starts_with("http/1.1 200"));
        times.push(start.elapsed());
    }
    times.sort();
    let p99 = times[times.len() * 99 / 100];
    assert!(
        p99 < Duration::from_millis(250),
        "p99 {p99:?} with {IDLE} idle connections"
    );
    // The idle connections are all still served.
    for conn in idle.iter_mut().step_by(97) {
        assert!(exchange(conn, PING).await.starts_with("http/1.1 200"));
    }
}
