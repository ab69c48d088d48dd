//! Cold starts as the report keeps them (`replicas.cold_starts`): a request sent while the watched
//! target had no ready replica, and what the clients went through until one answered.
//!
//! Plain serialized data; `crate::coldstart` measures it on the client's own clock (each request's
//! send and completion, not a time-series bucket), and docs/autoscaling-cost.md defines every
//! field.

use serde::{Deserialize, Serialize};

/// Most cold starts kept in a report; past it they are only counted (`cold_starts_total`).
pub const MAX_COLD_STARTS: usize = 1000;

/// One cold start. Times are seconds since the run started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ColdStart {
    /// When the first request sent at zero ready replicas went out: the cold start opened.
    pub t_s: f64,
    /// From `t_s` until the first answered response (a success that is not a 5xx) among the
    /// requests sent since `t_s`; `null` when none was answered before the run ended.
    pub to_first_response_s: Option<f64>,
    /// Requests sent from `t_s` until that first answer (the opening one included): the requests
    /// the cold start held.
    pub held: u64,
    /// Of the held requests, those that failed or got a 5xx.
    pub failed: u64,
    /// Latency p99 (ms, nearest rank) of the requests sent in the first second from `t_s`;
    /// `null` when none of them completed.
    pub p99_first_second_ms: Option<f64>,
    /// When the watcher saw the first ready replica after the zero that opened this cold start,
    /// if it did.
    pub ready_at_s: Option<f64>,
    /// The input report (0-based, in `merge` order) this cold start came from; only in merged
    /// reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<usize>,
}

/// Median and maximum of the cold starts' times to first response, for summaries of many.
pub fn time_to_first_response_stats(cold_starts: &[ColdStart]) -> Option<(f64, f64)> {
    let mut times: Vec<f64> = cold_starts
        .iter()
        .filter_map(|c| c.to_first_response_s)
        .collect();
    if times.is_empty() {
        return None;
    }
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    };
    Some((median, times[n - 1]))
}
