//! Open loop: a dispatcher wakes at each arrival's intended time and hands it to an idle worker.
//!
//! Workers are created on demand up to the in-flight cap (so the number of connections is what the
//! load needs, not the cap), and idle workers are reused last-in-first-out so warm connections
//! carry the traffic. When every slot is busy, arrivals wait in a backlog in arrival order and keep
//! their intended start: the wait is part of their latency (no coordinated omission). What is still
//! in the backlog when the plan ends is dropped and counted.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use super::worker::Worker;
use super::{Shared, sleep_or_stop};
use crate::plan::ArrivalSchedule;

#[derive(Default)]
struct Pool {
    idle: Vec<oneshot::Sender<Instant>>,
    backlog: VecDeque<Instant>,
    spawned: u64,
    closed: bool,
}

fn lock(p: &Mutex<Pool>) -> std::sync::MutexGuard<'_, Pool> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the whole open-loop plan; returns when every worker has finished.
pub(super) async fn dispatch(
    sh: Arc<Shared>,
    sched: ArrivalSchedule,
    start: Instant,
    max_in_flight: u64,
    late_tol: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let pool = Arc::new(Mutex::new(Pool::default()));
    let mut workers = tokio::task::JoinSet::new();
    let mut k = 0u64;
    let mut stopped = false;
    while let Some(off) = sched.at(k) {
        let t = start + off;
        if t > Instant::now() && !sleep_or_stop(t, &mut stop).await {
            stopped = true;
            break;
        }
        let lag = Instant::now().saturating_duration_since(t);
        sh.lag_us
            .fetch_max(lag.as_micros() as u64, Ordering::Relaxed);
        sh.stats.record_start(0, Some(lag), false);
        let mut job = Some(t);
        while let Some(t) = job.take() {
            let mut p = lock(&pool);
            if let Some(tx) = p.idle.pop() {
                drop(p);
                // A dropped receiver means that worker ended: try the next one.
                if let Err(t) = tx.send(t) {
                    job = Some(t);
                }
            } else if p.spawned < max_in_flight {
                p.spawned += 1;
                let id = p.spawned as usize - 1;
                drop(p);
                let w = Worker::new(id, Arc::clone(&sh));
                workers.spawn(worker(w, Arc::clone(&sh), Arc::clone(&pool), t, late_tol));
            } else {
                p.backlog.push_back(t);
            }
        }
        k += 1;
    }
    if !stopped {
        // Wait for the plan's end (a pause phase may follow the last arrival).
        stopped = !sleep_or_stop(start + sched.end(), &mut stop).await;
    }
    {
        let mut p = lock(&pool);
        if !stopped {
            let n = p.backlog.len() as u64;
            sh.dropped.fetch_add(n, Ordering::Relaxed);
            sh.metrics.dropped.increment(n);
        }
        p.backlog.clear();
        p.closed = true;
        p.idle.clear();
    }
    while workers.join_next().await.is_some() {}
}

async fn worker(
    mut w: Worker,
    sh: Arc<Shared>,
    pool: Arc<Mutex<Pool>>,
    first: Instant,
    late_tol: Duration,
) {
    let mut job = Some(first);
    loop {
        let intended = match job.take() {
            Some(t) => t,
            None => {
                let rx = {
                    let mut p = lock(&pool);
                    if let Some(t) = p.backlog.pop_front() {
                        Ok(t)
                    } else if p.closed {
                        return;
                    } else {
                        let (tx, rx) = oneshot::channel();
                        p.idle.push(tx);
                        Err(rx)
                    }
                };
                match rx {
                    Ok(t) => t,
                    Err(rx) => match rx.await {
                        Ok(t) => t,
                        Err(_) => return,
                    },
                }
            }
        };
        let late = Instant::now().saturating_duration_since(intended) > late_tol;
        if late {
            sh.metrics.late.increment(1);
            sh.stats.record_start(w.id, None, true);
        }
        w.iteration(Some(intended)).await;
    }
}
