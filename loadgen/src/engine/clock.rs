//! The arrival clock: a dedicated OS thread that releases open-loop arrivals at their intended
//! times, to the microsecond rather than to tokio's millisecond timer wheel.
//!
//! Why a thread: tokio's timer rounds every deadline up to the next millisecond tick, and that
//! lateness (about 1 ms on average) lands in the corrected latency of every request, several
//! times the service time of a fast endpoint. The thread sets its timer slack to 1 µs, sleeps
//! until shortly before the next arrival and spins the rest of the way. The spin is budgeted by
//! the gap between arrivals (at most a tenth of it, at most [`MAX_SPIN`]), so a low rate does not
//! burn a core and a high rate does not spin continuously.
//!
//! Why a counter and not a queue: the thread only publishes "arrivals `0..n` are due" in an atomic
//! and wakes the dispatcher through a [`Notify`]. However far the dispatcher falls behind, memory
//! stays constant; each index is taken exactly once, in order, and its intended time is recomputed
//! from the schedule, so it never drifts.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::plan::ArrivalSchedule;

/// The most the clock spins before an arrival (below this it sleeps first).
pub const MAX_SPIN: Duration = Duration::from_micros(50);
/// The longest single sleep, so a stop request ends the thread within about this long.
const MAX_SLICE: Duration = Duration::from_millis(5);

struct State {
    /// Arrivals `0..released` are due.
    released: AtomicU64,
    /// The schedule has no more arrivals (or the clock was stopped).
    finished: AtomicBool,
    stop: AtomicBool,
    notify: Notify,
}

/// One due arrival as the dispatcher takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    /// Index in the schedule (0-based).
    pub k: u64,
    /// When it was due: latency counts from here.
    pub intended: Instant,
    /// How late the dispatcher took it: the clock's own lateness plus the hand-off to the
    /// runtime, so a busy runtime shows here instead of being hidden by a precise clock.
    pub lag: Duration,
}

/// The running clock; dropping it stops the thread (without waiting for it).
pub struct ArrivalClock {
    state: Arc<State>,
    sched: ArrivalSchedule,
    start: Instant,
    /// The next arrival the dispatcher has not taken.
    next: u64,
    thread: Option<JoinHandle<()>>,
}

impl ArrivalClock {
    /// Starts the clock thread for `sched`, counted from `start`.
    pub fn start(sched: ArrivalSchedule, start: Instant) -> std::io::Result<Self> {
        let state = Arc::new(State {
            released: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            notify: Notify::new(),
        });
        let thread = {
            let state = Arc::clone(&state);
            let sched = sched.clone();
            std::thread::Builder::new()
                .name("loadgen-clock".into())
                .spawn(move || run(&state, &sched, start))?
        };
        Ok(Self {
            state,
            sched,
            start,
            next: 0,
            thread: Some(thread),
        })
    }

    /// Waits for the next arrivals to fall due and returns their indices (never empty), or None
    /// when the schedule is over or the clock was stopped and every released arrival was taken.
    pub async fn due(&mut self) -> Option<Range<u64>> {
        loop {
            // Register before reading, so a release between the read and the await is not lost
            // (`notify_one` also leaves a permit when nobody waits).
            let notified = self.state.notify.notified();
            let finished = self.state.finished.load(Ordering::Acquire);
            let upto = self.state.released.load(Ordering::Acquire);
            if upto > self.next {
                let r = self.next..upto;
                self.next = upto;
                return Some(r);
            }
            if finished {
                return None;
            }
            notified.await;
        }
    }

    /// Arrival `k` as taken now: its intended time and how late that is.
    pub fn arrival(&self, k: u64) -> Arrival {
        let intended = self.start + self.sched.at(k).unwrap_or_else(|| self.sched.end());
        Arrival {
            k,
            intended,
            lag: Instant::now().saturating_duration_since(intended),
        }
    }

    /// Stops releasing arrivals; [`due`](Self::due) still returns what was already released.
    pub fn stop(&self) {
        self.state.stop.store(true, Ordering::Release);
    }

    /// Stops the clock and waits for its thread (it ends within a sleep slice, a few ms).
    pub fn join(mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ArrivalClock {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The clock thread: releases each arrival at its time until the schedule ends or a stop.
fn run(state: &State, sched: &ArrivalSchedule, start: Instant) {
    precise_timers();
    let mut k = 0u64;
    let mut prev = Duration::ZERO;
    while let Some(off) = sched.at(k) {
        let spin = MAX_SPIN.min(off.saturating_sub(prev) / 10);
        if !wait_until(start + off, spin, &state.stop) {
            break;
        }
        // Release everything due by now in one step (a late wake, or a rate above the clock's).
        let now = Instant::now();
        k += 1;
        prev = off;
        while let Some(o) = sched.at(k).filter(|o| start + *o <= now) {
            prev = o;
            k += 1;
        }
        state.released.store(k, Ordering::Release);
        state.notify.notify_one();
    }
    state.finished.store(true, Ordering::Release);
    state.notify.notify_one();
}

/// Sleeps until `spin` before `t`, then spins to `t`; false when a stop came first.
fn wait_until(t: Instant, spin: Duration, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Acquire) {
            return false;
        }
        let now = Instant::now();
        if now >= t {
            return true;
        }
        let left = t - now;
        if left > spin {
            std::thread::sleep((left - spin).min(MAX_SLICE));
        } else {
            while Instant::now() < t {
                std::hint::spin_loop();
            }
            return true;
        }
    }
}

/// Asks the kernel to wake this thread within 1 µs of its deadlines (the default slack is 50 µs).
/// Best effort: without it the clock is only less precise, which the schedule lag shows.
fn precise_timers() {
    #[cfg(target_os = "linux")]
    {
        let _ = nix::sys::prctl::set_timerslack(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Phase;

    fn hold(secs: f64, rate: f64) -> ArrivalSchedule {
        ArrivalSchedule::new(
            &[Phase {
                name: "hold".into(),
                duration: Duration::from_secs_f64(secs),
                from: rate,
                to: rate,
            }],
            None,
        )
    }

    #[tokio::test(flavor = "current_thread")]
    async fn delivers_every_arrival_exactly_once_in_order_never_before_its_intended_time() {
        // A ramp then a hold: 0 -> 4,000/s over 0.2 s (400 arrivals), then 2,000/s for 0.1 s.
        let sched = ArrivalSchedule::new(
            &[
                Phase {
                    name: "ramp".into(),
                    duration: Duration::from_millis(200),
                    from: 0.0,
                    to: 4000.0,
                },
                Phase {
                    name: "hold".into(),
                    duration: Duration::from_millis(100),
                    from: 2000.0,
                    to: 2000.0,
                },
            ],
            None,
        );
        let n = (0..).take_while(|k| sched.at(*k).is_some()).count() as u64;
        assert_eq!(n, 600);
        let start = Instant::now();
        let mut clock = ArrivalClock::start(sched.clone(), start).unwrap();
        let mut seen = Vec::new();
        while let Some(r) = clock.due().await {
            assert!(!r.is_empty());
            for k in r {
                let a = clock.arrival(k);
                assert_eq!(a.intended, start + sched.at(k).unwrap(), "arrival {k}");
                assert!(Instant::now() >= a.intended, "arrival {k} released early");
                seen.push(k);
            }
        }
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
        clock.join();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn lag_shows_a_dispatcher_that_falls_behind_and_no_arrival_is_lost() {
        let start = Instant::now();
        let sched = hold(0.2, 1000.0);
        let mut clock = ArrivalClock::start(sched, start).unwrap();
        // The runtime is saturated: its only thread is blocked while arrivals fall due.
        std::thread::sleep(Duration::from_millis(80));
        let first = clock.due().await.unwrap();
        assert_eq!(first.start, 0);
        assert!(first.end >= 50, "arrivals due during the stall: {first:?}");
        let a = clock.arrival(0);
        assert!(a.lag >= Duration::from_millis(80), "{a:?}");
        let mut last = first.end;
        while let Some(r) = clock.due().await {
            assert_eq!(r.start, last);
            last = r.end;
        }
        assert_eq!(last, 200);
        clock.join();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn stop_ends_the_clock_promptly_even_before_a_distant_arrival() {
        // One arrival every 100 s: the second is far away.
        let start = Instant::now();
        let mut clock = ArrivalClock::start(hold(1000.0, 0.01), start).unwrap();
        assert_eq!(clock.due().await, Some(0..1));
        tokio::time::sleep(Duration::from_millis(20)).await;
        clock.stop();
        let t = Instant::now();
        // Generous bound for a loaded machine: the thread sleeps in slices of a few ms.
        let r = tokio::time::timeout(Duration::from_secs(5), clock.due()).await;
        assert_eq!(r, Ok(None), "stopped clock releases nothing more");
        clock.join();
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
