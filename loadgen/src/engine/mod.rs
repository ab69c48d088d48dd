//! The engine: spawns workers for the plan, ticks the time series, stops on time, on count or on
//! Ctrl-C (with a grace period for requests in flight).

mod clock;
mod open;
pub mod sink;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use sink::LiveCounters;
use worker::Worker;

use crate::client::{ClientError, Conn, Connector};
use crate::lifetime::{CloseReason, ConnectionLifetime};
use crate::metrics::{EndpointMetrics, RunMetrics};
use crate::plan::{ArrivalSchedule, LoadPlan, UserGate, user_gate};
use crate::scenario::Scenario;
use crate::selfmon::CpuMonitor;
use crate::stats::{Stats, TimeSeries, Totals};

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub plan: LoadPlan,
    pub timeout: Duration,
    /// With HTTP/2: connections shared by the workers (HTTP/1 uses one per worker).
    pub h2_connections: usize,
    pub http2: bool,
    /// After a stop request, how long requests in flight may take before they are abandoned.
    pub grace: Duration,
    /// An open-loop start later than this after its intended time counts as late.
    pub late_tolerance: Duration,
    /// Shards of the statistics (about twice the worker threads).
    pub shards: usize,
    /// Fraction of requests sent with a sampled `traceparent`.
    pub trace_sample: f64,
    /// When connections are closed and reopened.
    pub lifetime: ConnectionLifetime,
    /// Seconds of the window `Live::window_*` cover (the plain progress lines' interval).
    pub live_window_s: u64,
    /// With `--watch`: where requests sent while the target is at zero open cold starts.
    pub cold_starts: Option<Arc<crate::coldstart::ColdStartTracker>>,
}

/// Live numbers for progress displays.
#[derive(Debug, Clone, Copy, Default)]
pub struct Live {
    pub elapsed: Duration,
    pub requests: u64,
    pub failures: u64,
    pub in_flight: u64,
    pub active_users: u64,
    /// Requests per second and p99 (ms) of the last complete second.
    pub last_rps: f64,
    pub last_p99_ms: f64,
    pub dropped: u64,
    /// Index of the phase running (into the plan's phases).
    pub phase: usize,
    /// Planned rate (open loop) or users (closed loop) now.
    pub target: f64,
    /// Requests per second and p99 (ms) over the last `live_window_s` complete seconds.
    pub window_rps: f64,
    pub window_p99_ms: f64,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunData {
    pub totals: Totals,
    pub series: TimeSeries,
    pub started_at: SystemTime,
    /// The monotonic moment the run began: the origin of every series of the report, which the
    /// replica watch, started earlier, is rebased onto.
    pub start: Instant,
    pub duration: Duration,
    pub dropped: u64,
    /// Requests resent once on a fresh connection because a kept-alive one was found closed
    /// before the request was written.
    pub retries: u64,
    pub interrupted: bool,
    pub cpu_mean: f64,
    pub cpu_max: f64,
    /// Share (0..1) of the one-second CPU samples at 90% or more of the threads' capacity (or
    /// throttled by the CPU quota in a tenth of the second's periods).
    pub cpu_saturated_share: f64,
    /// Percent of the CPU quota's periods that throttled the generator (None: no counters).
    pub cpu_throttled_percent: Option<f64>,
    /// A few distinct error messages (for the summary), bounded.
    pub error_samples: Vec<String>,
    /// Slowest traced requests, slowest first.
    pub slowest_traces: Vec<crate::model::TracedRequest>,
    /// Connections opened.
    pub connections_opened: u64,
    /// Connections opened in place of an earlier one (of the same worker, or HTTP/2 slot).
    pub reconnects: u64,
    /// Closes by reason, indexed by [`CloseReason::index`].
    pub closed: [u64; 5],
}

/// State shared by all workers.
pub(crate) struct Shared {
    pub scenario: Arc<Scenario>,
    pub connector: Connector,
    pub stats: Stats,
    /// Requests and failures so far, for the progress line.
    pub live: LiveCounters,
    pub metrics: Arc<RunMetrics>,
    pub endpoint_metrics: Vec<EndpointMetrics>,
    pub counter: AtomicU64,
    pub in_flight: AtomicU64,
    pub active_users: AtomicU64,
    pub dropped: AtomicU64,
    /// Requests resent on a fresh connection after the keep-alive race (never written before).
    pub retries: AtomicU64,
    pub timeout: Duration,
    h2: Vec<tokio::sync::Mutex<Option<SharedH2>>>,
    pub lifetime: ConnectionLifetime,
    opened: AtomicU64,
    reconnects: AtomicU64,
    closed: [AtomicU64; 5],
    http2: bool,
    errors: Mutex<Vec<String>>,
    has_errors: AtomicBool,
    /// Largest generator-side wake-up lag since the last tick, microseconds.
    pub lag_us: AtomicU64,
    pub last_second: Mutex<(f64, f64)>,
    /// The last seconds' latency histograms and counts, newest last (see `Live::window_*`).
    window: Mutex<LiveWindow>,
    pub trace_sample: f64,
    slowest: Mutex<Vec<crate::model::TracedRequest>>,
    /// See [`EngineConfig::cold_starts`].
    pub cold_starts: Option<Arc<crate::coldstart::ColdStartTracker>>,
}

const MAX_ERROR_SAMPLES: usize = crate::model::MAX_ERROR_MESSAGES;

/// One multiplexed HTTP/2 connection shared by workers, and when it must be replaced.
struct SharedH2 {
    send: hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>,
    deadline: Option<Instant>,
}

/// A connection handed to a worker and when it must be closed.
pub(crate) struct Opened {
    pub conn: Conn,
    pub deadline: Option<Instant>,
}

impl Shared {
    /// Keeps the first few distinct error messages.
    pub fn note_error(&self, msg: &str) {
        if self.has_errors.load(Ordering::Relaxed) {
            return;
        }
        let mut e = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if e.len() >= MAX_ERROR_SAMPLES {
            self.has_errors.store(true, Ordering::Relaxed);
            return;
        }
        if !e.iter().any(|m| m == msg) {
            e.push(msg.to_string());
        }
    }

    /// Keeps the slowest traced requests (bounded).
    pub fn note_trace(&self, t: crate::model::TracedRequest) {
        let mut v = self.slowest.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() >= crate::model::MAX_TRACES
            && v.last().is_some_and(|last| last.latency_ms >= t.latency_ms)
        {
            return;
        }
        v.push(t);
        v.sort_by(|a, b| b.latency_ms.total_cmp(&a.latency_ms));
        v.truncate(crate::model::MAX_TRACES);
    }

    /// A connection for worker `id`: its own (HTTP/1) or a shared multiplexed one (HTTP/2).
    /// `again`: the worker had one before (HTTP/1), so a new one is a reconnect.
    pub async fn connect(&self, id: usize, again: bool) -> Result<Opened, ClientError> {
        if !self.http2 {
            let conn = self.open(id, again).await?;
            let deadline = self.lifetime.deadline(Instant::now(), &mut rand::rng());
            return Ok(Opened { conn, deadline });
        }
        let slot = &self.h2[id % self.h2.len()];
        let mut s = slot.lock().await;
        if let Some(h) = s.as_ref() {
            let expired = h.deadline.is_some_and(|d| Instant::now() >= d);
            if !h.send.is_closed() && !expired {
                return Ok(Opened {
                    conn: Conn::H2 {
                        send: h.send.clone(),
                        target: self.connector.target_arc(),
                    },
                    deadline: h.deadline,
                });
            }
            // Workers still holding the old handle finish their request on it and then come
            // here: the old connection closes when the last handle is dropped.
            self.note_close(if expired {
                CloseReason::MaxAge
            } else {
                CloseReason::Server
            });
        }
        let conn = self.open(id, s.is_some()).await?;
        let deadline = self.lifetime.deadline(Instant::now(), &mut rand::rng());
        if let Conn::H2 { send, .. } = &conn {
            *s = Some(SharedH2 {
                send: send.clone(),
                deadline,
            });
        }
        Ok(Opened { conn, deadline })
    }

    /// Opens a connection, timing the handshake apart from the requests.
    async fn open(&self, id: usize, again: bool) -> Result<Conn, ClientError> {
        let t0 = Instant::now();
        let conn = self.connector.connect().await?;
        self.stats.record_connect(id, t0.elapsed());
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.metrics.connections_opened.increment(1);
        if again {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        Ok(conn)
    }

    /// True when workers share multiplexed connections (HTTP/2).
    pub fn lifetime_shared(&self) -> bool {
        self.http2
    }

    /// Counts a closed connection (HTTP/1: the worker's own; HTTP/2: a shared one replaced).
    pub fn note_close(&self, why: CloseReason) {
        self.closed[why.index()].fetch_add(1, Ordering::Relaxed);
        self.metrics.connection_closed(why);
    }
}

/// Runs the plan. `stop` turning true stops scheduling (Ctrl-C); `live` receives progress.
pub async fn run(
    cfg: EngineConfig,
    scenario: Arc<Scenario>,
    connector: Connector,
    metrics: Arc<RunMetrics>,
    mut stop: watch::Receiver<bool>,
    live: Option<watch::Sender<Live>>,
) -> RunData {
    let started_at = SystemTime::now();
    let start = Instant::now();
    let sh = shared(&cfg, &scenario, connector, &metrics, start);

    let mut workers = spawn_workers(&cfg, &sh, start, &stop);

    // The ticker: per-second series, gauges, CPU.
    let series = Arc::new(Mutex::new(TimeSeries::default()));
    // Capacity = this runtime's worker threads (what the generator can use).
    let threads = tokio::runtime::Handle::current().metrics().num_workers();
    let cpu = Arc::new(Mutex::new(CpuMonitor::new(threads)));
    let ticker = spawn_ticker(&sh, &series, &cpu, &cfg.plan, start);
    let progress = live.map(|tx| spawn_progress(tx, &sh, &cfg.plan, start));

    // Wait for the workers; on a stop request give them `grace` to finish what is in flight.
    let mut interrupted = wait_for_workers(&mut workers, &mut stop, cfg.grace).await;
    // A stop may have ended the workers before the select saw it.
    interrupted |= *stop.borrow();
    let duration = start.elapsed();
    ticker.abort();
    if let Some(p) = progress {
        p.abort();
    }
    // Whatever is left goes into the series.
    flush_series(&sh, &series, &cfg.plan, duration);
    metrics.target_rate.set(0.0);
    metrics.in_flight.set(0.0);
    metrics.active_users.set(0.0);
    let (cpu_mean, cpu_max, cpu_saturated_share, cpu_throttled_percent) = {
        let mut c = cpu.lock().unwrap_or_else(|p| p.into_inner());
        (
            c.mean_percent(),
            c.max_percent,
            c.saturated_share(),
            c.throttled_percent(),
        )
    };
    let series = series.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let error_samples = sh.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let slowest_traces = sh.slowest.lock().unwrap_or_else(|p| p.into_inner()).clone();
    RunData {
        totals: sh.stats.totals(),
        series,
        started_at,
        start,
        duration,
        dropped: sh.dropped.load(Ordering::Relaxed),
        retries: sh.retries.load(Ordering::Relaxed),
        interrupted,
        cpu_mean,
        cpu_max: cpu_max.max(cpu_mean),
        cpu_saturated_share,
        cpu_throttled_percent,
        error_samples,
        slowest_traces,
        connections_opened: sh.opened.load(Ordering::Relaxed),
        reconnects: sh.reconnects.load(Ordering::Relaxed),
        closed: std::array::from_fn(|i| sh.closed[i].load(Ordering::Relaxed)),
    }
}

/// The state every worker shares for a run.
fn shared(
    cfg: &EngineConfig,
    scenario: &Arc<Scenario>,
    connector: Connector,
    metrics: &Arc<RunMetrics>,
    start: Instant,
) -> Arc<Shared> {
    let endpoint_metrics = scenario
        .endpoints
        .iter()
        .map(|e| metrics.endpoint(&e.name))
        .collect();
    Arc::new(Shared {
        live: LiveCounters::default(),
        stats: Stats::with_phases(
            scenario.endpoints.len(),
            cfg.shards,
            start,
            &cfg.plan
                .phases()
                .iter()
                .map(|p| p.duration)
                .collect::<Vec<_>>(),
        ),
        scenario: Arc::clone(scenario),
        connector,
        metrics: Arc::clone(metrics),
        endpoint_metrics,
        counter: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        active_users: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        timeout: cfg.timeout,
        h2: (0..cfg.h2_connections.max(1))
            .map(|_| tokio::sync::Mutex::new(None))
            .collect(),
        http2: cfg.http2,
        lifetime: cfg.lifetime,
        opened: AtomicU64::new(0),
        reconnects: AtomicU64::new(0),
        closed: Default::default(),
        errors: Mutex::new(Vec::new()),
        has_errors: AtomicBool::new(false),
        lag_us: AtomicU64::new(0),
        last_second: Mutex::new((0.0, 0.0)),
        window: Mutex::new(LiveWindow::new(cfg.live_window_s)),
        trace_sample: cfg.trace_sample,
        slowest: Mutex::new(Vec::new()),
        cold_starts: cfg.cold_starts.clone(),
    })
}

/// Starts the plan's workers: one dispatcher handing arrivals to free slots (open loop), or one
/// task per user (closed loop).
fn spawn_workers(
    cfg: &EngineConfig,
    sh: &Arc<Shared>,
    start: Instant,
    stop: &watch::Receiver<bool>,
) -> tokio::task::JoinSet<()> {
    let mut workers = tokio::task::JoinSet::new();
    match &cfg.plan {
        LoadPlan::Open {
            phases,
            requests,
            max_in_flight,
        } => {
            workers.spawn(open::dispatch(
                Arc::clone(sh),
                ArrivalSchedule::new(phases, *requests),
                start,
                *max_in_flight,
                cfg.late_tolerance,
                stop.clone(),
            ));
        }
        LoadPlan::Closed {
            phases,
            max_users,
            requests,
            duration,
            think_time,
        } => {
            let phases = Arc::new(phases.clone());
            let claimed = Arc::new(AtomicU64::new(0));
            for id in 0..*max_users as usize {
                let w = Worker::new(id, Arc::clone(sh));
                workers.spawn(closed_worker(
                    w,
                    Arc::clone(sh),
                    Arc::clone(&phases),
                    Arc::clone(&claimed),
                    *requests,
                    *duration,
                    *think_time,
                    start,
                    stop.clone(),
                ));
            }
        }
    }
    workers
}

/// The ticker: once a second, the series, the gauges and a CPU sample.
fn spawn_ticker(
    sh: &Arc<Shared>,
    series: &Arc<Mutex<TimeSeries>>,
    cpu: &Arc<Mutex<CpuMonitor>>,
    plan: &LoadPlan,
    start: Instant,
) -> tokio::task::JoinHandle<()> {
    let sh = Arc::clone(sh);
    let series = Arc::clone(series);
    let cpu = Arc::clone(cpu);
    let plan = plan.clone();
    tokio::spawn(async move {
        let mut n: u64 = 1;
        loop {
            let at = start + Duration::from_secs(n) + Duration::from_millis(50);
            tokio::time::sleep_until(at.into()).await;
            tick(&sh, &series, &plan, n, start);
            if let Ok(mut c) = cpu.lock() {
                c.sample();
            }
            n += 1;
        }
    })
}

/// Sends the live figures to the progress line four times a second.
fn spawn_progress(
    tx: watch::Sender<Live>,
    sh: &Arc<Shared>,
    plan: &LoadPlan,
    start: Instant,
) -> tokio::task::JoinHandle<()> {
    let sh = Arc::clone(sh);
    let plan = plan.clone();
    tokio::spawn(async move {
        let mut iv = tokio::time::interval(Duration::from_millis(250));
        loop {
            iv.tick().await;
            let (last_rps, last_p99_ms) = *sh.last_second.lock().unwrap_or_else(|p| p.into_inner());
            let (window_rps, window_p99_ms) =
                sh.window.lock().unwrap_or_else(|p| p.into_inner()).figures;
            let elapsed = start.elapsed();
            let _ = tx.send(Live {
                phase: plan.phase_at(elapsed),
                target: plan.target_at(elapsed),
                window_rps,
                window_p99_ms,
                elapsed,
                requests: sh.live.requests.load(Ordering::Relaxed),
                failures: sh.live.failures.load(Ordering::Relaxed),
                in_flight: sh.in_flight.load(Ordering::Relaxed),
                active_users: sh.active_users.load(Ordering::Relaxed),
                last_rps,
                last_p99_ms,
                dropped: sh.dropped.load(Ordering::Relaxed),
            });
        }
    })
}

/// Waits for the workers; on a stop request gives them `grace` to finish what is in flight.
/// True when a stop ended them.
async fn wait_for_workers(
    workers: &mut tokio::task::JoinSet<()>,
    stop: &mut watch::Receiver<bool>,
    grace: Duration,
) -> bool {
    let mut interrupted = false;
    loop {
        tokio::select! {
            r = workers.join_next() => {
                if r.is_none() { break; }
            }
            changed = stop.changed(), if !interrupted => {
                if changed.is_ok() && *stop.borrow() {
                    interrupted = true;
                    let deadline = tokio::time::Instant::now() + grace.min(crate::limits::MAX_DURATION);
                    while tokio::time::timeout_at(deadline, workers.join_next()).await.ok().flatten().is_some() {}
                    workers.abort_all();
                    while workers.join_next().await.is_some() {}
                    break;
                } else if changed.is_err() {
                    // The sender is gone: no stop can come any more; keep waiting for workers.
                    interrupted = false;
                    while workers.join_next().await.is_some() {}
                    break;
                }
            }
        }
    }
    interrupted
}

/// Puts what the ticker has not taken yet into the series and ends it at `duration`.
fn flush_series(sh: &Shared, series: &Mutex<TimeSeries>, plan: &LoadPlan, duration: Duration) {
    let mut s = series.lock().unwrap_or_else(|p| p.into_inner());
    for sec in sh.stats.take_seconds(u64::MAX) {
        let t = Duration::from_secs(sec.idx);
        s.push(
            &sec,
            plan.rate_at(t),
            sh.active_users.load(Ordering::Relaxed),
            0,
        );
    }
    s.finish(duration);
}

fn tick(sh: &Shared, series: &Mutex<TimeSeries>, plan: &LoadPlan, n: u64, start: Instant) {
    let active = sh.active_users.load(Ordering::Relaxed);
    let in_flight = sh.in_flight.load(Ordering::Relaxed);
    let secs = sh.stats.take_seconds(n);
    {
        let mut s = series.lock().unwrap_or_else(|p| p.into_inner());
        for sec in &secs {
            let rate = plan.rate_at(Duration::from_secs(sec.idx) + Duration::from_millis(500));
            s.push(sec, rate, active, in_flight);
        }
    }
    if !secs.is_empty() || n > 0 {
        sh.window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(n, &secs);
    }
    if let Some(last) = secs.last() {
        let p99 = if last.hist.is_empty() {
            0.0
        } else {
            last.hist.value_at_quantile(0.99) as f64 / 1000.0
        };
        *sh.last_second.lock().unwrap_or_else(|p| p.into_inner()) = (last.requests as f64, p99);
    } else {
        *sh.last_second.lock().unwrap_or_else(|p| p.into_inner()) = (0.0, 0.0);
    }
    let m = &sh.metrics;
    m.target_rate.set(plan.rate_at(start.elapsed()));
    m.active_users.set(active as f64);
    m.in_flight.set(in_flight as f64);
    m.schedule_lag
        .set(sh.lag_us.swap(0, Ordering::Relaxed) as f64 / 1e6);
    // Histogram samples queue in the recorder until drained: drain them even if nobody scrapes.
    m.run_upkeep();
}

/// The last few complete seconds, for progress lines printed every few seconds: their throughput
/// and p99 describe the interval since the previous line, not just its last second.
struct LiveWindow {
    seconds: std::collections::VecDeque<(u64, hdrhistogram::Histogram<u64>, u64)>,
    len: u64,
    /// (requests per second, p99 ms) over the window.
    figures: (f64, f64),
}

impl LiveWindow {
    fn new(len: u64) -> Self {
        Self {
            seconds: Default::default(),
            len: len.max(1),
            figures: (0.0, 0.0),
        }
    }

    /// Adds the seconds that completed before second `now` and recomputes the figures over the
    /// `len` seconds before `now` (seconds without a request count as zero).
    fn push(&mut self, now: u64, secs: &[crate::stats::SecondTotals]) {
        for s in secs {
            self.seconds.push_back((s.idx, s.hist.clone(), s.requests));
        }
        let from = now.saturating_sub(self.len);
        self.seconds.retain(|(idx, _, _)| *idx >= from);
        let mut all = crate::model::hist::new_small_hist();
        let mut requests = 0;
        for (_, h, n) in &self.seconds {
            let _ = all.add(h);
            requests += n;
        }
        let width = (now - from).max(1) as f64;
        let p99 = if all.is_empty() {
            0.0
        } else {
            all.value_at_quantile(0.99) as f64 / 1000.0
        };
        self.figures = (requests as f64 / width, p99);
    }
}

/// Waits until `t` unless a stop comes first; returns false when stopped.
pub(crate) async fn sleep_or_stop(t: Instant, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(t.into()) => true,
        r = stop.changed() => match r {
            Ok(()) => !*stop.borrow(),
            // No stop can come any more: just sleep.
            Err(_) => { tokio::time::sleep_until(t.into()).await; true }
        },
    }
}

#[allow(clippy::too_many_arguments)]
async fn closed_worker(
    mut w: Worker,
    sh: Arc<Shared>,
    phases: Arc<Vec<crate::plan::Phase>>,
    claimed: Arc<AtomicU64>,
    requests: Option<u64>,
    duration: Option<Duration>,
    think: Option<Duration>,
    start: Instant,
    mut stop: watch::Receiver<bool>,
) {
    let mut active = false;
    let set_active = |on: bool, active: &mut bool| {
        if on != *active {
            *active = on;
            if on {
                sh.active_users.fetch_add(1, Ordering::Relaxed);
            } else {
                sh.active_users.fetch_sub(1, Ordering::Relaxed);
            }
        }
    };
    loop {
        if *stop.borrow() {
            break;
        }
        let el = start.elapsed();
        if duration.is_some_and(|d| el >= d) {
            break;
        }
        match user_gate(&phases, w.id as u64, el) {
            UserGate::Active => set_active(true, &mut active),
            UserGate::From(t) => {
                set_active(false, &mut active);
                if !sleep_or_stop(start + t, &mut stop).await {
                    break;
                }
                continue;
            }
            UserGate::Done => break,
        }
        if let Some(total) = requests
            && claimed.fetch_add(1, Ordering::Relaxed) >= total
        {
            break;
        }
        w.iteration(None).await;
        if let Some(t) = think
            && !sleep_or_stop(Instant::now() + t, &mut stop).await
        {
            break;
        }
    }
    set_active(false, &mut active);
}
