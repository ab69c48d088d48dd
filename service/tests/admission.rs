//! Admission of CPU jobs by expected queueing delay, on the real router: a burst of cheap jobs
//! waits its few milliseconds instead of being shed, while jobs whose wait would exceed
//! `--queue-delay-budget` are shed at once with 503 + Retry-After and the probes keep answering.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_error, spawn};

/// The classic tutorial's range of n (1.25e12 to 2.5e12).
fn classic_n(i: u64) -> u64 {
    1_250_000_000_000 + (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 1_250_000_000_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_clients_of_cheap_hello_jobs_on_one_cpu_worker_get_no_503() {
    let mut config = common::config();
    config.cpu_workers = Some(1);
    let app = spawn(config).await;

    const CLIENTS: u64 = 32;
    const EACH: u64 = 4;
    let barrier = Arc::new(tokio::sync::Barrier::new(CLIENTS as usize));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let client = app.client.clone();
            let url = app.url("/api/v1/hello");
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let mut statuses = Vec::new();
                for r in 0..EACH {
                    let body = format!(r#"{{"n": {}}}"#, classic_n(c * EACH + r));
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    statuses.push(response.status().as_u16());
                }
                statuses
            })
        })
        .collect();
    let mut answered = 0;
    for c in clients {
        let statuses = c.await.unwrap();
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        answered += statuses.len();
    }
    assert_eq!(answered, (CLIENTS * EACH) as usize);
    for reason in ["overload", "queue_delay", "timeout"] {
        assert_eq!(app.rejected(reason).await, Some(0.0), "{reason}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_expensive_jobs_is_shed_at_once_with_retry_after_while_healthz_answers() {
    const JOB_MS: u64 = 400;
    let mut config = common::config();
    config.cpu_workers = Some(1);
    config.queue_delay_budget = Some(Duration::from_millis(100));
    let app = spawn(config).await;
    // History: one job, so the pool knows its jobs take 400 ms, four budgets per job ahead.
    assert_eq!(
        app.get(&format!("/work/cpu?ms={JOB_MS}")).await.status(),
        200
    );

    let total = 16;
    let barrier = Arc::new(tokio::sync::Barrier::new(total + 1));
    let flood =
        app.gets_released_together(&format!("/work/cpu?ms={JOB_MS}"), total, barrier.clone());
    barrier.wait().await;
    let mut healthz = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let status = app.get("/healthz").await.status();
        healthz.push((status.as_u16(), start.elapsed()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut ok, mut shed) = (0, Vec::new());
    for r in flood {
        let (response, took) = r.await.unwrap();
        match response.status().as_u16() {
            200 => ok += 1,
            503 => {
                assert_eq!(response.headers()["retry-after"], "1");
                assert_eq!(assert_error(response, 503).await, "overloaded");
                shed.push(took);
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(healthz.iter().all(|(s, _)| *s == 200), "{healthz:?}");
    // The liveness probe never waits for the CPU (generous bound for a busy shared machine).
    assert!(
        healthz
            .iter()
            .all(|(_, t)| *t < Duration::from_millis(JOB_MS)),
        "{healthz:?}"
    );
    // One job holds the slot; a few may slip in after it ends. The rest are shed, none queued
    // behind a 400 ms job with a 100 ms budget.
    assert!(
        ok >= 1 && shed.len() >= total - 4,
        "ok {ok}, shed {}",
        shed.len()
    );
    assert_eq!(ok + shed.len(), total);
    // At once: faster than the job they would have waited for.
    for took in &shed {
        assert!(*took < Duration::from_millis(JOB_MS), "shed took {took:?}");
    }
    assert_eq!(app.rejected("queue_delay").await, Some(shed.len() as f64));
    assert_eq!(app.rejected("overload").await, Some(0.0));
}
