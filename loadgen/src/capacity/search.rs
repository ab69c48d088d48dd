//! The capacity search as a pure state machine: which rate to try next, and when to stop.
//!
//! Why a state machine and not a loop that runs steps: the decisions (rise, narrow, stop on
//! precision or a bound) are the part worth testing exhaustively, and they need no network, no
//! clock and no runtime. The driver (`cmd::capacity`) asks [`Search::next`] for a rate, runs the
//! step, and hands the verdict back with [`Search::record`].
//!
//! The search: geometric rise from the start rate (x`growth`) while steps pass; the first step
//! that does not pass gives the bracket [highest pass, lowest non-pass], which is halved
//! (bisection) until its width is within `precision` of the highest pass. Bisection of a bracket
//! that a x2 rise produced needs about log2(1 / precision) steps (5 at 5 %).

use std::time::Duration;

pub use crate::model::capacity::{SearchSettings, StopReason, Verdict};

impl SearchSettings {
    /// Checks the settings against each other; messages name the flags.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.start_rate.is_finite() && self.start_rate > 0.0) {
            return Err("--start-rate must be above 0".into());
        }
        if !(self.growth > 1.0 && self.growth <= 10.0) {
            return Err(format!(
                "--growth {} must be above 1 and at most 10",
                self.growth
            ));
        }
        if !(self.precision > 0.0 && self.precision <= 0.5) {
            return Err(format!(
                "--precision {} must be above 0 and at most 50% (e.g. 5% or 0.05)",
                self.precision
            ));
        }
        if let Some(max) = self.max_rate
            && max < self.start_rate
        {
            return Err(format!(
                "--max-rate {max} is below --start-rate {}: nothing to search",
                self.start_rate
            ));
        }
        if self.max_steps == 0 {
            return Err("--max-steps must be at least 1".into());
        }
        if self.step_warmup >= self.step_duration {
            return Err(format!(
                "--step-warmup {} must be shorter than --step-duration {}: nothing would be judged",
                humantime::format_duration(self.step_warmup),
                humantime::format_duration(self.step_duration)
            ));
        }
        if let Some(max) = self.max_duration
            && max < self.step_duration
        {
            return Err(format!(
                "--max-duration {} is shorter than one step (--step-duration {})",
                humantime::format_duration(max),
                humantime::format_duration(self.step_duration)
            ));
        }
        Ok(())
    }
}

impl Verdict {
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass)
    }

    /// One word for tables.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail { .. } => "fail",
            Verdict::GeneratorBound { .. } => "generator-bound",
            Verdict::Unsettled { .. } => "unsettled",
        }
    }

    /// What broke, for humans (empty for a pass).
    pub fn reason(&self) -> String {
        match self {
            Verdict::Pass => String::new(),
            Verdict::Fail { broken } => broken.join(", "),
            Verdict::GeneratorBound { why } | Verdict::Unsettled { why } => why.clone(),
        }
    }
}

/// Runs of a generator-bound step before its verdict stands: a step the generator held back says
/// nothing about the target, and a generator held back for a moment (its threads descheduled on a
/// busy machine) usually keeps up on the next run. A generator short of CPU or in-flight slots
/// stays generator-bound however often it runs, so the repeats are few.
pub const GENERATOR_BOUND_RUNS: u32 = 3;

impl Verdict {
    /// Whether the step is run again at its rate, after `runs` runs with this verdict.
    pub fn run_again(&self, runs: u32) -> bool {
        matches!(self, Verdict::GeneratorBound { .. }) && runs < GENERATOR_BOUND_RUNS
    }
}

impl StopReason {
    /// True when the search ended on a bound before it converged.
    pub fn bounded(self) -> bool {
        !matches!(self, StopReason::Converged | StopReason::BelowStartRate)
    }
}

/// What the search found.
#[derive(Debug, Clone, PartialEq)]
pub struct Conclusion {
    /// The highest rate that passed (none when no step passed).
    pub capacity: Option<f64>,
    /// The lowest rate that did not pass, and how it did not (none when every step passed).
    pub upper: Option<(f64, Verdict)>,
    pub stop: StopReason,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Run a step at this rate.
    Step(f64),
    Done(Conclusion),
}

/// The search state.
#[derive(Debug, Clone)]
pub struct Search {
    settings: SearchSettings,
    highest_pass: Option<f64>,
    lowest_fail: Option<(f64, Verdict)>,
    steps: u32,
}

impl Search {
    pub fn new(settings: SearchSettings) -> Self {
        Self {
            settings,
            highest_pass: None,
            lowest_fail: None,
            steps: 0,
        }
    }

    fn done(&self, stop: StopReason) -> Next {
        Next::Done(self.conclude(stop))
    }

    /// The conclusion as of now, with the given reason (also used when the driver stops early).
    pub fn conclude(&self, stop: StopReason) -> Conclusion {
        Conclusion {
            capacity: self.highest_pass,
            upper: self.lowest_fail.clone(),
            stop,
        }
    }

    /// The next rate, or the end. `elapsed`: wall-clock time the search has taken so far.
    pub fn next(&self, elapsed: Duration) -> Next {
        let s = &self.settings;
        let rate = match (self.highest_pass, &self.lowest_fail) {
            (None, None) => s.start_rate,
            (None, Some(_)) => return self.done(StopReason::BelowStartRate),
            (Some(hp), None) => match s.max_rate {
                Some(max) if hp >= max => return self.done(StopReason::MaxRate),
                Some(max) => (hp * s.growth).min(max),
                None => hp * s.growth,
            },
            (Some(hp), Some((lf, _))) => {
                let mid = round_rate((hp + lf) / 2.0);
                // At a tenth of a request per second there is nothing left between the two.
                if (lf - hp) / hp <= s.precision || mid <= hp || mid >= *lf {
                    return self.done(StopReason::Converged);
                }
                mid
            }
        };
        if self.steps >= s.max_steps {
            return self.done(StopReason::MaxSteps);
        }
        if let Some(max) = s.max_duration
            && elapsed + s.step_duration > max
        {
            return self.done(StopReason::MaxDuration);
        }
        Next::Step(round_rate(rate))
    }

    /// Records the verdict of the step at `rate`.
    pub fn record(&mut self, rate: f64, verdict: Verdict) {
        self.steps += 1;
        if verdict.passed() {
            if self.highest_pass.is_none_or(|hp| rate > hp) {
                self.highest_pass = Some(rate);
            }
        } else if self.lowest_fail.as_ref().is_none_or(|(lf, _)| rate < *lf) {
            self.lowest_fail = Some((rate, verdict));
        }
    }

    /// Steps recorded so far.
    pub fn steps(&self) -> u32 {
        self.steps
    }
}

/// Rates past a tenth of a request per second mean nothing; rounding keeps them readable (rates
/// below 1/s are left as they are: rounding could make them 0).
fn round_rate(r: f64) -> f64 {
    if r >= 1.0 {
        (r * 10.0).round() / 10.0
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SearchSettings {
        SearchSettings {
            start_rate: 50.0,
            growth: 2.0,
            precision: 0.05,
            max_rate: None,
            max_steps: 30,
            max_duration: None,
            step_duration: Duration::from_secs(15),
            step_warmup: Duration::from_secs(5),
        }
    }

    /// Runs a search against a target whose steps pass at or below `capacity`, with `verdict_above`
    /// above it; returns the rates tried and the conclusion. `step_time` is what each step takes.
    fn search(
        s: SearchSettings,
        capacity: f64,
        verdict_above: Verdict,
        step_time: Duration,
    ) -> (Vec<f64>, Conclusion) {
        let mut search = Search::new(s);
        let mut tried = Vec::new();
        let mut elapsed = Duration::ZERO;
        loop {
            match search.next(elapsed) {
                Next::Step(rate) => {
                    tried.push(rate);
                    let v = if rate <= capacity {
                        Verdict::Pass
                    } else {
                        verdict_above.clone()
                    };
                    search.record(rate, v);
                    elapsed += step_time;
                }
                Next::Done(c) => return (tried, c),
            }
            assert!(tried.len() < 100, "the search does not end: {tried:?}");
        }
    }

    fn fail() -> Verdict {
        Verdict::Fail {
            broken: vec!["p99<100ms (actual 250)".into()],
        }
    }

    #[test]
    fn rises_geometrically_then_bisects_until_the_bracket_is_within_the_precision() {
        let (tried, c) = search(settings(), 430.0, fail(), Duration::from_secs(15));
        assert_eq!(
            tried,
            [
                50.0, 100.0, 200.0, 400.0, 800.0, 600.0, 500.0, 450.0, 425.0, 437.5
            ]
        );
        assert_eq!(c.stop, StopReason::Converged);
        assert_eq!(c.capacity, Some(425.0));
        let (upper, verdict) = c.upper.unwrap();
        assert_eq!(upper, 437.5);
        assert_eq!(verdict, fail());
        assert!((upper - 425.0) / 425.0 <= 0.05);
    }

    #[test]
    fn a_finer_precision_takes_more_steps_and_lands_closer() {
        let coarse = search(settings(), 430.0, fail(), Duration::ZERO);
        let fine = search(
            SearchSettings {
                precision: 0.01,
                ..settings()
            },
            430.0,
            fail(),
            Duration::ZERO,
        );
        assert!(fine.0.len() > coarse.0.len());
        let cap = fine.1.capacity.unwrap();
        assert!((430.0 * 0.99..=430.0).contains(&cap), "{cap}");
        assert_eq!(fine.1.stop, StopReason::Converged);
    }

    #[test]
    fn a_precision_finer_than_a_tenth_per_second_still_ends() {
        let s = SearchSettings {
            start_rate: 1.0,
            precision: 0.0001,
            ..settings()
        };
        let (tried, c) = search(s, 1.04, fail(), Duration::ZERO);
        assert_eq!(c.stop, StopReason::Converged, "{tried:?}");
        assert_eq!((c.capacity, c.upper.map(|u| u.0)), (Some(1.0), Some(1.1)));
        let mut sorted = tried.clone();
        sorted.dedup();
        assert_eq!(sorted, tried, "no rate is tried twice");
    }

    #[test]
    fn a_first_step_that_fails_says_the_capacity_is_below_the_start_rate() {
        let (tried, c) = search(settings(), 10.0, fail(), Duration::ZERO);
        assert_eq!(tried, [50.0]);
        assert_eq!(c.stop, StopReason::BelowStartRate);
        assert_eq!(c.capacity, None);
        assert_eq!(c.upper.unwrap().0, 50.0);
    }

    #[test]
    fn the_max_rate_caps_the_rise_and_a_pass_there_ends_the_search() {
        let s = SearchSettings {
            max_rate: Some(300.0),
            ..settings()
        };
        let (tried, c) = search(s, 10_000.0, fail(), Duration::ZERO);
        assert_eq!(tried, [50.0, 100.0, 200.0, 300.0]);
        assert_eq!(c.stop, StopReason::MaxRate);
        assert_eq!(c.capacity, Some(300.0));
        assert!(c.upper.is_none());
        assert!(c.stop.bounded());
    }

    #[test]
    fn max_steps_and_max_duration_stop_with_the_best_pass_so_far() {
        let s = SearchSettings {
            max_steps: 3,
            ..settings()
        };
        let (tried, c) = search(s, 10_000.0, fail(), Duration::ZERO);
        assert_eq!(tried, [50.0, 100.0, 200.0]);
        assert_eq!((c.stop, c.capacity), (StopReason::MaxSteps, Some(200.0)));

        // 4 steps of 15 s fit in 60 s; a fifth would end after it.
        let s = SearchSettings {
            max_duration: Some(Duration::from_secs(60)),
            ..settings()
        };
        let (tried, c) = search(s, 10_000.0, fail(), Duration::from_secs(15));
        assert_eq!(tried.len(), 4);
        assert_eq!((c.stop, c.capacity), (StopReason::MaxDuration, Some(400.0)));
        assert!(c.stop.bounded());
    }

    #[test]
    fn a_generator_bound_step_is_no_pass_and_is_named_as_the_upper_bound() {
        let bound = Verdict::GeneratorBound {
            why: "achieved 610/s of 800/s".into(),
        };
        let (_, c) = search(settings(), 700.0, bound.clone(), Duration::ZERO);
        let cap = c.capacity.unwrap();
        assert!(
            cap <= 700.0,
            "a generator-bound step never counts as a pass"
        );
        assert_eq!(c.upper.unwrap().1, bound);
        assert!(!bound.passed());
        assert_eq!(bound.label(), "generator-bound");
        // It is run again before it counts; a target's fail or a pass is not.
        assert!(bound.run_again(1) && bound.run_again(GENERATOR_BOUND_RUNS - 1));
        assert!(!bound.run_again(GENERATOR_BOUND_RUNS));
        assert!(!fail().run_again(1) && !Verdict::Pass.run_again(1));
    }

    #[test]
    fn settings_that_cannot_search_are_refused_with_the_flag_named() {
        let bad = |s: SearchSettings| s.validate().unwrap_err();
        assert!(
            bad(SearchSettings {
                max_rate: Some(10.0),
                ..settings()
            })
            .contains("--max-rate 10 is below --start-rate 50")
        );
        assert!(
            bad(SearchSettings {
                precision: 0.0,
                ..settings()
            })
            .contains("--precision")
        );
        assert!(
            bad(SearchSettings {
                step_warmup: Duration::from_secs(15),
                ..settings()
            })
            .contains("--step-warmup")
        );
        assert!(
            bad(SearchSettings {
                growth: 1.0,
                ..settings()
            })
            .contains("--growth")
        );
        assert!(
            bad(SearchSettings {
                max_steps: 0,
                ..settings()
            })
            .contains("--max-steps")
        );
        assert!(
            bad(SearchSettings {
                max_duration: Some(Duration::from_secs(10)),
                ..settings()
            })
            .contains("--max-duration")
        );
        assert_eq!(settings().validate(), Ok(()));
    }
}
