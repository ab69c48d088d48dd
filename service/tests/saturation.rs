//! CPU work never blocks the async runtime: /ping keeps answering while CPU jobs saturate every
//! core. If CPU work ran on the runtime's workers, each ping would wait for a 1.5 s job.

mod common;

use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_stays_fast_while_cpu_is_saturated() {
    let mut config = common::config();
    config.cpu_workers = Some(2);
    // Six 1.5 s jobs on two slots are a 3 s backlog, the default budget (a tenth of the 30 s
    // timeout): this test is about the runtime staying free, so every job must be admitted.
    config.queue_delay_budget = Some(config.request_timeout);
    let app = common::spawn(config).await;

    let started = Instant::now();
    let mut jobs = Vec::new();
    for i in 0..6 {
        let client = app.client.clone();
        let url = if i % 3 == 2 {
            // The classic endpoint's worst case (a prime just under the cap) joins in.
            app.url("/api/v1/hello")
        } else {
            app.url("/work/cpu?ms=1500")
        };
        jobs.push(tokio::spawn(async move {
            let request = if url.ends_with("hello") {
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(r#"{"n": 9999999999971}"#)
            } else {
                client.get(url)
            };
            request.send().await.unwrap().status()
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut latencies = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let r = app.get("/ping").await;
        assert_eq!(r.status(), 200);
        latencies.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu_busy_until = started.elapsed();
    for j in jobs {
        assert_eq!(j.await.unwrap(), 200);
    }
    let all_done = started.elapsed();
    // The CPU was really saturated throughout the pings: 4 jobs of 1.5 s on 2 slots take >= 3 s.
    assert!(all_done >= Duration::from_millis(3000), "{all_done:?}");
    assert!(cpu_busy_until < all_done);

    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let max = *latencies.last().unwrap();
    // Bounds generous enough for a noisy shared 2-core machine, far below a 1.5 s job.
    assert!(
        median < Duration::from_millis(150),
        "median {median:?}, all {latencies:?}"
    );
    assert!(
        max < Duration::from_millis(1000),
        "max {max:?}, all {latencies:?}"
    );
}
