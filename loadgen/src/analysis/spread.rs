//! Seeing the spread: warnings when the load does not reach the pods that are ready.
//!
//! Kubernetes Services balance connections, not requests (see DESIGN.md): a client that keeps its
//! connections stays on the pods that existed when it connected, so an autoscaler can add pods
//! that never get traffic. With `--watch` the report compares, over sliding windows of
//! [`WINDOW_S`], the ready replicas with the backends (`x-served-by`) that answered:
//! - **pinned**: fewer distinct backends answered than replicas were ready for the whole window;
//! - **skewed**: every ready replica answered, but one backend's share of the window's responses
//!   was more than [`SKEW_FACTOR`] times away from 1/N.
//!
//! A window only counts when it has enough responses to tell: at least [`MIN_PER_BACKEND`] per
//! ready replica (below that a fair spread can miss a pod by chance). Runs without the header
//! produce no warning: nothing can be said.

use std::collections::BTreeMap;

use crate::model::TimePoint;
use crate::model::replicas::ReplicaTimeline;

/// Width of the windows the spread is judged over.
pub const WINDOW_S: f64 = 10.0;
/// Responses a window needs per ready replica before it is judged.
pub const MIN_PER_BACKEND: u64 = 20;
/// A share above 1/N × this, or below 1/N ÷ this, is skewed.
pub const SKEW_FACTOR: f64 = 2.0;
/// The flag that gives connections a lifetime (so they move to new pods).
pub const CONNECTION_LIFETIME_FLAG: &str = "--connection-max-age";

/// The fewest ready replicas in force during `[from, to)`, if known throughout.
fn min_ready(timeline: &ReplicaTimeline, from: f64, to: f64) -> Option<i32> {
    let mut min = timeline.ready_at(from)?;
    for s in timeline
        .samples
        .iter()
        .filter(|s| s.t_s > from && s.t_s < to)
    {
        min = min.min(s.ready?);
    }
    Some(min)
}

/// One judged window.
#[derive(Debug, Clone)]
struct Window {
    from: f64,
    to: f64,
    ready: i32,
    responses: u64,
    backends: BTreeMap<String, u64>,
}

fn windows(timeline: &ReplicaTimeline, points: &[TimePoint], width: f64) -> Vec<Window> {
    let n = ((WINDOW_S / width).round() as usize).max(1);
    if points.len() < n || points.iter().all(|p| p.backends.is_empty()) {
        return Vec::new();
    }
    points
        .windows(n)
        .filter_map(|w| {
            let (from, to) = (w[0].t_s, w[n - 1].t_s + width);
            let ready = min_ready(timeline, from, to).filter(|r| *r > 0)?;
            let mut backends: BTreeMap<String, u64> = BTreeMap::new();
            for p in w {
                for (b, c) in &p.backends {
                    let n = backends.entry(b.clone()).or_default();
                    *n = n.saturating_add(*c);
                }
            }
            backends.retain(|_, c| *c > 0);
            let responses: u64 = backends.values().sum();
            (responses >= MIN_PER_BACKEND * ready as u64).then_some(Window {
                from,
                to,
                ready,
                responses,
                backends,
            })
        })
        .collect()
}

/// Seconds for messages: `12s`, `12.5s`.
fn secs(t: f64) -> String {
    let s = format!("{t:.1}");
    format!("{}s", s.trim_end_matches(".0"))
}

/// The pinning and skew warnings of a watched run (empty when the spread is fine or unknown).
pub fn spread_warnings(
    timeline: &ReplicaTimeline,
    points: &[TimePoint],
    width: f64,
) -> Vec<String> {
    let width = if width.is_finite() && width > 0.0 {
        width
    } else {
        1.0
    };
    let judged = windows(timeline, points, width);
    let mut out = Vec::new();
    let pinned: Vec<&Window> = judged
        .iter()
        .filter(|w| (w.backends.len() as i32) < w.ready)
        .collect();
    if let Some(worst) = pinned
        .iter()
        .max_by_key(|w| (w.ready - w.backends.len() as i32, w.ready))
    {
        let (first, last) = (pinned[0].from, pinned[pinned.len() - 1].to);
        out.push(format!(
            "load is pinned to {} of {} ready pods (between {} and {}, fewer backends answered than \
             pods were ready over {}s windows); set a connection lifetime ({CONNECTION_LIFETIME_FLAG})",
            worst.backends.len(),
            worst.ready,
            secs(first),
            secs(last),
            secs(WINDOW_S),
        ));
    }
    let skew = |w: &Window| -> Option<(f64, String, f64)> {
        let fair = 1.0 / f64::from(w.ready);
        w.backends
            .iter()
            .map(|(b, c)| (b, *c as f64 / w.responses as f64))
            .map(|(b, share)| ((share / fair).max(fair / share), b.clone(), share))
            .filter(|(ratio, _, _)| *ratio > SKEW_FACTOR)
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    let skewed: Vec<(&Window, (f64, String, f64))> = judged
        .iter()
        .filter(|w| w.backends.len() as i32 == w.ready && w.ready >= 2)
        .filter_map(|w| skew(w).map(|s| (w, s)))
        .collect();
    if let Some((w, (_, backend, share))) = skewed.iter().max_by(|a, b| a.1.0.total_cmp(&b.1.0)) {
        out.push(format!(
            "load is skewed: backend {backend} answered {:.0}% of the responses between {} and {} \
             where 1/{} would be {:.0}%; long-lived connections spread unevenly, set a connection \
             lifetime ({CONNECTION_LIFETIME_FLAG})",
            share * 100.0,
            secs(w.from),
            secs(w.to),
            w.ready,
            100.0 / f64::from(w.ready),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::replicas::ReplicaSample;
    use crate::model::replicas::test_timeline as timeline;

    fn ready(t_s: f64, n: i32) -> ReplicaSample {
        crate::model::replicas::test_sample(t_s, n, n)
    }

    fn second(t_s: f64, backends: &[(&str, u64)]) -> TimePoint {
        let backends: BTreeMap<String, u64> =
            backends.iter().map(|(b, n)| (b.to_string(), *n)).collect();
        TimePoint {
            t_s,
            requests: backends.values().sum(),
            backends,
            ..Default::default()
        }
    }

    fn run(secs: u32, f: impl Fn(f64) -> Vec<(&'static str, u64)>) -> Vec<TimePoint> {
        (0..secs)
            .map(|t| second(f64::from(t), &f(f64::from(t))))
            .collect()
    }

    #[test]
    fn five_ready_pods_answered_by_one_backend_is_pinned() {
        let t = timeline(vec![ready(0.0, 1), ready(20.0, 5)]);
        let points = run(60, |_| vec![("pod-a", 100)]);
        let w = spread_warnings(&t, &points, 1.0);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("load is pinned to 1 of 5 ready pods (between 20s and 60s"),
            "{w:?}"
        );
        assert!(
            w[0].ends_with("set a connection lifetime (--connection-max-age)"),
            "{w:?}"
        );
    }

    #[test]
    fn new_pods_that_take_their_share_raise_no_warning() {
        let t = timeline(vec![ready(0.0, 1), ready(20.0, 3)]);
        let points = run(60, |t| {
            if t < 21.0 {
                vec![("a", 90)]
            } else {
                vec![("a", 30), ("b", 31), ("c", 29)]
            }
        });
        assert_eq!(spread_warnings(&t, &points, 1.0), Vec::<String>::new());
    }

    #[test]
    fn a_window_with_a_replica_not_yet_answering_but_too_few_requests_is_not_judged() {
        // 3 ready, 2 answering, but 30 responses per 10 s: fewer than 20 per replica.
        let t = timeline(vec![ready(0.0, 3)]);
        let points = run(30, |_| vec![("a", 2), ("b", 1)]);
        assert!(spread_warnings(&t, &points, 1.0).is_empty());
    }

    #[test]
    fn a_backend_far_from_its_fair_share_is_skewed() {
        // 4 ready, all answer, but a takes 70%: more than 2 × 25%.
        let t = timeline(vec![ready(0.0, 4)]);
        let points = run(30, |_| vec![("a", 70), ("b", 10), ("c", 10), ("d", 10)]);
        let w = spread_warnings(&t, &points, 1.0);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("load is skewed: backend a answered 70% of the responses"),
            "{w:?}"
        );
        assert!(w[0].contains("where 1/4 would be 25%"), "{w:?}");
    }

    #[test]
    fn an_uneven_but_not_far_spread_is_not_skewed() {
        let t = timeline(vec![ready(0.0, 2)]);
        let points = run(30, |_| vec![("a", 60), ("b", 40)]);
        assert!(spread_warnings(&t, &points, 1.0).is_empty());
    }

    #[test]
    fn without_backend_headers_or_replica_samples_nothing_is_said() {
        let points: Vec<TimePoint> = (0..30)
            .map(|t| TimePoint {
                t_s: f64::from(t),
                requests: 100,
                ..Default::default()
            })
            .collect();
        assert!(spread_warnings(&timeline(vec![ready(0.0, 5)]), &points, 1.0).is_empty());
        let pinned = run(30, |_| vec![("a", 100)]);
        assert!(spread_warnings(&timeline(vec![]), &pinned, 1.0).is_empty());
    }

    #[test]
    fn windows_follow_the_bucket_width() {
        // 2 s buckets: five buckets make one 10 s window.
        let t = timeline(vec![ready(0.0, 2)]);
        let points: Vec<TimePoint> = (0..5)
            .map(|i| second(f64::from(i) * 2.0, &[("a", 100)]))
            .collect();
        let w = spread_warnings(&t, &points, 2.0);
        assert!(w[0].contains("between 0s and 10s"), "{w:?}");
    }
}
