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

/// What the generator's own signals say held a step back, if anything. Only these make a step
/// generator-bound: a busy machine, a slow target or a long queue show elsewhere too (the
/// corrected latency, the completions), but they are not the generator's doing.
#[derive(Debug, Clone, PartialEq)]
enum GeneratorLimit {
    /// Its threads used (nearly) all the CPU they can: every figure, the service time included
    /// (responses wait in the socket for a busy thread), is inflated by the generator.
    Cpu(String),
    /// It took arrivals late (the arrival clock's hand-off to a busy or descheduled runtime).
    Lag(String),
    /// Every in-flight slot was busy (iterations late or dropped) while the target answered
    /// within the latency objectives: more slots would have carried the rate.
    Slots(String),
}

impl GeneratorLimit {
    /// The signal and what to do about it, as the verdict's reason.
    fn why(self) -> String {
        match self {
            GeneratorLimit::Cpu(w) | GeneratorLimit::Lag(w) | GeneratorLimit::Slots(w) => w,
        }
    }
}

/// The generator's own signals in a step's report: its CPU, then its in-flight slots (only when
/// `target_in_time`, the target answered within the latency objectives, and the slots could not
/// carry the rate at the target's service time: a shortage no rerun cures), then its schedule lag
/// (which a busy machine causes for a moment).
fn generator_limit(
    r: &RunReport,
    target_rps: f64,
    service_mean_ms: f64,
    target_in_time: bool,
) -> Option<GeneratorLimit> {
    let g = &r.generator;
    if crate::selfmon::cpu_bound(g) {
        // Throttled, its CPU is its quota's: the figures against its threads would say nothing.
        if crate::selfmon::throttled(g) {
            return Some(GeneratorLimit::Cpu(format!(
                "the generator's CPU quota throttled its {} thread(s) in {:.0}% of its periods \
                 ({:.0}% CPU mean): give it more CPU (docker --cpus, the pod's CPU limit), or run \
                 more generators and merge",
                g.threads,
                g.cpu_throttled_percent.unwrap_or(0.0),
                g.cpu_percent_mean
            )));
        }
        return Some(GeneratorLimit::Cpu(format!(
            "the generator's {} thread(s) were CPU-bound ({:.0}% mean, {:.0}% max of {:.0}%): \
             give it more --threads or CPU, or run more generators and merge",
            g.threads,
            g.cpu_percent_mean,
            g.cpu_percent_max,
            g.threads.max(1) as f64 * 100.0
        )));
    }
    // Little's law: at the target's mean service time, could the slots carry the rate at all?
    // If they could, a backlog was a moment's stall, not a shortage of slots.
    let carry = r.plan.concurrency as f64 / (service_mean_ms / 1000.0);
    if r.summary.late + r.summary.dropped > 0 && target_in_time && carry < target_rps {
        return Some(GeneratorLimit::Slots(format!(
            "all {} in-flight slots were busy ({} iterations late, {} dropped) while the target \
             answered within the latency objectives: {0} slots at its mean service time of {} \
             carry {carry:.1}/s at most; raise --max-in-flight",
            r.plan.concurrency,
            r.summary.late,
            r.summary.dropped,
            crate::humanize::ms(service_mean_ms)
        )));
    }
    if g.schedule_lag_ms.p99 > crate::selfmon::LAG_LIMIT_MS {
        return Some(GeneratorLimit::Lag(format!(
            "the generator took its arrivals {:.1} ms late (p99, max {:.1} ms) with its CPU at \
             {:.0}%: its threads were not scheduled in time; give it a core of its own \
             (taskset, a less busy machine) or more --threads",
            g.schedule_lag_ms.p99, g.schedule_lag_ms.max, g.cpu_percent_mean
        )));
    }
    None
}

/// Judges a step's report: its last phase is the judged window. `settle` is given with `--watch`.
///
/// Who is to blame for a step that does not pass: failed responses are always the target's.
/// Otherwise the generator is blamed only on its own signals ([`GeneratorLimit`]): a CPU-bound
/// generator inflates every figure; a late schedule or full in-flight slots explain a broken
/// latency objective or a rate not carried only when the target's own service time (from the
/// actual send, free of the generator's lateness and queue) met the latency objectives. Every
/// other shortfall is the target not keeping up, however busy the machine the two share.
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
    let broken_of = |pick: fn(&Metric) -> bool| {
        objectives
            .iter()
            .zip(&outcomes)
            .any(|(t, o)| !o.passed && pick(&t.metric))
    };
    // Broken responses are the target's however busy the generator was.
    let responses_broken = broken_of(|m| !matches!(m, Metric::Latency { .. } | Metric::Rps));
    let slow = broken_of(|m| matches!(m, Metric::Latency { .. }));
    let target_in_time =
        has_latency_objective(objectives) && !service_time_broken(objectives, &summary);
    let generator =
        if (short || broken_of(|m| matches!(m, Metric::Rps)) || slow) && !responses_broken {
            let service_mean = summary.service_time_ms.map_or(0.0, |s| s.mean);
            generator_limit(r, target_rps, service_mean, target_in_time).filter(|g| {
                // The generator's lateness or queue cannot explain a target slow on its own clock;
                // its CPU can (the responses wait for it).
                matches!(g, GeneratorLimit::Cpu(_)) || target_in_time || !slow
            })
        } else {
            None
        };
    let verdict = if let Some(g) = generator {
        Verdict::GeneratorBound { why: g.why() }
    } else {
        if short {
            broken.push(format!(
                "achieved {achieved:.1}/s of {target_rps}/s ({} late, {} dropped)",
                r.summary.late, r.summary.dropped
            ));
        }
        // Slow on its own clock, short of the rate or shedding: the target's limit. (Failed
        // responses alone, at any rate, are a fault of the target's, not a limit.)
        if (short || slow || broken_of(|m| matches!(m, Metric::Rps)) || window.shed_503 > 0)
            && !broken.is_empty()
        {
            broken.push(did_not_keep_up(&summary, objectives, r.plan.concurrency));
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

/// The last entry of a failed step's reasons: the target did not keep up, with its own service
/// time as the evidence, and (without a latency objective to tell a slow target from too few
/// slots) the other possibility.
fn did_not_keep_up(summary: &Summary, objectives: &[Threshold], slots: u64) -> String {
    let mut out = String::from(TARGET_DID_NOT_KEEP_UP);
    if let Some(s) = &summary.service_time_ms {
        out.push_str(&format!(
            " (its service time p50 {}, p99 {})",
            crate::humanize::ms(s.p50),
            crate::humanize::ms(s.p99)
        ));
    }
    if !has_latency_objective(objectives) && summary.late + summary.dropped > 0 {
        out.push_str(&format!(
            "; or --max-in-flight {slots} is too low (no latency objective tells which)"
        ));
    }
    out
}

/// The words of a step the target failed, in its reasons and the capacity's note.
pub const TARGET_DID_NOT_KEEP_UP: &str = "the target did not keep up";

fn has_latency_objective(objectives: &[Threshold]) -> bool {
    objectives
        .iter()
        .any(|t| matches!(t.metric, Metric::Latency { .. }))
}

/// Whether a latency objective breaks on the target's own service time (each latency objective
/// evaluated on the service time instead of the corrected latency).
fn service_time_broken(objectives: &[Threshold], summary: &Summary) -> bool {
    objectives.iter().any(|t| match t.metric {
        Metric::Latency { stat, .. } => {
            let on_service = Threshold {
                metric: Metric::Latency {
                    stat,
                    service: true,
                },
                ..t.clone()
            };
            !on_service.evaluate(summary).passed
        }
        _ => false,
    })
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::replicas::ReplicaSample;
    use crate::model::{GeneratorStats, LagStats, LatencyStats, TimePoint};

    /// A step of 2 s at `rate`: settle phase [0, 1), judged phase [1, 2), with `completed` requests
    /// per second completing in each second and `failures` of the judged ones failed. The corrected
    /// p99 is `p99`, and so is the service time's (a target slow on its own clock) until
    /// [`service`] says otherwise.
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
                p50: p99 / 5.0,
                p99,
                ..Default::default()
            },
            service_time_ms: Some(LatencyStats {
                mean: p99 / 2.0,
                p50: p99 / 5.0,
                p99,
                ..Default::default()
            }),
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
            plan: crate::model::PlanInfo {
                concurrency: 1000,
                ..Default::default()
            },
            generator: GeneratorStats {
                threads: 1,
                cpu_percent_mean: 20.0,
                cpu_percent_max: 30.0,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// `r` with the target's own service time p99 in the judged window set to `p99`.
    fn service(mut r: RunReport, p99: f64) -> RunReport {
        for p in &mut r.phases {
            p.service_time_ms = Some(LatencyStats {
                mean: p99 / 2.0,
                p50: p99 / 5.0,
                p99,
                ..Default::default()
            });
        }
        r
    }

    /// The generator's signals as its self-monitoring sets them.
    fn cpu_bound(mut r: RunReport) -> RunReport {
        r.generator = GeneratorStats {
            threads: 2,
            cpu_percent_mean: 190.0,
            cpu_percent_max: 198.0,
            limited_by_generator: true,
            warnings: vec!["the generator used 190% CPU".into()],
            ..Default::default()
        };
        r
    }

    fn lagging(mut r: RunReport) -> RunReport {
        r.generator.schedule_lag_ms = LagStats {
            mean: 4.0,
            p99: 28.2,
            max: 48.2,
        };
        r.generator.limited_by_generator = true;
        r
    }

    fn objectives() -> Vec<Threshold> {
        crate::threshold::parse_all(&["p99<100ms".into(), "success_rate>99%".into()]).unwrap()
    }

    fn why(v: &Verdict) -> &str {
        match v {
            Verdict::GeneratorBound { why } => why,
            other => panic!("not generator-bound: {other:?}"),
        }
    }

    fn broken(v: &Verdict) -> &[String] {
        match v {
            Verdict::Fail { broken } => broken,
            other => panic!("not a fail: {other:?}"),
        }
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
    fn a_broken_objective_is_named_with_its_measured_value_and_the_target_blamed() {
        let s = judge(1, 400.0, &step(400.0, 400, 40, 250.0), &objectives(), None);
        assert_eq!(
            broken(&s.verdict),
            [
                "p99<100ms (actual 250)",
                "success_rate>99% (actual 90)",
                "the target did not keep up (its service time p50 50.0ms, p99 250ms)"
            ]
        );
    }

    #[test]
    fn a_saturated_target_is_blamed_however_late_the_generator_was() {
        // The CI run that called a one-core target generator-bound: a 500/s step, p99 539 ms on
        // the target's own clock, the generator descheduled for tens of ms on the shared cores
        // and every in-flight slot waiting for the target.
        let mut r = lagging(step(500.0, 420, 0, 539.0));
        r.summary.late = 300;
        let s = judge(1, 500.0, &r, &objectives(), None);
        let b = broken(&s.verdict);
        assert_eq!(b[0], "p99<100ms (actual 539)");
        assert_eq!(b[1], "achieved 420.0/s of 500/s (300 late, 0 dropped)");
        assert!(b[2].starts_with("the target did not keep up"), "{b:?}");
        // The same with the generator's warnings set but no signal of its own: still the target.
        let mut r = step(500.0, 420, 0, 539.0);
        r.summary.late = 300;
        r.generator.limited_by_generator = true;
        r.generator.warnings = vec!["300 iterations started late".into()];
        assert_eq!(
            judge(1, 500.0, &r, &objectives(), None).verdict.label(),
            "fail"
        );
    }

    #[test]
    fn a_late_schedule_is_the_generators_when_the_target_answered_in_time() {
        // 116 ms from the intended start, 40 ms from the send: the generator's lateness broke it.
        let r = service(lagging(step(200.0, 200, 0, 116.0)), 40.0);
        let s = judge(1, 200.0, &r, &objectives(), None);
        let w = why(&s.verdict);
        assert!(
            w.starts_with("the generator took its arrivals 28.2 ms late"),
            "{w}"
        );
        assert!(w.contains("a core of its own"), "{w}");
        // A rate not carried with the target in time and the schedule late: the generator's too.
        let r = service(lagging(step(400.0, 300, 0, 20.0)), 20.0);
        assert_eq!(
            judge(1, 400.0, &r, &objectives(), None).verdict.label(),
            "generator-bound"
        );
    }

    #[test]
    fn full_in_flight_slots_are_the_generators_only_when_the_target_answered_in_time() {
        // Two slots for 200/s of 20 ms requests: the queue grows in the generator while the
        // target answers each request in 40 ms.
        let mut r = service(step(200.0, 100, 0, 900.0), 40.0);
        r.summary.late = 150;
        r.plan.concurrency = 2;
        let s = judge(1, 200.0, &r, &objectives(), None);
        assert_eq!(
            why(&s.verdict),
            "all 2 in-flight slots were busy (150 iterations late, 0 dropped) while the target \
             answered within the latency objectives: 2 slots at its mean service time of 20.0ms \
             carry 100.0/s at most; raise --max-in-flight"
        );
        // A late schedule as well (a busy machine): the slots, a shortage no rerun cures, are named.
        let s = judge(1, 200.0, &lagging(r.clone()), &objectives(), None);
        assert!(
            why(&s.verdict).starts_with("all 2 in-flight slots"),
            "{:?}",
            s.verdict
        );
        // The same backlog with slots enough for the rate at that service time: a moment's
        // stall of the target's, not a shortage of slots.
        r.plan.concurrency = 100;
        assert_eq!(
            judge(1, 200.0, &r, &objectives(), None).verdict.label(),
            "fail"
        );
        // The slots were full because the target was slow: the target's.
        let mut r = step(100.0, 50, 0, 900.0);
        r.summary.late = 150;
        assert_eq!(
            judge(1, 100.0, &r, &objectives(), None).verdict.label(),
            "fail"
        );
        // Without a latency objective nothing tells the two apart: a fail naming both.
        let only_success = crate::threshold::parse_all(&["success_rate>99%".into()]).unwrap();
        let mut r = service(step(100.0, 50, 0, 900.0), 40.0);
        r.summary.late = 150;
        r.plan.concurrency = 2;
        let b = judge(1, 100.0, &r, &only_success, None).verdict;
        let last = broken(&b).last().unwrap();
        assert!(last.starts_with("the target did not keep up"), "{last}");
        assert!(
            last.ends_with("or --max-in-flight 2 is too low (no latency objective tells which)")
        );
    }

    #[test]
    fn a_cpu_bound_generator_explains_latency_and_rate_but_never_failed_responses() {
        let s = judge(
            1,
            400.0,
            &cpu_bound(step(400.0, 400, 0, 250.0)),
            &objectives(),
            None,
        );
        let w = why(&s.verdict);
        assert!(
            w.starts_with(
                "the generator's 2 thread(s) were CPU-bound (190% mean, 198% max of 200%)"
            ),
            "{w}"
        );
        assert!(w.contains("more --threads"), "{w}");
        // Held back by its CPU quota at half a core: the quota is named, and more CPU.
        let mut quota = step(400.0, 400, 0, 250.0);
        quota.generator = GeneratorStats {
            threads: 1,
            cpu_percent_mean: 49.0,
            cpu_percent_max: 51.0,
            cpu_throttled_percent: Some(62.0),
            limited_by_generator: true,
            ..Default::default()
        };
        let s = judge(1, 400.0, &quota, &objectives(), None);
        let w = why(&s.verdict);
        assert!(
            w.starts_with(
                "the generator's CPU quota throttled its 1 thread(s) in 62% of its periods"
            ),
            "{w}"
        );
        assert!(w.contains("--cpus"), "{w}");
        // A CPU-bound generator only makes the target look worse: a step that passes anyway is
        // a pass, with the warning kept.
        let s = judge(
            1,
            400.0,
            &cpu_bound(step(400.0, 400, 0, 5.0)),
            &objectives(),
            None,
        );
        assert_eq!(s.verdict, Verdict::Pass);
        assert_eq!(s.generator_warnings, ["the generator used 190% CPU"]);
        // Failed responses are the target's, however busy the generator was.
        let s = judge(
            1,
            400.0,
            &cpu_bound(step(400.0, 400, 40, 5.0)),
            &objectives(),
            None,
        );
        assert_eq!(s.verdict.label(), "fail", "{:?}", s.verdict);
        // Failing fast at a rate it carries is a fault of the target's, not its limit: the
        // broken objective is the whole reason.
        assert_eq!(broken(&s.verdict), ["success_rate>99% (actual 90)"]);
        // Shedding (503) is its limit.
        let mut shed = step(400.0, 400, 40, 5.0);
        shed.phases[1].shed_503 = 40;
        let s = judge(1, 400.0, &shed, &objectives(), None);
        assert!(broken(&s.verdict)[1].starts_with("the target did not keep up"));
    }

    #[test]
    fn a_rate_not_carried_without_a_generator_signal_is_the_targets() {
        let s = judge(1, 400.0, &step(400.0, 300, 0, 5.0), &objectives(), None);
        let b = broken(&s.verdict);
        assert_eq!(b[0], "achieved 300.0/s of 400/s (0 late, 0 dropped)");
        assert!(b[1].starts_with("the target did not keep up"), "{b:?}");
        assert_eq!(s.achieved_rps, 300.0);
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
