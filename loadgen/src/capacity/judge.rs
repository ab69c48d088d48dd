//! Judging one step: its figures in the judged window, the objectives on them, and the verdict.
//!
//! Why the judged window is the step's last phase and not the whole step: the first part of a
//! step is the target getting used to the new rate (queues filling or draining from the step
//! before, an autoscaler reacting); the objectives are about the steady state.
//!
//! Why "achieved" is measured from completions and not from the phase row: the phase row counts
//! requests by their intended start, so in open loop it always shows the target rate (late sends
//! are still counted where they were due). Completions per second in the window show whether the
//! generator and the target really carried the rate.

use super::search::Verdict;
pub use crate::model::capacity::StepRecord;
use crate::model::phases::PhaseSummary;
use crate::model::replicas::ReplicaTimeline;
use crate::model::{RunReport, Summary, ThresholdOutcome};
use crate::threshold::{Metric, Threshold};

/// Achieved throughput below this share of the target rate means the rate was not carried.
pub const ACHIEVED_MIN_SHARE: f64 = 0.98;
/// A pause of the generator's or the target's this long (a scheduler hiccup on a busy machine)
/// moves completions out of the window without meaning anything: in short windows the shortfall
/// allowed is at least this much of the window.
pub const STALL_ALLOWANCE_S: f64 = 0.1;

/// Whether the watched Deployment and its HPA agreed over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Settle {
    pub settled: bool,
    /// Ready replicas at the end of the window.
    pub replicas: Option<i32>,
    /// Why not settled.
    pub why: String,
}

/// Settledness over `[from_s, to_s]` of `timeline` (seconds on the timeline's clock): every
/// state in force in the window has ready replicas equal to the Deployment's desired count and,
/// with an HPA, to the HPA's desired count. An unknown count is not settled.
pub fn settle(timeline: &ReplicaTimeline, from_s: f64, to_s: f64) -> Settle {
    let in_window = timeline.sample_at(from_s).into_iter().chain(
        timeline
            .samples
            .iter()
            .filter(|s| s.t_s > from_s && s.t_s <= to_s),
    );
    let mut seen = false;
    let mut why = String::new();
    for s in in_window {
        seen = true;
        let ok = match (s.ready, s.desired) {
            (Some(r), Some(d)) => r == d && s.hpa_desired.is_none_or(|h| h == r),
            _ => false,
        };
        if !ok && why.is_empty() {
            let v = |x: Option<i32>| x.map_or("?".to_string(), |x| x.to_string());
            why = format!(
                "at {:.1}s ready {} of desired {} (HPA desired {})",
                s.t_s - from_s,
                v(s.ready),
                v(s.desired),
                v(s.hpa_desired)
            );
        }
    }
    if !seen {
        why = "no replica state observed yet (see the watch warnings)".into();
    }
    Settle {
        settled: seen && why.is_empty(),
        replicas: timeline.ready_at(to_s),
        why,
    }
}

/// The part of the search's timeline from `from_s` to `to_s`, on the step's clock (0 = `from_s`,
/// the state in force then as the first sample), so the step's report carries its own replicas.
pub fn window_timeline(timeline: &ReplicaTimeline, from_s: f64, to_s: f64) -> ReplicaTimeline {
    let samples = timeline
        .sample_at(from_s)
        .map(|s| crate::model::replicas::ReplicaSample { t_s: 0.0, ..*s })
        .into_iter()
        .chain(
            timeline
                .samples
                .iter()
                .filter(|s| s.t_s > from_s && s.t_s <= to_s)
                .map(|s| crate::model::replicas::ReplicaSample {
                    t_s: s.t_s - from_s,
                    ..*s
                }),
        )
        .collect();
    let mut part = ReplicaTimeline {
        samples,
        summary: Default::default(),
        ..timeline.clone()
    };
    part.summary = part.compute_summary();
    part
}

/// Completed requests per second of `r`'s time series over `[from_s, to_s)`, buckets counted in
/// proportion to their overlap with the window.
pub fn achieved_rps(r: &RunReport, from_s: f64, to_s: f64) -> Option<f64> {
    if to_s <= from_s {
        return None;
    }
    let mut requests = 0.0;
    let mut covered = 0.0;
    for p in &r.timeseries {
        let w = p.width(r.timeseries_resolution_s);
        let overlap = (p.t_s + w).min(to_s) - p.t_s.max(from_s);
        if w > 0.0 && overlap > 0.0 {
            requests += p.requests as f64 * overlap / w;
            covered += overlap;
        }
    }
    // Completions stop when the run does; a series that ends early still tells the rate over the
    // whole window (missing seconds carried nothing).
    (covered > 0.0).then(|| requests / (to_s - from_s))
}

/// The judged window as a summary the objectives evaluate on.
fn window_summary(r: &RunReport, p: &PhaseSummary, achieved: f64) -> Summary {
    Summary {
        requests: p.requests,
        successes: p.successes,
        failures: p.failures,
        success_rate: p.success_rate,
        duration_s: p.duration_s,
        rps: achieved,
        latency_ms: p.latency_ms,
        service_time_ms: p.service_time_ms,
        status_codes: p.status_codes.clone(),
        errors: p.errors.clone(),
        dropped: r.summary.dropped,
        late: r.summary.late,
        ..Summary::default()
    }
}

/// Judges a step's report: its last phase is the judged window. `settle` is given with `--watch`.
pub fn judge(
    step: u32,
    target_rps: f64,
    r: &RunReport,
    objectives: &[Threshold],
    settle: Option<&Settle>,
) -> StepRecord {
    let window = r.phases.last().cloned().unwrap_or_default();
    let achieved =
        achieved_rps(r, window.start_s, window.start_s + window.duration_s).unwrap_or(window.rps);
    let summary = window_summary(r, &window, achieved);
    let outcomes: Vec<ThresholdOutcome> = objectives.iter().map(|t| t.evaluate(&summary)).collect();
    let mut broken: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| format!("{} (actual {})", o.expr, round3(o.actual)))
        .collect();
    let allowed = (1.0 - ACHIEVED_MIN_SHARE).max(STALL_ALLOWANCE_S / window.duration_s.max(1e-3));
    let short = achieved < (1.0 - allowed) * target_rps;
    let target_slow = r.summary.late > 0 || r.summary.dropped > 0;
    // A generator that fell behind only makes the target look worse (late sends count in the
    // corrected latency, a rate not carried is flagged below): a step that passes anyway is a
    // real pass. Of a step that does not, the generator explains broken latency or throughput
    // objectives and a rate not carried, never failed responses.
    let explained = short
        || objectives
            .iter()
            .zip(&outcomes)
            .any(|(t, o)| !o.passed && matches!(t.metric, Metric::Latency { .. } | Metric::Rps));
    let limited = r.generator.limited_by_generator && explained;
    let verdict = if limited {
        Verdict::GeneratorBound {
            why: r
                .generator
                .warnings
                .first()
                .cloned()
                .unwrap_or_else(|| "the generator was saturated".into()),
        }
    } else if short && !target_slow {
        Verdict::GeneratorBound {
            why: format!(
                "achieved {achieved:.1}/s of {target_rps}/s with in-flight slots free: the \
                 generator could not keep the rate"
            ),
        }
    } else {
        if short {
            broken.push(format!(
                "achieved {achieved:.1}/s of {target_rps}/s ({} late, {} dropped: the target did \
                 not keep up)",
                r.summary.late, r.summary.dropped
            ));
        }
        match settle {
            Some(s) if !s.settled => Verdict::Unsettled {
                why: format!("the HPA had not settled: {}", s.why),
            },
            _ if broken.is_empty() => Verdict::Pass,
            _ => Verdict::Fail { broken },
        }
    };
    StepRecord {
        step,
        target_rps,
        achieved_rps: round3(achieved),
        requests: window.requests,
        success_rate: window.success_rate,
        latency_ms: window.latency_ms,
        service_time_ms: window.service_time_ms,
        shed_503: window.shed_503,
        objectives: outcomes,
        verdict,
        started_at: r.started_at.clone(),
        judged_s: window.duration_s,
        attempts: 1,
        settled: settle.map(|s| s.settled),
        replicas: settle.and_then(|s| s.replicas),
        generator_warnings: r.generator.warnings.clone(),
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::replicas::ReplicaSample;
    use crate::model::{LatencyStats, TimePoint};

    /// A step of 2 s at `rate`: settle phase [0, 1), judged phase [1, 2), with `completed` requests
    /// per second completing in each second and `failures` of the judged ones failed.
    fn step(rate: f64, completed: u64, failures: u64, p99: f64) -> RunReport {
        let phase = |name: &str, start: f64| PhaseSummary {
            name: name.into(),
            start_s: start,
            duration_s: 1.0,
            target_from: rate,
            target_to: rate,
            requests: rate as u64,
            successes: rate as u64 - failures,
            failures,
            rps: rate,
            success_rate: (rate - failures as f64) / rate * 100.0,
            latency_ms: LatencyStats {
                mean: p99 / 2.0,
                p99,
                ..Default::default()
            },
            ..Default::default()
        };
        let point = |t: f64| TimePoint {
            t_s: t,
            requests: completed,
            rps: completed as f64,
            ..Default::default()
        };
        RunReport {
            phases: vec![phase("settle", 0.0), phase("measure", 1.0)],
            timeseries: vec![point(0.0), point(1.0)],
            timeseries_resolution_s: 1.0,
            ..Default::default()
        }
    }

    fn objectives() -> Vec<Threshold> {
        crate::threshold::parse_all(&["p99<100ms".into(), "success_rate>99%".into()]).unwrap()
    }

    #[test]
    fn a_step_that_keeps_every_objective_passes() {
        let s = judge(3, 400.0, &step(400.0, 400, 0, 20.0), &objectives(), None);
        assert_eq!(s.verdict, Verdict::Pass);
        assert_eq!((s.step, s.requests, s.achieved_rps), (3, 400, 400.0));
        assert!(s.objectives.iter().all(|o| o.passed));
        assert_eq!(s.settled, None);
    }

    #[test]
    fn a_broken_objective_is_named_with_its_measured_value() {
        let s = judge(1, 400.0, &step(400.0, 400, 40, 250.0), &objectives(), None);
        let Verdict::Fail { broken } = &s.verdict else {
            panic!("{:?}", s.verdict)
        };
        assert_eq!(
            broken,
            &["p99<100ms (actual 250)", "success_rate>99% (actual 90)"]
        );
    }

    #[test]
    fn a_rate_not_carried_with_free_slots_is_the_generators_fault_not_a_pass() {
        let s = judge(1, 400.0, &step(400.0, 300, 0, 5.0), &objectives(), None);
        assert_eq!(s.verdict.label(), "generator-bound", "{:?}", s.verdict);
        assert_eq!(s.achieved_rps, 300.0);
        let mut saturated = step(400.0, 400, 0, 250.0);
        saturated.generator.limited_by_generator = true;
        saturated.generator.warnings = vec!["the generator used 195% CPU".into()];
        let s = judge(1, 400.0, &saturated, &objectives(), None);
        assert_eq!(
            s.verdict,
            Verdict::GeneratorBound {
                why: "the generator used 195% CPU".into()
            }
        );
        // A saturated generator only makes the target look worse: a step that passes anyway is
        // a pass, with the warning kept.
        let mut passed = step(400.0, 400, 0, 5.0);
        passed.generator = saturated.generator.clone();
        let s = judge(1, 400.0, &passed, &objectives(), None);
        assert_eq!(s.verdict, Verdict::Pass);
        assert_eq!(s.generator_warnings, ["the generator used 195% CPU"]);
        // Failed responses are the target's, however busy the generator was.
        let mut errors = step(400.0, 400, 40, 5.0);
        errors.generator = saturated.generator.clone();
        let s = judge(1, 400.0, &errors, &objectives(), None);
        assert_eq!(s.verdict.label(), "fail", "{:?}", s.verdict);
    }

    #[test]
    fn a_short_window_allows_a_tenth_of_a_second_of_missing_completions() {
        let mut r = step(400.0, 372, 0, 5.0);
        r.summary.late = 3;
        // 93 % carried in a 1 s window: 28 requests short, less than 100 ms worth of them.
        assert_eq!(
            judge(1, 400.0, &r, &objectives(), None).verdict,
            Verdict::Pass
        );
        // The same shortfall over a 10 s window is a rate not carried.
        for p in &mut r.phases {
            p.duration_s = 10.0;
        }
        r.phases[1].start_s = 10.0;
        r.timeseries = (0..20)
            .map(|t| TimePoint {
                t_s: f64::from(t),
                requests: 372,
                ..Default::default()
            })
            .collect();
        assert_eq!(
            judge(1, 400.0, &r, &objectives(), None).verdict.label(),
            "fail"
        );
    }

    #[test]
    fn a_rate_not_carried_because_the_target_was_slow_fails() {
        let mut r = step(400.0, 300, 0, 5.0);
        r.summary.late = 120;
        let s = judge(1, 400.0, &r, &objectives(), None);
        let Verdict::Fail { broken } = &s.verdict else {
            panic!("{:?}", s.verdict)
        };
        assert!(broken[0].starts_with("achieved 300.0/s of 400/s (120 late"));
    }

    #[test]
    fn an_unsettled_hpa_makes_the_step_inconclusive() {
        let unsettled = Settle {
            settled: false,
            replicas: Some(3),
            why: "at 0.2s ready 3 of desired 5 (HPA desired 5)".into(),
        };
        let s = judge(
            1,
            400.0,
            &step(400.0, 400, 0, 5.0),
            &objectives(),
            Some(&unsettled),
        );
        assert_eq!(s.verdict.label(), "unsettled");
        assert_eq!((s.settled, s.replicas), (Some(false), Some(3)));
        let settled = Settle {
            settled: true,
            replicas: Some(5),
            why: String::new(),
        };
        let s = judge(
            1,
            400.0,
            &step(400.0, 400, 0, 5.0),
            &objectives(),
            Some(&settled),
        );
        assert_eq!(s.verdict, Verdict::Pass);
        assert_eq!((s.settled, s.replicas), (Some(true), Some(5)));
    }

    #[test]
    fn settled_means_ready_equals_desired_over_the_whole_window() {
        let sample = |t_s: f64, desired: i32, ready: i32, hpa: Option<i32>| ReplicaSample {
            t_s,
            desired: Some(desired),
            current: Some(desired),
            ready: Some(ready),
            hpa_desired: hpa,
            cpu_utilization_percent: None,
        };
        let timeline = ReplicaTimeline {
            samples: vec![
                sample(0.0, 1, 1, Some(1)),
                sample(2.0, 3, 1, Some(3)),
                sample(4.0, 3, 3, Some(3)),
                sample(8.0, 3, 3, Some(5)),
            ],
            ..Default::default()
        };
        assert!(settle(&timeline, 0.0, 1.9).settled);
        let s = settle(&timeline, 1.0, 3.0);
        assert!(!s.settled);
        assert_eq!(s.why, "at 1.0s ready 1 of desired 3 (HPA desired 3)");
        // The state in force at the window start counts, not only the samples inside it.
        let s = settle(&timeline, 4.5, 7.5);
        assert_eq!((s.settled, s.replicas), (true, Some(3)));
        // The HPA asking for more is not settled either.
        assert!(!settle(&timeline, 7.0, 9.0).settled);
        // Nothing observed: not settled.
        assert!(!settle(&ReplicaTimeline::default(), 0.0, 1.0).settled);

        // A step's own part of the timeline starts with the state in force at its start.
        let part = window_timeline(&timeline, 3.0, 6.0);
        let points: Vec<(f64, Option<i32>)> =
            part.samples.iter().map(|s| (s.t_s, s.ready)).collect();
        assert_eq!(points, [(0.0, Some(1)), (1.0, Some(3))]);
        assert_eq!(part.summary.max_replicas, Some(3));
    }

    #[test]
    fn achieved_counts_partial_buckets_by_their_overlap() {
        let mut r = step(100.0, 100, 0, 1.0);
        // [0,1) 100 requests, [1,2) 100 requests: [0.5, 1.5) holds 50 + 50.
        assert_eq!(achieved_rps(&r, 0.5, 1.5), Some(100.0));
        r.timeseries[1].requests = 50;
        r.timeseries[1].width_s = 0.5;
        assert_eq!(achieved_rps(&r, 1.0, 1.5), Some(100.0));
        assert_eq!(achieved_rps(&r, 1.0, 2.0), Some(50.0));
        assert_eq!(achieved_rps(&r, 3.0, 4.0), None);
    }
}
