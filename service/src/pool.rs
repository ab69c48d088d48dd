//! CPU-bound work off the async runtime: jobs run on tokio's blocking pool behind a semaphore
//! sized to the CPU quota. The runtime's workers stay free for I/O, so `/ping` and the probes
//! answer promptly while `/work/cpu` saturates the CPU, and excess jobs queue on the semaphore
//! instead of oversubscribing the quota with hundreds of spinning threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tokio::sync::Semaphore;

use crate::error::AppError;

/// A bounded pool for CPU jobs.
#[derive(Debug, Clone)]
pub struct CpuPool {
    permits: Arc<Semaphore>,
    size: usize,
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

impl CpuPool {
    pub fn new(size: usize) -> Self {
        let size = size.max(1);
        Self {
            permits: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `job` on the blocking pool once a slot is free.
    pub async fn run<T, F>(&self, job: F) -> Result<T, AppError>
    where
        F: FnOnce(&Cancel) -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit =
            self.permits.clone().acquire_owned().await.map_err(|_| {
                AppError::from_status(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
            })?;
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

/// Spins the current thread for about `duration` of wall time (on an idle CPU, that much CPU
/// time), checking `cancel` between rounds. Returns the rounds done, so the work cannot be
/// optimised away.
pub fn burn(duration: Duration, cancel: &Cancel) -> u64 {
    let start = Instant::now();
    let mut rounds: u64 = 0;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while start.elapsed() < duration && !cancel.is_cancelled() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_takes_about_the_requested_time() {
        let start = Instant::now();
        let rounds = burn(Duration::from_millis(30), &Cancel::default());
        let took = start.elapsed();
        assert!(rounds > 0);
        assert!(took >= Duration::from_millis(30), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn burn_stops_when_cancelled() {
        let cancel = Cancel::default();
        cancel.0.store(true, Ordering::Relaxed);
        let start = Instant::now();
        burn(Duration::from_secs(10), &cancel);
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn pool_runs_at_most_size_jobs_at_once() {
        use std::sync::atomic::AtomicUsize;
        let pool = CpuPool::new(2);
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
        let pool = CpuPool::new(1);
        let (tx, rx) = std::sync::mpsc::channel();
        let fut = pool.run(move |cancel| {
            let rounds = burn(Duration::from_secs(10), cancel);
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
}
