//! Where a worker records each finished request: one fan-out over the stats, the Prometheus series
//! and the live counters the progress line reads.
//!
//! The fan-out is a struct of the three concrete sinks, built on the worker's stack for each
//! outcome from borrowed parts: no allocation, no `dyn` call, and no lock beyond the stats
//! shard's, as before.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::metrics::MetricsSink;
use crate::model::outcome::{Outcome, OutcomeSink};
use crate::stats::ShardSink;

/// Requests and failures so far, for the progress line ([`super::Live`]).
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub requests: AtomicU64,
    pub failures: AtomicU64,
}

impl OutcomeSink for &LiveCounters {
    fn record(&mut self, o: &Outcome<'_>, _done: Instant) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !o.success {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Every sink of a run, each outcome recorded into all of them.
pub struct Sinks<'a> {
    pub stats: ShardSink<'a>,
    pub metrics: MetricsSink<'a>,
    pub live: &'a LiveCounters,
}

impl OutcomeSink for Sinks<'_> {
    fn record(&mut self, o: &Outcome<'_>, done: Instant) {
        self.stats.record(o, done);
        self.metrics.record(o, done);
        self.live.record(o, done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{CounterCache, RunMetrics};
    use crate::model::outcome::ErrorKind;
    use crate::model::outcome::Failure;
    use crate::stats::Stats;

    /// One worker's sinks over fresh stats, live counters and metrics.
    struct Bench {
        start: Instant,
        stats: Stats,
        live: LiveCounters,
        run: RunMetrics,
        endpoints: Vec<crate::metrics::EndpointMetrics>,
        cache: CounterCache,
    }

    impl Bench {
        fn new() -> Self {
            let start = Instant::now();
            let run = RunMetrics::enabled("sink", &[("run".into(), "t".into())]);
            Self {
                start,
                stats: Stats::new(1, 2, start),
                live: LiveCounters::default(),
                endpoints: vec![run.endpoint("ping")],
                run,
                cache: CounterCache::default(),
            }
        }

        fn record(&mut self, o: &Outcome<'_>) {
            Sinks {
                stats: ShardSink {
                    stats: &self.stats,
                    worker: 0,
                },
                metrics: MetricsSink {
                    run: &self.run,
                    endpoints: &self.endpoints,
                    cache: &mut self.cache,
                },
                live: &self.live,
            }
            .record(o, self.start);
        }

        fn assert_series(&self, series: &[&str]) {
            let text = self.run.render();
            for s in series {
                assert!(text.lines().any(|l| l == *s), "{s} missing in:\n{text}");
            }
        }
    }

    const OK: Outcome<'static> = Outcome {
        endpoint: 0,
        latency_us: 1_500,
        service_us: 1_000,
        status: Some(200),
        failure: None,
        success: true,
        backend: Some("pod-a"),
    };

    #[test]
    fn one_record_reaches_the_stats_the_metrics_and_the_live_counters() {
        let mut b = Bench::new();
        let refused = Outcome {
            status: None,
            failure: Some(Failure::Transport(ErrorKind::ConnectRefused)),
            success: false,
            backend: None,
            ..OK
        };
        for o in [&OK, &OK, &refused] {
            b.record(o);
        }
        let overall = b.stats.totals().overall();
        assert_eq!((overall.successes, overall.failures), (2, 1));
        assert_eq!(b.live.requests.load(Ordering::Relaxed), 3);
        assert_eq!(b.live.failures.load(Ordering::Relaxed), 1);
        b.assert_series(&[
            r#"loadgen_requests_total{run="t",endpoint="ping",status="200"} 2"#,
            r#"loadgen_requests_total{run="t",endpoint="ping",status="connect_refused"} 1"#,
            r#"loadgen_errors_total{run="t",kind="connect_refused"} 1"#,
            r#"loadgen_backend_requests_total{run="t",backend="pod-a"} 2"#,
        ]);
    }

    #[test]
    fn alternating_backends_and_statuses_each_count_on_their_own_series() {
        let mut b = Bench::new();
        for (status, backend) in [
            (200, "pod-a"),
            (200, "pod-b"),
            (500, "pod-a"),
            (200, "pod-a"),
            (200, "pod-b"),
        ] {
            b.record(&Outcome {
                status: Some(status),
                success: status < 400,
                backend: Some(backend),
                ..OK
            });
        }
        b.assert_series(&[
            r#"loadgen_requests_total{run="t",endpoint="ping",status="200"} 4"#,
            r#"loadgen_requests_total{run="t",endpoint="ping",status="500"} 1"#,
            r#"loadgen_backend_requests_total{run="t",backend="pod-a"} 3"#,
            r#"loadgen_backend_requests_total{run="t",backend="pod-b"} 2"#,
        ]);
    }
}
