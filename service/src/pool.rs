//! CPU-bound work off the async runtime: jobs run on tokio's blocking pool behind a semaphore
//! sized to the CPU quota. The runtime's workers stay free for I/O, so `/ping` and the probes
//! answer promptly while `/work/cpu` saturates the CPU, and excess jobs queue on the semaphore
//! instead of oversubscribing the quota with hundreds of spinning threads.
//!
//! The queue itself is bounded (`--cpu-queue`): a job that finds every slot busy and the queue
//! full is shed at once with the `overloaded` 503. Without that bound only the global in-flight
//! limit sheds, and 1024 queued CPU jobs on two cores are seconds of latency before any client
//! hears "retry later"; with it, a queued job waits at most about `queue / size` job lengths.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::sync::Semaphore;

use crate::error::AppError;
use crate::metrics::{Metrics, RejectReason};
use crate::middleware::overloaded;

/// Default queue length per CPU worker: a few job lengths of queueing absorb bursts (a closed
/// loop of a handful of users per worker never sees a 503) while a sustained overload turns into
/// fast 503s after at most about four job lengths of wait, not seconds.
pub const DEFAULT_QUEUE_PER_WORKER: usize = 4;

/// A bounded pool for CPU jobs with a bounded wait queue.
#[derive(Debug, Clone)]
pub struct CpuPool {
    permits: Arc<Semaphore>,
    size: usize,
    queue_limit: usize,
    /// Jobs waiting for a slot right now; never above `queue_limit`.
    waiting: Arc<AtomicUsize>,
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
    /// `size` concurrent jobs (at least 1), at most `queue_limit` more waiting (0 = no queue:
    /// a job runs at once or is shed). Sheds are counted in `metrics` as reason `overload`.
    pub fn new(size: usize, queue_limit: usize, metrics: Arc<Metrics>) -> Self {
        let size = size.max(1);
        Self {
            permits: Arc::new(Semaphore::new(size)),
            size,
            queue_limit,
            waiting: Arc::new(AtomicUsize::new(0)),
            metrics,
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn queue_limit(&self) -> usize {
        self.queue_limit
    }

    /// Jobs waiting for a slot right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
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
    /// when no slot is free and the queue is full.
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
                let Some(slot) = self.enqueue() else {
                    self.metrics.reject(RejectReason::Overload);
                    return Err(overloaded("CPU pool busy and its queue full; retry later"));
                };
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
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job(&cancel)
        })
        .await;
        drop(guard);
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
        let pool = CpuPool::new(2, 8, test_metrics());
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
        let pool = CpuPool::new(1, 4, test_metrics());
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
        let pool = CpuPool::new(1, 1, metrics.clone());
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
        let pool = CpuPool::new(1, 1, test_metrics());
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
}
