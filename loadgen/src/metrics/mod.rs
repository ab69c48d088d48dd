//! Prometheus metrics of a run (names and labels from the shared metric contract), served at
//! `--metrics-addr` and optionally pushed with remote write.
//!
//! The recorder is held in an `Arc` and handles are registered on it directly, never installed as
//! the process-wide recorder: several runs in one process (tests) each get their own registry, and
//! the replica watcher records through [`WatchGauges`] taken from the run's recorder.

pub mod names;
pub mod native;
pub mod native_latency;
pub mod remote_write;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};

use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use names::MetricDef;
use native_latency::{HistogramExport, NativeLatency};
use remote_write::TimeSeries;

use crate::model::outcome::{ErrorKind, Failure, Outcome, OutcomeSink};

/// Buckets of `loadgen_request_duration_seconds` (seconds): 1 ms to 60 s.
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Buckets of `loadgen_cold_start_seconds` (seconds): a warm pod answers in well under 100 ms, a
/// Knative cold start (schedule, pull, start, readiness) takes from one second to minutes.
pub const COLD_START_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0,
];

static META: Metadata<'static> = Metadata::new("loadgen", metrics::Level::INFO, Some("loadgen"));

/// The metrics of one run. Without `--metrics-addr` or `--remote-write` every handle is a no-op.
pub struct RunMetrics {
    recorder: Option<Arc<PrometheusRecorder>>,
    handle: Option<PrometheusHandle>,
    scenario: String,
    pub target_rate: Gauge,
    pub active_users: Gauge,
    pub in_flight: Gauge,
    pub dropped: Counter,
    pub late: Counter,
    pub schedule_lag: Gauge,
    pub connections_opened: Counter,
    /// Indexed by [`crate::lifetime::CloseReason::index`].
    connection_closes: Vec<Counter>,
    errors: Vec<Counter>,
    /// (endpoint, status) -> counter; status is a code or an error kind.
    requests: Mutex<HashMap<(usize, String), Counter>>,
    backends: Mutex<HashMap<String, Counter>>,
    upkeeps: std::sync::atomic::AtomicU64,
    /// The labels on every series (run, deployment, --label), for the series made here.
    global_labels: Vec<(String, String)>,
    /// Endpoint names by [`EndpointMetrics::index`].
    endpoint_names: Mutex<Vec<String>>,
    /// The durations as HDR histograms, when remote write exports native histograms.
    native: Option<NativeLatency>,
}

impl std::fmt::Debug for RunMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunMetrics")
            .field("enabled", &self.recorder.is_some())
            .finish()
    }
}

/// Per-endpoint histogram handles: [success, failure].
#[derive(Clone)]
pub struct EndpointMetrics {
    pub duration: [Histogram; 2],
    pub name: String,
    /// The endpoint's place among the run's (one per distinct name).
    pub index: usize,
}

impl RunMetrics {
    /// Disabled metrics.
    pub fn disabled(scenario: &str) -> Self {
        Self {
            recorder: None,
            handle: None,
            scenario: scenario.to_string(),
            target_rate: Gauge::noop(),
            active_users: Gauge::noop(),
            in_flight: Gauge::noop(),
            dropped: Counter::noop(),
            late: Counter::noop(),
            schedule_lag: Gauge::noop(),
            connections_opened: Counter::noop(),
            connection_closes: Vec::new(),
            errors: Vec::new(),
            requests: Mutex::new(HashMap::new()),
            backends: Mutex::new(HashMap::new()),
            upkeeps: Default::default(),
            global_labels: Vec::new(),
            endpoint_names: Mutex::new(Vec::new()),
            native: None,
        }
    }

    /// Builds a registry with the `run`, `deployment` and extra labels on every series.
    pub fn enabled(scenario: &str, global_labels: &[(String, String)]) -> Self {
        let mut b = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(names::REQUEST_DURATION.name.into()),
                DURATION_BUCKETS,
            )
            .expect("static buckets are valid")
            .set_buckets_for_metric(
                Matcher::Full(names::COLD_START_DURATION.name.into()),
                COLD_START_BUCKETS,
            )
            .expect("static buckets are valid");
        for (k, v) in global_labels {
            b = b.add_global_label(k.clone(), v.clone());
        }
        let recorder = Arc::new(b.build_recorder());
        names::describe(&*recorder);
        let handle = recorder.handle();
        let r = &recorder;
        let gauge = |m: MetricDef| r.register_gauge(&Key::from_name(m.name), &META);
        let counter = |m: MetricDef| r.register_counter(&Key::from_name(m.name), &META);
        let errors = crate::model::outcome::ErrorKind::ALL
            .iter()
            .map(|k| {
                r.register_counter(
                    &Key::from_parts(names::ERRORS.name, vec![Label::new("kind", k.as_str())]),
                    &META,
                )
            })
            .collect();
        let connection_closes = crate::lifetime::CloseReason::ALL
            .iter()
            .map(|why| {
                r.register_counter(
                    &Key::from_parts(
                        names::CONNECTION_CLOSES.name,
                        vec![Label::new("reason", why.as_str())],
                    ),
                    &META,
                )
            })
            .collect();
        let m = Self {
            connections_opened: counter(names::CONNECTIONS_OPENED),
            connection_closes,
            target_rate: gauge(names::TARGET_RATE),
            active_users: gauge(names::ACTIVE_USERS),
            in_flight: gauge(names::IN_FLIGHT),
            dropped: counter(names::DROPPED_ITERATIONS),
            late: counter(names::LATE_ITERATIONS),
            schedule_lag: gauge(names::SCHEDULE_LAG),
            errors,
            requests: Mutex::new(HashMap::new()),
            backends: Mutex::new(HashMap::new()),
            scenario: scenario.to_string(),
            upkeeps: Default::default(),
            global_labels: global_labels.to_vec(),
            endpoint_names: Mutex::new(Vec::new()),
            native: None,
            handle: Some(handle),
            recorder: Some(recorder),
        };
        // Zero-valued series exist from the first scrape, so rate() works from the start.
        m.target_rate.set(0.0);
        m.active_users.set(0.0);
        m.in_flight.set(0.0);
        m.dropped.absolute(0);
        m.late.absolute(0);
        m.schedule_lag.set(0.0);
        m.connections_opened.absolute(0);
        for c in &m.connection_closes {
            c.absolute(0);
        }
        m
    }

    pub fn is_enabled(&self) -> bool {
        self.recorder.is_some()
    }

    /// Also keeps the request durations as HDR histograms, for native histograms in remote write
    /// (a no-op on disabled metrics).
    pub fn with_native_histograms(mut self) -> Self {
        if self.is_enabled() {
            self.native = Some(NativeLatency::new());
        }
        self
    }

    /// What one remote write carries now: every series of the exposition, with the request
    /// durations as `export` says (classic `_bucket`/`_sum`/`_count` series, native histograms
    /// of the same name and labels, or both), stamped `ts_ms`.
    pub fn remote_write_series(&self, export: HistogramExport, ts_ms: i64) -> Vec<TimeSeries> {
        let mut series = remote_write::parse_exposition(&self.render(), ts_ms);
        if !export.classic() {
            let classic = [
                format!("{}_bucket", names::REQUEST_DURATION.name),
                format!("{}_sum", names::REQUEST_DURATION.name),
                format!("{}_count", names::REQUEST_DURATION.name),
            ];
            series.retain(|s| {
                let name = s.labels.iter().find(|l| l.name == "__name__");
                !name.is_some_and(|n| classic.contains(&n.value))
            });
        }
        if export.native() {
            series.extend(self.native_series(ts_ms));
        }
        series
    }

    /// `loadgen_request_duration_seconds` as native histograms, one series per endpoint and
    /// outcome, as the classic ones are registered: from zero counts before the first request,
    /// so a rate over the run counts it whole (none unless [`RunMetrics::with_native_histograms`]).
    fn native_series(&self, ts_ms: i64) -> Vec<TimeSeries> {
        let Some(native) = &self.native else {
            return Vec::new();
        };
        let endpoints = lock(&self.endpoint_names).clone();
        let mut recorded: HashMap<(usize, bool), hdrhistogram::Histogram<u64>> = native
            .snapshot()
            .into_iter()
            .map(|(endpoint, success, h)| ((endpoint, success), h))
            .collect();
        (0..endpoints.len())
            .flat_map(|endpoint| [(endpoint, true), (endpoint, false)])
            .map(|key| {
                let h = recorded
                    .remove(&key)
                    .unwrap_or_else(crate::model::hist::new_small_hist);
                (key.0, key.1, h)
            })
            .filter_map(|(endpoint, success, h)| {
                let name = endpoints.get(endpoint)?;
                let outcome = if success { "success" } else { "failure" };
                let mut labels: Vec<remote_write::Label> = [
                    ("__name__", names::REQUEST_DURATION.name),
                    ("scenario", self.scenario.as_str()),
                    ("endpoint", name.as_str()),
                    ("outcome", outcome),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain(self.global_labels.iter().cloned())
                .map(|(name, value)| remote_write::Label { name, value })
                .collect();
                labels.sort_by(|a, b| a.name.cmp(&b.name));
                let hist = native::from_hdr(&h, 1e6);
                Some(TimeSeries {
                    labels,
                    samples: Vec::new(),
                    histograms: vec![remote_write::Histogram::from_native(&hist, ts_ms)],
                })
            })
            .collect()
    }

    /// Folds the histogram samples recorded since the last call into their buckets.
    ///
    /// A recorder from `build_recorder()` has no upkeep task of its own: every observation of
    /// `loadgen_request_duration_seconds` stays queued until a render or an upkeep drains it, so
    /// a run nobody scrapes would grow with its request count. The engine calls this every
    /// second (its ticker), which keeps memory constant whether or not anyone scrapes.
    pub fn run_upkeep(&self) {
        if let Some(h) = &self.handle {
            h.run_upkeep();
            self.upkeeps
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// How many times [`RunMetrics::run_upkeep`] drained the recorder (0 when disabled).
    pub fn upkeeps(&self) -> u64 {
        self.upkeeps.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The exposition text (what `/metrics` serves).
    pub fn render(&self) -> String {
        self.handle.as_ref().map(|h| h.render()).unwrap_or_default()
    }

    /// Histogram handles of an endpoint.
    pub fn endpoint(&self, name: &str) -> EndpointMetrics {
        let index = {
            let mut names = lock(&self.endpoint_names);
            names.iter().position(|n| n == name).unwrap_or_else(|| {
                names.push(name.to_string());
                names.len() - 1
            })
        };
        let h = |outcome: &'static str| match &self.recorder {
            Some(r) => r.register_histogram(
                &Key::from_parts(
                    names::REQUEST_DURATION.name,
                    vec![
                        Label::new("scenario", self.scenario.clone()),
                        Label::new("endpoint", name.to_string()),
                        Label::new("outcome", outcome),
                    ],
                ),
                &META,
            ),
            None => Histogram::noop(),
        };
        EndpointMetrics {
            duration: [h("success"), h("failure")],
            name: name.to_string(),
            index,
        }
    }

    /// `loadgen_requests_total{endpoint, status}`; callers cache the handle per worker.
    pub fn requests_counter(&self, ep: &EndpointMetrics, endpoint: usize, status: &str) -> Counter {
        let Some(r) = &self.recorder else {
            return Counter::noop();
        };
        let mut map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((endpoint, status.to_string()))
            .or_insert_with(|| {
                r.register_counter(
                    &Key::from_parts(
                        names::REQUESTS.name,
                        vec![
                            Label::new("endpoint", ep.name.clone()),
                            Label::new("status", status.to_string()),
                        ],
                    ),
                    &META,
                )
            })
            .clone()
    }

    /// `loadgen_backend_requests_total{backend}`.
    pub fn backend_counter(&self, backend: &str) -> Counter {
        let Some(r) = &self.recorder else {
            return Counter::noop();
        };
        let mut map = self.backends.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= 1024 && !map.contains_key(backend) {
            return Counter::noop();
        }
        map.entry(backend.to_string())
            .or_insert_with(|| {
                r.register_counter(
                    &Key::from_parts(
                        names::BACKEND_REQUESTS.name,
                        vec![Label::new("backend", backend.to_string())],
                    ),
                    &META,
                )
            })
            .clone()
    }

    /// Publishes the scale events of a finished run: their count, and the figures of the last
    /// one. A figure the last event never reached (pods never ready, no new backend answered, p99
    /// never recovered) is NaN, not an older event's value: "never" is the finding.
    pub fn record_scale_events(&self, events: &[crate::model::scale_events::ScaleEvent]) {
        let Some(r) = &self.recorder else {
            return;
        };
        let set = |m: MetricDef, v: f64| r.register_gauge(&Key::from_name(m.name), &META).set(v);
        set(names::SCALE_EVENTS, events.len() as f64);
        let Some(last) = events.last() else {
            return;
        };
        let or_nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
        set(
            names::SCALE_EVENT_TIME_TO_READY,
            or_nan(last.time_to_ready_s),
        );
        set(
            names::SCALE_EVENT_TIME_TO_FIRST_RESPONSE,
            or_nan(last.time_to_first_new_backend_s),
        );
        set(names::SCALE_EVENT_RECOVERY, or_nan(last.recovery_s));
    }

    /// The cold-start counter and histogram on this run's recorder (no-ops when metrics are
    /// off); the counter exists from the first scrape, at 0.
    pub fn cold_start_metrics(&self) -> ColdStartMetrics {
        match &self.recorder {
            Some(r) => {
                let opened = r.register_counter(&Key::from_name(names::COLD_STARTS.name), &META);
                opened.absolute(0);
                ColdStartMetrics {
                    opened,
                    seconds: r.register_histogram(
                        &Key::from_name(names::COLD_START_DURATION.name),
                        &META,
                    ),
                }
            }
            None => ColdStartMetrics::noop(),
        }
    }

    /// The replica watcher's gauges on this run's recorder.
    pub fn watch_gauges(&self) -> WatchGauges {
        match &self.recorder {
            Some(r) => WatchGauges::register(&**r),
            None => WatchGauges::noop(),
        }
    }

    /// `loadgen_connection_closes_total{reason}`.
    pub fn connection_closed(&self, why: crate::lifetime::CloseReason) {
        if let Some(c) = self.connection_closes.get(why.index()) {
            c.increment(1);
        }
    }

    /// `loadgen_errors_total{kind}`.
    pub fn error(&self, kind: crate::model::outcome::ErrorKind) {
        if let Some(c) = self.errors.get(kind.index()) {
            c.increment(1);
        }
    }
}

/// The replica watcher's gauges, registered on a run's recorder (no-ops when metrics are off), so
/// the watcher needs no process-wide recorder.
#[derive(Clone)]
pub struct WatchGauges {
    pub desired: Gauge,
    pub current: Gauge,
    pub ready: Gauge,
    pub cpu_utilization_percent: Gauge,
}

impl WatchGauges {
    /// No-op gauges (metrics off).
    pub fn noop() -> Self {
        Self {
            desired: Gauge::noop(),
            current: Gauge::noop(),
            ready: Gauge::noop(),
            cpu_utilization_percent: Gauge::noop(),
        }
    }

    /// `loadgen_observed_replicas{kind}` and `loadgen_observed_cpu_utilization_percent` on
    /// `recorder`.
    pub fn register(recorder: &impl Recorder) -> Self {
        let replicas = |kind: &'static str| {
            recorder.register_gauge(
                &Key::from_parts(
                    names::OBSERVED_REPLICAS.name,
                    vec![Label::new("kind", kind)],
                ),
                &META,
            )
        };
        Self {
            desired: replicas("desired"),
            current: replicas("current"),
            ready: replicas("ready"),
            cpu_utilization_percent: recorder
                .register_gauge(&Key::from_name(names::OBSERVED_CPU_UTILIZATION.name), &META),
        }
    }
}

impl std::fmt::Debug for WatchGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchGauges").finish_non_exhaustive()
    }
}

/// `loadgen_cold_starts_total` and `loadgen_cold_start_seconds`, which [`crate::coldstart`]
/// records into as cold starts open and are answered.
#[derive(Clone)]
pub struct ColdStartMetrics {
    pub opened: Counter,
    pub seconds: Histogram,
}

impl ColdStartMetrics {
    pub fn noop() -> Self {
        Self {
            opened: Counter::noop(),
            seconds: Histogram::noop(),
        }
    }
}

impl std::fmt::Debug for ColdStartMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdStartMetrics").finish_non_exhaustive()
    }
}

/// A worker's own handles of the request and backend counters, so the hot path looks a series up
/// in a local map instead of the shared registry (its lock) on every request.
#[derive(Default)]
pub struct CounterCache {
    requests: HashMap<(usize, u16), Counter>,
    backends: HashMap<String, Counter>,
    /// The series each was last incremented on: consecutive requests mostly land on the same
    /// one, and comparing a key is cheaper than hashing it (SipHash, twice per request, showed
    /// in the closed-loop profile).
    last_request: Option<((usize, u16), Counter)>,
    last_backend: Option<(String, Counter)>,
    /// This worker's shard of the native-histogram durations, taken on its first request.
    native_shard: Option<usize>,
}

/// Most backends a worker caches handles for (a hostile `x-served-by` cannot grow memory).
const MAX_CACHED_BACKENDS: usize = 1024;

/// The Prometheus series as a worker's [`OutcomeSink`]: the duration histogram of the endpoint,
/// and (when metrics are enabled) the request, error and backend counters.
pub struct MetricsSink<'a> {
    pub run: &'a RunMetrics,
    pub endpoints: &'a [EndpointMetrics],
    pub cache: &'a mut CounterCache,
}

impl OutcomeSink for MetricsSink<'_> {
    fn record(&mut self, o: &Outcome<'_>, _done: Instant) {
        let ep = &self.endpoints[o.endpoint];
        ep.duration[usize::from(!o.success)].record(o.latency_us as f64 / 1e6);
        if let Some(native) = &self.run.native {
            let shard = *self
                .cache
                .native_shard
                .get_or_insert_with(|| native.assign_shard());
            native.record(shard, ep.index, o.success, o.latency_us);
        }
        if !self.run.is_enabled() {
            return;
        }
        match o.failure {
            Some(Failure::Transport(kind)) => {
                self.run.error(kind);
                self.count(o.endpoint, 0, Some(kind));
            }
            _ => {
                self.count(o.endpoint, o.status.unwrap_or(0), None);
                if let Some(b) = o.backend {
                    self.count_backend(b);
                }
            }
        }
    }
}

impl MetricsSink<'_> {
    fn count(&mut self, endpoint: usize, status: u16, kind: Option<ErrorKind>) {
        let key = (endpoint, kind.map_or(status, |k| 1000 + k.index() as u16));
        if let Some((k, c)) = &self.cache.last_request
            && *k == key
        {
            c.increment(1);
            return;
        }
        if let Some(c) = self.cache.requests.get(&key) {
            c.increment(1);
            self.cache.last_request = Some((key, c.clone()));
            return;
        }
        let label = kind.map_or_else(|| status.to_string(), |k| k.as_str().to_string());
        let c = self
            .run
            .requests_counter(&self.endpoints[endpoint], endpoint, &label);
        c.increment(1);
        self.cache.requests.insert(key, c);
    }

    fn count_backend(&mut self, backend: &str) {
        if let Some((b, c)) = &self.cache.last_backend
            && b == backend
        {
            c.increment(1);
            return;
        }
        if let Some(c) = self.cache.backends.get(backend) {
            c.increment(1);
            // Reuses the memo's string: backends that alternate must not allocate per request.
            match &mut self.cache.last_backend {
                Some((b, last)) => {
                    b.clear();
                    b.push_str(backend);
                    *last = c.clone();
                }
                None => self.cache.last_backend = Some((backend.to_string(), c.clone())),
            }
            return;
        }
        let c = self.run.backend_counter(backend);
        c.increment(1);
        if self.cache.backends.len() < MAX_CACHED_BACKENDS {
            self.cache.backends.insert(backend.to_string(), c);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves `/metrics` on `addr` until `shutdown` resolves; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<RunMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let m = Arc::clone(&metrics);
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = Arc::clone(&m);
                async move {
                    (
                        [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        m.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outcome::Outcome;

    fn outcome(endpoint: usize, latency_us: u64, success: bool) -> Outcome<'static> {
        Outcome {
            endpoint,
            latency_us,
            service_us: latency_us,
            status: Some(if success { 200 } else { 500 }),
            failure: None,
            success,
            backend: None,
        }
    }

    /// A run with two endpoints: /a answered twice in 1 ms, once failing in 300 ms; /b never.
    fn recorded(native: bool) -> RunMetrics {
        let labels = [
            ("run".into(), "r1".into()),
            ("deployment".into(), "d".into()),
        ];
        let mut m = RunMetrics::enabled("s", &labels);
        if native {
            m = m.with_native_histograms();
        }
        let endpoints = [m.endpoint("GET /a"), m.endpoint("GET /b")];
        let mut cache = CounterCache::default();
        let mut sink = MetricsSink {
            run: &m,
            endpoints: &endpoints,
            cache: &mut cache,
        };
        for o in [
            outcome(0, 1_000, true),
            outcome(0, 1_000, true),
            outcome(0, 300_000, false),
        ] {
            sink.record(&o, Instant::now());
        }
        m.run_upkeep();
        m
    }

    fn name(s: &TimeSeries) -> &str {
        &s.labels
            .iter()
            .find(|l| l.name == "__name__")
            .unwrap()
            .value
    }

    fn label<'a>(s: &'a TimeSeries, key: &str) -> Option<&'a str> {
        s.labels
            .iter()
            .find(|l| l.name == key)
            .map(|l| l.value.as_str())
    }

    #[test]
    fn both_carries_the_classic_series_and_one_native_histogram_per_endpoint_and_outcome() {
        let series = recorded(true).remote_write_series(HistogramExport::Both, 7);
        let all: Vec<&TimeSeries> = series.iter().filter(|s| !s.histograms.is_empty()).collect();
        assert_eq!(all.len(), 4, "two endpoints, two outcomes: {all:?}");
        // /b has had no request: its series are there from zero, as the classic ones are.
        let (native, never): (Vec<&TimeSeries>, Vec<&TimeSeries>) = all
            .into_iter()
            .partition(|s| label(s, "endpoint") == Some("GET /a"));
        use remote_write::HistogramCount::Int;
        for s in never {
            assert_eq!(s.histograms[0].count, Some(Int(0)));
            assert!(s.histograms[0].positive_spans.is_empty());
        }
        for s in &native {
            assert_eq!(name(s), names::REQUEST_DURATION.name);
            assert!(s.samples.is_empty());
            assert!(
                s.labels.windows(2).all(|w| w[0].name < w[1].name),
                "labels sorted"
            );
            assert_eq!(
                (label(s, "run"), label(s, "deployment")),
                (Some("r1"), Some("d"))
            );
            assert_eq!(
                (label(s, "scenario"), label(s, "endpoint")),
                (Some("s"), Some("GET /a"))
            );
            assert_eq!(s.histograms[0].timestamp, 7);
        }
        let count = |outcome: &str| {
            let s = native
                .iter()
                .find(|s| label(s, "outcome") == Some(outcome))
                .unwrap();
            s.histograms[0].count.clone()
        };
        assert_eq!(
            (count("success"), count("failure")),
            (Some(Int(2)), Some(Int(1)))
        );
        let bucket = format!("{}_bucket", names::REQUEST_DURATION.name);
        assert!(series.iter().any(|s| name(s) == bucket));
        let req = remote_write::WriteRequest { timeseries: series };
        assert_eq!(
            remote_write::decode(&remote_write::encode(&req)).unwrap(),
            req
        );
    }

    #[test]
    fn native_drops_the_classic_duration_series_and_keeps_the_others() {
        let series = recorded(true).remote_write_series(HistogramExport::Native, 7);
        let duration = names::REQUEST_DURATION.name;
        for suffix in ["_bucket", "_sum", "_count"] {
            let classic = format!("{duration}{suffix}");
            assert!(!series.iter().any(|s| name(s) == classic), "{classic} sent");
        }
        assert!(series.iter().any(|s| name(s) == names::REQUESTS.name));
        assert_eq!(
            series.iter().filter(|s| !s.histograms.is_empty()).count(),
            4
        );
    }

    #[test]
    fn classic_sends_no_native_histogram_and_keeps_none_in_memory() {
        let m = recorded(false);
        assert!(m.native.is_none());
        let series = m.remote_write_series(HistogramExport::Classic, 7);
        assert!(series.iter().all(|s| s.histograms.is_empty()));
        assert!(
            series
                .iter()
                .any(|s| name(s) == format!("{}_count", names::REQUEST_DURATION.name))
        );
    }

    #[test]
    fn disabled_metrics_keep_no_durations() {
        assert!(
            RunMetrics::disabled("s")
                .with_native_histograms()
                .native
                .is_none()
        );
    }
}
