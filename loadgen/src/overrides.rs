//! The command line's load flags over a scenario's `load:` block, key by key.
//!
//! Why key by key and not the block as a whole: `loadgen run classic-3x100k.yaml -d 150s` is
//! "this scenario, for 150 s", not "50 default users for 150 s"; Locust's command line overrides
//! its configuration file setting by setting, and users bring that habit. So a flag replaces the
//! key it names and every other key of the block stays. A flag that cannot sit beside the block
//! (an open-loop rate over a closed loop's users, a duration over phases that each have their own)
//! is a usage error naming both, never a silent choice of one.

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
    if let (Some(users), Some(key)) = (
        flags.users,
        keys.rate
            .map(|r| format!("rate: {r}"))
            .or(keys.ramp_to.map(|r| format!("ramp_to: {r}"))),
    ) {
        return Err(format!(
            "-c/--users {users} (closed loop) on top of the scenario's `{key}` (open loop): a \
             run is one or the other; drop -c, or give --rate with it (then -c caps the requests \
             in flight, as --max-in-flight does)"
        ));
    }
    let merged = FlatLoad {
        users: flags.users.or(keys.users),
        requests: flags.requests.or(keys.requests),
        duration: flags.duration.or(keys.duration),
        rate: flags.rate.or(keys.rate),
        ramp_to: flags.ramp_to.or(keys.ramp_to),
        max_in_flight: flags.max_in_flight.or(keys.max_in_flight),
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

/// A block with phases: their rates or users and durations are not keys of the block, so only
/// the request cap and the open loop's in-flight cap can be replaced.
fn phased(load: &Load, flags: &FlatLoad) -> Result<LoadPlan, String> {
    let named = flag_value("--rate", flags.rate.map(rate))
        .or_else(|| flag_value("--ramp-to", flags.ramp_to.map(rate)))
        .or_else(|| flag_value("-c/--users", flags.users.map(|u| u.to_string())))
        .or_else(|| flag_value("--duration", flags.duration.map(duration)));
    if let Some(flag) = named {
        return Err(format!(
            "{flag} on top of the scenario's {} phases, each with its own {} and duration: drop \
             {}, or change the phases in the scenario",
            load.phases,
            if load.plan.is_open() { "rate" } else { "users" },
            flag_name(&flag)
        ));
    }
    let requests = flags.requests.or(load.keys.requests);
    match &load.plan {
        LoadPlan::Open { phases, .. } => LoadPlan::open_phases(
            phases.clone(),
            requests,
            flags.max_in_flight.or(load.keys.max_in_flight),
        ),
        LoadPlan::Closed {
            phases, think_time, ..
        } => LoadPlan::closed_phases(phases.clone(), requests, *think_time),
    }
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

fn duration(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
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
        // Users over an open-loop scenario, likewise.
        let e = apply(&open(), &flags(|f| f.users = Some(20))).unwrap_err();
        assert!(
            e.starts_with(
                "-c/--users 20 (closed loop) on top of the scenario's `rate: 100` (open loop)"
            ),
            "{e}"
        );
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
        let e = apply(
            &load,
            &flags(|f| f.duration = Some(Duration::from_secs(150))),
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "--duration 2m 30s on top of the scenario's 2 phases, each with its own rate and \
                 duration: drop --duration"
            ),
            "{e}"
        );
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
        let e = apply(&users, &flags(|f| f.users = Some(8))).unwrap_err();
        assert!(e.contains("each with its own users and duration"), "{e}");
        let plan = apply(&users, &flags(|f| f.requests = Some(10))).unwrap();
        assert_eq!((plan.requests(), plan.concurrency()), (Some(10), 4));
    }
}
