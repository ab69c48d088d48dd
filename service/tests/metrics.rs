//! The metrics exposition after known traffic: names, types, labels and counts match.

mod common;

use common::{find_metric, series, spawn_default};

const H: &str = "http_server_request_duration_seconds";

/// Spins on this thread until it has consumed `cpu` of CPU time (wall time is not enough on a
/// busy machine, where the thread may be descheduled for most of it).
fn burn_cpu(cpu: std::time::Duration) {
    let ticks = |s: &str| -> u64 {
        let fields: Vec<&str> = s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0)
    };
    let read = || std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let start = ticks(&read());
    let needed = (cpu.as_millis() / 10) as u64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ticks(&read()) < start + needed && std::time::Instant::now() < deadline {
        std::hint::black_box((0..10_000u64).sum::<u64>());
    }
}

#[tokio::test]
async fn exposition_matches_the_traffic_sent() {
    let app = spawn_default().await;
    for _ in 0..3 {
        assert_eq!(app.get("/ping").await.status(), 200);
    }
    for id in [41, 42] {
        assert_eq!(app.get(&format!("/tasks/{id}")).await.status(), 404);
    }
    let r = app.post_json("/tasks", r#"{"title": "t"}"#).await;
    assert_eq!(r.status(), 201);
    assert_eq!(app.get("/tasks/1").await.status(), 200);
    assert_eq!(app.get("/no/such/thing/1").await.status(), 404);
    assert_eq!(app.get("/no/such/thing/2").await.status(), 404);
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(
        app.client
            .put(app.url("/ping"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );

    // process_cpu_seconds_total comes from the kernel's clock ticks (10 ms each): make sure this
    // process has used enough CPU to show, however little the machine gave it so far.
    burn_cpu(std::time::Duration::from_millis(60));
    let text = app.metrics_text().await;

    // Contract: the duration is a histogram (buckets), not a summary.
    assert!(text.contains(&format!("# TYPE {H} histogram")), "{text}");
    let count = |method: &str, route: &str, status: &str| {
        find_metric(
            &text,
            &format!("{H}_count"),
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(count("GET", "/ping", "200"), Some(3.0));
    // The route label is the template, never the raw path.
    assert_eq!(count("GET", "/tasks/{id}", "404"), Some(2.0));
    assert_eq!(count("GET", "/tasks/{id}", "200"), Some(1.0));
    assert_eq!(count("POST", "/tasks", "201"), Some(1.0));
    assert_eq!(count("GET", "unmatched", "404"), Some(2.0));
    assert_eq!(count("GET", "/healthz", "200"), Some(1.0));
    assert_eq!(count("PUT", "/ping", "405"), Some(1.0));
    for (labels, _) in series(&text, &format!("{H}_count")) {
        let route = &labels["route"];
        assert!(
            !route.contains("41") && !route.contains("no/such"),
            "raw path leaked: {route}"
        );
        assert_eq!(
            labels.keys().map(String::as_str).collect::<Vec<_>>(),
            ["method", "route", "status"]
        );
    }
    // The metrics listener's own scrape is not counted as application traffic.
    assert!(
        series(&text, &format!("{H}_count"))
            .iter()
            .all(|(l, _)| l["route"] != "/metrics")
    );

    // Buckets: cumulative, ending in +Inf equal to the count.
    let buckets: Vec<(f64, f64)> = series(&text, &format!("{H}_bucket"))
        .into_iter()
        .filter(|(l, _)| l["route"] == "/ping" && l["status"] == "200")
        .map(|(l, v)| {
            let le = if l["le"] == "+Inf" {
                f64::INFINITY
            } else {
                l["le"].parse().unwrap()
            };
            (le, v)
        })
        .collect();
    assert!(buckets.len() >= 10, "{buckets:?}");
    assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "not cumulative: {buckets:?}"
    );
    assert_eq!(
        buckets.iter().find(|(le, _)| le.is_infinite()).map(|b| b.1),
        Some(3.0)
    );
    let sum = find_metric(
        &text,
        &format!("{H}_sum"),
        &[("method", "GET"), ("route", "/ping"), ("status", "200")],
    )
    .unwrap();
    assert!(sum > 0.0 && sum < 3.0, "{sum}");

    assert_eq!(
        find_metric(&text, "http_server_active_requests", &[]),
        Some(0.0)
    );
    assert_eq!(
        find_metric(
            &text,
            "http_server_rejected_requests_total",
            &[("reason", "overload")]
        ),
        Some(0.0)
    );
    assert_eq!(
        find_metric(
            &text,
            "http_server_rejected_requests_total",
            &[("reason", "timeout")]
        ),
        Some(0.0)
    );
    assert_eq!(
        find_metric(
            &text,
            "workload_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert!(find_metric(&text, "workload_cpu_quota_cores", &[]).unwrap() > 0.0);
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_threads",
        "process_open_fds",
    ] {
        assert!(find_metric(&text, name, &[]).is_some(), "{name} missing");
    }
    assert!(find_metric(&text, "process_resident_memory_bytes", &[]).unwrap() > 1e6);
    assert!(text.contains("# TYPE process_cpu_seconds_total counter"));
    // Fractional seconds, not truncated to whole ones (which would read 0 for this short-lived
    // process that has used well under a second of CPU).
    let cpu = find_metric(&text, "process_cpu_seconds_total", &[]).unwrap();
    assert!(cpu > 0.0, "{cpu}");
}

#[tokio::test]
async fn active_requests_gauge_counts_in_flight_requests() {
    let app = spawn_default().await;
    let slow = {
        let client = app.client.clone();
        let url = app.url("/work/io?ms=1500");
        tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
    };
    let mut seen = None;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        seen = app.metric("http_server_active_requests", &[]).await;
        if seen == Some(1.0) {
            break;
        }
    }
    assert_eq!(seen, Some(1.0));
    assert_eq!(slow.await.unwrap(), 200);
    assert_eq!(
        app.metric("http_server_active_requests", &[]).await,
        Some(0.0)
    );
}

#[tokio::test]
async fn metrics_layer_can_be_switched_off() {
    let mut config = common::config();
    config.http_metrics = false;
    config.http_tracing = false;
    let app = common::spawn(config).await;
    assert_eq!(app.get("/ping").await.status(), 200);
    let text = app.metrics_text().await;
    assert!(series(&text, &format!("{H}_count")).is_empty());
    // The rest of the contract is still there.
    assert!(
        find_metric(
            &text,
            "workload_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        )
        .is_some()
    );
}
