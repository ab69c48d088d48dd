//! Shutdown sequence and the healthcheck subcommand, driving the real binary with real signals.

mod common;

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, signal, start, wait_exit};

fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_stops_accepting_and_exits_zero() {
    // Generous drain window: the readiness and ping checks below must fit inside it even on a
    // loaded machine.
    let drain = Duration::from_millis(2500);
    let mut p = start(&["--drain-delay", "2500ms", "--shutdown-timeout", "10s"]);
    let client = fresh_client();
    let base = format!("http://{}", p.app);
    assert_eq!(
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // An in-flight slow request that must complete despite the signal.
    let slow = {
        let client = client.clone();
        let url = format!("{base}/work/io?ms=4000");
        tokio::spawn(async move {
            let r = client.get(url).send().await.unwrap();
            (r.status(), Instant::now())
        })
    };
    let metrics_url = format!("http://{}/metrics", p.metrics);
    for _ in 0..100 {
        let text = client
            .get(&metrics_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if common::find_metric(&text, "http_server_active_requests", &[]) == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let signalled = Instant::now();
    signal(p.child.id(), "TERM");

    // Readiness turns 503 at once, while requests are still served during the drain delay.
    let mut ready_status = 0;
    for _ in 0..50 {
        ready_status = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if ready_status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ready_status, 503, "readiness during drain");
    let ping = client.get(format!("{base}/ping")).send().await.unwrap();
    assert_eq!(
        ping.status(),
        200,
        "traffic is still served during the drain delay"
    );
    assert!(
        signalled.elapsed() < drain,
        "the checks above ran inside the drain window"
    );

    // After the drain delay the listener is closed: new connections are refused.
    let refused_at = loop {
        if TcpStream::connect_timeout(&p.app, Duration::from_millis(200)).is_err() {
            break Instant::now();
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(8),
            "listener never closed"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(
        refused_at.duration_since(signalled) >= drain - Duration::from_millis(100),
        "listener closed before the drain delay: {:?}",
        refused_at.duration_since(signalled)
    );

    // The in-flight request finishes with 200, then the process exits 0.
    let (status, finished) = slow.await.unwrap();
    assert_eq!(status, 200);
    let code = tokio::task::spawn_blocking(move || {
        let code = wait_exit(&mut p.child, Duration::from_secs(10));
        (code, Instant::now())
    })
    .await
    .unwrap();
    assert_eq!(code.0, Some(0));
    assert!(
        code.1 >= finished,
        "exited before the in-flight request completed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let mut p = start(&["--drain-delay", "30s"]);
    let client = fresh_client();
    let base = format!("http://{}", p.app);
    signal(p.child.id(), "INT");
    let mut ready_status = 0;
    for _ in 0..100 {
        ready_status = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if ready_status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ready_status, 503);
    let second = Instant::now();
    signal(p.child.id(), "TERM");
    let code = tokio::task::spawn_blocking(move || wait_exit(&mut p.child, Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(code, Some(workload::shutdown::FORCED_EXIT_CODE));
    assert!(second.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_bounds_the_wait_for_stuck_requests() {
    let mut config = common::config();
    config.shutdown_timeout = Duration::from_millis(300);
    let mut app = common::spawn(config).await;
    let slow = {
        let client = app.client.clone();
        let url = app.url("/work/io?ms=10000");
        tokio::spawn(async move { client.get(url).send().await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    app.trigger_stop();
    let result = tokio::time::timeout(Duration::from_secs(5), &mut app.server)
        .await
        .expect("stops within the shutdown timeout, not after the 10 s request")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(start.elapsed() < Duration::from_secs(3));
    slow.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_subcommand_exits_0_or_1() {
    let app = common::spawn_default().await;
    let run = |addr: String| {
        Command::new(BIN)
            .arg("healthcheck")
            .env("WORKLOAD_ADDR", addr)
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    };
    // Wildcard address: the healthcheck probes loopback on the same port.
    let ok = tokio::task::spawn_blocking({
        let addr = format!("0.0.0.0:{}", app.addr.port());
        move || run(addr)
    })
    .await
    .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let bad = tokio::task::spawn_blocking(move || run(format!("127.0.0.1:{port}")))
        .await
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("cannot reach"));
}

#[tokio::test]
async fn healthcheck_takes_addr_after_the_subcommand_and_any_timeout() {
    let app = common::spawn_default().await;
    let addr = app.addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            // The largest timeout humantime parses: once a panic (exit 101) on Instant overflow.
            .args([
                "healthcheck",
                "--addr",
                &addr,
                "--timeout",
                "18446744073709551615s",
            ])
            .env_remove("WORKLOAD_ADDR")
            .env_remove("WORKLOAD_HEALTHCHECK_TIMEOUT")
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_configuration_fails_fast_with_a_clear_message() {
    let out = Command::new(BIN)
        .args([
            "--fault-delay-min",
            "2s",
            "--fault-delay-max",
            "1s",
            "--addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fault-delay-min"));

    // A zero request timeout would answer every request 503: refused up front.
    let out = Command::new(BIN)
        .args([
            "--request-timeout",
            "0s",
            "--addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .env_remove("WORKLOAD_REQUEST_TIMEOUT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--request-timeout must be at least 1ms"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = Command::new(BIN)
        .args(["--fault-error-ratio", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("fault-error-ratio"));

    // A port already in use: exit 1 and say which listener.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = Command::new(BIN)
        .args([
            "--addr",
            &taken.local_addr().unwrap().to_string(),
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "text",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot bind application listener"));
}

#[test]
fn help_lists_every_env_twin() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for env in [
        "WORKLOAD_ADDR",
        "WORKLOAD_METRICS_ADDR",
        "WORKLOAD_DRAIN_DELAY",
        "WORKLOAD_SHUTDOWN_TIMEOUT",
        "WORKLOAD_REQUEST_TIMEOUT",
        "WORKLOAD_MAX_IN_FLIGHT",
        "WORKLOAD_MAX_BODY_BYTES",
        "WORKLOAD_WORKER_THREADS",
        "WORKLOAD_LOG_FORMAT",
        "WORKLOAD_TASKS_CAPACITY",
        "WORKLOAD_TASKS_WHEN_FULL",
        "WORKLOAD_FAULT_ERROR_RATIO",
        "WORKLOAD_FAULT_DELAY_MIN",
        "WORKLOAD_FAULT_DELAY_MAX",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "WORKLOAD_HEADER_READ_TIMEOUT",
        "WORKLOAD_IDLE_TIMEOUT",
        "WORKLOAD_MAX_CONNECTION_AGE",
        "WORKLOAD_MAX_CONNECTIONS",
        "WORKLOAD_TLS_CERT",
        "WORKLOAD_TLS_KEY",
    ] {
        assert!(help.contains(env), "--help does not mention {env}");
    }
}

#[tokio::test]
async fn the_task_store_policy_is_read_from_its_env_twin() {
    let creates = |env: &'static [(&'static str, &'static str)]| async move {
        let p = common::start_with_env(&[], env);
        let client = fresh_client();
        let mut statuses = Vec::new();
        for i in 0..3 {
            let r = client
                .post(format!("http://{}/tasks", p.app))
                .json(&serde_json::json!({ "title": format!("t{i}") }))
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
        }
        statuses
    };
    assert_eq!(
        creates(&[("WORKLOAD_TASKS_CAPACITY", "2")]).await,
        [201, 201, 201],
        "evict-oldest by default"
    );
    assert_eq!(
        creates(&[
            ("WORKLOAD_TASKS_CAPACITY", "2"),
            ("WORKLOAD_TASKS_WHEN_FULL", "reject"),
        ])
        .await,
        [201, 201, 507]
    );
}
