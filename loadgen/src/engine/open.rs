//! Open loop: the arrival clock ([`super::clock`]) releases each arrival at its intended time and
//! the dispatcher hands it to an idle worker.
//!
//! Workers are created on demand up to the in-flight cap (so the number of connections is what the
//! load needs, not the cap), and idle workers are reused last-in-first-out so warm connections
//! carry the traffic. When every slot is busy, arrivals wait in a backlog in arrival order and keep
//! their intended start: the wait is part of their latency (no coordinated omission). What is still
//! in the backlog when the plan ends is dropped and counted.
//!
//! The backlog is a range of arrival indices, not a queue of times: under overload it can hold
//! millions of arrivals, and arrival `k`'s intended time is recomputed from the schedule when a
//! worker takes it, so its memory is constant however long the target stalls.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use super::clock::ArrivalClock;
use super::worker::Worker;
use super::{Shared, sleep_or_stop};
use crate::plan::ArrivalSchedule;

/// Overdue arrivals waiting for a free slot: the contiguous indices `next..end` of the schedule.
///
/// Contiguous because arrivals are enqueued in index order and, while the backlog is not empty,
/// every new arrival joins it (a freed worker always takes the backlog before going idle).
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Backlog(Range<u64>);

impl Backlog {
    /// Appends arrival `k`, which must be the next index after the last one pushed.
    pub(super) fn push(&mut self, k: u64) {
        if self.0.is_empty() {
            self.0 = k..k + 1;
        } else {
            debug_assert_eq!(self.0.end, k, "backlog arrivals are contiguous");
            self.0.end = k + 1;
        }
    }

    /// The oldest waiting arrival and its intended time (from the schedule, so never drifted).
    pub(super) fn pop(&mut self, sched: &ArrivalSchedule, start: Instant) -> Option<Instant> {
        let k = self.0.next()?;
        // An index in the backlog came from `sched.at`, so it is inside the plan.
        Some(start + sched.at(k).unwrap_or_else(|| sched.end()))
    }

    pub(super) fn len(&self) -> u64 {
        self.0.end - self.0.start
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.0 = 0..0;
    }
}

struct Pool {
    idle: Vec<oneshot::Sender<Instant>>,
    backlog: Backlog,
    sched: ArrivalSchedule,
    start: Instant,
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
    let pool = Arc::new(Mutex::new(Pool {
        idle: Vec::new(),
        backlog: Backlog::default(),
        sched: sched.clone(),
        start,
        spawned: 0,
        closed: false,
    }));
    let mut workers = tokio::task::JoinSet::new();
    let mut stopped = false;
    // False once the stop sender is gone (no stop can come any more).
    let mut stoppable = true;
    // The arrival clock runs on its own thread; without one (the OS refused a thread) the run
    // cannot keep its schedule at all, so it ends at once and says why.
    let mut clock = match ArrivalClock::start(sched.clone(), start) {
        Ok(c) => c,
        Err(e) => {
            sh.note_error(&format!("cannot start the arrival clock thread: {e}"));
            return;
        }
    };
    if *stop.borrow() {
        stopped = true;
        clock.stop();
    }
    loop {
        let due = tokio::select! {
            biased;
            r = stop.changed(), if stoppable && !stopped => {
                match r {
                    Ok(()) if *stop.borrow() => {
                        stopped = true;
                        clock.stop();
                    }
                    Ok(()) => {}
                    Err(_) => stoppable = false,
                }
                continue;
            }
            due = clock.due() => due,
        };
        let Some(due) = due else { break };
        if stopped {
            break;
        }
        for k in due {
            let a = clock.arrival(k);
            sh.lag_us
                .fetch_max(a.lag.as_micros() as u64, Ordering::Relaxed);
            sh.stats.record_start(0, Some(a.lag), false);
            assign(
                &sh,
                &pool,
                &mut workers,
                k,
                a.intended,
                max_in_flight,
                late_tol,
            );
        }
    }
    stopped |= *stop.borrow();
    // The thread ends within a sleep slice once stopped or past the schedule.
    let _ = tokio::task::spawn_blocking(move || clock.join()).await;
    if !stopped {
        // Wait for the plan's end (a pause phase may follow the last arrival).
        stopped = !sleep_or_stop(start + sched.end(), &mut stop).await;
    }
    {
        let mut p = lock(&pool);
        if !stopped {
            let n = p.backlog.len();
            sh.dropped.fetch_add(n, Ordering::Relaxed);
            sh.metrics.dropped.increment(n);
        }
        p.backlog.clear();
        p.closed = true;
        p.idle.clear();
    }
    while workers.join_next().await.is_some() {}
}

/// Hands arrival `k` to an idle worker, a new one (below the cap) or the backlog.
fn assign(
    sh: &Arc<Shared>,
    pool: &Arc<Mutex<Pool>>,
    workers: &mut tokio::task::JoinSet<()>,
    k: u64,
    t: Instant,
    max_in_flight: u64,
    late_tol: Duration,
) {
    let mut job = Some(t);
    while let Some(t) = job.take() {
        let mut p = lock(pool);
        if !p.backlog.is_empty() {
            // Older arrivals are waiting: this one queues behind them (arrival order).
            p.backlog.push(k);
        } else if let Some(tx) = p.idle.pop() {
            drop(p);
            // A dropped receiver means that worker ended: try the next one.
            if let Err(t) = tx.send(t) {
                job = Some(t);
            }
        } else if p.spawned < max_in_flight {
            p.spawned += 1;
            let id = p.spawned as usize - 1;
            drop(p);
            let w = Worker::new(id, Arc::clone(sh));
            workers.spawn(worker(w, Arc::clone(sh), Arc::clone(pool), t, late_tol));
        } else {
            p.backlog.push(k);
        }
    }
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
                    let p = &mut *p;
                    if let Some(t) = p.backlog.pop(&p.sched, p.start) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Phase;

    #[test]
    fn backlog_is_constant_memory_and_keeps_arrival_order_and_intended_times() {
        // 1,000/s for an hour: a target that stalls for the whole run backs up 3.6 million arrivals.
        let sched = ArrivalSchedule::new(
            &[Phase {
                name: "hold".into(),
                duration: Duration::from_secs(3600),
                from: 1000.0,
                to: 1000.0,
            }],
            None,
        );
        let start = Instant::now();
        let mut b = Backlog::default();
        let size = std::mem::size_of_val(&b);
        for k in 5..3_600_000 {
            b.push(k);
        }
        assert_eq!(std::mem::size_of_val(&b), size, "no allocation per arrival");
        assert_eq!(b.len(), 3_600_000 - 5);
        // Oldest first, each at its scheduled time (latency counts from there: no omission).
        assert_eq!(b.pop(&sched, start), Some(start + Duration::from_millis(5)));
        assert_eq!(b.pop(&sched, start), Some(start + Duration::from_millis(6)));
        assert_eq!(b.len(), 3_600_000 - 7);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.pop(&sched, start), None);
        // Refilled after draining: starts at the new index.
        b.push(42);
        assert_eq!(
            b.pop(&sched, start),
            Some(start + Duration::from_millis(42))
        );
    }
}
