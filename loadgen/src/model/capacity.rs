//! The `capacity` section of a capacity report (`loadgen capacity`): the search's settings, every
//! step tried with its figures and verdict, and the capacity found. Data only: the search that
//! fills it (and the methods that decide on it) is in [`crate::capacity`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{LatencyStats, ThresholdOutcome};

/// The `capacity` section of a capacity report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacitySection {
    /// The highest rate (per second) that met every objective; null when none did.
    pub capacity_rps: Option<f64>,
    /// The lowest rate tried that did not pass (null when every step passed).
    pub upper_rps: Option<f64>,
    /// How the step at `upper_rps` did not pass: `fail`, `generator-bound` or `unsettled`.
    pub upper_verdict: Option<String>,
    /// Why the search stopped.
    pub stop: StopReason,
    /// True when a bound (`--max-rate`, `--max-steps`, `--max-duration`, Ctrl-C) ended the search
    /// before it converged: `capacity_rps` is the best found, the real one may be higher.
    pub bounded: bool,
    /// Ready replicas during the judged window of the capacity step (from `--watch`; 1 without
    /// it, when `replicas_observed` is false).
    pub replicas: i32,
    /// Whether `replicas` was observed by `--watch` or assumed (one container).
    pub replicas_observed: bool,
    /// `capacity_rps / replicas`.
    pub capacity_per_replica_rps: Option<f64>,
    /// The objectives, as written.
    pub objectives: Vec<String>,
    pub settings: SearchSettings,
    /// Wall-clock length of the search, seconds.
    pub duration_s: f64,
    /// Every step tried, in order.
    pub steps: Vec<StepRecord>,
    /// What a reader must know to use the figure (bounds, generator limits, first-step failure).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// The knobs of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchSettings {
    /// First rate tried, requests per second.
    pub start_rate: f64,
    /// Factor between rising steps (2 = doubling).
    pub growth: f64,
    /// Stop narrowing once (lowest non-pass - highest pass) / highest pass is at most this (0.05 = 5 %).
    pub precision: f64,
    /// Never try a rate above this.
    pub max_rate: Option<f64>,
    /// Most steps tried.
    pub max_steps: u32,
    /// Wall-clock bound of the whole search: no step starts that would end after it.
    #[serde(with = "secs_opt")]
    pub max_duration: Option<Duration>,
    /// Length of one step (settle part included).
    #[serde(with = "secs")]
    pub step_duration: Duration,
    /// The first part of each step, excluded from the judgment (the target settles at the new rate).
    #[serde(with = "secs")]
    pub step_warmup: Duration,
}

/// How a step went, as far as the search is concerned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Verdict {
    /// Every objective held in the judged window at the target rate.
    Pass,
    /// These objectives broke (as written, with the measured value).
    Fail { broken: Vec<String> },
    /// The generator's own signals (its CPU, its in-flight slots, its schedule lag) explain the
    /// shortfall: says nothing about the target.
    GeneratorBound { why: String },
    /// With `--watch`: the HPA did not settle (desired != ready) within the bounded wait, so the
    /// step does not tell what the settled deployment can take.
    Unsettled { why: String },
}

/// Why the search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// The bracket is within the precision: the capacity is known to it.
    Converged,
    /// The first step did not pass: the capacity is below the start rate.
    BelowStartRate,
    /// A step at `--max-rate` passed: the capacity is at least that.
    MaxRate,
    /// `--max-steps` steps were tried.
    MaxSteps,
    /// The next step would have ended after `--max-duration`.
    MaxDuration,
    /// Ctrl-C.
    Interrupted,
}

/// One step of the search, as written to the report's `capacity.steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 1-based, in the order tried.
    pub step: u32,
    /// Arrival rate asked for, per second.
    pub target_rps: f64,
    /// Completed requests per second in the judged window.
    pub achieved_rps: f64,
    /// Requests due in the judged window.
    pub requests: u64,
    /// Percent.
    pub success_rate: f64,
    /// Corrected latency (from the intended start) in the judged window, ms.
    pub latency_ms: LatencyStats,
    /// From the actual send, ms.
    pub service_time_ms: Option<LatencyStats>,
    /// 503 responses in the judged window.
    pub shed_503: u64,
    /// Each objective on the judged window.
    pub objectives: Vec<ThresholdOutcome>,
    pub verdict: Verdict,
    /// Wall-clock start of the (last) attempt, RFC 3339.
    pub started_at: String,
    /// Length of the judged window, seconds.
    pub judged_s: f64,
    /// Runs of this step: more than 1 when it was repeated while the HPA had not settled or the
    /// generator held it back.
    pub attempts: u32,
    /// With `--watch`: whether desired == ready replicas throughout the judged window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<bool>,
    /// With `--watch`: ready replicas at the end of the judged window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// The generator's own warnings for the step (CPU, schedule lag).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generator_warnings: Vec<String>,
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

mod secs_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|v| Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom))
            .transpose()
    }
}
