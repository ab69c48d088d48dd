//! The run's data: the JSON run report (what `--out` writes, what `merge`, `compare` and
//! `report --html` read), its summary, time points, latency and connection figures, the HDR
//! histogram encoding ([`hist`]), the per-phase rows ([`phases`]), one request's [`outcome`] and
//! a capacity search's section ([`capacity`]). The engine, stats, self-monitoring and thresholds
//! fill it; `crate::report` only renders and merges it.
//!
//! Why histograms are serialized in the report: percentiles cannot be averaged. Keeping the HDR
//! histograms (V2 + deflate, base64) lets `merge` add the raw distributions of several workers and
//! recompute every percentile exactly, as if one generator had sent all the requests.
//!
//! Compatibility: `schema_version` is bumped on any incompatible change; readers refuse versions
//! they do not know. Fields added later carry `#[serde(default)]` so older reports still load.

pub mod capacity;
pub mod cold_starts;
pub mod figures;
pub mod hist;
pub mod outcome;
pub mod phases;
pub mod replicas;
pub mod scale_events;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The report format version written by this build.
pub const SCHEMA_VERSION: u32 = 1;

/// Load model of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadMode {
    /// Arrival-rate driven: latency is measured from the intended start (no coordinated omission).
    Open,
    #[default]
    /// A fixed (or phased) number of users, each sending its next request when the last one ended.
    Closed,
}

/// One run (or the exact merge of several runs of workers).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunReport {
    pub schema_version: u32,
    /// `loadgen <version>`.
    pub tool: String,
    /// Run identifier (the `run` label of the metrics).
    pub run: String,
    /// Scenario name (`quick` for the one-line form).
    pub scenario: String,
    /// Base URL of the target.
    pub target: String,
    pub mode: LoadMode,
    /// `--label k=v` plus `deployment`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Wall-clock start, RFC 3339 (UTC).
    pub started_at: String,
    /// Wall-clock start in milliseconds since the Unix epoch (used to align merged time series).
    pub started_at_unix_ms: u64,
    /// True when the run was stopped early (Ctrl-C): the report covers what ran.
    #[serde(default)]
    pub interrupted: bool,
    /// How many worker runs this report holds (1 unless produced by `merge`).
    #[serde(default = "one")]
    pub workers: u32,
    /// What was planned (to judge a partial run).
    pub plan: PlanInfo,
    pub summary: Summary,
    /// Per endpoint (request name), in scenario order.
    #[serde(default)]
    pub endpoints: Vec<EndpointSummary>,
    /// Per phase of the plan, in order; their counts add up to `summary`'s (empty in reports
    /// written before phases were recorded).
    #[serde(default)]
    pub phases: Vec<phases::PhaseSummary>,
    /// Per-second series (coarsened on very long runs: see `timeseries_resolution_s`).
    #[serde(default)]
    pub timeseries: Vec<TimePoint>,
    /// Width of one `timeseries` bucket in seconds (1 unless the run was very long).
    #[serde(default = "one_f64")]
    pub timeseries_resolution_s: f64,
    /// How the generator itself fared: was it the bottleneck?
    pub generator: GeneratorStats,
    /// Threshold results, in the order given.
    #[serde(default)]
    pub thresholds: Vec<ThresholdOutcome>,
    /// Raw distributions for exact merging.
    pub histograms: Histograms,
    /// The slowest requests that carried a sampled W3C `traceparent` (`--trace-sample`), slowest
    /// first, so they can be looked up in the trace backend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slowest_traces: Vec<TracedRequest>,
    /// Replica timeline recorded with `--watch` (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<replicas::ReplicaTimeline>,
    /// With `--watch`: each scale-out and what it cost (see [`crate::analysis::scale_events`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scale_events: Vec<scale_events::ScaleEvent>,
    /// Findings about the target, not the generator: with `--watch`, load pinned to fewer pods
    /// than are ready, or spread unevenly over them (see [`crate::analysis::spread`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The first distinct messages of failed requests (at most [`MAX_ERROR_MESSAGES`]), in words:
    /// a TLS failure names its cause and what to do, which the counts of `summary.errors` cannot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_messages: Vec<String>,
    /// The connection lifetime in force and what it cost (docs/connections.md).
    #[serde(default)]
    pub connections: ConnectionStats,
    /// Merged reports: seconds between the first and the last worker's start (workers meant to
    /// start together that did not stretch the merged duration and lower its throughput).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_spread_s: Option<f64>,
    /// `loadgen capacity`: the search and every step tried; the rest of the report is the run of
    /// the highest passing step (see [`crate::capacity`]). Absent in other reports; `merge` drops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<capacity::CapacitySection>,
}

/// Connections of a run: the lifetime in force, how many were opened and why they closed.
///
/// Reconnects are not errors: a recycled connection (max age, max requests, no keep-alive) or one
/// the server closed (`Connection: close`, GOAWAY) is replaced before the next request. The time
/// to open them is in `connect_ms` so it can be told apart from the servers' latency.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectionStats {
    /// Max age in seconds; null = forever (the connection is kept for the whole run).
    pub max_age_s: Option<f64>,
    /// Each connection's age limit is drawn from `[max_age × (1 − jitter), max_age]`.
    #[serde(default)]
    pub max_age_jitter: f64,
    /// Requests per connection; null = no limit.
    pub max_requests: Option<u64>,
    /// False = a new connection per request.
    pub keepalive: bool,
    /// The lifetime in words (`max age 10s (jitter 10%)`); `mixed` in a merge of different ones.
    #[serde(default)]
    pub lifetime: String,
    /// Connections opened (successfully).
    pub opened: u64,
    /// Connections opened in place of an earlier one.
    pub reconnects: u64,
    /// Closes by reason: max_age, max_requests, no_keepalive, server, error.
    #[serde(default)]
    pub closed: BTreeMap<String, u64>,
    /// Time to open a connection (TCP, TLS, HTTP/2 handshake).
    #[serde(default)]
    pub connect_ms: LatencyStats,
}

/// What a report without `connections` (written before they were recorded) ran with: one
/// connection per worker for the whole run.
impl Default for ConnectionStats {
    fn default() -> Self {
        Self {
            max_age_s: None,
            max_age_jitter: 0.0,
            max_requests: None,
            keepalive: true,
            lifetime: String::new(),
            opened: 0,
            reconnects: 0,
            closed: BTreeMap::new(),
            connect_ms: LatencyStats::default(),
        }
    }
}

fn one() -> u32 {
    1
}
fn one_f64() -> f64 {
    1.0
}

/// What the run was asked to do.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PlanInfo {
    /// Human-readable description, e.g. `open loop: 100/s for 30s`.
    pub description: String,
    /// Planned duration in seconds, when the plan is time-bound.
    pub duration_s: Option<f64>,
    /// Planned request (iteration) count, when the plan is count-bound.
    pub requests: Option<u64>,
    /// Maximum users (closed) or requests in flight (open).
    pub concurrency: u64,
}

/// The headline numbers. Latencies in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Requests that got a response or an error (not dropped ones).
    pub requests: u64,
    /// Requests with a non-error status (< 400) that passed their checks.
    pub successes: u64,
    pub failures: u64,
    /// successes / requests, in percent (100 when no request was sent).
    pub success_rate: f64,
    /// Measured duration in seconds (first scheduled start to last completion).
    pub duration_s: f64,
    /// requests / duration_s.
    pub rps: f64,
    /// Open loop: from the intended start (coordinated-omission corrected). Closed loop: from send.
    pub latency_ms: LatencyStats,
    /// Open loop only: from the actual send (what the server alone cost).
    pub service_time_ms: Option<LatencyStats>,
    /// HTTP status code -> count.
    pub status_codes: BTreeMap<String, u64>,
    /// Transport error kind (connect_refused, timeout, reset, tls, body, other) plus `capture` and
    /// `check` for failed captures/expectations -> count, and `template` for requests that could
    /// not be built (a missing capture variable): those were never sent, so they are not in
    /// `requests`, `failures`, `rps` or the latencies.
    pub errors: BTreeMap<String, u64>,
    /// `x-served-by` header value -> count.
    pub backends: BTreeMap<String, u64>,
    /// Open loop: scheduled iterations never started (no free slot before the run ended).
    pub dropped: u64,
    /// Open loop: iterations started later than their intended time by more than the late tolerance.
    pub late: u64,
    /// Iterations (a scenario flow of several steps counts once).
    pub iterations: u64,
    /// Requests resent once on a fresh connection because the kept-alive connection they were
    /// given had been closed by the server before any of the request was written (the
    /// keep-alive race); each is counted once in `requests` with the outcome of the resend.
    #[serde(default)]
    pub retries: u64,
}

/// Latency statistics in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct LatencyStats {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub stdev: f64,
}

/// Numbers of one endpoint (one request name of the scenario).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EndpointSummary {
    pub name: String,
    pub method: String,
    /// The path template as written in the scenario.
    pub path: String,
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    pub rps: f64,
    pub latency_ms: LatencyStats,
    pub service_time_ms: Option<LatencyStats>,
    pub status_codes: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
}

/// A sampled request with its trace id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TracedRequest {
    /// The 32-hex-digit trace id sent in `traceparent`.
    pub trace_id: String,
    pub endpoint: String,
    pub latency_ms: f64,
    /// HTTP status, or the error kind.
    pub status: String,
}

/// How many distinct error messages a report keeps.
pub const MAX_ERROR_MESSAGES: usize = 5;

/// How many traced requests a report keeps.
pub const MAX_TRACES: usize = 10;

/// One bucket of the time series (`timeseries_resolution_s` wide).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimePoint {
    /// Start of the bucket, seconds since the run start.
    pub t_s: f64,
    /// Requests completed in the bucket.
    pub requests: u64,
    pub failures: u64,
    /// requests / bucket width.
    pub rps: f64,
    /// Latency percentiles of requests completed in the bucket (corrected in open loop).
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Planned arrival rate at the bucket start (0 in closed loop).
    pub target_rate: f64,
    /// Users active (closed loop) or requests in flight (open loop) at the bucket end.
    pub active_users: u64,
    pub in_flight: u64,
    /// Responses 503 in the bucket (shed by the workload or a proxy); also in `failures`.
    #[serde(default)]
    pub shed: u64,
    /// `x-served-by` value -> requests completed in the bucket (they add up to at most
    /// `requests`: responses without the header are not counted). Shows when new replicas start
    /// taking traffic, which the run-wide `summary.backends` cannot.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backends: BTreeMap<String, u64>,
    /// Width of this bucket in seconds when it differs from `timeseries_resolution_s`: the last
    /// bucket of a run is cut where the run ends (absent or 0 = the resolution). `rps` is already
    /// divided by it; per-second figures drawn from the counts must use [`TimePoint::width`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub width_s: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl TimePoint {
    /// The bucket's true width: `width_s` when set, else the series' resolution.
    pub fn width(&self, resolution: f64) -> f64 {
        if self.width_s > 0.0 {
            self.width_s
        } else {
            resolution
        }
    }
}

/// Ends a series where the run ended (`end_s` from its start): the last bucket, partly filled,
/// gets its true width and rate instead of reading as a drop towards zero. A tail shorter than a
/// quarter of a bucket holds too few requests to give a steady rate (requests in flight at the end
/// finishing in a few milliseconds would read as a spike), so it is folded into the bucket before.
pub fn end_series(points: &mut Vec<TimePoint>, end_s: f64, resolution: f64) {
    let Some(last) = points.last() else { return };
    let tail = end_s - last.t_s;
    if tail >= resolution || !tail.is_finite() {
        return;
    }
    let tail = tail.max(0.0);
    let n = points.len();
    if tail < resolution / 4.0 && n >= 2 && points[n - 2].t_s + resolution >= last.t_s - 1e-9 {
        let last = points.pop().expect("checked above");
        let prev = points.last_mut().expect("checked above");
        let width = prev.width(resolution) + tail;
        merge_point(prev, &last, 1);
        prev.width_s = width;
        prev.rps = prev.requests as f64 / width;
    } else if let Some(last) = points.last_mut() {
        // A run shorter than a quarter bucket: its whole length, however short.
        let width = tail.max(1e-3);
        last.width_s = width;
        last.rps = last.requests as f64 / width;
    }
}

/// Merges `p` into `into` (a bucket `width` seconds wide). Percentiles of merged buckets are
/// approximations (request-weighted p50, highest p99): exact figures live in the histograms.
/// Counts saturate as a last guard: the points are a run's own buckets, or a merged series whose
/// totals `report::merge` has already checked, so a real sum never reaches the cap.
pub fn merge_point(into: &mut TimePoint, p: &TimePoint, width: u64) {
    let total = into.requests.saturating_add(p.requests);
    if total > 0 {
        into.p50_ms =
            (into.p50_ms * into.requests as f64 + p.p50_ms * p.requests as f64) / total as f64;
    }
    into.p99_ms = into.p99_ms.max(p.p99_ms);
    into.max_ms = into.max_ms.max(p.max_ms);
    into.requests = total;
    into.failures = into.failures.saturating_add(p.failures);
    into.rps = total as f64 / width as f64;
    into.target_rate = into.target_rate.max(p.target_rate);
    into.active_users = into.active_users.max(p.active_users);
    into.in_flight = into.in_flight.max(p.in_flight);
    into.shed = into.shed.saturating_add(p.shed);
    add_backends(&mut into.backends, &p.backends);
}

/// Adds per-backend counts of a run's own buckets (saturating, as [`merge_point`]).
pub fn add_backends(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        let c = into.entry(k.clone()).or_default();
        *c = c.saturating_add(*v);
    }
}

/// Self-monitoring of the generator.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GeneratorStats {
    /// Cores the generator may use (tokio worker threads).
    pub threads: usize,
    /// Own CPU (user + system) over the run, percent of one core (200 = two cores busy).
    pub cpu_percent_mean: f64,
    pub cpu_percent_max: f64,
    /// Percent of its CPU quota's periods (a container's `--cpus`, a pod's CPU limit) that
    /// throttled the generator, from its cgroups' counters; absent where they cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_throttled_percent: Option<f64>,
    /// Peak resident memory of the generator process (VmHWM), MiB.
    #[serde(default)]
    pub peak_rss_mb: f64,
    /// Open loop: how late a free worker woke up for its scheduled send (generator-side lag).
    pub schedule_lag_ms: LagStats,
    /// True when the numbers are limited by the generator rather than the target.
    pub limited_by_generator: bool,
    /// Why (and anything else worth knowing about the run's honesty).
    pub warnings: Vec<String>,
}

/// Schedule-lag statistics in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct LagStats {
    pub mean: f64,
    pub p99: f64,
    pub max: f64,
}

/// A threshold and its outcome.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ThresholdOutcome {
    /// As written, e.g. `p99<250ms`.
    pub expr: String,
    pub passed: bool,
    /// The measured value in the threshold's unit (ms for latencies, percent for rates).
    pub actual: f64,
}

/// HDR histograms, microseconds, V2 + deflate, base64 (see [`hist`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Histograms {
    /// Always `hdr-v2-deflate-base64`.
    pub encoding: String,
    /// Always `us`.
    pub unit: String,
    /// Overall latency (corrected in open loop).
    pub latency: String,
    /// Overall service time (from the actual send).
    pub service_time: String,
    /// Open-loop generator schedule lag.
    #[serde(default)]
    pub schedule_lag: String,
    /// Time to open a connection.
    #[serde(default)]
    pub connect: String,
    /// Per endpoint name.
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointHistograms>,
    /// Per phase, in the order of `phases`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<EndpointHistograms>,
}

/// The two histograms of one endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct EndpointHistograms {
    pub latency: String,
    pub service_time: String,
}

/// Errors reading or combining reports.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a loadgen JSON report: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path} has schema_version {found}; this loadgen reads version {SCHEMA_VERSION}")]
    Schema { path: String, found: u32 },
    #[error("{what}: {reason}")]
    Histogram { what: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl RunReport {
    /// Reads and version-checks a report file (`-` = stdin), at most
    /// [`MAX_REPORT_BYTES`](crate::limits::MAX_REPORT_BYTES).
    pub fn load(path: &str) -> Result<Self, ReportError> {
        let text = crate::limits::read_to_string(path, crate::limits::MAX_REPORT_BYTES).map_err(
            |source| ReportError::Io {
                path: path.into(),
                source,
            },
        )?;
        Self::from_json(path, &text)
    }

    /// Parses and version-checks a report; `origin` names it in errors.
    pub fn from_json(origin: &str, text: &str) -> Result<Self, ReportError> {
        #[derive(Deserialize)]
        struct Version {
            schema_version: Option<u32>,
        }
        let v: Version = serde_json::from_str(text).map_err(|source| ReportError::Json {
            path: origin.into(),
            source,
        })?;
        match v.schema_version {
            Some(SCHEMA_VERSION) => {}
            Some(found) => {
                return Err(ReportError::Schema {
                    path: origin.into(),
                    found,
                });
            }
            None => {
                return Err(ReportError::Invalid(format!(
                    "{origin} has no schema_version: not a loadgen report"
                )));
            }
        }
        let report: Self = serde_json::from_str(text).map_err(|source| ReportError::Json {
            path: origin.into(),
            source,
        })?;
        hist::check_report(origin, &report)?;
        Ok(report)
    }

    /// Writes the report as pretty JSON to `path` (`-` = stdout; a reader that closes the pipe
    /// early is not an error).
    pub fn write(&self, path: &str) -> anyhow::Result<()> {
        use anyhow::Context;
        let json = serde_json::to_string_pretty(self)?;
        if path == "-" {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let written = out
                .write_all(json.as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush());
            match written {
                // The reader closed the pipe (`| head`): it took what it wanted; not a failure.
                Err(e) if crate::console::is_broken_pipe(&e) => {}
                r => r?,
            }
        } else {
            std::fs::write(path, json + "\n").with_context(|| format!("cannot write {path}"))?;
        }
        Ok(())
    }

    /// The `deployment` label, if set.
    pub fn deployment(&self) -> Option<&str> {
        self.labels.get("deployment").map(String::as_str)
    }

    /// Throughput series as (t_s, rps) pairs (what charts and per-replica figures use).
    pub fn throughput_series(&self) -> Vec<(f64, f64)> {
        self.timeseries.iter().map(|p| (p.t_s, p.rps)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(counts: &[u64]) -> Vec<TimePoint> {
        counts
            .iter()
            .enumerate()
            .map(|(i, n)| TimePoint {
                t_s: i as f64,
                requests: *n,
                rps: *n as f64,
                ..TimePoint::default()
            })
            .collect()
    }

    #[test]
    fn a_partial_last_bucket_gets_its_true_width_and_rate() {
        let mut p = points(&[100, 100, 40]);
        end_series(&mut p, 2.4, 1.0);
        assert_eq!(p.len(), 3);
        assert!((p[2].width_s - 0.4).abs() < 1e-9 && (p[2].rps - 100.0).abs() < 1e-6);
        assert_eq!(p[1].width(1.0), 1.0);
    }

    #[test]
    fn a_tail_of_a_few_milliseconds_is_folded_into_the_bucket_before() {
        // 50 users' last requests finishing 5 ms after the end: no spike, no drop.
        let mut p = points(&[100, 100, 50]);
        end_series(&mut p, 2.005, 1.0);
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].requests, 150);
        assert!((p[1].width_s - 1.005).abs() < 1e-9);
        assert!((p[1].rps - 150.0 / 1.005).abs() < 1e-6);
    }

    #[test]
    fn a_series_ending_on_a_bucket_edge_is_unchanged() {
        let mut p = points(&[100, 100]);
        let before = p.clone();
        end_series(&mut p, 2.0, 1.0);
        assert_eq!(p, before);
    }

    #[test]
    fn merging_points_with_counts_near_the_limit_saturates_instead_of_overflowing() {
        let mut into = TimePoint {
            requests: u64::MAX,
            failures: u64::MAX,
            ..TimePoint::default()
        };
        let p = TimePoint {
            requests: 1,
            failures: 1,
            ..TimePoint::default()
        };
        merge_point(&mut into, &p, 1);
        assert_eq!((into.requests, into.failures), (u64::MAX, u64::MAX));
    }
}
