//! CPU-bound work off the async runtime: jobs run on tokio's blocking pool behind a semaphore
//! sized to the CPU quota. The runtime's workers stay free for I/O, so `/ping` and the probes
//! answer promptly while `/work/cpu` saturates the CPU, and excess jobs queue on the semaphore
//! instead of oversubscribing the quota with hundreds of spinning threads.
//!
//! A job that finds every slot busy is admitted by its expected wait, not by a fixed queue
//! length (see [`crate::admission`]): queued when `(running + queued) × mean job time / slots` is
//! within `--queue-delay-budget`, shed at once with the `overloaded` 503 (reason `queue_delay`)
//! otherwise. So a burst of cheap jobs
//! waits its few milliseconds, while a sustained overload of expensive ones turns into fast 503s.
//! The queue's length has a hard cap too (`--cpu-queue`, reason `overload`): the estimate knows
//! nothing before the first job ends, and memory must stay bounded whatever it says.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::sync::Semaphore;

use crate::admission::{Decision, QueueDelayPolicy, ServiceTime};
use crate::error::AppError;
use crate::metrics::{Metrics, RejectReason};
use crate::middleware::overloaded;

/// Default hard cap on queued jobs per CPU worker. Not what normally sheds (the delay budget
/// does): a memory safety net, generous enough that 256 connections of cheap jobs per core queue
/// rather than see a 503, and small enough that the waiting requests (a few KiB each, bodies at
/// most `--max-body-bytes`) stay a few MiB.
pub const DEFAULT_QUEUE_PER_WORKER: usize = 256;

/// A bounded pool for CPU jobs, with admission by expected queueing delay.
#[derive(Debug, Clone)]
pub struct CpuPool {
    permits: Arc<Semaphore>,
    policy: QueueDelayPolicy,
    queue_limit: usize,
    /// Jobs waiting for a slot right now; never above `queue_limit`.
    waiting: Arc<AtomicUsize>,
    /// How long recent jobs held their slot.
    service_time: Arc<ServiceTime>,
    metrics: Arc<Metrics>,
}
/// Set when the request that started a job is gone (client left, timeout): the job should stop.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Cancels on drop, i.e. when the awaiting request future is dropped.
struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.0.store(true, Ordering::Relaxed);
    }
}

/// A place in the wait queue; given back on drop (also when the waiting request is dropped).
struct QueueSlot<'a>(&'a AtomicUsize);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl CpuPool {
    /// `size` concurrent jobs (at least 1); a job finding them busy is queued while its estimated
    /// wait is within `budget`, and at most `queue_limit` are queued (0 = no queue: a job runs at
    /// once or is shed). Sheds are counted in `metrics` (reasons `queue_delay` and `overload`).
    pub fn new(size: usize, queue_limit: usize, budget: Duration, metrics: Arc<Metrics>) -> Self {
        let size = size.max(1);
        metrics.set_cpu_queue_delay_budget(budget);
        Self {
            permits: Arc::new(Semaphore::new(size)),
            policy: QueueDelayPolicy {
                budget,
                slots: size,
            },
            queue_limit,
            waiting: Arc::new(AtomicUsize::new(0)),
            service_time: Arc::new(ServiceTime::default()),
            metrics,
        }
    }

    pub fn size(&self) -> usize {
        self.policy.slots
    }

    pub fn queue_limit(&self) -> usize {
        self.queue_limit
    }

    /// `--queue-delay-budget`.
    pub fn queue_delay_budget(&self) -> Duration {
        self.policy.budget
    }

    /// Jobs waiting for a slot right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Jobs holding a slot right now.
    fn running(&self) -> usize {
        self.policy
            .slots
            .saturating_sub(self.permits.available_permits())
    }

    /// The admission decision for a job arriving now, also published as the estimated-wait gauge.
    fn decide(&self) -> Decision {
        let decision = self
            .policy
            .decide(self.running(), self.waiting(), self.service_time.mean());
        let (Decision::Queue { estimate } | Decision::Shed { estimate }) = decision;
        self.metrics.set_cpu_queue_estimated_wait(estimate);
        decision
    }

    /// Takes a place in the queue unless it is full (compare-and-swap, no lock).
    fn enqueue(&self) -> Option<QueueSlot<'_>> {
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.queue_limit).then_some(n + 1)
            })
            .ok()
            .map(|_| QueueSlot(&self.waiting))
    }

    /// Runs `job` on the blocking pool once a slot is free; sheds it with the `overloaded` 503
    /// when its estimated wait exceeds the delay budget or the queue is at its cap. A shed job costs a few atomic operations: nothing is run or queued.
    pub async fn run<T, F>(&self, job: F) -> Result<T, AppError>
    where
        F: FnOnce(&Cancel) -> T + Send + 'static,
        T: Send + 'static,
    {
        let closed = || AppError::from_status(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(closed()),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                if let Decision::Shed { .. } = self.decide() {
                    self.metrics.reject(RejectReason::QueueDelay);
                    return Err(overloaded(
                        "CPU pool busy: the estimated wait exceeds the queue delay budget; retry later",
                    ));
                }
                let Some(slot) = self.enqueue() else {
                    self.metrics.reject(RejectReason::Overload);
                    return Err(overloaded("CPU pool busy and its queue full; retry later"));
                };
                // No sojourn drop here (CoDel drops a packet that has waited too long): a request
                // dropped after waiting is a slow 503, and a shed request must be a fast one. A
                // wrong estimate is bounded by the cap, the in-flight limit and the timeout.
                let permit = self
                    .permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| closed())?;
                drop(slot);
                permit
            }
        };
        let cancel = Cancel::default();
        let guard = CancelOnDrop(cancel.clone());
        let service_time = self.service_time.clone();
        let result = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let output = job(&cancel);
            // Recorded before the slot is given back, so the next decision already sees it.
            service_time.record(started.elapsed());
            drop(permit);
            output
        })
        .await;
        drop(guard);
        if self.permits.available_permits() > 0 {
            self.metrics.set_cpu_queue_estimated_wait(Duration::ZERO);
        }
        result.map_err(|e| {
            AppError::from_status(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("CPU job failed: {e}"),
            )
        })
    }
}

/// Spins the current thread until it has used `duration` of its own CPU time, checking `cancel`
/// between rounds. Returns the rounds done, so the work cannot be optimised away.
///
/// CPU time, not wall time: under CPU throttling (a container's CFS quota) or on a shared core the
/// thread is descheduled part of the time, and a wall-clock loop would then use less CPU than asked
/// — exactly the cost a docker-vs-HPA comparison must hold constant. The thread CPU clock
/// (`CLOCK_THREAD_CPUTIME_ID`) only advances while this thread runs.
///
/// It always ends: when cancelled, or at the wall-clock cap `wall_cap` (a thread starved for that
/// long is better given back), or at once if the thread CPU clock cannot be read (after burning
/// `duration` of wall time, the old behaviour).
pub fn burn(duration: Duration, wall_cap: Duration, cancel: &Cancel) -> u64 {
    let wall_start = Instant::now();
    let cpu_start = cpu_time::ThreadTime::try_now().ok();
    let done = || match &cpu_start {
        Some(start) => start.try_elapsed().map_or(true, |used| used >= duration),
        None => wall_start.elapsed() >= duration,
    };
    let mut rounds: u64 = 0;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while !done() && wall_start.elapsed() < wall_cap && !cancel.is_cancelled() {
        for _ in 0..2_000 {
            // xorshift: cheap, data-dependent, not constant-foldable.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        rounds = rounds.wrapping_add(1);
    }
    std::hint::black_box(x);
    rounds
}

/// The wall-clock cap for a burn of `duration` CPU time in a request with timeout
/// `request_timeout`: ten times the work plus the timeout. The request timeout cancels the job
/// first in any normal case; the cap only guarantees the loop ends when nothing else does.
pub fn burn_wall_cap(duration: Duration, request_timeout: Duration) -> Duration {
    duration.saturating_mul(10).saturating_add(request_timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_metrics() -> Arc<Metrics> {
        Metrics::new("test", 1.0)
    }

    const NO_CAP: Duration = Duration::from_secs(3600);
    /// A budget no test job comes near: only the queue cap sheds.
    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn burn_uses_at_least_the_requested_thread_cpu_time() {
        let cpu = cpu_time::ThreadTime::now();
        let rounds = burn(Duration::from_millis(30), NO_CAP, &Cancel::default());
        let used = cpu.elapsed();
        assert!(rounds > 0);
        // A lower bound only: the clock it waits on is the one measured here.
        assert!(used >= Duration::from_millis(30), "{used:?}");
    }

    #[test]
    fn burn_ends_at_the_wall_clock_cap() {
        let start = Instant::now();
        burn(
            Duration::from_secs(3600),
            Duration::from_millis(20),
            &Cancel::default(),
        );
        assert!(start.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn wall_cap_is_ten_times_the_work_plus_the_timeout_and_never_overflows() {
        assert_eq!(
            burn_wall_cap(Duration::from_millis(100), Duration::from_secs(30)),
            Duration::from_millis(31_000)
        );
        assert_eq!(burn_wall_cap(Duration::MAX, Duration::MAX), Duration::MAX);
    }

    #[test]
    fn burn_stops_when_cancelled() {
        let cancel = Cancel::default();
        cancel.0.store(true, Ordering::Relaxed);
        let start = Instant::now();
        burn(Duration::from_secs(10), NO_CAP, &cancel);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn pool_runs_at_most_size_jobs_at_once() {
        use std::sync::atomic::AtomicUsize;
        let pool = CpuPool::new(2, 8, LONG, test_metrics());
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut jobs = Vec::new();
        for _ in 0..6 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            jobs.push(tokio::spawn(async move {
                pool.run(move |_| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        for j in jobs {
            j.await.unwrap().unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn dropping_the_request_cancels_the_job() {
        let pool = CpuPool::new(1, 4, LONG, test_metrics());
        let (tx, rx) = std::sync::mpsc::channel();
        let fut = pool.run(move |cancel| {
            let rounds = burn(Duration::from_secs(10), NO_CAP, cancel);
            tx.send(rounds).unwrap();
        });
        let _ = tokio::time::timeout(Duration::from_millis(50), fut).await;
        let done = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(3)))
            .await
            .unwrap();
        assert!(
            done.is_ok(),
            "job kept running after its request was dropped"
        );
    }

    #[tokio::test]
    async fn a_full_queue_sheds_at_once_and_frees_its_places() {
        let metrics = test_metrics();
        let pool = CpuPool::new(1, 1, LONG, metrics.clone());
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let running = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move |_| gate.recv().unwrap()).await })
        };
        // Wait for the first job to hold the slot.
        let start = Instant::now();
        while pool.permits.available_permits() != 0 {
            assert!(start.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let queued = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|_| 7).await })
        };
        while pool.waiting() != 1 {
            assert!(start.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let shed = pool.run(|_| 0).await.unwrap_err();
        assert_eq!(shed.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(shed.kind, "overloaded");
        assert!(shed.retry_after.is_some());
        release.send(()).unwrap();
        running.await.unwrap().unwrap();
        assert_eq!(queued.await.unwrap().unwrap(), 7);
        assert_eq!(pool.waiting(), 0);
        let text = metrics.render();
        assert!(
            text.contains("http_server_rejected_requests_total{reason=\"overload\"} 1"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_dropped_waiter_gives_its_place_back() {
        let pool = CpuPool::new(1, 1, LONG, test_metrics());
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let running = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move |_| gate.recv().unwrap()).await })
        };
        let start = Instant::now();
        while pool.permits.available_permits() != 0 {
            assert!(start.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let waiter = tokio::time::timeout(Duration::from_millis(50), pool.run(|_| ())).await;
        assert!(waiter.is_err(), "the waiter should still be queued");
        assert_eq!(pool.waiting(), 0);
        release.send(()).unwrap();
        running.await.unwrap().unwrap();
    }

    /// Starts a job that holds the pool's only slot until the returned sender sends (or drops).
    async fn hold_the_slot(
        pool: &CpuPool,
    ) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let running = {
            let pool = pool.clone();
            tokio::spawn(async move {
                let _ = pool.run(move |_| gate.recv()).await;
            })
        };
        let start = Instant::now();
        while pool.permits.available_permits() != 0 {
            assert!(start.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (release, running)
    }

    fn rejected(metrics: &Metrics, reason: &str) -> f64 {
        let series = format!("http_server_rejected_requests_total{{reason=\"{reason}\"}}");
        crate::metrics::parse_exposition(&metrics.render())
            .into_iter()
            .find(|(s, _)| *s == series)
            .map_or(f64::NAN, |(_, v)| v)
    }

    #[tokio::test]
    async fn a_burst_of_32_cheap_jobs_on_one_slot_all_run_instead_of_being_shed() {
        let metrics = test_metrics();
        let pool = CpuPool::new(1, 1000, Duration::from_secs(1), metrics.clone());
        // History: jobs take about a millisecond.
        for _ in 0..4 {
            pool.run(|_| std::thread::sleep(Duration::from_millis(1)))
                .await
                .unwrap();
        }
        let (release, running) = hold_the_slot(&pool).await;
        let burst: Vec<_> = (0..32)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    pool.run(move |_| {
                        std::thread::sleep(Duration::from_millis(1));
                        i
                    })
                    .await
                })
            })
            .collect();
        let start = Instant::now();
        while pool.waiting() != 32 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{}",
                pool.waiting()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        release.send(()).unwrap();
        running.await.unwrap();
        for (i, job) in burst.into_iter().enumerate() {
            assert_eq!(job.await.unwrap().unwrap(), i);
        }
        assert_eq!(rejected(&metrics, "queue_delay"), 0.0);
        assert_eq!(rejected(&metrics, "overload"), 0.0);
    }

    #[tokio::test]
    async fn a_job_whose_estimated_wait_exceeds_the_budget_is_shed_at_once() {
        let metrics = test_metrics();
        let pool = CpuPool::new(1, 1000, Duration::from_millis(20), metrics.clone());
        // History: jobs take 60 ms, so one job ahead is already three budgets of wait.
        pool.run(|_| std::thread::sleep(Duration::from_millis(60)))
            .await
            .unwrap();
        let (release, running) = hold_the_slot(&pool).await;
        // At once: queued, it would wait for the held slot until the end of the test.
        let shed = tokio::time::timeout(Duration::from_secs(5), pool.run(|_| ()))
            .await
            .expect("the job was queued instead of shed")
            .unwrap_err();
        assert_eq!(shed.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(shed.kind, "overloaded");
        assert!(shed.retry_after.is_some());
        assert_eq!(pool.waiting(), 0, "nothing was queued");
        assert_eq!(rejected(&metrics, "queue_delay"), 1.0);
        let gauges = crate::metrics::parse_exposition(&metrics.render());
        let gauge = |name: &str| gauges.iter().find(|(s, _)| s == name).map(|(_, v)| *v);
        let estimate = gauge("workload_cpu_queue_estimated_wait_seconds").unwrap();
        assert!(
            (0.06..1.0).contains(&estimate),
            "the gauge shows the estimate: {estimate}"
        );
        assert_eq!(gauge("workload_cpu_queue_delay_budget_seconds"), Some(0.02));
        release.send(()).unwrap();
        running.await.unwrap();
    }

    #[tokio::test]
    async fn memory_bound_the_queue_never_exceeds_its_cap() {
        let metrics = test_metrics();
        // A cold pool admits everything by delay: the cap alone bounds the queue.
        let pool = CpuPool::new(1, 3, LONG, metrics.clone());
        let (release, running) = hold_the_slot(&pool).await;
        let jobs: Vec<_> = (0..20)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.run(|_| ()).await.is_ok() })
            })
            .collect();
        let start = Instant::now();
        while rejected(&metrics, "overload") < 17.0 {
            assert!(pool.waiting() <= 3, "{}", pool.waiting());
            assert!(start.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(pool.waiting(), 3);
        release.send(()).unwrap();
        running.await.unwrap();
        let mut ran = 0;
        for job in jobs {
            ran += usize::from(job.await.unwrap());
        }
        assert_eq!(ran, 3);
        assert_eq!(rejected(&metrics, "overload"), 17.0);
        assert_eq!(rejected(&metrics, "queue_delay"), 0.0);
    }
}
