//! Capacity: the highest open-loop rate at which every objective holds.
//!
//! [`search`] decides which rate to try next (rise, then bisect) with no I/O; [`judge`] turns the
//! report of one step into its figures and a verdict; `crate::report::capacity` prints the steps and
//! the capacity. The command that runs the steps is `cmd::capacity`; the method and how long it takes
//! are in `docs/capacity.md`.
//!
//! Why the capacity report is a [`crate::model::RunReport`] (of the highest passing step) with a
//! `capacity` section, rather than a format of its own: `report --html`, `compare` and `merge`
//! keep working on it unchanged, and `compare` of two capacity reports adds the headline the
//! classic write-ups end on (capacity of one deployment over the other, and per replica).

pub mod judge;
pub mod search;

pub use crate::model::capacity::CapacitySection;

pub use judge::{Settle, StepRecord};
pub use search::{Conclusion, Next, Search, SearchSettings, StopReason, Verdict};

impl CapacitySection {
    /// The section for a finished search.
    pub fn new(
        conclusion: &Conclusion,
        settings: SearchSettings,
        objectives: Vec<String>,
        steps: Vec<StepRecord>,
        duration_s: f64,
    ) -> Self {
        let best = conclusion.capacity.and_then(|c| {
            steps
                .iter()
                .find(|s| s.target_rps == c && s.verdict.passed())
        });
        let observed = best.and_then(|s| s.replicas).filter(|r| *r > 0);
        let replicas = observed.unwrap_or(1);
        let mut notes = Vec::new();
        match conclusion.stop {
            StopReason::BelowStartRate => notes.push(format!(
                "the first step ({}/s) did not pass: the capacity is below the start rate; \
                 lower --start-rate",
                settings.start_rate
            )),
            StopReason::MaxRate => notes.push(format!(
                "bounded: the step at --max-rate {}/s passed, the capacity may be higher",
                settings.max_rate.unwrap_or_default()
            )),
            StopReason::MaxSteps => notes.push(format!(
                "bounded: --max-steps {} reached before the search converged",
                settings.max_steps
            )),
            StopReason::MaxDuration => notes.push(format!(
                "bounded: --max-duration {} reached before the search converged",
                humantime::format_duration(settings.max_duration.unwrap_or_default())
            )),
            StopReason::Interrupted => {
                notes.push("interrupted (Ctrl-C) before the search converged".into())
            }
            StopReason::Converged => {}
        }
        if let Some((rate, v)) = &conclusion.upper {
            match v {
                Verdict::GeneratorBound { why } => notes.push(format!(
                    "the step at {rate}/s was generator-bound, not the target's limit: {why}; \
                     the target's capacity may be higher than found"
                )),
                Verdict::Fail { .. } if v.reason().contains(judge::TARGET_DID_NOT_KEEP_UP) => {
                    notes.push(format!(
                    "the step at {rate}/s failed: {}, so its capacity under these objectives is \
                     below that; more CPU for it (a container's --cpus, a pod's CPU limit) or more \
                     replicas raise it",
                        judge::TARGET_DID_NOT_KEEP_UP
                    ))
                }
                Verdict::Unsettled { .. } => notes.push(format!(
                    "the HPA had not settled at {rate}/s within --settle-timeout: the step is \
                     inconclusive, not counted as a pass"
                )),
                _ => {}
            }
        }
        Self {
            capacity_rps: conclusion.capacity,
            upper_rps: conclusion.upper.as_ref().map(|(r, _)| *r),
            upper_verdict: conclusion
                .upper
                .as_ref()
                .map(|(_, v)| v.label().to_string()),
            stop: conclusion.stop,
            bounded: conclusion.stop.bounded(),
            replicas,
            replicas_observed: observed.is_some(),
            capacity_per_replica_rps: conclusion.capacity.map(|c| c / f64::from(replicas)),
            objectives,
            settings,
            duration_s,
            steps,
            notes,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn notes(upper: Verdict) -> Vec<String> {
        let conclusion = Conclusion {
            capacity: Some(400.0),
            upper: Some((425.0, upper)),
            stop: StopReason::Converged,
        };
        let settings = SearchSettings {
            start_rate: 50.0,
            growth: 2.0,
            precision: 0.05,
            max_rate: None,
            max_steps: 20,
            max_duration: None,
            step_duration: Duration::from_secs(15),
            step_warmup: Duration::from_secs(5),
        };
        CapacitySection::new(&conclusion, settings, Vec::new(), Vec::new(), 1.0).notes
    }

    #[test]
    fn the_note_on_the_upper_step_blames_the_side_that_did_not_keep_up_and_says_what_to_do() {
        let target = notes(Verdict::Fail {
            broken: vec![
                "p99<100ms (actual 539)".into(),
                format!(
                    "{} (its service time p50 2.5ms, p99 530ms)",
                    judge::TARGET_DID_NOT_KEEP_UP
                ),
            ],
        });
        assert_eq!(target.len(), 1, "{target:?}");
        assert!(
            target[0].starts_with("the step at 425/s failed: the target did not keep up")
                && target[0].contains("--cpus")
                && target[0].contains("replicas"),
            "{target:?}"
        );
        // Failed responses at a rate the target carries are no limit to raise: no such note.
        let errors = notes(Verdict::Fail {
            broken: vec!["success_rate>99% (actual 90)".into()],
        });
        assert!(errors.is_empty(), "{errors:?}");
        let generator = notes(Verdict::GeneratorBound {
            why: "all 2 in-flight slots were busy (...): raise --max-in-flight".into(),
        });
        assert_eq!(
            generator,
            [
                "the step at 425/s was generator-bound, not the target's limit: all 2 in-flight \
              slots were busy (...): raise --max-in-flight; the target's capacity may be higher \
              than found"
            ]
        );
    }
}
