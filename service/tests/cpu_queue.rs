//! The CPU pool's hard queue cap (`--cpu-queue`, the memory safety net behind the delay budget):
//! with every CPU slot busy and the queue full, a CPU job is shed at once with the `overloaded`
//! 503 + Retry-After and counted as reason `overload`, instead of queueing behind the (much
//! larger) global in-flight limit. Admission by delay is in `admission.rs`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{assert_error, spawn};

const JOB_MS: u64 = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_jobs_beyond_workers_plus_queue_are_shed_at_once() {
    let mut config = common::config();
    config.cpu_workers = Some(1);
    config.cpu_queue = Some(2);
    // The cap under test sheds, not the delay budget: as long as the request timeout.
    config.queue_delay_budget = Some(config.request_timeout);
    let app = spawn(config).await;

    let info: serde_json::Value = app.get("/info").await.json().await.unwrap();
    assert_eq!(info["cpu_workers"], 1, "{info}");
    assert_eq!(info["cpu_queue"], 2, "{info}");

    // Eight requests released together: one runs, two wait, five find the queue full.
    let total = 8;
    let barrier = Arc::new(tokio::sync::Barrier::new(total));
    let requests = app.gets_released_together(&format!("/work/cpu?ms={JOB_MS}"), total, barrier);
    let mut ok = Vec::new();
    let mut shed = Vec::new();
    for r in requests {
        let (response, took) = r.await.unwrap();
        match response.status().as_u16() {
            200 => ok.push(took),
            503 => {
                assert_eq!(response.headers()["retry-after"], "1");
                assert_eq!(assert_error(response, 503).await, "overloaded");
                shed.push(took);
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok.len(), shed.len()), (3, 5), "ok {ok:?}, shed {shed:?}");
    // Shed at once: well before the running job could have finished...
    for took in &shed {
        assert!(*took < Duration::from_millis(JOB_MS), "shed took {took:?}");
    }
    // ...while the accepted ones ran one after another (the last waited for two jobs).
    ok.sort();
    assert!(ok[0] >= Duration::from_millis(JOB_MS), "{ok:?}");
    assert!(ok[2] >= Duration::from_millis(3 * JOB_MS), "{ok:?}");

    assert_eq!(
        app.metric(
            "http_server_rejected_requests_total",
            &[("reason", "overload")]
        )
        .await,
        Some(5.0)
    );
    assert_eq!(
        app.metric(
            "http_server_request_duration_seconds_count",
            &[("method", "GET"), ("route", "/work/cpu"), ("status", "503")]
        )
        .await,
        Some(5.0)
    );
    // The queue empties: the next job runs.
    assert_eq!(app.get("/work/cpu?ms=1").await.status(), 200);
}

#[tokio::test]
async fn the_default_queue_cap_is_256_per_cpu_worker_and_the_budget_a_tenth_of_the_timeout() {
    let mut config = common::config();
    config.cpu_workers = Some(3);
    config.request_timeout = Duration::from_secs(20);
    let app = spawn(config).await;
    let info: serde_json::Value = app.get("/info").await.json().await.unwrap();
    assert_eq!(info["cpu_workers"], 3, "{info}");
    assert_eq!(info["cpu_queue"], 768, "{info}");
    assert_eq!(info["queue_delay_budget_ms"], 2000, "{info}");
    assert_eq!(
        app.metric("workload_cpu_queue_delay_budget_seconds", &[])
            .await,
        Some(2.0)
    );
}
