//! Scenario files as written: the serde types a YAML or TOML file deserializes into, plain data.
//!
//! Unknown keys are errors (`deny_unknown_fields`), so a typo never silently does nothing. Nothing
//! here checks more than a value's own syntax: [`super::compile`] turns a [`ScenarioSpec`] into a
//! [`super::Scenario`] (the typed plan, thresholds and target), once. Every key is documented in
//! `docs/scenarios.md` (a test holds the two together).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// A duration written as `30s`, `1m30s` or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = crate::parse::number_or_string(d)?;
        crate::parse::duration(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// The load block of a scenario.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoadSpec {
    /// Closed loop: concurrent users.
    pub users: Option<u64>,
    /// Total requests (iterations), closed or open loop.
    pub requests: Option<u64>,
    /// Run time.
    pub duration: Option<Dur>,
    /// Open loop: arrivals per second.
    pub rate: Option<f64>,
    /// Open loop: ramp linearly from `rate` to `ramp_to` over `duration`.
    pub ramp_to: Option<f64>,
    /// Open loop: cap on iterations in flight (default 1000).
    pub max_in_flight: Option<u64>,
    /// Phases: `{duration, rate, ramp_to}` (open) or `{duration, users, ramp_to}` (closed).
    #[serde(default)]
    pub phases: Vec<PhaseSpec>,
    /// Closed loop: pause between a user's iterations.
    pub think_time: Option<Dur>,
    /// Close a connection once it is this old (after its in-flight request): `10s`, or
    /// `forever` (default 10s; see docs/connections.md).
    pub connection_max_age: Option<crate::lifetime::MaxAge>,
    /// Close a connection after this many requests (default: no limit).
    pub connection_max_requests: Option<u64>,
    /// `false`: a new connection per request.
    pub keepalive: Option<bool>,
}

/// One phase.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    pub name: Option<String>,
    pub duration: Dur,
    /// Open loop: arrivals per second at the phase start.
    pub rate: Option<f64>,
    /// Closed loop: users at the phase start.
    pub users: Option<u64>,
    /// Value (rate or users) at the phase end; default = the start value (a hold).
    pub ramp_to: Option<f64>,
}

/// What a successful response looks like.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// Accepted status codes (default: any below 400).
    #[serde(default, deserialize_with = "one_or_many")]
    pub status: Vec<u16>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(u16),
        Many(Vec<u16>),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::One(s) => vec![s],
        Raw::Many(v) => v,
    })
}

/// One HTTP request (a top-level entry, or a step of a flow).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    pub name: Option<String>,
    /// Relative weight in the mix (top-level entries only; default 1).
    pub weight: Option<u32>,
    pub method: Option<String>,
    pub path: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Raw body template.
    pub body: Option<String>,
    /// JSON body (templates allowed in strings); sets `content-type: application/json`.
    pub json: Option<serde_json::Value>,
    /// `var: $.json.path` or `var: header:name`.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    pub expect: Option<ExpectSpec>,
    /// A flow: requests run in order in one iteration (top-level entries only).
    #[serde(default)]
    pub steps: Vec<RequestSpec>,
}

/// A scenario file as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Base URL (the `--target` flag overrides it).
    pub target: Option<String>,
    /// Headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Initial values of per-user variables.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Per-request timeout.
    pub timeout: Option<Dur>,
    pub load: Option<LoadSpec>,
    #[serde(default)]
    pub requests: Vec<RequestSpec>,
    #[serde(default)]
    pub thresholds: Vec<String>,
}
