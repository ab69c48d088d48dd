//! Cold starts measured by the client: a request sent while the watched target has no ready
//! replica, held (by Knative's activator, a queue proxy, a load balancer) until a pod is ready.
//!
//! Why on the client's clock and not from the time series: a cold start lasts a few seconds, so
//! one-second buckets would round away most of it. Each request's own send and completion
//! instants are used instead.
//!
//! The state machine (field definitions in docs/autoscaling-cost.md):
//! - The replica watcher reports every ready count ([`ColdStartTracker::observe_ready`]). When it
//!   sees 0 after anything else (or first), it bumps a **zero generation**; a ready count above 0
//!   ends the zero and stamps `ready_at` on the cold start of that generation.
//! - The next request sent while the target is at zero, in a generation no cold start has used
//!   yet, **opens** a cold start (its send time is `t_s`). A new one can open only after the
//!   watcher has seen zero again, so requests sent in the moment between the first answer and
//!   the watcher seeing the new pod do not open a second one.
//! - Every request sent while it is open is **held** by it; it **closes** at the first held
//!   request that completes answered (a success that is not a 5xx). Held requests that fail or
//!   get a 5xx count as `failed`, whenever they complete.
//! - Requests sent in the first second after the opening (held or not) give the first second's
//!   p99 (at most [`MAX_FIRST_SECOND_SAMPLES`] of them, nearest rank).
//!
//! The hot path: a worker calls [`ColdStartTracker::on_send`] before each request. While no cold
//! start is open and the target is not at zero in an unused generation, that is three relaxed
//! atomic loads and no lock; only requests inside a cold start take the mutex.
//!
//! Memory is bounded: at most [`MAX_COLD_STARTS`] records (later ones are counted only) and
//! [`MAX_FIRST_SECOND_SAMPLES`] latencies, kept for the newest cold start alone (a cold start's
//! p99 is settled when the next one opens or the run ends).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::metrics::ColdStartMetrics;
use crate::model::cold_starts::{ColdStart, MAX_COLD_STARTS};

/// Most latencies kept for a cold start's first-second p99; later ones in that second are not
/// sampled.
pub const MAX_FIRST_SECOND_SAMPLES: usize = 4096;

/// The window after the opening whose requests give `p99_first_second_ms`.
const FIRST_SECOND: Duration = Duration::from_secs(1);

/// The bit of `signal` that says "at zero now"; the generation is in the bits above it.
const AT_ZERO: u64 = 1;

/// Shared by the replica watcher (writer of the zero signal) and the engine's workers.
#[derive(Debug)]
pub struct ColdStartTracker {
    /// `generation << 1 | AT_ZERO`: written by the watcher only.
    signal: AtomicU64,
    /// The generation of the last cold start opened (0: none yet; generations start at 1).
    opened_gen: AtomicU64,
    /// True while a cold start is open or its first second lasts: sends must take the lock.
    tracking: AtomicBool,
    inner: Mutex<Inner>,
    metrics: ColdStartMetrics,
}

/// Which cold start a request belongs to, handed back on completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColdTag {
    /// The opening's sequence number (1, 2, ...), including cold starts only counted.
    seq: u64,
    /// Sent while the cold start was open (not only in its first second).
    held: bool,
    /// Sent in the first second after the opening.
    first_second: bool,
}

#[derive(Debug, Default)]
struct Inner {
    /// Cold starts kept, in opening order (at most `MAX_COLD_STARTS`).
    records: Vec<Record>,
    /// Every opening, kept or not.
    total: u64,
    /// The newest opening, while its window or first second lasts.
    window: Option<Window>,
    /// First-second latencies (µs) of the newest kept cold start.
    samples: Vec<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    seq: u64,
    opened: Instant,
    /// Still waiting for the first answer.
    open: bool,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    generation: u64,
    opened: Instant,
    first_response: Option<Instant>,
    held: u64,
    failed: u64,
    p99_first_second_us: Option<u64>,
    ready_at: Option<Instant>,
}

impl ColdStartTracker {
    pub fn new(metrics: ColdStartMetrics) -> Self {
        Self {
            signal: AtomicU64::new(0),
            opened_gen: AtomicU64::new(0),
            tracking: AtomicBool::new(false),
            inner: Mutex::new(Inner::default()),
            metrics,
        }
    }

    /// The watcher saw `ready` ready replicas (`None`: not known, which changes nothing) at `at`.
    pub fn observe_ready(&self, ready: Option<i32>, at: Instant) {
        let Some(ready) = ready else {
            return;
        };
        let signal = self.signal.load(Ordering::Acquire);
        let generation = signal >> 1;
        if ready <= 0 {
            if signal & AT_ZERO == 0 {
                self.signal
                    .store(((generation + 1) << 1) | AT_ZERO, Ordering::Release);
            }
            return;
        }
        if signal & AT_ZERO != 0 {
            self.signal.store(generation << 1, Ordering::Release);
        }
        let mut inner = self.lock();
        if let Some(r) = inner.records.last_mut()
            && r.generation == generation
            && r.ready_at.is_none()
        {
            r.ready_at = Some(at);
        }
    }

    /// A request goes out at `sent_at`: the tag of the cold start it belongs to, if any.
    #[inline]
    pub fn on_send(&self, sent_at: Instant) -> Option<ColdTag> {
        if !self.tracking.load(Ordering::Acquire) {
            let signal = self.signal.load(Ordering::Acquire);
            if signal & AT_ZERO == 0 || signal >> 1 == self.opened_gen.load(Ordering::Acquire) {
                return None;
            }
        }
        self.send_slow(sent_at)
    }

    fn send_slow(&self, sent_at: Instant) -> Option<ColdTag> {
        let mut inner = self.lock();
        if let Some(w) = inner.window {
            let first_second = sent_at < w.opened + FIRST_SECOND;
            if w.open || first_second {
                if w.open
                    && let Some(r) = inner.record_of(w.seq)
                {
                    r.held += 1;
                }
                return Some(ColdTag {
                    seq: w.seq,
                    held: w.open,
                    first_second,
                });
            }
            // Answered and past its first second: nothing more to follow.
            inner.window = None;
            self.tracking.store(false, Ordering::Release);
        }
        let signal = self.signal.load(Ordering::Acquire);
        let generation = signal >> 1;
        if signal & AT_ZERO == 0 || generation == self.opened_gen.load(Ordering::Acquire) {
            return None;
        }
        Some(self.open(&mut inner, generation, sent_at))
    }

    /// Opens a cold start with the request sent at `sent_at`.
    fn open(&self, inner: &mut Inner, generation: u64, sent_at: Instant) -> ColdTag {
        inner.settle_p99();
        inner.total += 1;
        let seq = inner.total;
        if inner.records.len() < MAX_COLD_STARTS {
            inner.records.push(Record {
                generation,
                opened: sent_at,
                first_response: None,
                held: 1,
                failed: 0,
                p99_first_second_us: None,
                ready_at: None,
            });
        }
        inner.window = Some(Window {
            seq,
            opened: sent_at,
            open: true,
        });
        self.opened_gen.store(generation, Ordering::Release);
        self.tracking.store(true, Ordering::Release);
        self.metrics.opened.increment(1);
        ColdTag {
            seq,
            held: true,
            first_second: true,
        }
    }

    /// The request tagged `tag` completed at `done` after `latency_us`; `answered`: a success
    /// that is not a 5xx.
    pub fn on_done(&self, tag: ColdTag, done: Instant, latency_us: u64, answered: bool) {
        let mut inner = self.lock();
        if tag.first_second
            && inner.is_kept(tag.seq)
            && inner.is_newest(tag.seq)
            && inner.samples.len() < MAX_FIRST_SECOND_SAMPLES
        {
            inner.samples.push(latency_us);
        }
        if !tag.held {
            return;
        }
        if !answered && let Some(r) = inner.record_of(tag.seq) {
            r.failed += 1;
        }
        let Some(w) = inner.window.as_mut() else {
            return;
        };
        if !(answered && w.open && w.seq == tag.seq) {
            return;
        }
        w.open = false;
        let opened = w.opened;
        if let Some(r) = inner.record_of(tag.seq) {
            r.first_response = Some(done);
        }
        self.metrics
            .seconds
            .record(done.saturating_duration_since(opened).as_secs_f64());
    }

    /// The cold starts so far, times in seconds since `start` (the run's origin), and how many
    /// there were in all (kept or only counted).
    pub fn finish(&self, start: Instant) -> (Vec<ColdStart>, u64) {
        let mut inner = self.lock();
        inner.settle_p99();
        let secs = |t: Instant| t.saturating_duration_since(start).as_secs_f64();
        let list = inner
            .records
            .iter()
            .map(|r| ColdStart {
                t_s: secs(r.opened),
                to_first_response_s: r
                    .first_response
                    .map(|t| t.saturating_duration_since(r.opened).as_secs_f64()),
                held: r.held,
                failed: r.failed,
                p99_first_second_ms: r.p99_first_second_us.map(|us| us as f64 / 1000.0),
                ready_at_s: r.ready_at.map(secs),
                worker: None,
            })
            .collect();
        (list, inner.total)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Only plain arithmetic runs under the lock: a poisoned one still holds good data.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// The record of opening `seq`, if it was kept (openings past the cap are counted only).
    fn record_of(&mut self, seq: u64) -> Option<&mut Record> {
        if !self.is_kept(seq) {
            return None;
        }
        self.records.get_mut(seq as usize - 1)
    }

    fn is_kept(&self, seq: u64) -> bool {
        seq >= 1 && seq <= MAX_COLD_STARTS as u64
    }

    fn is_newest(&self, seq: u64) -> bool {
        seq == self.total
    }

    /// Turns the newest kept cold start's first-second samples into its p99 and frees them.
    fn settle_p99(&mut self) {
        let samples = std::mem::take(&mut self.samples);
        let newest = self.total;
        if let Some(r) = self.record_of(newest)
            && !samples.is_empty()
        {
            r.p99_first_second_us = Some(p99(samples));
        }
    }
}

/// Nearest-rank p99 of a non-empty sample.
fn p99(mut samples: Vec<u64>) -> u64 {
    samples.sort_unstable();
    let rank = (samples.len() as f64 * 0.99).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tracker and a clock in seconds from `t0`.
    struct Scene {
        t0: Instant,
        tracker: ColdStartTracker,
    }

    impl Scene {
        fn new() -> Self {
            Self {
                t0: Instant::now(),
                tracker: ColdStartTracker::new(ColdStartMetrics::noop()),
            }
        }
        fn at(&self, s: f64) -> Instant {
            self.t0 + Duration::from_secs_f64(s)
        }
        fn ready(&self, s: f64, ready: i32) {
            self.tracker.observe_ready(Some(ready), self.at(s));
        }
        fn send(&self, s: f64) -> Option<ColdTag> {
            self.tracker.on_send(self.at(s))
        }
        /// Completes a request sent at `sent` after `took` seconds.
        fn done(&self, tag: Option<ColdTag>, sent: f64, took: f64, answered: bool) {
            if let Some(tag) = tag {
                self.tracker
                    .on_done(tag, self.at(sent + took), (took * 1e6) as u64, answered);
            }
        }
        fn report(&self) -> (Vec<ColdStart>, u64) {
            self.tracker.finish(self.t0)
        }
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6)
    }

    #[test]
    fn a_request_at_zero_held_three_seconds_then_answered() {
        let s = Scene::new();
        // Ready pods at first: no cold start, not even a tag.
        s.ready(0.0, 1);
        assert_eq!(s.send(1.0), None);
        s.ready(10.0, 0);
        let first = s.send(20.0);
        assert!(
            first.is_some(),
            "the first request at zero opens a cold start"
        );
        s.ready(22.5, 1);
        s.done(first, 20.0, 3.0, true);
        // After the answer and its first second, requests are not followed any more.
        assert_eq!(s.send(24.0), None);
        let (list, total) = s.report();
        assert_eq!(total, 1);
        let c = &list[0];
        assert!(close(Some(c.t_s), 20.0), "{c:?}");
        assert!(close(c.to_first_response_s, 3.0), "{c:?}");
        assert_eq!((c.held, c.failed), (1, 0));
        assert!(close(c.p99_first_second_ms, 3000.0), "{c:?}");
        assert!(close(c.ready_at_s, 22.5), "{c:?}");
    }

    #[test]
    fn a_burst_at_zero_where_some_fail() {
        let s = Scene::new();
        s.ready(0.0, 0);
        // Six requests in the first half second, all held by the activator.
        let tags: Vec<_> = (0..6).map(|i| s.send(f64::from(i) * 0.1)).collect();
        assert!(tags.iter().all(Option::is_some));
        s.done(tags[5], 0.5, 0.1, false); // refused at 0.6
        s.done(tags[1], 0.1, 1.9, true); // the first answer, at 2.0
        for (i, tag) in [(2, tags[2]), (3, tags[3]), (4, tags[4])] {
            s.done(tag, f64::from(i) * 0.1, 1.9, false); // 503s after the answer
        }
        s.done(tags[0], 0.0, 2.5, true);
        assert_eq!(s.send(2.2), None, "answered and past its first second");
        let (list, _) = s.report();
        let c = &list[0];
        assert!(close(c.to_first_response_s, 2.0), "{c:?}");
        assert_eq!(c.held, 6);
        assert_eq!(c.failed, 4, "failures after the first answer still count");
        assert!(close(c.p99_first_second_ms, 2500.0), "{c:?}");
        assert_eq!(c.ready_at_s, None, "the watcher never saw a ready pod");
    }

    #[test]
    fn requests_after_the_answer_count_in_the_first_second_only() {
        let s = Scene::new();
        s.ready(0.0, 0);
        let a = s.send(0.0);
        s.done(a, 0.0, 0.3, true);
        let b = s.send(0.5);
        assert!(b.is_some_and(|t| !t.held && t.first_second));
        s.done(b, 0.5, 0.8, false);
        let (list, _) = s.report();
        let c = &list[0];
        assert_eq!(
            (c.held, c.failed),
            (1, 0),
            "b was not held: sent after the answer"
        );
        assert!(close(c.p99_first_second_ms, 800.0), "{c:?}");
    }

    #[test]
    fn a_second_cold_start_opens_only_after_zero_is_seen_again() {
        let s = Scene::new();
        s.ready(0.0, 0);
        let a = s.send(1.0);
        s.done(a, 1.0, 2.0, true);
        // The watcher has not seen the new pod yet: still "at zero", but the same generation.
        assert_eq!(s.send(3.5), None);
        s.ready(4.0, 1);
        s.ready(5.0, 1);
        assert_eq!(s.send(6.0), None);
        // Scaled back to zero: the next request is a new cold start.
        s.ready(70.0, 0);
        let b = s.send(75.0);
        assert!(b.is_some());
        s.done(b, 75.0, 1.5, true);
        let (list, total) = s.report();
        assert_eq!(total, 2);
        assert!(close(Some(list[1].t_s), 75.0));
        assert!(close(list[1].to_first_response_s, 1.5));
        assert!(close(list[0].ready_at_s, 4.0));
        assert_eq!(list[1].ready_at_s, None);
    }

    #[test]
    fn never_answered_is_null_with_its_failures_counted() {
        let s = Scene::new();
        s.ready(0.0, 0);
        let a = s.send(1.0);
        let b = s.send(1.5);
        s.done(a, 1.0, 10.0, false);
        s.done(b, 1.5, 10.0, false);
        let (list, _) = s.report();
        assert_eq!(list[0].to_first_response_s, None);
        assert_eq!((list[0].held, list[0].failed), (2, 2));
        let json = serde_json::to_value(&list[0]).unwrap();
        assert!(json["to_first_response_s"].is_null(), "{json}");
    }

    #[test]
    fn unknown_replicas_open_nothing() {
        let s = Scene::new();
        s.tracker.observe_ready(None, s.at(0.0));
        assert_eq!(s.send(1.0), None);
        assert_eq!(s.report(), (vec![], 0));
    }

    #[test]
    fn cold_starts_past_the_cap_are_counted_only() {
        let s = Scene::new();
        let n = MAX_COLD_STARTS + 5;
        for i in 0..n {
            let t = i as f64 * 10.0;
            s.ready(t, 0);
            let tag = s.send(t + 1.0);
            s.done(tag, t + 1.0, 0.5, true);
            s.ready(t + 2.0, 1);
        }
        let (list, total) = s.report();
        assert_eq!(list.len(), MAX_COLD_STARTS);
        assert_eq!(total, n as u64);
    }

    #[test]
    fn nearest_rank_p99() {
        assert_eq!(p99(vec![5]), 5);
        assert_eq!(p99((1..=100).collect()), 99);
        assert_eq!(p99((1..=1000).rev().collect()), 990);
    }
}
