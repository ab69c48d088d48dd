//! The `load:` block compiled into a typed [`Load`]: the plan, and the keys command-line load
//! flags keep when they replace it. The block's shape (phases or flat keys, one loop or the
//! other) is checked here; the numbers themselves by the [`LoadPlan`] constructors.

use crate::lifetime::LifetimeSettings;
use crate::plan::{BOTH_LOOPS, FlatLoad, Load, LoadPlan, Phase, phase_name};

use super::spec::{LoadSpec, PhaseSpec};

/// Compiles a `load:` block (an absent block is the default one).
pub fn compile(spec: &LoadSpec) -> Result<Load, String> {
    let keys = FlatLoad {
        users: spec.users,
        requests: spec.requests,
        duration: spec.duration.map(|d| d.0),
        rate: spec.rate,
        ramp_to: spec.ramp_to,
        max_in_flight: spec.max_in_flight,
        think_time: spec.think_time.map(|d| d.0),
    };
    let plan = if spec.phases.is_empty() {
        LoadPlan::flat(&keys)?
    } else {
        phased(spec)?
    };
    Ok(Load {
        plan,
        keys,
        phases: spec.phases.len(),
    })
}

/// The connection-lifetime keys of the block.
pub fn lifetime(spec: &LoadSpec) -> LifetimeSettings {
    LifetimeSettings {
        max_age: spec.connection_max_age,
        max_requests: spec.connection_max_requests,
        keepalive: spec.keepalive,
    }
}

/// A block with `phases`: each phase gives its own rate (open loop) or users (closed loop) and
/// duration, so the flat keys that say the same are refused beside them.
fn phased(spec: &LoadSpec) -> Result<LoadPlan, String> {
    let open = spec.phases.iter().any(|p| p.rate.is_some());
    let closed = spec.phases.iter().any(|p| p.users.is_some());
    if closed && (open || spec.rate.is_some()) {
        return Err("phases mix `rate` (open loop) and `users` (closed loop): use one kind".into());
    }
    if spec.ramp_to.is_some() && spec.rate.is_none() {
        return Err("ramp_to needs a starting rate (`rate`)".into());
    }
    if open {
        if spec.users.is_some() {
            return Err(BOTH_LOOPS.into());
        }
        if spec.rate.is_some() || spec.duration.is_some() {
            return Err("with `phases`, set rate and duration inside each phase".into());
        }
        let phases = phases(&spec.phases, |p| p.rate, "rate")?;
        return LoadPlan::open_phases(phases, spec.requests, spec.max_in_flight);
    }
    if !closed {
        return Err(
            "phase 1 has neither `rate` (open loop) nor `users` (closed loop): give each phase one"
                .into(),
        );
    }
    if spec.users.is_some() || spec.duration.is_some() {
        return Err("with `phases`, set users and duration inside each phase".into());
    }
    let phases = phases(&spec.phases, |p| p.users.map(|u| u as f64), "users")?;
    LoadPlan::closed_phases(phases, spec.requests, spec.think_time.map(|d| d.0))
}

/// The phases, each starting at `start(phase)` (named `key` in the error when it is missing)
/// and ending at its `ramp_to` (a hold without one).
fn phases(
    specs: &[PhaseSpec],
    start: impl Fn(&PhaseSpec) -> Option<f64>,
    key: &str,
) -> Result<Vec<Phase>, String> {
    specs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let from = start(p).ok_or_else(|| format!("phase {} has no `{key}`", i + 1))?;
            Ok(Phase {
                name: phase_name(p.name.as_deref(), i),
                duration: p.duration.0,
                from,
                to: p.ramp_to.unwrap_or(from),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::spec::Dur;
    use super::*;

    #[test]
    fn plans_from_specs() {
        let spec = LoadSpec {
            rate: Some(100.0),
            duration: Some(Dur(Duration::from_secs(3))),
            ..Default::default()
        };
        let p = compile(&spec).map(|l| l.plan).unwrap();
        assert!(p.is_open());
        assert_eq!(p.requests(), Some(300));
        let q = compile(&LoadSpec::default()).map(|l| l.plan).unwrap();
        assert_eq!(q.requests(), Some(200));
        assert_eq!(q.concurrency(), 50);
        let bad = LoadSpec {
            rate: Some(1.0),
            users: Some(2),
            ..Default::default()
        };
        assert!(compile(&bad).is_err());
    }

    fn plan_error(spec: LoadSpec) -> String {
        compile(&spec).map(|l| l.plan).expect_err("an invalid plan")
    }

    #[test]
    fn absurd_rates_durations_and_ramps_are_errors_not_panics() {
        let dur = |s: u64| Some(Dur(Duration::from_secs(s)));
        // 5 requests at 1e-300/s: no Duration holds that.
        let e = plan_error(LoadSpec {
            rate: Some(1e-300),
            requests: Some(5),
            ..Default::default()
        });
        assert!(e.contains("10-year limit"), "{e}");
        // Longer than ten years, in either loop, in phases or as think time.
        let e = plan_error(LoadSpec {
            rate: Some(10.0),
            duration: dur(u64::MAX / 2),
            ..Default::default()
        });
        assert!(e.contains("duration"), "{e}");
        let e = plan_error(LoadSpec {
            users: Some(2),
            duration: dur(11 * 365 * 86400),
            ..Default::default()
        });
        assert!(e.contains("duration"), "{e}");
        let e = plan_error(LoadSpec {
            users: Some(2),
            think_time: dur(u64::MAX),
            ..Default::default()
        });
        assert!(e.contains("think_time"), "{e}");
        let phase = |secs: u64, users: Option<u64>, rate: Option<f64>| PhaseSpec {
            duration: Dur(Duration::from_secs(secs)),
            users,
            rate,
            name: None,
            ramp_to: None,
        };
        // Phases each within the limit whose sum is not (and would overflow a Duration sum).
        let e = plan_error(LoadSpec {
            phases: vec![phase(9 * 365 * 86400, Some(1), None); 3],
            ..Default::default()
        });
        assert!(e.contains("10-year limit"), "{e}");
        let e = plan_error(LoadSpec {
            phases: vec![
                phase(u64::MAX, None, Some(5.0)),
                phase(u64::MAX, None, Some(5.0)),
            ],
            ..Default::default()
        });
        assert!(e.contains("10-year limit"), "{e}");
        // Ramp targets that are not rates.
        let e = plan_error(LoadSpec {
            rate: Some(10.0),
            ramp_to: Some(f64::INFINITY),
            duration: dur(10),
            ..Default::default()
        });
        assert!(e.contains("ramp_to"), "{e}");
        // Closed-loop user phases that add up to no time at all, like open loop.
        let e = plan_error(LoadSpec {
            phases: vec![phase(0, Some(10), None), phase(0, Some(20), None)],
            ..Default::default()
        });
        assert!(e.contains("no duration"), "{e}");
        // A tiny but sane rate still plans.
        let p = compile(&LoadSpec {
            rate: Some(0.001),
            requests: Some(2),
            ..Default::default()
        })
        .unwrap()
        .plan;
        assert_eq!(p.duration(), Some(Duration::from_secs(3000)));
    }

    #[test]
    fn phases_without_a_rate_or_users_are_an_error_not_ignored() {
        let phase = PhaseSpec {
            duration: Dur(Duration::from_secs(10)),
            users: None,
            rate: None,
            name: None,
            ramp_to: None,
        };
        let e = compile(&LoadSpec {
            phases: vec![phase],
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("neither `rate`"), "{e}");
    }
}
