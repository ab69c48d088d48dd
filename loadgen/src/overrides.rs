//! The command line's load flags over a scenario's `load:` block, key by key.
//!
//! Why key by key and not the block as a whole: `loadgen run classic-3x100k.yaml -d 150s` is
//! "this scenario, for 150 s", not "50 default users for 150 s"; Locust's command line overrides
//! its configuration file setting by setting, and users bring that habit. So a flag replaces the
//! key it names and every other key of the block stays. A flag that cannot sit beside the block
//! (an open-loop rate over a closed loop's users, a duration over phases that each have their own)
//! is a usage error naming both, never a silent choice of one. Two flags keep the meaning users
//! know from the flat command line: `--duration` over phases cuts the run at that time (the
//! phases as written, the last one shortened: a smoke run of a long scenario), and `-c` over an
//! open loop caps the requests in flight, as `--max-in-flight` does.

use crate::plan::{FlatLoad, Load, LoadPlan};

/// The plan a run follows: the block's, with each key the flags set replaced.
pub fn apply(load: &Load, flags: &FlatLoad) -> Result<LoadPlan, String> {
    if *flags == FlatLoad::default() {
        return Ok(load.plan.clone());
    }
    if load.phases > 0 {
        return phased(load, flags);
    }
    let keys = &load.keys;
    let open_flag = flag_value("--rate", flags.rate.map(rate))
        .or_else(|| flag_value("--ramp-to", flags.ramp_to.map(rate)));
    if let (Some(flag), Some(users)) = (&open_flag, keys.users) {
        return Err(format!(
            "{flag} (open loop) on top of the scenario's `users: {users}` (closed loop): a run \
             is one or the other; drop {}, or write `rate:` in place of `users:` in the scenario",
            flag_name(flag)
        ));
    }
    // Over an open loop, -c is the in-flight cap (its meaning with --rate too).
    let open_file = keys.rate.is_some() || keys.ramp_to.is_some();
    let (users, max_in_flight) = if open_file && keys.users.is_none() {
        (None, flags.max_in_flight.or(flags.users))
    } else {
        (flags.users, flags.max_in_flight)
    };
    let merged = FlatLoad {
        users: users.or(keys.users),
        requests: flags.requests.or(keys.requests),
        duration: flags.duration.or(keys.duration),
        rate: flags.rate.or(keys.rate),
        ramp_to: flags.ramp_to.or(keys.ramp_to),
        max_in_flight: max_in_flight.or(keys.max_in_flight),
        think_time: flags.think_time.or(keys.think_time),
    };
    if let (Some(to), None) = (flags.ramp_to, merged.rate) {
        return Err(format!(
            "--ramp-to {} needs a rate to start from: --rate (or `rate:` in the scenario)",
            rate(to)
        ));
    }
    LoadPlan::flat(&merged)
}

/// A block with phases. A new shape of the same loop replaces the phases (an open loop's
/// `--rate`, a closed loop's `-c`: that shape for `--duration`, or as long as the phases ran), so
/// `run ramp.yaml --rate 20 -d 30s` is the scenario's requests at a flat 20/s for 30 s. A shape of
/// the other loop is a usage error naming both. Otherwise only the caps change: the request count,
/// the run's length (`--duration` cuts the phases) and the open loop's in-flight cap.
fn phased(load: &Load, flags: &FlatLoad) -> Result<LoadPlan, String> {
    let open = load.plan.is_open();
    let phases = load.plan.phases();
    let requests = flags.requests.or(load.keys.requests);
    let other_loop = if open {
        None
    } else {
        flag_value("--rate", flags.rate.map(rate))
            .or_else(|| flag_value("--ramp-to", flags.ramp_to.map(rate)))
    };
    if let Some(flag) = other_loop {
        return Err(format!(
            "{flag} (open loop) on top of the scenario's {} phases of users (closed loop): a run \
             is one or the other; drop {}, or write the phases with `rate:`",
            load.phases,
            flag_name(&flag)
        ));
    }
    let length = || {
        Some(
            flags
                .duration
                .unwrap_or_else(|| phases.iter().map(|p| p.duration).sum()),
        )
    };
    if open && (flags.rate.is_some() || flags.ramp_to.is_some()) {
        return LoadPlan::flat(&FlatLoad {
            rate: flags.rate.or(phases.first().map(|p| p.from)),
            ramp_to: flags.ramp_to,
            duration: length(),
            requests,
            max_in_flight: flags
                .max_in_flight
                .or(flags.users)
                .or(load.keys.max_in_flight),
            ..FlatLoad::default()
        });
    }
    if !open && flags.users.is_some() {
        let think_time = match &load.plan {
            LoadPlan::Closed { think_time, .. } => *think_time,
            LoadPlan::Open { .. } => None,
        };
        return LoadPlan::flat(&FlatLoad {
            users: flags.users,
            duration: length(),
            requests,
            think_time: flags.think_time.or(think_time),
            ..FlatLoad::default()
        });
    }
    let cut = |phases: &[crate::plan::Phase]| match flags.duration {
        Some(limit) => cut_phases(phases, limit),
        None => phases.to_vec(),
    };
    match &load.plan {
        LoadPlan::Open { phases, .. } => LoadPlan::open_phases(
            cut(phases),
            requests,
            flags
                .max_in_flight
                .or(flags.users)
                .or(load.keys.max_in_flight),
        ),
        LoadPlan::Closed {
            phases, think_time, ..
        } => LoadPlan::closed_phases(cut(phases), requests, *think_time),
    }
}

/// The phases as written up to `limit`: later ones dropped, the one running at `limit` ended
/// there, its ramp stopping where it had reached.
fn cut_phases(
    phases: &[crate::plan::Phase],
    limit: std::time::Duration,
) -> Vec<crate::plan::Phase> {
    let mut out = Vec::new();
    let mut elapsed = std::time::Duration::ZERO;
    for p in phases {
        if elapsed >= limit {
            break;
        }
        let left = limit - elapsed;
        if p.duration <= left {
            out.push(p.clone());
            elapsed += p.duration;
            continue;
        }
        let reached = left.as_secs_f64() / p.duration.as_secs_f64();
        out.push(crate::plan::Phase {
            duration: left,
            to: p.from + (p.to - p.from) * reached,
            ..p.clone()
        });
        break;
    }
    out
}

fn flag_value(name: &str, value: Option<String>) -> Option<String> {
    value.map(|v| format!("{name} {v}"))
}

/// `--rate` of `--rate 100/s`.
fn flag_name(flag_and_value: &str) -> &str {
    flag_and_value
        .split_once(' ')
        .map_or(flag_and_value, |(name, _)| name)
}

fn rate(r: f64) -> String {
    format!("{r}/s")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scenario::load::compile;
    use crate::scenario::spec::{Dur, LoadSpec, PhaseSpec};

    /// Flags with the keys `set` sets.
    fn flags(set: impl FnOnce(&mut FlatLoad)) -> FlatLoad {
        let mut f = FlatLoad::default();
        set(&mut f);
        f
    }

    fn classic() -> Load {
        compile(&LoadSpec {
            users: Some(3),
            requests: Some(300_000),
            think_time: Some(Dur(Duration::from_millis(100))),
            ..Default::default()
        })
        .unwrap()
    }

    fn open() -> Load {
        compile(&LoadSpec {
            rate: Some(100.0),
            duration: Some(Dur(Duration::from_secs(60))),
            max_in_flight: Some(7),
            ..Default::default()
        })
        .unwrap()
    }

    fn phased(rate: Option<f64>, users: Option<u64>) -> Load {
        let phase = |secs| PhaseSpec {
            duration: Dur(Duration::from_secs(secs)),
            users,
            rate,
            name: None,
            ramp_to: None,
        };
        compile(&LoadSpec {
            phases: vec![phase(10), phase(20)],
            requests: Some(1000),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn a_duration_flag_keeps_the_scenarios_users_requests_and_think_time() {
        let plan = apply(
            &classic(),
            &flags(|f| f.duration = Some(Duration::from_secs(150))),
        )
        .unwrap();
        let LoadPlan::Closed {
            max_users,
            requests,
            duration,
            think_time,
            ..
        } = plan
        else {
            panic!("{plan:?}")
        };
        assert_eq!(max_users, 3, "the file's 3 users, not the default 50");
        assert_eq!(requests, Some(300_000));
        assert_eq!(duration, Some(Duration::from_secs(150)));
        assert_eq!(think_time, Some(Duration::from_millis(100)));
        // Users and requests from the command line: the classic experiment's one-client form.
        let one = apply(
            &classic(),
            &flags(|f| {
                f.users = Some(1);
                f.requests = Some(100_000);
            }),
        )
        .unwrap();
        assert_eq!((one.concurrency(), one.requests()), (1, Some(100_000)));
        // No flags: the scenario's plan itself.
        assert_eq!(
            apply(&classic(), &FlatLoad::default()).unwrap(),
            classic().plan
        );
    }

    #[test]
    fn an_open_loop_flag_over_a_closed_loop_scenario_is_a_usage_error_naming_both() {
        let e = apply(&classic(), &flags(|f| f.rate = Some(100.0))).unwrap_err();
        assert!(
            e.starts_with(
                "--rate 100/s (open loop) on top of the scenario's `users: 3` (closed loop)"
            ),
            "{e}"
        );
        let e = apply(&classic(), &flags(|f| f.ramp_to = Some(500.0))).unwrap_err();
        assert!(e.starts_with("--ramp-to 500/s (open loop)"), "{e}");
    }

    #[test]
    fn users_over_an_open_loop_scenario_cap_the_requests_in_flight() {
        // As with --rate on the command line: -c is the open loop's in-flight cap.
        let plan = apply(&open(), &flags(|f| f.users = Some(20))).unwrap();
        assert!(plan.is_open(), "{plan:?}");
        assert_eq!(plan.concurrency(), 20);
        assert_eq!(plan.duration(), Some(Duration::from_secs(60)));
        let phased = apply(&phased(Some(50.0), None), &flags(|f| f.users = Some(2))).unwrap();
        assert_eq!((phased.concurrency(), phased.phases().len()), (2, 2));
    }

    #[test]
    fn open_loop_flags_replace_their_keys_only() {
        // A new rate keeps the file's duration and in-flight cap.
        let plan = apply(&open(), &flags(|f| f.rate = Some(250.0))).unwrap();
        assert_eq!(plan.duration(), Some(Duration::from_secs(60)));
        assert_eq!(plan.concurrency(), 7);
        assert_eq!(plan.requests(), Some(15_000));
        // A ramp from the file's rate.
        let ramp = apply(
            &open(),
            &flags(|f| {
                f.ramp_to = Some(300.0);
                f.max_in_flight = Some(50);
            }),
        )
        .unwrap();
        let LoadPlan::Open {
            phases,
            max_in_flight,
            ..
        } = ramp
        else {
            panic!("{ramp:?}")
        };
        assert_eq!(
            (phases[0].from, phases[0].to, max_in_flight),
            (100.0, 300.0, 50)
        );
        // A ramp with no rate anywhere says where a rate goes.
        let e = apply(&Load::default(), &flags(|f| f.ramp_to = Some(300.0))).unwrap_err();
        assert!(e.contains("--ramp-to 300/s needs a rate"), "{e}");
        // A bad value from the command line is still refused.
        let e = apply(&open(), &flags(|f| f.max_in_flight = Some(0))).unwrap_err();
        assert!(e.contains("max_in_flight"), "{e}");
    }

    #[test]
    fn phases_keep_their_rates_and_durations_and_take_only_the_caps() {
        let load = phased(Some(50.0), None);
        // A flat rate replaces the open loop's phases, for their length or --duration's.
        let flat = apply(&load, &flags(|f| f.rate = Some(70.0))).unwrap();
        assert_eq!((flat.phases().len(), flat.phases()[0].from), (1, 70.0));
        assert_eq!(flat.duration(), Some(Duration::from_secs(30)));
        let flat = apply(
            &load,
            &flags(|f| {
                f.rate = Some(20.0);
                f.duration = Some(Duration::from_secs(5));
            }),
        )
        .unwrap();
        assert_eq!(flat.duration(), Some(Duration::from_secs(5)));
        let plan = apply(
            &load,
            &flags(|f| {
                f.requests = Some(10);
                f.max_in_flight = Some(3);
            }),
        )
        .unwrap();
        assert_eq!((plan.requests(), plan.concurrency()), (Some(10), 3));
        assert_eq!(plan.phases().len(), 2);
        let users = phased(None, Some(4));
        let e = apply(&users, &flags(|f| f.rate = Some(8.0))).unwrap_err();
        assert!(
            e.starts_with("--rate 8/s (open loop) on top of the scenario's 2 phases of users"),
            "{e}"
        );
        let flat = apply(&users, &flags(|f| f.users = Some(8))).unwrap();
        assert_eq!(
            (flat.concurrency(), flat.duration()),
            (8, Some(Duration::from_secs(30)))
        );
        let plan = apply(&users, &flags(|f| f.requests = Some(10))).unwrap();
        assert_eq!((plan.requests(), plan.concurrency()), (Some(10), 4));
    }

    #[test]
    fn a_duration_over_phases_cuts_the_run_there() {
        // Phases of 10 s and 20 s (phased() in this module), ramping 50 -> 100.
        let load = phased(Some(50.0), None);
        let cut = apply(
            &load,
            &flags(|f| f.duration = Some(Duration::from_secs(15))),
        )
        .unwrap();
        let phases = cut.phases();
        assert_eq!(phases.len(), 2, "{phases:?}");
        assert_eq!(phases[0].duration, Duration::from_secs(10));
        assert_eq!(phases[1].duration, Duration::from_secs(5));
        assert_eq!(cut.duration(), Some(Duration::from_secs(15)));
        // Longer than the phases: they run as written.
        let whole = apply(
            &load,
            &flags(|f| f.duration = Some(Duration::from_secs(99))),
        )
        .unwrap();
        assert_eq!(whole.duration(), Some(Duration::from_secs(30)));
    }
}
