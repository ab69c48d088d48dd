//! The cost of autoscaling: one [`ScaleEvent`] per scale-out the watcher saw, with what it cost the
//! clients, computed from the replica samples and the report's time series alone.
//!
//! Why a pure function over recorded data: the same figures come out of a live run, a report read
//! back from JSON and a `merge` of several workers, and the definitions below can be tested on
//! constructed inputs. Every definition is also in docs/autoscaling-cost.md.
//!
//! Definitions (times in seconds since the run start, `w` = the time-series bucket width):
//! - **desired count** of a sample: the higher of the HPA's `status.desiredReplicas` and the
//!   Deployment's `spec.replicas` (whichever is known), so the event starts at the autoscaler's
//!   decision, or at a manual `kubectl scale`.
//! - **event start** `t0`: the first sample whose desired count is above the previous sample's,
//!   while no event is open. A rise while an event is open raises that event's `to_replicas`
//!   instead (one scale-out in two steps costs once). A run that starts mid-scale has no event.
//! - **ready** `t_ready`: the first sample at or after `t0` whose ready count reaches its desired
//!   count. Exact to the watch interval (samples are rate-limited).
//! - **first response from a new backend**: the end of the first bucket overlapping `[t0, …)` that
//!   holds a response from an `x-served-by` backend not seen in any bucket wholly before `t0`. An
//!   upper bound, exact to `w`.
//! - **recovery**: the first bucket after readiness (the bucket holding `t_ready` included) with
//!   requests whose p99 is at most the threshold: `--recovery-p99` if given, else the p99 before
//!   the event × [`RECOVERY_FACTOR`]. Measured to that bucket's start, not earlier than `t_ready`.
//!   None when it does not happen before the next event starts or the run ends.
//! - **before**: the buckets wholly inside `[t0 - BASELINE_WINDOW_S, t0)`.
//! - **during**: the buckets overlapping `[t0, over)`, where `over` is the recovery time, else the
//!   next event's start, else the run's end. Requests failed and shed (503) are counted here.
//! - **after**: the buckets starting inside `[over, over + AFTER_WINDOW_S)`, cut at the next
//!   event's start (empty when the event never recovered).
//! - The p50/p99 of a window is the request-weighted mean of its buckets' p50/p99 (percentiles of
//!   buckets cannot be combined exactly; a typical second is what a baseline needs), and
//!   `max_p99_ms` the worst bucket.

use std::collections::BTreeSet;

use crate::model::TimePoint;
use crate::model::replicas::{ReplicaSample, ReplicaTimeline};
use crate::model::scale_events::{ScaleEvent, WindowStats};

/// Length of the "before" window: the latency level a scale-out is measured against.
pub const BASELINE_WINDOW_S: f64 = 10.0;
/// Length of the "after" window: how the system settled once recovered.
pub const AFTER_WINDOW_S: f64 = 10.0;
/// Without `--recovery-p99`, p99 has recovered when it is back under the pre-event p99 × this.
pub const RECOVERY_FACTOR: f64 = 1.1;
/// Most events kept: a flapping autoscaler must not grow the report without bound.
pub const MAX_EVENTS: usize = 1000;

/// What the analysis needs besides the data.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScaleCostConfig {
    /// `--recovery-p99`: the p99 (ms) under which latency counts as recovered; `None` uses the
    /// pre-event p99 × [`RECOVERY_FACTOR`].
    pub recovery_p99_ms: Option<f64>,
}

/// The desired count of a sample (see the module docs), if known.
fn desired_count(s: &ReplicaSample) -> Option<i32> {
    s.hpa_desired.max(s.desired)
}

/// The replica side of an event: when it started, what it scaled to, when it was ready.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Step {
    t0: f64,
    from: Option<i32>,
    to: i32,
    ready_at: Option<f64>,
}

/// Scale-outs in the samples (time order).
fn steps(samples: &[ReplicaSample]) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    let mut prev_desired: Option<i32> = None;
    let mut prev_ready: Option<i32> = None;
    let mut open = false;
    for s in samples {
        let desired = desired_count(s);
        if open {
            let step = out.last_mut().expect("an open step exists");
            if let Some(d) = desired {
                step.to = step.to.max(d);
            }
            if let (Some(d), Some(r)) = (desired, s.ready)
                && r >= d
            {
                step.ready_at = Some(s.t_s);
                open = false;
            }
        } else if let (Some(d), Some(p)) = (desired, prev_desired)
            && d > p
            && out.len() < MAX_EVENTS
        {
            let ready_now = s.ready.is_some_and(|r| r >= d);
            out.push(Step {
                t0: s.t_s,
                from: prev_ready.or(s.ready),
                to: d,
                ready_at: ready_now.then_some(s.t_s),
            });
            open = !ready_now;
        }
        if desired.is_some() {
            prev_desired = desired;
        }
        if s.ready.is_some() {
            prev_ready = s.ready;
        }
    }
    out
}

/// The buckets whose start lies in `[from, to)` or (with `overlap`) that overlap it.
fn window(
    points: &[TimePoint],
    width: f64,
    from: f64,
    to: f64,
    overlap: bool,
) -> impl Iterator<Item = &TimePoint> {
    points.iter().filter(move |p| {
        if overlap {
            p.t_s + width > from && p.t_s < to
        } else {
            p.t_s >= from && p.t_s < to
        }
    })
}

fn stats<'a>(points: impl Iterator<Item = &'a TimePoint>, width: f64) -> Option<WindowStats> {
    let mut w = WindowStats {
        from_s: f64::INFINITY,
        to_s: f64::NEG_INFINITY,
        ..Default::default()
    };
    let (mut p50, mut p99) = (0.0, 0.0);
    for p in points {
        w.from_s = w.from_s.min(p.t_s);
        w.to_s = w.to_s.max(p.t_s + p.width(width));
        w.requests = w.requests.saturating_add(p.requests);
        w.failures = w.failures.saturating_add(p.failures);
        p50 += p.p50_ms * p.requests as f64;
        p99 += p.p99_ms * p.requests as f64;
        if p.requests > 0 {
            w.max_p99_ms = w.max_p99_ms.max(p.p99_ms);
        }
    }
    if w.requests == 0 {
        return None;
    }
    w.p50_ms = p50 / w.requests as f64;
    w.p99_ms = p99 / w.requests as f64;
    Some(w)
}

/// The scale events of a run: the timeline's scale-outs, each with its cost read from the
/// `points` (buckets `width` seconds wide, as in the report).
pub fn scale_events(
    timeline: &ReplicaTimeline,
    points: &[TimePoint],
    width: f64,
    cfg: &ScaleCostConfig,
) -> Vec<ScaleEvent> {
    let width = if width.is_finite() && width > 0.0 {
        width
    } else {
        1.0
    };
    let run_end = points
        .iter()
        .map(|p| p.t_s + p.width(width))
        .fold(f64::NEG_INFINITY, f64::max)
        .max(timeline.samples.last().map_or(0.0, |s| s.t_s));
    let steps = steps(&timeline.samples);
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let limit = steps.get(i + 1).map_or(run_end, |next| next.t0);
            cost(step, points, width, limit, cfg)
        })
        .collect()
}

fn cost(
    step: &Step,
    points: &[TimePoint],
    width: f64,
    limit: f64,
    cfg: &ScaleCostConfig,
) -> ScaleEvent {
    let t0 = step.t0;
    let before = stats(
        window(
            points,
            width,
            t0 - BASELINE_WINDOW_S,
            t0 - width + 1e-9,
            false,
        ),
        width,
    );
    let (threshold, given) = match cfg.recovery_p99_ms {
        Some(t) => (Some(t), true),
        None => (before.as_ref().map(|b| b.p99_ms * RECOVERY_FACTOR), false),
    };
    let recovered_at = match (step.ready_at, threshold) {
        (Some(ready), Some(threshold)) => window(points, width, ready, limit, true)
            .find(|p| p.requests > 0 && p.p99_ms <= threshold)
            .map(|p| p.t_s.max(ready)),
        _ => None,
    };
    let over = recovered_at.unwrap_or(limit);
    let during_points: Vec<&TimePoint> = window(points, width, t0, over, true).collect();
    let after = recovered_at.and_then(|over| {
        stats(
            window(
                points,
                width,
                over,
                (over + AFTER_WINDOW_S).min(limit),
                false,
            ),
            width,
        )
    });
    let (new_backend, new_backend_at) = first_new_backend(points, width, t0, limit);
    ScaleEvent {
        t_s: t0,
        from_replicas: step.from,
        to_replicas: step.to,
        time_to_ready_s: step.ready_at.map(|r| r - t0),
        time_to_first_new_backend_s: new_backend_at.map(|t| t - t0),
        first_new_backend: new_backend,
        recovery_s: recovered_at.map(|r| r - t0),
        recovery_threshold_ms: threshold,
        recovery_threshold_given: given,
        failed_during: during_points.iter().map(|p| p.failures).sum(),
        shed_during: during_points.iter().map(|p| p.shed).sum(),
        before,
        during: stats(during_points.into_iter(), width),
        after,
    }
}

/// The first backend that answers in a bucket overlapping `[t0, limit)` without having answered
/// in any bucket wholly before `t0`, and the end of that bucket.
fn first_new_backend(
    points: &[TimePoint],
    width: f64,
    t0: f64,
    limit: f64,
) -> (Option<String>, Option<f64>) {
    let known: BTreeSet<&str> = points
        .iter()
        .filter(|p| p.t_s + width <= t0 + 1e-9)
        .flat_map(|p| p.backends.iter())
        .filter(|(_, n)| **n > 0)
        .map(|(b, _)| b.as_str())
        .collect();
    window(points, width, t0, limit, true)
        .find_map(|p| {
            p.backends
                .iter()
                .find(|(b, n)| **n > 0 && !known.contains(b.as_str()))
                .map(|(b, _)| (b.clone(), p.t_s + width))
        })
        .map_or((None, None), |(b, t)| (Some(b), Some(t)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    use crate::model::replicas::test_sample as sample;
    use crate::model::replicas::test_timeline as timeline;

    /// One second of traffic: `requests` with the given p99, answered by `backends` evenly.
    fn second(t_s: f64, requests: u64, p99_ms: f64, backends: &[&str]) -> TimePoint {
        let mut map = BTreeMap::new();
        for (i, b) in backends.iter().enumerate() {
            let share = requests / backends.len() as u64
                + u64::from((i as u64) < requests % backends.len() as u64);
            map.insert(b.to_string(), share);
        }
        TimePoint {
            t_s,
            requests,
            rps: requests as f64,
            p50_ms: p99_ms / 4.0,
            p99_ms,
            max_ms: p99_ms,
            backends: map,
            ..Default::default()
        }
    }

    /// 60 s at 100/s: p99 20 ms on pod a until 10 s, 200 ms while pod a alone is overloaded, and
    /// back to 20 ms once pods b and c take traffic (from 16 s).
    fn overload_then_scale_out() -> Vec<TimePoint> {
        (0..60)
            .map(|t| {
                let t = f64::from(t);
                match t {
                    t if t < 10.0 => second(t, 100, 20.0, &["a"]),
                    t if t < 16.0 => second(t, 100, 200.0, &["a"]),
                    t => second(t, 100, 20.0, &["a", "b", "c"]),
                }
            })
            .collect()
    }

    fn one_event(samples: Vec<ReplicaSample>, points: &[TimePoint]) -> ScaleEvent {
        let mut events = scale_events(&timeline(samples), points, 1.0, &ScaleCostConfig::default());
        assert_eq!(events.len(), 1, "{events:#?}");
        events.remove(0)
    }

    #[test]
    fn an_event_starts_when_the_desired_count_rises_and_ends_when_ready_reaches_it() {
        let e = one_event(
            vec![
                sample(0.0, 1, 1),
                sample(10.0, 3, 1),
                sample(13.0, 3, 2),
                sample(15.5, 3, 3),
            ],
            &overload_then_scale_out(),
        );
        assert_eq!(e.t_s, 10.0);
        assert_eq!((e.from_replicas, e.to_replicas), (Some(1), 3));
        assert_eq!(e.time_to_ready_s, Some(5.5));
    }

    #[test]
    fn the_hpa_decision_starts_the_event_before_the_deployment_follows() {
        let mut decided = sample(9.5, 1, 1);
        decided.hpa_desired = Some(3);
        let e = one_event(
            vec![
                sample(0.0, 1, 1),
                decided,
                sample(10.5, 3, 1),
                sample(14.0, 3, 3),
            ],
            &overload_then_scale_out(),
        );
        assert_eq!(e.t_s, 9.5);
        assert_eq!(e.time_to_ready_s, Some(4.5));
    }

    #[test]
    fn a_second_rise_before_readiness_extends_the_same_event() {
        let e = one_event(
            vec![
                sample(0.0, 1, 1),
                sample(10.0, 3, 1),
                sample(12.0, 5, 2),
                sample(14.0, 5, 3),
                sample(18.0, 5, 5),
            ],
            &overload_then_scale_out(),
        );
        assert_eq!((e.to_replicas, e.time_to_ready_s), (5, Some(8.0)));
    }

    #[test]
    fn two_scale_outs_are_two_events_and_scale_downs_are_none() {
        let events = scale_events(
            &timeline(vec![
                sample(0.0, 1, 1),
                sample(10.0, 3, 1),
                sample(14.0, 3, 3),
                sample(30.0, 5, 3),
                sample(35.0, 5, 5),
                sample(50.0, 2, 2),
            ]),
            &overload_then_scale_out(),
            1.0,
            &ScaleCostConfig::default(),
        );
        let got: Vec<(f64, Option<i32>, i32, Option<f64>)> = events
            .iter()
            .map(|e| (e.t_s, e.from_replicas, e.to_replicas, e.time_to_ready_s))
            .collect();
        assert_eq!(
            got,
            vec![(10.0, Some(1), 3, Some(4.0)), (30.0, Some(3), 5, Some(5.0))]
        );
    }

    #[test]
    fn a_run_that_starts_mid_scale_or_never_scales_has_no_event() {
        let points = overload_then_scale_out();
        let cfg = ScaleCostConfig::default();
        let mid = timeline(vec![sample(0.0, 3, 1), sample(4.0, 3, 3)]);
        assert!(scale_events(&mid, &points, 1.0, &cfg).is_empty());
        let flat = timeline(vec![sample(0.0, 2, 2), sample(20.0, 2, 2)]);
        assert!(scale_events(&flat, &points, 1.0, &cfg).is_empty());
        assert!(scale_events(&timeline(vec![]), &points, 1.0, &cfg).is_empty());
    }

    #[test]
    fn pods_never_ready_leave_time_to_ready_and_recovery_unset() {
        let e = one_event(
            vec![sample(0.0, 1, 1), sample(10.0, 3, 1)],
            &overload_then_scale_out(),
        );
        assert_eq!(e.time_to_ready_s, None);
        assert_eq!(e.recovery_s, None);
        // "during" then runs to the end of the run.
        assert_eq!(e.during.as_ref().unwrap().to_s, 60.0);
        assert_eq!(e.after, None);
    }

    #[test]
    fn first_new_backend_is_the_end_of_the_first_bucket_a_pod_unseen_before_answered_in() {
        let e = one_event(
            vec![sample(0.0, 1, 1), sample(10.0, 3, 1), sample(15.5, 3, 3)],
            &overload_then_scale_out(),
        );
        // b and c first answer in the bucket [16, 17).
        assert_eq!(e.time_to_first_new_backend_s, Some(7.0));
        assert_eq!(e.first_new_backend.as_deref(), Some("b"));
    }

    #[test]
    fn without_backend_headers_there_is_no_first_new_backend() {
        let mut points = overload_then_scale_out();
        for p in &mut points {
            p.backends.clear();
        }
        let e = one_event(
            vec![sample(0.0, 1, 1), sample(10.0, 3, 1), sample(15.5, 3, 3)],
            &points,
        );
        assert_eq!(
            (e.time_to_first_new_backend_s, e.first_new_backend),
            (None, None)
        );
    }

    #[test]
    fn p99_recovery_is_the_first_bucket_after_readiness_under_the_pre_event_p99_times_1_1() {
        // Ready at 14 s, but p99 stays at 200 ms until 16 s; 20 ms ≤ 20 × 1.1.
        let e = one_event(
            vec![sample(0.0, 1, 1), sample(10.0, 3, 1), sample(14.0, 3, 3)],
            &overload_then_scale_out(),
        );
        assert!(!e.recovery_threshold_given);
        assert!((e.recovery_threshold_ms.unwrap() - 22.0).abs() < 1e-9);
        assert_eq!(e.recovery_s, Some(6.0));
    }

    #[test]
    fn recovery_is_never_before_readiness() {
        // p99 is fine again at 16 s, readiness is only seen at 20.5 s.
        let e = one_event(
            vec![sample(0.0, 1, 1), sample(10.0, 3, 1), sample(20.5, 3, 3)],
            &overload_then_scale_out(),
        );
        assert_eq!(e.recovery_s, Some(10.5));
    }

    #[test]
    fn a_given_recovery_threshold_replaces_the_baseline() {
        let points: Vec<TimePoint> = overload_then_scale_out()
            .into_iter()
            .map(|mut p| {
                // Settles at 40 ms after 20 s, never back at 20 ms.
                if p.t_s >= 16.0 {
                    p.p99_ms = if p.t_s < 20.0 { 100.0 } else { 40.0 };
                }
                p
            })
            .collect();
        let samples = vec![sample(0.0, 1, 1), sample(10.0, 3, 1), sample(14.0, 3, 3)];
        let e = one_event(samples.clone(), &points);
        assert_eq!(e.recovery_s, None, "40 ms is never under 22 ms");
        let cfg = ScaleCostConfig {
            recovery_p99_ms: Some(50.0),
        };
        let given = scale_events(&timeline(samples), &points, 1.0, &cfg).remove(0);
        assert!(given.recovery_threshold_given);
        assert_eq!(given.recovery_threshold_ms, Some(50.0));
        assert_eq!(given.recovery_s, Some(10.0));
    }

    #[test]
    fn before_during_after_are_the_windows_around_the_event() {
        let mut points = overload_then_scale_out();
        points[12].failures = 7;
        points[13].failures = 3;
        points[13].shed = 2;
        points[40].failures = 100; // after the "after" window: not counted
        let e = one_event(
            vec![sample(0.0, 1, 1), sample(10.0, 3, 1), sample(14.0, 3, 3)],
            &points,
        );
        let before = e.before.unwrap();
        assert_eq!(
            (before.from_s, before.to_s, before.requests),
            (0.0, 10.0, 1000)
        );
        assert_eq!((before.p50_ms, before.p99_ms), (5.0, 20.0));
        // during: [10, 16), the overloaded seconds.
        let during = e.during.unwrap();
        assert_eq!((during.from_s, during.to_s), (10.0, 16.0));
        assert_eq!((during.p99_ms, during.max_p99_ms), (200.0, 200.0));
        assert_eq!((e.failed_during, e.shed_during), (10, 2));
        // after: the 10 s from recovery.
        let after = e.after.unwrap();
        assert_eq!((after.from_s, after.to_s, after.p99_ms), (16.0, 26.0, 20.0));
    }

    #[test]
    fn the_next_event_cuts_the_windows_of_one_that_never_recovered() {
        // p99 never recovers; a second scale-out starts at 30 s.
        let points: Vec<TimePoint> = overload_then_scale_out()
            .into_iter()
            .map(|mut p| {
                if p.t_s >= 10.0 {
                    p.p99_ms = 200.0;
                }
                p
            })
            .collect();
        let events = scale_events(
            &timeline(vec![
                sample(0.0, 1, 1),
                sample(10.0, 3, 1),
                sample(14.0, 3, 3),
                sample(30.0, 5, 3),
                sample(35.0, 5, 5),
            ]),
            &points,
            1.0,
            &ScaleCostConfig::default(),
        );
        assert_eq!(events[0].recovery_s, None);
        assert_eq!(events[0].during.as_ref().unwrap().to_s, 30.0);
        assert_eq!(events[0].after, None);
        // The second event's baseline is the overloaded level: 200 ms × 1.1.
        assert_eq!(events[1].recovery_s, Some(5.0));
    }

    #[test]
    fn round_trips_through_json_and_old_reports_have_none() {
        let e = one_event(
            vec![sample(0.0, 1, 1), sample(10.0, 3, 1), sample(14.0, 3, 3)],
            &overload_then_scale_out(),
        );
        let back: ScaleEvent = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        let minimal: ScaleEvent = serde_json::from_str(r#"{"t_s": 3}"#).unwrap();
        assert_eq!(minimal.time_to_ready_s, None);
    }
}
