//! Cold starts end to end: the real engine sends real requests to a local server that holds them
//! (as Knative's activator does while a pod starts), while the watcher's state, injected, says the
//! target has no ready replica. No Kubernetes needed: the zero signal is what the watcher would
//! have written.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use loadgen::coldstart::ColdStartTracker;
use loadgen::metrics::RunMetrics;

mod common;

/// How long the server holds every request after the first one arrived: the "pod start".
const HOLD: Duration = Duration::from_millis(1500);

/// A server that answers nothing until `HOLD` after the first request arrived, then at once.
async fn activator() -> std::net::SocketAddr {
    let first: Arc<OnceLock<tokio::time::Instant>> = Arc::default();
    let app = Router::new().route(
        "/ping",
        get(move || {
            let first = Arc::clone(&first);
            async move {
                let at = *first.get_or_init(tokio::time::Instant::now);
                tokio::time::sleep_until(at + HOLD).await;
                "pong"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[test]
fn requests_at_zero_are_one_cold_start_timed_by_the_client() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let metrics = Arc::new(RunMetrics::enabled(
        "cold",
        &[("run".into(), "cold".into())],
    ));
    let tracker = Arc::new(ColdStartTracker::new(metrics.cold_start_metrics()));
    // The watcher's last word before the run: no ready replica.
    tracker.observe_ready(Some(0), Instant::now());
    let data = rt.block_on(async {
        common::run_engine_on_ping(
            &format!("http://{}", activator().await),
            3,
            Duration::from_millis(2500),
            Arc::clone(&metrics),
            Some(Arc::clone(&tracker)),
        )
        .await
    });
    assert!(
        data.totals.overall().successes > 3,
        "warm requests followed"
    );

    let (list, total) = tracker.finish(data.start);
    // The watcher never saw zero again (nor a ready pod): one cold start, whatever came after.
    assert_eq!(total, 1, "{list:?}");
    let c = &list[0];
    assert!(c.t_s < 0.2, "opened by the run's first request: {c:?}");
    let first = c.to_first_response_s.expect("answered");
    assert!(
        (1.45..2.0).contains(&first),
        "held {HOLD:?} by the server, timed by the client: {c:?}"
    );
    assert_eq!(c.held, 3, "each user's first request was held: {c:?}");
    assert_eq!(c.failed, 0);
    let p99 = c
        .p99_first_second_ms
        .expect("first-second requests completed");
    assert!((1400.0..2000.0).contains(&p99), "{c:?}");
    assert_eq!(c.ready_at_s, None);

    let text = metrics.render();
    assert!(
        text.lines()
            .any(|l| l.starts_with("loadgen_cold_starts_total{") && l.ends_with(" 1")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("loadgen_cold_start_seconds_bucket{")
                && l.contains("le=\"2\"")
                && l.ends_with(" 1")),
        "{text}"
    );
}

/// The cold starts reach the terminal summary (a line each, or median and max when many), the
/// HTML report's table, and the JSON report, which still reads without them.
#[test]
fn cold_starts_are_reported_in_the_summary_html_and_json() {
    use loadgen::model::cold_starts::ColdStart;
    use loadgen::model::replicas::ReplicaTimeline;
    let cold = |t_s: f64, first: Option<f64>| ColdStart {
        t_s,
        to_first_response_s: first,
        held: 4,
        failed: 1,
        p99_first_second_ms: Some(2950.0),
        ready_at_s: Some(t_s + 2.5),
        worker: None,
    };
    let mut timeline = ReplicaTimeline {
        target: "configuration/workload".into(),
        ..Default::default()
    };
    timeline.set_cold_starts(vec![cold(2.0, Some(3.0)), cold(95.0, None)], 2);
    let mut report = loadgen::model::RunReport {
        scenario: "cold".into(),
        ..Default::default()
    };
    report.replicas = Some(timeline.clone());
    let text = loadgen::report::summary::render(&report);
    assert!(
        text.contains("cold start at 2.00s: first response after 3.00s, held 4, failed 1"),
        "{text}"
    );
    assert!(
        text.contains("cold start at 95.00s: first response never"),
        "{text}"
    );
    let html = loadgen::report::html::render_run(&report);
    assert!(html.contains(r#"id="cold-starts""#), "the HTML table");
    assert!(
        html.contains("PodAutoscaler"),
        "a Knative target is scaled by its PodAutoscaler"
    );

    // Many: one line with the median and the maximum.
    let many: Vec<ColdStart> = (0..12)
        .map(|i| cold(f64::from(i) * 100.0, Some(f64::from(i))))
        .collect();
    timeline.set_cold_starts(many, 1500);
    report.replicas = Some(timeline.clone());
    let text = loadgen::report::summary::render(&report);
    assert!(
        text.contains("cold starts: 1500 (12 listed): to first response median 5.50s, max 11.00s"),
        "{text}"
    );

    let json = serde_json::to_value(&timeline).unwrap();
    assert_eq!(json["cold_starts_total"], 1500);
    assert_eq!(json["cold_starts"][0]["to_first_response_s"], 0.0);
    assert!(
        json["cold_starts"][0].get("worker").is_none(),
        "only in merged reports"
    );
    let mut old = json.clone();
    let o = old.as_object_mut().unwrap();
    o.remove("cold_starts");
    o.remove("cold_starts_total");
    let back: ReplicaTimeline = serde_json::from_value(old).unwrap();
    assert!(back.cold_starts.is_empty() && back.cold_starts_total == 0);
}
