//! The load plan: when each open-loop arrival is due, and how many closed-loop users are active.
//!
//! Open loop: the arrival rate is piecewise linear in time (holds and ramps). The cumulative number
//! of arrivals N(t) is its integral; arrival k is due at the t where N(t) = k. Computing arrival
//! times from k (instead of sleeping a fixed interval after the previous send) means the schedule
//! never drifts, whatever the generator or the target does: that is what makes latency measured
//! from the intended time honest (wrk2's approach).
//!
//! Closed loop: the user count is piecewise linear in time too; user k runs while count(t) >= k+1.

use std::time::Duration;

use crate::limits::MAX_DURATION;

/// One phase of a piecewise-linear schedule: `from` at its start, `to` at its end.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// The scenario's `name:` of the phase, or `phase N` (1-based): the row of the phase in the
    /// report, and what `compare` matches phases of two runs by.
    pub name: String,
    pub duration: Duration,
    pub from: f64,
    pub to: f64,
}

/// Default cap on open-loop iterations in flight.
pub const DEFAULT_MAX_IN_FLIGHT: u64 = 1000;

/// The load model of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadPlan {
    Closed {
        /// User count over time; a single long phase for a fixed count.
        phases: Vec<Phase>,
        /// Highest user count (how many user tasks exist).
        max_users: u64,
        /// Stop after this many iterations.
        requests: Option<u64>,
        /// Stop after this time.
        duration: Option<Duration>,
        think_time: Option<Duration>,
    },
    Open {
        phases: Vec<Phase>,
        /// Stop after this many arrivals.
        requests: Option<u64>,
        max_in_flight: u64,
    },
}

/// A load model without phases: users or a rate, for a count of requests or a time. What the
/// command line's load flags give, and what a scenario's `load:` block without `phases` compiles to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlatLoad {
    pub users: Option<u64>,
    pub requests: Option<u64>,
    pub duration: Option<Duration>,
    pub rate: Option<f64>,
    pub ramp_to: Option<f64>,
    pub max_in_flight: Option<u64>,
    pub think_time: Option<Duration>,
}

/// A compiled `load:` block: its plan, and its own keys as written, which the command line's
/// load flags replace one by one ([`crate::overrides`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    pub plan: LoadPlan,
    /// The block's keys outside its phases, as written.
    pub keys: FlatLoad,
    /// How many phases the block has (0: a flat block).
    pub phases: usize,
}

impl Default for Load {
    /// No `load:` block: 50 users, 200 requests (the `hey`/`oha` default).
    fn default() -> Self {
        Self {
            plan: LoadPlan::flat(&FlatLoad::default()).expect("the default plan is valid"),
            keys: FlatLoad::default(),
            phases: 0,
        }
    }
}

const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// Most closed-loop users, and the highest open-loop in-flight cap.
pub const MAX_USERS: u64 = 100_000;

/// `what` if it is within [`MAX_DURATION`], else an error naming it.
pub fn check_duration(d: Duration, what: &str) -> Result<Duration, String> {
    if d > MAX_DURATION {
        return Err(format!(
            "{what} {} is longer than the 10-year limit",
            humantime::format_duration(d)
        ));
    }
    Ok(d)
}

/// Sum of phase durations, within [`MAX_DURATION`].
fn total_duration(phases: &[Phase]) -> Result<Duration, String> {
    phases
        .iter()
        .try_fold(Duration::ZERO, |acc, p| acc.checked_add(p.duration))
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| "the phases together last longer than the 10-year limit".to_string())
}

/// A rate if it is one a generator can be asked for, else an error naming `what`.
pub fn check_rate(r: f64, what: &str) -> Result<f64, String> {
    if !r.is_finite() || !(0.0..=10_000_000.0).contains(&r) {
        return Err(format!(
            "{what} {r} must be between 0 and 10,000,000 per second"
        ));
    }
    Ok(r)
}

fn check_requests(requests: Option<u64>) -> Result<Option<u64>, String> {
    if requests == Some(0) {
        return Err("requests must be at least 1".into());
    }
    Ok(requests)
}

fn check_max_in_flight(m: Option<u64>) -> Result<u64, String> {
    let m = m.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
    if m == 0 || m > MAX_USERS {
        return Err(format!("max_in_flight must be between 1 and {MAX_USERS}"));
    }
    Ok(m)
}

fn check_phase_durations(phases: &[Phase]) -> Result<(), String> {
    for (i, p) in phases.iter().enumerate() {
        check_duration(p.duration, &format!("phase {} duration", i + 1))?;
    }
    Ok(())
}

impl LoadPlan {
    /// The plan of a [`FlatLoad`]: open loop when a rate is set, else closed loop (50 users and
    /// 200 requests when nothing is).
    pub fn flat(f: &FlatLoad) -> Result<Self, String> {
        let requests = check_requests(f.requests)?;
        if f.ramp_to.is_some() && f.rate.is_none() {
            return Err("ramp_to needs a starting rate (`rate`)".into());
        }
        if let Some(d) = f.duration {
            check_duration(d, "duration")?;
        }
        let think_time = f
            .think_time
            .map(|d| check_duration(d, "think_time"))
            .transpose()?;
        let max_in_flight = check_max_in_flight(f.max_in_flight)?;
        if let Some(rate) = f.rate {
            if f.users.is_some() {
                return Err(BOTH_LOOPS.into());
            }
            let rate = check_rate(rate, "rate")?;
            if rate <= 0.0 {
                return Err("rate must be above 0".into());
            }
            let to = check_rate(f.ramp_to.unwrap_or(rate), "ramp_to")?;
            let duration = match (f.duration, requests) {
                (Some(d), _) => d,
                (None, Some(n)) if f.ramp_to.is_none() => {
                    // Long enough for arrival n-1 (due at (n-1)/rate) plus one interval.
                    Duration::try_from_secs_f64(n as f64 / rate + 1.0 / rate)
                        .ok()
                        .filter(|d| *d <= MAX_DURATION)
                        .ok_or_else(|| {
                            format!(
                                "{n} requests at rate {rate}/s would take longer than the \
                                 10-year limit: raise the rate or set a duration"
                            )
                        })?
                }
                (None, Some(_)) => return Err("a ramp (ramp_to) needs a duration".into()),
                (None, None) => Duration::from_secs(10),
            };
            let phases = vec![Phase {
                name: phase_name(None, 0),
                duration,
                from: rate,
                to,
            }];
            return Self::open(phases, requests, max_in_flight);
        }
        let users = f.users.unwrap_or(50);
        if users == 0 || users > MAX_USERS {
            return Err(format!("users must be between 1 and {MAX_USERS}"));
        }
        let requests = match (requests, f.duration) {
            (None, None) => Some(200),
            (r, _) => r,
        };
        Ok(LoadPlan::Closed {
            phases: vec![Phase {
                name: phase_name(None, 0),
                duration: f.duration.unwrap_or(FOREVER),
                from: users as f64,
                to: users as f64,
            }],
            max_users: users,
            requests,
            duration: f.duration,
            think_time,
        })
    }

    /// An open-loop plan of arrival-rate phases (`from`/`to` in arrivals per second).
    pub fn open_phases(
        phases: Vec<Phase>,
        requests: Option<u64>,
        max_in_flight: Option<u64>,
    ) -> Result<Self, String> {
        let requests = check_requests(requests)?;
        let max_in_flight = check_max_in_flight(max_in_flight)?;
        check_phase_durations(&phases)?;
        for p in &phases {
            check_rate(p.from, "rate")?;
            check_rate(p.to, "ramp_to")?;
        }
        Self::open(phases, requests, max_in_flight)
    }

    fn open(phases: Vec<Phase>, requests: Option<u64>, max_in_flight: u64) -> Result<Self, String> {
        if total_duration(&phases)?.is_zero() {
            return Err("the open-loop plan has no duration".into());
        }
        if phases.iter().all(|p| p.from == 0.0 && p.to == 0.0) {
            return Err("every phase has rate 0: nothing would be sent".into());
        }
        Ok(LoadPlan::Open {
            phases,
            requests,
            max_in_flight,
        })
    }

    /// A closed-loop plan of user-count phases (`from`/`to` in users); it ends with the phases.
    pub fn closed_phases(
        phases: Vec<Phase>,
        requests: Option<u64>,
        think_time: Option<Duration>,
    ) -> Result<Self, String> {
        let requests = check_requests(requests)?;
        let think_time = think_time
            .map(|d| check_duration(d, "think_time"))
            .transpose()?;
        check_phase_durations(&phases)?;
        for (i, p) in phases.iter().enumerate() {
            let in_range = |u: f64| u.is_finite() && (0.0..=MAX_USERS as f64).contains(&u);
            if !in_range(p.from) || !in_range(p.to) {
                return Err(format!(
                    "phase {}: users must be between 0 and {MAX_USERS}",
                    i + 1
                ));
            }
        }
        let max_users = phases
            .iter()
            .map(|p| p.from.max(p.to).floor() as u64)
            .max()
            .unwrap_or(0);
        if max_users == 0 {
            return Err("every phase has 0 users: nothing would be sent".into());
        }
        let total = total_duration(&phases)?;
        if total.is_zero() {
            return Err(
                "the user phases have no duration: give at least one phase a duration above 0"
                    .into(),
            );
        }
        Ok(LoadPlan::Closed {
            phases,
            max_users,
            requests,
            duration: Some(total),
            think_time,
        })
    }

    /// True for open loop.
    pub fn is_open(&self) -> bool {
        matches!(self, LoadPlan::Open { .. })
    }

    /// Planned duration, when time-bound.
    pub fn duration(&self) -> Option<Duration> {
        match self {
            LoadPlan::Closed { duration, .. } => *duration,
            LoadPlan::Open { phases, .. } => Some(phases.iter().map(|p| p.duration).sum()),
        }
    }

    /// Planned iterations, when count-bound (open loop: the smaller of the count and the arrivals
    /// the phases hold).
    pub fn requests(&self) -> Option<u64> {
        match self {
            LoadPlan::Closed { requests, .. } => *requests,
            LoadPlan::Open {
                requests, phases, ..
            } => {
                let by_time = arrivals_in(phases);
                Some(requests.map_or(by_time, |r| r.min(by_time)))
            }
        }
    }

    /// Users (closed) or in-flight cap (open).
    pub fn concurrency(&self) -> u64 {
        match self {
            LoadPlan::Closed { max_users, .. } => *max_users,
            LoadPlan::Open { max_in_flight, .. } => *max_in_flight,
        }
    }

    /// One line for humans.
    pub fn describe(&self) -> String {
        let d = |d: Duration| {
            humantime::format_duration(Duration::from_millis(d.as_millis() as u64)).to_string()
        };
        match self {
            LoadPlan::Open {
                phases,
                requests,
                max_in_flight,
            } => {
                let ph: Vec<String> = phases
                    .iter()
                    .map(|p| {
                        if p.from == p.to {
                            format!("{}/s for {}", p.from, d(p.duration))
                        } else {
                            format!("{}/s to {}/s over {}", p.from, p.to, d(p.duration))
                        }
                    })
                    .collect();
                let cap = requests
                    .map(|r| format!(", at most {r} requests"))
                    .unwrap_or_default();
                format!(
                    "open loop: {}{cap}; max {max_in_flight} in flight",
                    ph.join(", then ")
                )
            }
            LoadPlan::Closed {
                phases,
                max_users,
                requests,
                duration,
                ..
            } => {
                let mut s = if phases.len() == 1 {
                    format!("closed loop: {max_users} users")
                } else {
                    let ph: Vec<String> = phases
                        .iter()
                        .map(|p| {
                            if p.from == p.to {
                                format!("{} users for {}", p.from, d(p.duration))
                            } else {
                                format!("{} to {} users over {}", p.from, p.to, d(p.duration))
                            }
                        })
                        .collect();
                    format!("closed loop: {}", ph.join(", then "))
                };
                if let Some(r) = requests {
                    s.push_str(&format!(", {r} requests"));
                }
                if let (Some(dur), 1) = (duration, phases.len()) {
                    s.push_str(&format!(", for {}", d(*dur)));
                }
                s
            }
        }
    }

    /// The phases (open: arrival rate; closed: users).
    pub fn phases(&self) -> &[Phase] {
        match self {
            LoadPlan::Open { phases, .. } | LoadPlan::Closed { phases, .. } => phases,
        }
    }

    /// Index of the phase running at `t` (see [`phase_index`]).
    pub fn phase_at(&self, t: Duration) -> usize {
        phase_index(self.phases(), t)
    }

    /// The planned rate (open) or users (closed) at `t`.
    pub fn target_at(&self, t: Duration) -> f64 {
        if self.is_open() {
            self.rate_at(t)
        } else {
            self.users_at(t) as f64
        }
    }

    /// Planned arrival rate at `t` (0 in closed loop or after the plan).
    pub fn rate_at(&self, t: Duration) -> f64 {
        match self {
            LoadPlan::Open { phases, .. } => value_at(phases, t).unwrap_or(0.0),
            LoadPlan::Closed { .. } => 0.0,
        }
    }

    /// Planned users at `t` (closed loop).
    pub fn users_at(&self, t: Duration) -> u64 {
        match self {
            LoadPlan::Closed { phases, .. } => {
                value_at(phases, t).map_or(0, |v| (v + 1e-9).floor() as u64)
            }
            LoadPlan::Open { .. } => 0,
        }
    }
}

/// Both loops asked for at once.
pub const BOTH_LOOPS: &str = "set either `rate` (open loop) or `users` (closed loop), not both; \
                              cap open-loop concurrency with max_in_flight";

/// The name of phase `i` (0-based): the scenario's, or `phase N` (1-based).
pub fn phase_name(given: Option<&str>, i: usize) -> String {
    match given.map(str::trim) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => format!("phase {}", i + 1),
    }
}

/// Index of the phase running at `t`: the last one after the plan's end (requests still in flight
/// when the schedule ends belong to the phase that sent them).
pub fn phase_index(phases: &[Phase], t: Duration) -> usize {
    let mut end = Duration::ZERO;
    for (i, p) in phases.iter().enumerate() {
        end = end.saturating_add(p.duration);
        if t < end {
            return i;
        }
    }
    phases.len().saturating_sub(1)
}

/// Value of a piecewise-linear schedule at `t` (None after the end).
fn value_at(phases: &[Phase], t: Duration) -> Option<f64> {
    let mut start = Duration::ZERO;
    for p in phases {
        let end = start + p.duration;
        if t < end {
            let frac = (t - start).as_secs_f64() / p.duration.as_secs_f64();
            return Some(p.from + (p.to - p.from) * frac);
        }
        start = end;
    }
    None
}

/// Arrivals a set of open phases holds: arrivals at N(t) = 0, 1, 2, ... with t before the end.
fn arrivals_in(phases: &[Phase]) -> u64 {
    let total: f64 = phases
        .iter()
        .map(|p| (p.from + p.to) / 2.0 * p.duration.as_secs_f64())
        .sum();
    // Arrival k is due when N(t) = k; those with t strictly before the end: k < total.
    let n = total.ceil();
    if n <= 0.0 { 0 } else { n as u64 }
}

/// Open-loop arrival times, precomputed per phase so each lookup is O(phases).
#[derive(Debug, Clone)]
pub struct ArrivalSchedule {
    /// (phase, start time, cumulative arrivals at phase start).
    phases: Vec<(Phase, f64, f64)>,
    end: f64,
    limit: Option<u64>,
}

impl ArrivalSchedule {
    pub fn new(phases: &[Phase], limit: Option<u64>) -> Self {
        let mut out = Vec::with_capacity(phases.len());
        let (mut t, mut n) = (0.0, 0.0);
        for p in phases {
            out.push((p.clone(), t, n));
            let d = p.duration.as_secs_f64();
            t += d;
            n += (p.from + p.to) / 2.0 * d;
        }
        Self {
            phases: out,
            end: t,
            limit,
        }
    }

    /// When arrival `k` (0-based) is due, from the run start; None past the plan.
    pub fn at(&self, k: u64) -> Option<Duration> {
        if self.limit.is_some_and(|l| k >= l) {
            return None;
        }
        let kf = k as f64;
        for (p, t0, n0) in &self.phases {
            let d = p.duration.as_secs_f64();
            let n1 = n0 + (p.from + p.to) / 2.0 * d;
            if kf < n1 {
                let m = kf - n0; // arrivals into this phase
                let (a, b) = (p.from, p.to);
                let slope = (b - a) / d;
                let dt = if slope.abs() < 1e-12 {
                    if a <= 0.0 {
                        continue;
                    }
                    m / a
                } else {
                    // a*dt + slope/2*dt^2 = m
                    let disc = (a * a + 2.0 * slope * m).max(0.0);
                    (disc.sqrt() - a) / slope
                };
                let t = t0 + dt.clamp(0.0, d);
                if t >= self.end {
                    return None;
                }
                return Some(Duration::from_secs_f64(t));
            }
        }
        None
    }

    /// End of the plan from the run start.
    pub fn end(&self) -> Duration {
        Duration::from_secs_f64(self.end)
    }
}

/// When user `k` (0-based) is active: `Now`, from a later time, or never again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UserGate {
    Active,
    From(Duration),
    Done,
}

/// Gate for user `k` at time `t` under a piecewise-linear user count.
pub fn user_gate(phases: &[Phase], k: u64, t: Duration) -> UserGate {
    let need = (k + 1) as f64;
    let mut start = Duration::ZERO;
    let now = t.as_secs_f64();
    for p in phases {
        let end = start + p.duration;
        let (s, e) = (start.as_secs_f64(), end.as_secs_f64());
        if e > now {
            let from_t = now.max(s);
            let d = p.duration.as_secs_f64();
            let v = |x: f64| p.from + (p.to - p.from) * ((x - s) / d);
            if v(from_t) >= need - 1e-9 {
                return if from_t <= now {
                    UserGate::Active
                } else {
                    UserGate::From(Duration::from_secs_f64(from_t))
                };
            }
            if p.to > p.from {
                // Crosses `need` at x where v(x) = need.
                let x = s + (need - p.from) / (p.to - p.from) * d;
                if x < e {
                    return UserGate::From(Duration::from_secs_f64(x.max(now)));
                }
            }
        }
        start = end;
    }
    UserGate::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ph(secs: u64, from: f64, to: f64) -> Phase {
        Phase {
            name: String::new(),
            duration: Duration::from_secs(secs),
            from,
            to,
        }
    }

    #[test]
    fn constant_rate_arrivals() {
        let s = ArrivalSchedule::new(&[ph(5, 100.0, 100.0)], None);
        assert_eq!(s.at(0), Some(Duration::ZERO));
        assert_eq!(s.at(1).unwrap().as_secs_f64(), 0.01);
        assert!(s.at(499).is_some());
        assert!(s.at(500).is_none());
        assert_eq!(arrivals_in(&[ph(5, 100.0, 100.0)]), 500);
        let lim = ArrivalSchedule::new(&[ph(5, 100.0, 100.0)], Some(10));
        assert!(lim.at(10).is_none());
    }

    #[test]
    fn ramp_arrivals_follow_the_integral() {
        // 0 -> 100/s over 10 s: 500 arrivals, the first half of them after 7.07 s.
        let s = ArrivalSchedule::new(&[ph(10, 0.0, 100.0)], None);
        let count = (0..10_000).take_while(|k| s.at(*k).is_some()).count();
        assert_eq!(count, 500);
        let t250 = s.at(250).unwrap().as_secs_f64();
        assert!((t250 - 50f64.sqrt()).abs() < 1e-6, "{t250}");
        // A zero-rate pause between two holds.
        let s = ArrivalSchedule::new(
            &[ph(1, 10.0, 10.0), ph(2, 0.0, 0.0), ph(1, 10.0, 10.0)],
            None,
        );
        assert_eq!(s.at(10).unwrap(), Duration::from_secs(3));
        assert!(s.at(20).is_none());
    }

    #[test]
    fn user_gates() {
        let phases = [ph(10, 0.0, 10.0), ph(10, 10.0, 10.0)];
        assert_eq!(
            user_gate(&phases, 0, Duration::ZERO),
            UserGate::From(Duration::from_secs(1))
        );
        assert_eq!(
            user_gate(&phases, 4, Duration::from_secs(6)),
            UserGate::Active
        );
        assert_eq!(
            user_gate(&phases, 9, Duration::from_secs(12)),
            UserGate::Active
        );
        assert_eq!(
            user_gate(&phases, 9, Duration::from_secs(20)),
            UserGate::Done
        );
        let down = [ph(10, 10.0, 0.0)];
        assert_eq!(user_gate(&down, 9, Duration::from_secs(5)), UserGate::Done);
        assert_eq!(
            user_gate(&down, 0, Duration::from_secs(5)),
            UserGate::Active
        );
    }
}
