//! A run's data as chart points: the time axis, rates per second, latencies, phases, scale events
//! and replica steps. Shared by the run page and the comparison page, so both draw a run alike.

use crate::model::replicas::{ReplicaSample, ReplicaTimeline};
use crate::model::{RunReport, TimePoint};

/// Width of one time-series bucket (1 s unless the run was very long).
pub(super) fn resolution(r: &RunReport) -> f64 {
    if r.timeseries_resolution_s > 0.0 {
        r.timeseries_resolution_s
    } else {
        1.0
    }
}

/// Where the time axis of a run ends: its duration, or the last data seen, whichever is later.
pub(super) fn run_end(r: &RunReport) -> f64 {
    let ts_end = r
        .timeseries
        .last()
        .map(|p| p.t_s + p.width(resolution(r)))
        .unwrap_or(0.0);
    let replica_end = r
        .replicas
        .as_ref()
        .and_then(|t| t.samples.last())
        .map(|s| s.t_s)
        .unwrap_or(0.0);
    r.summary.duration_s.max(ts_end).max(replica_end)
}

/// Throughput over time (already per second of each bucket's true width).
pub(super) fn throughput(r: &RunReport) -> Vec<(f64, f64)> {
    r.throughput_series()
}

/// A count of each bucket per second. The last bucket of a run may be cut short where the run
/// ended: dividing by its true width draws it at its real rate instead of as a drop.
pub(super) fn per_second(r: &RunReport, count: impl Fn(&TimePoint) -> u64) -> Vec<(f64, f64)> {
    let w = resolution(r);
    r.timeseries
        .iter()
        .map(|p| (p.t_s, count(p) as f64 / p.width(w)))
        .collect()
}

/// Failures per second over time.
pub(super) fn failures_per_second(r: &RunReport) -> Vec<(f64, f64)> {
    per_second(r, |p| p.failures)
}

/// Latency points, leaving out buckets with no completed request (0 there means "no data").
pub(super) fn latency_points(r: &RunReport, f: impl Fn(&TimePoint) -> f64) -> Vec<(f64, f64)> {
    r.timeseries
        .iter()
        .filter(|p| p.requests > 0)
        .map(|p| (p.t_s, f(p)))
        .collect()
}

/// The phases of a run as chart bands (none for a single phase: nothing to tell apart).
pub(super) fn phase_bands(r: &RunReport) -> Vec<(String, f64, f64)> {
    if r.phases.len() < 2 {
        return Vec::new();
    }
    r.phases
        .iter()
        .map(|p| (p.name.clone(), p.start_s, p.start_s + p.duration_s))
        .collect()
}

/// The scale events of a run as chart markers: `↑3` where the desired count rose to 3.
pub(super) fn scale_markers(r: &RunReport) -> Vec<(f64, String)> {
    r.scale_events
        .iter()
        .map(|e| (e.t_s, format!("\u{2191}{}", e.to_replicas)))
        .collect()
}

/// A step function of one replica field, ending at `end`; unknown values break the line.
pub(super) fn step_segments(
    t: &ReplicaTimeline,
    end: f64,
    f: impl Fn(&ReplicaSample) -> Option<i32>,
) -> Vec<Vec<(f64, f64)>> {
    let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for s in &t.samples {
        match f(s) {
            Some(v) => {
                let v = f64::from(v);
                match current.last() {
                    Some(&(_, prev)) if prev == v => {} // other fields changed, not this one
                    Some(&(_, prev)) => {
                        current.push((s.t_s, prev));
                        current.push((s.t_s, v));
                    }
                    None => current.push((s.t_s, v)),
                }
            }
            None => {
                if let Some(&(_, prev)) = current.last() {
                    current.push((s.t_s, prev));
                    segments.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if let Some(&(t_last, prev)) = current.last() {
        if end > t_last {
            current.push((end, prev));
        }
        segments.push(current);
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::phases::PhaseSummary;

    fn run(points: Vec<TimePoint>, duration_s: f64) -> RunReport {
        let mut r = RunReport {
            timeseries: points,
            timeseries_resolution_s: 1.0,
            ..RunReport::default()
        };
        r.summary.duration_s = duration_s;
        r
    }

    fn point(t_s: f64, requests: u64, failures: u64, width_s: f64) -> TimePoint {
        TimePoint {
            t_s,
            requests,
            failures,
            rps: requests as f64 / if width_s > 0.0 { width_s } else { 1.0 },
            p99_ms: 10.0 + t_s,
            width_s,
            ..TimePoint::default()
        }
    }

    #[test]
    fn a_partial_last_bucket_is_counted_per_second_of_its_true_width() {
        let r = run(vec![point(0.0, 700, 10, 0.0), point(1.0, 350, 5, 0.5)], 1.5);
        assert_eq!(failures_per_second(&r), vec![(0.0, 10.0), (1.0, 10.0)]);
        assert_eq!(throughput(&r), vec![(0.0, 700.0), (1.0, 700.0)]);
        assert_eq!(run_end(&r), 1.5);
    }

    #[test]
    fn the_time_axis_ends_at_the_last_data_when_it_outlasts_the_duration() {
        let mut r = run(vec![point(0.0, 1, 0, 0.0), point(4.0, 1, 0, 0.0)], 2.0);
        assert_eq!(run_end(&r), 5.0);
        r.replicas = Some(ReplicaTimeline {
            samples: vec![ReplicaSample {
                t_s: 7.5,
                ..ReplicaSample::default()
            }],
            ..ReplicaTimeline::default()
        });
        assert_eq!(run_end(&r), 7.5);
    }

    #[test]
    fn buckets_without_a_completed_request_have_no_latency() {
        let r = run(
            vec![
                point(0.0, 5, 0, 0.0),
                point(1.0, 0, 0, 0.0),
                point(2.0, 5, 0, 0.0),
            ],
            3.0,
        );
        assert_eq!(
            latency_points(&r, |p| p.p99_ms),
            vec![(0.0, 10.0), (2.0, 12.0)]
        );
    }

    #[test]
    fn one_phase_is_not_banded_and_several_are() {
        let phase = |name: &str, start_s: f64| PhaseSummary {
            name: name.into(),
            start_s,
            duration_s: 10.0,
            ..PhaseSummary::default()
        };
        let mut r = run(Vec::new(), 20.0);
        r.phases = vec![phase("only", 0.0)];
        assert!(phase_bands(&r).is_empty());
        r.phases.push(phase("second", 10.0));
        assert_eq!(
            phase_bands(&r),
            vec![("only".into(), 0.0, 10.0), ("second".into(), 10.0, 20.0)]
        );
    }

    #[test]
    fn step_segments_hold_values_and_break_on_unknown() {
        let sample = |t_s: f64, ready: Option<i32>| ReplicaSample {
            t_s,
            ready,
            ..ReplicaSample::default()
        };
        let t = ReplicaTimeline {
            samples: vec![
                sample(0.0, Some(1)),
                sample(5.0, Some(3)),
                sample(8.0, None),
                sample(9.0, Some(2)),
            ],
            ..ReplicaTimeline::default()
        };
        assert_eq!(
            step_segments(&t, 12.0, |s| s.ready),
            vec![
                vec![(0.0, 1.0), (5.0, 1.0), (5.0, 3.0), (8.0, 3.0)],
                vec![(9.0, 2.0), (12.0, 2.0)],
            ]
        );
    }
}
