//! Measurement: HDR histograms per endpoint and overall, status codes, error kinds, backends, and a
//! per-second time series, all in memory that does not grow with the number of requests.
//!
//! Workers record into one of a few mutex-protected shards (chosen by worker id), so the hot path
//! takes an uncontended lock instead of a contended one; shards are merged when the series ticks and
//! at the end.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::model::outcome::{Failure, N_FAIL, Outcome, OutcomeSink};
use crate::model::{TimePoint, add_backends, hist, merge_point};

/// The status of a shed request: the workload's load shedding answers 503 + Retry-After.
const SHED_STATUS: u16 = 503;

/// Distinct backends tracked; more are folded into `other` (a hostile header cannot grow memory).
const MAX_BACKENDS: usize = 1024;
/// Distinct backends per time-series bucket: far more than an HPA runs, and small enough that
/// 3600 points of them stay a few MiB whatever the header says.
const MAX_BACKENDS_PER_POINT: usize = 64;

/// Accumulated numbers of one endpoint.
#[derive(Debug, Clone)]
pub struct EndpointAcc {
    pub latency: Histogram<u64>,
    pub service: Histogram<u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub failures_by_kind: [u64; N_FAIL],
    pub successes: u64,
    pub failures: u64,
}

impl EndpointAcc {
    fn new() -> Self {
        Self {
            latency: hist::new_hist(),
            service: hist::new_hist(),
            statuses: BTreeMap::new(),
            failures_by_kind: [0; N_FAIL],
            successes: 0,
            failures: 0,
        }
    }

    fn add(&mut self, o: &EndpointAcc) {
        let _ = self.latency.add(&o.latency);
        let _ = self.service.add(&o.service);
        for (k, v) in &o.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        for i in 0..N_FAIL {
            self.failures_by_kind[i] += o.failures_by_kind[i];
        }
        self.successes += o.successes;
        self.failures += o.failures;
    }

    fn record(&mut self, o: &Outcome<'_>) {
        hist::record(&mut self.latency, o.latency_us);
        hist::record(&mut self.service, o.service_us);
        if let Some(st) = o.status {
            *self.statuses.entry(st).or_default() += 1;
        }
        if let Some(f) = o.failure {
            self.failures_by_kind[f.index()] += 1;
        }
        if o.success {
            self.successes += 1;
        } else {
            self.failures += 1;
        }
    }

    /// Status codes as report keys.
    pub fn status_map(&self) -> BTreeMap<String, u64> {
        self.statuses
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    }

    /// Failure kinds with a non-zero count.
    pub fn error_map(&self) -> BTreeMap<String, u64> {
        self.failures_by_kind
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0)
            .map(|(i, v)| (Failure::name(i).to_string(), *v))
            .collect()
    }
}

/// Counts one response from backend `b`; past `cap` distinct names, into `other` (a hostile
/// header cannot grow memory).
fn count_backend(map: &mut BTreeMap<String, u64>, b: &str, cap: usize) {
    if let Some(c) = map.get_mut(b) {
        *c += 1;
    } else if map.len() < cap {
        map.insert(b.to_string(), 1);
    } else {
        *map.entry("other".to_string()).or_default() += 1;
    }
}

/// A per-second bucket under construction.
#[derive(Debug)]
struct SecAcc {
    idx: u64,
    hist: Histogram<u64>,
    requests: u64,
    failures: u64,
    backends: BTreeMap<String, u64>,
    shed: u64,
}

#[derive(Debug)]
struct Shard {
    endpoints: Vec<EndpointAcc>,
    /// All endpoints together, per phase of the plan.
    phases: Vec<EndpointAcc>,
    backends: BTreeMap<String, u64>,
    lag: Histogram<u64>,
    connect: Histogram<u64>,
    late: u64,
    seconds: Vec<SecAcc>,
    spare: Vec<Histogram<u64>>,
}

impl Shard {
    fn new(n: usize, phases: usize) -> Self {
        Self {
            endpoints: (0..n).map(|_| EndpointAcc::new()).collect(),
            phases: (0..phases.max(1)).map(|_| EndpointAcc::new()).collect(),
            backends: BTreeMap::new(),
            lag: hist::new_hist(),
            connect: hist::new_hist(),
            late: 0,
            seconds: Vec::new(),
            spare: Vec::new(),
        }
    }
}

/// Everything at the end of a run.
#[derive(Debug, Clone)]
pub struct Totals {
    pub endpoints: Vec<EndpointAcc>,
    /// All endpoints together, per phase (by the request's intended start): they add up to
    /// [`Totals::overall`].
    pub phases: Vec<EndpointAcc>,
    pub backends: BTreeMap<String, u64>,
    pub lag: Histogram<u64>,
    /// Time to open a connection (TCP, TLS, HTTP/2 handshake), microseconds.
    pub connect: Histogram<u64>,
    pub late: u64,
    pub iterations: u64,
}

impl Totals {
    /// Overall numbers across endpoints.
    pub fn overall(&self) -> EndpointAcc {
        let mut all = EndpointAcc::new();
        for e in &self.endpoints {
            all.add(e);
        }
        all
    }
}

/// Requests completed in one second across all shards (before percentiles are taken).
#[derive(Debug)]
pub struct SecondTotals {
    pub idx: u64,
    pub hist: Histogram<u64>,
    pub requests: u64,
    pub failures: u64,
    pub backends: BTreeMap<String, u64>,
    /// Responses 503 (shed): what a scale-out costs in refused work.
    pub shed: u64,
}

/// The shared recorder.
#[derive(Debug)]
pub struct Stats {
    shards: Vec<Mutex<Shard>>,
    start: Instant,
    n_endpoints: usize,
    /// End of each phase from `start` (the last one open-ended).
    phase_ends: Vec<Duration>,
    /// Iterations finished, live.
    iterations: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Stats {
    /// `shards` is rounded up to at least 1; `start` is second 0 of the time series.
    pub fn new(n_endpoints: usize, shards: usize, start: Instant) -> Self {
        Self::with_phases(n_endpoints, shards, start, &[])
    }

    /// Like [`Stats::new`], also accumulating per phase; `phase_durations` are the plan's.
    pub fn with_phases(
        n_endpoints: usize,
        shards: usize,
        start: Instant,
        phase_durations: &[Duration],
    ) -> Self {
        let mut end = Duration::ZERO;
        let phase_ends = phase_durations
            .iter()
            .map(|d| {
                end = end.saturating_add(*d);
                end
            })
            .collect::<Vec<_>>();
        Self {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(Shard::new(n_endpoints, phase_ends.len())))
                .collect(),
            start,
            n_endpoints,
            phase_ends,
            iterations: AtomicU64::new(0),
        }
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    /// The phase a request intended to start at `at` belongs to (the last after the plan).
    fn phase_of(&self, at: Instant) -> usize {
        let t = at.saturating_duration_since(self.start);
        self.phase_ends
            .iter()
            .position(|end| t < *end)
            .unwrap_or(self.phase_ends.len().saturating_sub(1))
    }

    fn shard(&self, worker: usize) -> std::sync::MutexGuard<'_, Shard> {
        lock(&self.shards[worker % self.shards.len()])
    }

    /// Records one request completed at `now`.
    pub fn record(&self, worker: usize, o: &Outcome<'_>, now: Instant) {
        let sec = now.saturating_duration_since(self.start).as_secs();
        // Latency runs from the intended start, so this is the phase that scheduled the request.
        let phase = self.phase_of(
            now.checked_sub(Duration::from_micros(o.latency_us))
                .unwrap_or(self.start),
        );
        let mut s = self.shard(worker);
        let s = &mut *s;
        s.endpoints[o.endpoint].record(o);
        s.phases[phase].record(o);
        if let Some(b) = o.backend {
            count_backend(&mut s.backends, b, MAX_BACKENDS);
        }
        let bucket = match s.seconds.iter_mut().rev().find(|b| b.idx == sec) {
            Some(b) => b,
            None => {
                let mut h = s.spare.pop().unwrap_or_else(hist::new_small_hist);
                h.reset();
                s.seconds.push(SecAcc {
                    idx: sec,
                    hist: h,
                    requests: 0,
                    failures: 0,
                    backends: BTreeMap::new(),
                    shed: 0,
                });
                s.seconds.last_mut().expect("just pushed")
            }
        };
        hist::record(&mut bucket.hist, o.latency_us);
        bucket.requests += 1;
        if !o.success {
            bucket.failures += 1;
        }
        if let Some(b) = o.backend {
            count_backend(&mut bucket.backends, b, MAX_BACKENDS_PER_POINT);
        }
        if o.status == Some(SHED_STATUS) {
            bucket.shed += 1;
        }
    }

    /// Records a request that was never sent (`failure` says why): counted by kind only, so it
    /// stays out of the request count, the latency histograms and the throughput.
    pub fn record_unsent(&self, worker: usize, endpoint: usize, failure: Failure) {
        let phase = self.phase_of(Instant::now());
        let mut s = self.shard(worker);
        s.endpoints[endpoint].failures_by_kind[failure.index()] += 1;
        s.phases[phase].failures_by_kind[failure.index()] += 1;
    }

    /// Records an open-loop start: `lag` is how late a free worker woke up, `late` whether the
    /// start missed its intended time by more than the tolerance.
    pub fn record_start(&self, worker: usize, lag: Option<Duration>, late: bool) {
        let mut s = self.shard(worker);
        if let Some(l) = lag {
            hist::record(&mut s.lag, l.as_micros() as u64);
        }
        if late {
            s.late += 1;
        }
    }

    /// Records how long opening one connection took.
    pub fn record_connect(&self, worker: usize, took: Duration) {
        let mut s = self.shard(worker);
        hist::record(&mut s.connect, took.as_micros() as u64);
    }

    /// Counts one finished iteration.
    pub fn record_iteration(&self, _worker: usize) {
        self.iterations.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes the per-second buckets with index below `before` from every shard, merged by second.
    pub fn take_seconds(&self, before: u64) -> Vec<SecondTotals> {
        let mut out: BTreeMap<u64, SecondTotals> = BTreeMap::new();
        for sh in &self.shards {
            let mut s = lock(sh);
            let s = &mut *s;
            let mut i = 0;
            while i < s.seconds.len() {
                if s.seconds[i].idx < before {
                    let b = s.seconds.swap_remove(i);
                    let t = out.entry(b.idx).or_insert_with(|| SecondTotals {
                        idx: b.idx,
                        hist: hist::new_small_hist(),
                        requests: 0,
                        failures: 0,
                        backends: BTreeMap::new(),
                        shed: 0,
                    });
                    let _ = t.hist.add(&b.hist);
                    t.requests += b.requests;
                    t.failures += b.failures;
                    add_backends(&mut t.backends, &b.backends);
                    t.shed += b.shed;
                    s.spare.push(b.hist);
                    s.spare.truncate(4);
                } else {
                    i += 1;
                }
            }
        }
        out.into_values().collect()
    }

    /// Merges every shard (call once the workers have stopped).
    pub fn totals(&self) -> Totals {
        let mut endpoints: Vec<EndpointAcc> =
            (0..self.n_endpoints).map(|_| EndpointAcc::new()).collect();
        let mut phases: Vec<EndpointAcc> = (0..self.phase_ends.len().max(1))
            .map(|_| EndpointAcc::new())
            .collect();
        let mut backends = BTreeMap::new();
        let mut lag = hist::new_hist();
        let mut connect = hist::new_hist();
        let mut late = 0;
        let iterations = self.iterations.load(Ordering::Relaxed);
        for sh in &self.shards {
            let s = lock(sh);
            for (acc, e) in endpoints.iter_mut().zip(&s.endpoints) {
                acc.add(e);
            }
            for (acc, e) in phases.iter_mut().zip(&s.phases) {
                acc.add(e);
            }
            add_backends(&mut backends, &s.backends);
            let _ = lag.add(&s.lag);
            let _ = connect.add(&s.connect);
            late += s.late;
        }
        Totals {
            endpoints,
            phases,
            backends,
            lag,
            connect,
            late,
            iterations,
        }
    }
}

/// Longest series kept; past it, neighbouring buckets are merged and the resolution doubles.
pub const MAX_POINTS: usize = 3600;

/// The stats as a worker's [`OutcomeSink`]: its shard of the shared [`Stats`].
pub struct ShardSink<'a> {
    pub stats: &'a Stats,
    pub worker: usize,
}

impl OutcomeSink for ShardSink<'_> {
    fn record(&mut self, o: &Outcome<'_>, done: Instant) {
        self.stats.record(self.worker, o, done);
    }
}

/// The per-second time series with bounded length.
#[derive(Debug, Clone)]
pub struct TimeSeries {
    pub points: Vec<TimePoint>,
    /// Bucket width in seconds.
    pub resolution: u64,
    /// A bucket being filled at the current resolution (when resolution > 1).
    max_points: usize,
}

impl Default for TimeSeries {
    fn default() -> Self {
        Self::with_capacity(MAX_POINTS)
    }
}

impl TimeSeries {
    pub fn with_capacity(max_points: usize) -> Self {
        Self {
            points: Vec::new(),
            resolution: 1,
            max_points: max_points.max(2),
        }
    }

    /// Adds one second's numbers (seconds must come in increasing order).
    pub fn push(
        &mut self,
        sec: &SecondTotals,
        target_rate: f64,
        active_users: u64,
        in_flight: u64,
    ) {
        let t0 = (sec.idx / self.resolution) * self.resolution;
        let pct = |q: f64| {
            if sec.hist.is_empty() {
                0.0
            } else {
                sec.hist.value_at_quantile(q) as f64 / 1000.0
            }
        };
        let point = TimePoint {
            t_s: t0 as f64,
            requests: sec.requests,
            failures: sec.failures,
            rps: sec.requests as f64 / self.resolution as f64,
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
            max_ms: if sec.hist.is_empty() {
                0.0
            } else {
                sec.hist.max() as f64 / 1000.0
            },
            target_rate,
            active_users,
            in_flight,
            shed: sec.shed,
            backends: sec.backends.clone(),
            width_s: 0.0,
        };
        match self.points.last_mut() {
            Some(last) if last.t_s == point.t_s => merge_point(last, &point, self.resolution),
            _ => self.points.push(point),
        }
        if self.points.len() > self.max_points {
            self.coarsen();
        }
    }

    /// Ends the series at `end` from the run start (see [`crate::model::end_series`]).
    pub fn finish(&mut self, end: Duration) {
        crate::model::end_series(&mut self.points, end.as_secs_f64(), self.resolution as f64);
    }

    /// Halves the number of points by merging neighbours.
    fn coarsen(&mut self) {
        let new_res = self.resolution * 2;
        let mut out: Vec<TimePoint> = Vec::with_capacity(self.points.len() / 2 + 1);
        for p in self.points.drain(..) {
            let t0 = ((p.t_s as u64) / new_res * new_res) as f64;
            match out.last_mut() {
                Some(last) if last.t_s == t0 => merge_point(last, &p, new_res),
                _ => {
                    let mut q = p;
                    q.t_s = t0;
                    q.rps = q.requests as f64 / new_res as f64;
                    out.push(q);
                }
            }
        }
        self.points = out;
        self.resolution = new_res;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(ep: usize, us: u64, ok: bool) -> Outcome<'static> {
        Outcome {
            endpoint: ep,
            latency_us: us,
            service_us: us,
            status: Some(if ok { 200 } else { 500 }),
            failure: None,
            success: ok,
            backend: Some("a"),
        }
    }

    #[test]
    fn shards_merge_exactly() {
        let start = Instant::now();
        let s = Stats::new(2, 3, start);
        for w in 0..10 {
            s.record(w, &outcome(w % 2, 1000 + w as u64, w != 3), start);
        }
        let t = s.totals();
        let all = t.overall();
        assert_eq!(all.latency.len(), 10);
        assert_eq!(all.successes, 9);
        assert_eq!(all.statuses[&500], 1);
        assert_eq!(t.backends["a"], 10);
        let secs = s.take_seconds(1);
        assert_eq!(secs.len(), 1);
        assert_eq!(secs[0].requests, 10);
        assert!(s.take_seconds(1).is_empty());
    }

    #[test]
    fn requests_count_in_the_phase_of_their_intended_start() {
        let start = Instant::now();
        let s = Stats::with_phases(
            1,
            2,
            start,
            &[Duration::from_secs(2), Duration::from_secs(3)],
        );
        let at = |ms: u64| start + Duration::from_millis(ms);
        // Intended at 1.5 s, finished at 2.5 s: phase 1 (it was scheduled there).
        s.record(0, &outcome(0, 1_000_000, true), at(2500));
        s.record(1, &outcome(0, 1000, true), at(1000));
        s.record(0, &outcome(0, 1000, false), at(2100));
        // After the plan's end: the last phase.
        s.record(1, &outcome(0, 1000, true), at(9000));
        s.record_unsent(0, 0, Failure::Template);
        let t = s.totals();
        assert_eq!(t.phases.len(), 2);
        assert_eq!((t.phases[0].successes, t.phases[0].failures), (2, 0));
        assert_eq!((t.phases[1].successes, t.phases[1].failures), (1, 1));
        assert_eq!(t.phases[0].latency.len(), 2);
        assert_eq!(t.phases[0].error_map()["template"], 1);
        let sum: u64 = t.phases.iter().map(|p| p.latency.len()).sum();
        assert_eq!(sum, t.overall().latency.len());
    }

    #[test]
    fn each_second_counts_its_own_backends() {
        let start = Instant::now();
        let s = Stats::new(1, 2, start);
        let served = |b: &'static str| Outcome {
            backend: Some(b),
            ..outcome(0, 1000, true)
        };
        s.record(0, &served("a"), start);
        s.record(1, &served("b"), start);
        s.record(0, &served("b"), start + Duration::from_millis(1500));
        // A response without `x-served-by` counts as a request, not for a backend.
        let anonymous = Outcome {
            backend: None,
            ..outcome(0, 1000, true)
        };
        s.record(1, &anonymous, start + Duration::from_millis(1500));
        let mut ts = TimeSeries::default();
        for sec in s.take_seconds(u64::MAX) {
            ts.push(&sec, 0.0, 0, 0);
        }
        let got: Vec<Vec<(&str, u64)>> = ts
            .points
            .iter()
            .map(|p| p.backends.iter().map(|(k, v)| (k.as_str(), *v)).collect())
            .collect();
        assert_eq!(got, vec![vec![("a", 1), ("b", 1)], vec![("b", 1)]]);
        assert_eq!(ts.points[1].requests, 2);
    }

    #[test]
    fn backends_of_one_point_are_capped() {
        let start = Instant::now();
        let s = Stats::new(1, 1, start);
        let names: Vec<String> = (0..MAX_BACKENDS_PER_POINT + 10)
            .map(|i| format!("pod-{i}"))
            .collect();
        for n in &names {
            s.record(
                0,
                &Outcome {
                    backend: Some(n),
                    ..outcome(0, 1000, true)
                },
                start,
            );
        }
        let secs = s.take_seconds(u64::MAX);
        assert_eq!(secs[0].backends.len(), MAX_BACKENDS_PER_POINT + 1);
        assert_eq!(secs[0].backends["other"], 10);
        assert_eq!(secs[0].backends.values().sum::<u64>(), names.len() as u64);
    }

    #[test]
    fn series_stays_bounded() {
        let mut ts = TimeSeries::with_capacity(10);
        for i in 0..1000 {
            let mut h = hist::new_small_hist();
            hist::record(&mut h, 1000);
            ts.push(
                &SecondTotals {
                    idx: i,
                    hist: h,
                    requests: 5,
                    failures: 0,
                    backends: BTreeMap::from([("a".to_string(), 5)]),
                    shed: 0,
                },
                0.0,
                0,
                0,
            );
        }
        assert!(ts.points.len() <= 10);
        let total: u64 = ts.points.iter().map(|p| p.requests).sum();
        assert_eq!(total, 5000);
        assert!(ts.points.iter().all(|p| p.backends["a"] == p.requests));
        let full = &ts.points[..ts.points.len() - 1];
        assert!(
            full.iter().all(|p| (p.rps - 5.0).abs() < 1e-9),
            "{:?}",
            ts.points
        );
    }
}
