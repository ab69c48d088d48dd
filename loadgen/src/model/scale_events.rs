//! The cost of one scale-out as the report keeps it (`scale_events`): when it started, how long
//! until the new replicas were ready and answered, and latency and errors in the windows around it.
//! Plain serialized data; `crate::analysis::scale_events` computes it, and its module docs define
//! every figure.

use serde::{Deserialize, Serialize};

/// Latency and errors of the requests completed in one window around an event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WindowStats {
    /// Start of the first and end of the last bucket in the window.
    pub from_s: f64,
    pub to_s: f64,
    pub requests: u64,
    pub failures: u64,
    /// Request-weighted mean of the buckets' p50 and p99, in ms.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The highest bucket p99 in the window, in ms.
    pub max_p99_ms: f64,
}

/// One scale-out and what it cost. Serialized in the report's `scale_events`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScaleEvent {
    /// When the desired count rose (seconds since the run start).
    pub t_s: f64,
    /// Ready replicas when it started.
    pub from_replicas: Option<i32>,
    /// The highest desired count while the event lasted.
    pub to_replicas: i32,
    /// From `t_s` until the ready count reached the desired count.
    pub time_to_ready_s: Option<f64>,
    /// From `t_s` until a backend not seen before answered (end of its bucket).
    pub time_to_first_new_backend_s: Option<f64>,
    /// That backend (`x-served-by`).
    pub first_new_backend: Option<String>,
    /// From `t_s` until p99 was back under `recovery_threshold_ms`.
    pub recovery_s: Option<f64>,
    /// The p99 (ms) recovery was measured against.
    pub recovery_threshold_ms: Option<f64>,
    /// True when the threshold was given (`--recovery-p99`), false when it is the pre-event p99 ×
    /// 1.1.
    pub recovery_threshold_given: bool,
    /// Requests that failed (any failure, 503s included) during the event.
    pub failed_during: u64,
    /// Of those, responses 503 (shed by the workload or a proxy) during the event.
    pub shed_during: u64,
    pub before: Option<WindowStats>,
    pub during: Option<WindowStats>,
    pub after: Option<WindowStats>,
}
