//! The metric contract of the workload (see docs/metrics.md), recorded into a recorder owned
//! by the [`crate::startup::Application`] rather than a process-global one: several applications in
//! one test process each see only their own traffic, and nothing has to be installed exactly once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::MatchedPath;
use axum::http::{self as http, Method};
use metrics::{
    Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

pub const REQUEST_DURATION: &str = "http_server_request_duration_seconds";
pub const ACTIVE_REQUESTS: &str = "http_server_active_requests";
pub const REJECTED_REQUESTS: &str = "http_server_rejected_requests_total";
/// Open connections on the application port (TLS handshakes included).
pub const OPEN_CONNECTIONS: &str = "http_server_open_connections";
pub const BUILD_INFO: &str = "workload_build_info";
pub const CPU_QUOTA: &str = "workload_cpu_quota_cores";
/// Estimated wait for a CPU slot as of the latest admission decision or job end (seconds).
pub const CPU_QUEUE_ESTIMATED_WAIT: &str = "workload_cpu_queue_estimated_wait_seconds";
/// `--queue-delay-budget`: the estimated wait beyond which CPU jobs are shed (seconds).
pub const CPU_QUEUE_DELAY_BUDGET: &str = "workload_cpu_queue_delay_budget_seconds";
/// Tasks the store removed to make room for a create (`--tasks-when-full evict-oldest`).
pub const TASKS_EVICTED: &str = "workload_tasks_evicted_total";
/// Route label of requests no route matched (404s): one series, whatever the raw path.
pub const UNMATCHED: &str = "unmatched";

/// Histogram buckets (seconds): from sub-millisecond /ping to multi-second CPU work.
pub const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Route template -> [(method label, status, handle)].
type HistogramCache = HashMap<String, Vec<(&'static str, u16, Histogram)>>;

/// Why a request was turned away before a handler produced an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The in-flight limit, or the CPU queue's hard length cap (the memory safety net).
    Overload,
    /// A CPU job whose estimated (or actual) wait for a slot exceeded `--queue-delay-budget`.
    QueueDelay,
    /// The request timeout.
    Timeout,
    /// A connection past `--max-connections`, closed at accept (counted once per connection).
    ConnectionLimit,
}

/// The recorder and the handles the middlewares update.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    process: metrics_process::Collector,
    active: Gauge,
    rejected_overload: Counter,
    rejected_queue_delay: Counter,
    rejected_timeout: Counter,
    rejected_connection_limit: Counter,
    open_connections: Gauge,
    cpu_queue_estimated_wait: Gauge,
    cpu_queue_delay_budget: Gauge,
    tasks_evicted: Counter,
    /// Histogram handles by route, then (method, status): the hot path looks a route up by
    /// `&str` and scans a handful of entries, instead of building an owned label set and hashing
    /// it into the recorder's registry on every request.
    histograms: RwLock<HistogramCache>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh recorder with the contract's series registered (counters at 0, so dashboards see
    /// the series before the first rejection).
    pub fn new(version: &str, cpu_quota_cores: f64) -> Arc<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), BUCKETS)
            .expect("BUCKETS is a non-empty constant")
            .build_recorder();
        let handle = recorder.handle();
        recorder.describe_histogram(
            REQUEST_DURATION.into(),
            Some(Unit::Seconds),
            SharedString::const_str("Duration of HTTP requests on the application port."),
        );
        recorder.describe_gauge(
            ACTIVE_REQUESTS.into(),
            None,
            SharedString::const_str("HTTP requests being served right now."),
        );
        recorder.describe_counter(
            REJECTED_REQUESTS.into(),
            None,
            SharedString::const_str(
                "Requests turned away: overload (in-flight limit or CPU queue cap), queue_delay \
                 (CPU wait above --queue-delay-budget), timeout (request timeout) or \
                 connection_limit (a connection closed at accept, past --max-connections).",
            ),
        );
        recorder.describe_gauge(
            CPU_QUEUE_ESTIMATED_WAIT.into(),
            Some(Unit::Seconds),
            SharedString::const_str(
                "Estimated wait for a CPU slot (running + queued jobs x mean job time / slots).",
            ),
        );
        recorder.describe_gauge(
            CPU_QUEUE_DELAY_BUDGET.into(),
            Some(Unit::Seconds),
            SharedString::const_str(
                "Estimated CPU wait beyond which CPU jobs are shed (--queue-delay-budget).",
            ),
        );
        recorder.describe_gauge(
            OPEN_CONNECTIONS.into(),
            None,
            SharedString::const_str("Open connections on the application port."),
        );
        recorder.describe_counter(
            TASKS_EVICTED.into(),
            None,
            SharedString::const_str(
                "Tasks removed, oldest first, to make room for a create at --tasks-capacity.",
            ),
        );
        recorder.describe_gauge(
            BUILD_INFO.into(),
            None,
            SharedString::const_str("Always 1; the version label says which build runs."),
        );
        recorder.describe_gauge(
            CPU_QUOTA.into(),
            None,
            SharedString::const_str("CPUs this process may use (cgroup quota, else host cores)."),
        );
        let process = metrics_process::Collector::default();
        metrics::with_local_recorder(&recorder, || process.describe());

        let active = recorder.register_gauge(&Key::from_name(ACTIVE_REQUESTS), &METADATA);
        active.set(0.0);
        let rejected = |reason: &'static str| {
            let c = recorder.register_counter(
                &Key::from_parts(REJECTED_REQUESTS, vec![Label::new("reason", reason)]),
                &METADATA,
            );
            c.absolute(0);
            c
        };
        let rejected_overload = rejected("overload");
        let rejected_queue_delay = rejected("queue_delay");
        let rejected_timeout = rejected("timeout");
        let rejected_connection_limit = rejected("connection_limit");
        let tasks_evicted = recorder.register_counter(&Key::from_name(TASKS_EVICTED), &METADATA);
        tasks_evicted.absolute(0);
        let open_connections =
            recorder.register_gauge(&Key::from_name(OPEN_CONNECTIONS), &METADATA);
        open_connections.set(0.0);
        let gauge = |name: &'static str| {
            let g = recorder.register_gauge(&Key::from_name(name), &METADATA);
            g.set(0.0);
            g
        };
        let cpu_queue_estimated_wait = gauge(CPU_QUEUE_ESTIMATED_WAIT);
        let cpu_queue_delay_budget = gauge(CPU_QUEUE_DELAY_BUDGET);
        recorder
            .register_gauge(
                &Key::from_parts(BUILD_INFO, vec![Label::new("version", version.to_string())]),
                &METADATA,
            )
            .set(1.0);
        recorder
            .register_gauge(&Key::from_name(CPU_QUOTA), &METADATA)
            .set(cpu_quota_cores);

        Arc::new(Self {
            recorder,
            handle,
            process,
            active,
            rejected_overload,
            rejected_queue_delay,
            rejected_timeout,
            rejected_connection_limit,
            open_connections,
            cpu_queue_estimated_wait,
            cpu_queue_delay_budget,
            tasks_evicted,
            histograms: RwLock::new(HashMap::new()),
        })
    }

    /// The counter of evicted tasks, for the task store to count its evictions on.
    pub fn tasks_evicted(&self) -> Counter {
        self.tasks_evicted.clone()
    }

    pub fn reject(&self, reason: RejectReason) {
        match reason {
            RejectReason::Overload => self.rejected_overload.increment(1),
            RejectReason::QueueDelay => self.rejected_queue_delay.increment(1),
            RejectReason::Timeout => self.rejected_timeout.increment(1),
            RejectReason::ConnectionLimit => self.rejected_connection_limit.increment(1),
        }
    }

    /// One more (`+1.0`) or one fewer (`-1.0`) open connection.
    pub fn connections_changed(&self, delta: f64) {
        self.open_connections.increment(delta);
    }

    /// Sets the CPU queue's estimated-wait gauge.
    pub fn set_cpu_queue_estimated_wait(&self, wait: Duration) {
        self.cpu_queue_estimated_wait.set(wait.as_secs_f64());
    }

    /// Sets the CPU queue's delay-budget gauge (once, at startup).
    pub fn set_cpu_queue_delay_budget(&self, budget: Duration) {
        self.cpu_queue_delay_budget.set(budget.as_secs_f64());
    }

    /// Records one finished request.
    pub fn observe(&self, method: &Method, route: &str, status: u16, elapsed: Duration) {
        let method = method_label(method);
        let seconds = elapsed.as_secs_f64();
        {
            let cache = self.histograms.read().unwrap_or_else(|p| p.into_inner());
            if let Some((_, _, h)) = cache
                .get(route)
                .and_then(|v| v.iter().find(|(m, s, _)| *m == method && *s == status))
            {
                h.record(seconds);
                return;
            }
        }
        let labels = vec![
            Label::new("method", method),
            Label::new("route", route.to_string()),
            Label::new("status", status_label(status)),
        ];
        let histogram = self
            .recorder
            .register_histogram(&Key::from_parts(REQUEST_DURATION, labels), &METADATA);
        histogram.record(seconds);
        let mut cache = self.histograms.write().unwrap_or_else(|p| p.into_inner());
        let entries = cache.entry(route.to_string()).or_default();
        if !entries.iter().any(|(m, s, _)| *m == method && *s == status) {
            entries.push((method, status, histogram));
        }
    }

    /// The Prometheus text exposition, with fresh process_* figures.
    pub fn render(&self) -> String {
        metrics::with_local_recorder(&self.recorder, || self.process.collect());
        // metrics-process records CPU seconds as a gauge to keep the fraction (its counter mode
        // truncates to whole seconds); it is a counter, and is exposed as one.
        self.handle.render().replacen(
            "# TYPE process_cpu_seconds_total gauge",
            "# TYPE process_cpu_seconds_total counter",
            1,
        )
    }

    /// Folds recorded histogram samples into buckets; run periodically so memory stays flat even
    /// when nobody scrapes.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// Method label with a closed set of values: an attacker's made-up methods must not create series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}

fn status_label(status: u16) -> SharedString {
    // The common codes as static strings: no allocation on the hot path.
    match status {
        200 => SharedString::const_str("200"),
        201 => SharedString::const_str("201"),
        204 => SharedString::const_str("204"),
        404 => SharedString::const_str("404"),
        500 => SharedString::const_str("500"),
        503 => SharedString::const_str("503"),
        other => SharedString::from(other.to_string()),
    }
}

/// Tower layer recording the active gauge and the duration histogram, labelled with the route
/// template. Added with `Router::layer`, so it wraps each route and [`MatchedPath`] is set.
///
/// Hand-written rather than `axum::middleware::from_fn`: that allocates a boxed service and a
/// boxed future per request, which was a measurable part of the layer's cost on `/ping`.
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
}

impl MetricsLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// See [`MetricsLayer`].
#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for MetricsService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = MetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let pending = InFlight {
            start: Instant::now(),
            method: req.method().clone(),
            // Cloning MatchedPath clones an Arc, not the string.
            route: req.extensions().get::<MatchedPath>().cloned(),
            metrics: self.metrics.clone(),
        };
        pending.metrics.active.increment(1.0);
        MetricsFuture {
            inner: self.inner.call(req),
            pending: Some(pending),
        }
    }
}

/// A request being measured. Dropping it (the client went away, the future was dropped) still
/// decrements the active gauge.
struct InFlight {
    start: Instant,
    method: Method,
    route: Option<MatchedPath>,
    metrics: Arc<Metrics>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.active.decrement(1.0);
    }
}

pin_project_lite::pin_project! {
    /// Future of [`MetricsService`].
    pub struct MetricsFuture<F> {
        #[pin]
        inner: F,
        pending: Option<InFlight>,
    }
}

impl<F, ResBody, E> Future for MetricsFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Some(pending) = this.pending.take() {
            // An error never reaches the client as such in axum (errors are Infallible), so only
            // responses are recorded.
            if let Ok(response) = &result {
                pending.metrics.observe(
                    &pending.method,
                    pending
                        .route
                        .as_ref()
                        .map_or(UNMATCHED, MatchedPath::as_str),
                    response.status().as_u16(),
                    pending.start.elapsed(),
                );
            }
        }
        Poll::Ready(result)
    }
}

/// Parses the exposition into (series-with-labels, value) pairs; for tests and tools.
pub fn parse_exposition(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}
