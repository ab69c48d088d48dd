//! Load shedding, request timeout and fault injection; probes and metrics are never affected.

mod common;

use std::time::{Duration, Instant};

use common::{assert_error, spawn};

/// Waits until the active-requests gauge reaches `n` (bounded).
async fn wait_active(app: &common::TestApp, n: f64) {
    for _ in 0..100 {
        if app.metric("http_server_active_requests", &[]).await == Some(n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("active requests never reached {n}");
}

#[tokio::test]
async fn over_the_concurrency_limit_requests_are_shed_at_once() {
    let mut config = common::config();
    config.max_in_flight = 2;
    let app = spawn(config).await;
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let client = app.client.clone();
            let url = app.url("/work/io?ms=2000");
            tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
        })
        .collect();
    wait_active(&app, 2.0).await;

    let start = Instant::now();
    let r = app.get("/ping").await;
    assert!(
        start.elapsed() < Duration::from_millis(1000),
        "shedding must not queue"
    );
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(assert_error(r, 503).await, "overloaded");
    let r = app.post_json("/tasks", r#"{"title": "x"}"#).await;
    assert_eq!(assert_error(r, 503).await, "overloaded");

    // Probes, info and metrics are never shed.
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    assert_eq!(app.get("/info").await.status(), 200);
    assert_eq!(
        app.metric(
            "http_server_rejected_requests_total",
            &[("reason", "overload")]
        )
        .await,
        Some(2.0)
    );
    assert_eq!(
        app.metric(
            "http_server_request_duration_seconds_count",
            &[("method", "GET"), ("route", "/ping"), ("status", "503")]
        )
        .await,
        Some(1.0)
    );
    for s in slow {
        assert_eq!(s.await.unwrap(), 200);
    }
    // Capacity is back once the slow requests are done.
    assert_eq!(app.get("/ping").await.status(), 200);
}

#[tokio::test]
async fn slow_requests_time_out_with_503() {
    let mut config = common::config();
    config.request_timeout = Duration::from_millis(300);
    let app = spawn(config).await;
    let start = Instant::now();
    let r = app.get("/work/io?ms=5000").await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(assert_error(r, 503).await, "timeout");
    let r = app.get("/work/cpu?ms=5000").await;
    assert_eq!(assert_error(r, 503).await, "timeout");
    assert_eq!(
        app.metric(
            "http_server_rejected_requests_total",
            &[("reason", "timeout")]
        )
        .await,
        Some(2.0)
    );
    assert_eq!(app.get("/work/io?ms=10").await.status(), 200);
}

#[tokio::test]
async fn injected_errors_spare_probes_and_metrics() {
    let mut config = common::config();
    config.fault_error_ratio = 1.0;
    let app = spawn(config).await;
    for path in ["/ping", "/tasks", "/work/io?ms=1"] {
        let r = app.get(path).await;
        assert_eq!(assert_error(r, 500).await, "injected_fault", "{path}");
    }
    for path in ["/healthz", "/readyz", "/info", "/openapi.json"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    app.metrics_text().await;
}

#[tokio::test]
async fn injected_error_ratio_is_roughly_respected() {
    let mut config = common::config();
    config.fault_error_ratio = 0.5;
    let app = spawn(config).await;
    let mut failures = 0;
    for _ in 0..200 {
        if app.get("/ping").await.status() == 500 {
            failures += 1;
        }
    }
    // Binomial(200, 0.5): 60..140 is more than 5 standard deviations wide.
    assert!((60..=140).contains(&failures), "{failures} of 200");
}

#[tokio::test]
async fn injected_delay_spares_probes() {
    let mut config = common::config();
    config.fault_delay_min = Duration::from_millis(300);
    config.fault_delay_max = Duration::from_millis(400);
    let app = spawn(config).await;
    let start = Instant::now();
    assert_eq!(app.get("/ping").await.status(), 200);
    assert!(start.elapsed() >= Duration::from_millis(300));
    let start = Instant::now();
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
}
