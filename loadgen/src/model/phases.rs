//! A run's result per phase of its plan: the row of each rate step, warm-up or user phase, as
//! the classic comparisons report a row per load level (built and merged by
//! `crate::report::phases`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::LatencyStats;

/// One phase of a run. Latencies in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PhaseSummary {
    /// The scenario's `name:`, or `phase N`.
    pub name: String,
    /// Seconds from the run start.
    pub start_s: f64,
    /// How long the phase ran (its planned length, cut where an interrupted run ended).
    pub duration_s: f64,
    /// Planned arrival rate (open loop) or users (closed loop) at the phase start and end.
    pub target_from: f64,
    pub target_to: f64,
    pub requests: u64,
    pub successes: u64,
    pub failures: u64,
    /// requests / duration_s.
    pub rps: f64,
    /// successes / requests, percent (100 with no request).
    pub success_rate: f64,
    /// Corrected in open loop (from the intended start), from the send in closed loop.
    pub latency_ms: LatencyStats,
    /// Open loop: from the actual send.
    pub service_time_ms: Option<LatencyStats>,
    pub status_codes: BTreeMap<String, u64>,
    /// Failure kinds, as in `summary.errors`.
    pub errors: BTreeMap<String, u64>,
    /// 503 responses: the target shedding load (or a proxy with no backend).
    pub shed_503: u64,
}

impl PhaseSummary {
    /// The target as written for humans: `100/s`, `5→100/s`, `10 users`.
    pub fn target(&self, open: bool) -> String {
        let v = |x: f64| {
            if x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.1}")
            }
        };
        let range = if self.target_from == self.target_to {
            v(self.target_from)
        } else {
            format!("{}→{}", v(self.target_from), v(self.target_to))
        };
        if open {
            format!("{range}/s")
        } else {
            format!("{range} users")
        }
    }
}
