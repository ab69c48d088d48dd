//! Operational endpoints: probes and instance identity. Never shed, delayed or failed by fault
//! injection, so an overloaded or fault-injected instance is not restarted for it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cpu::QuotaSource;
use crate::state::AppState;

/// Probe answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProbeStatus {
    /// `ok`, or `draining` from /readyz during shutdown.
    pub status: String,
}

#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "The process is alive", body = ProbeStatus)))]
/// Liveness: the process serves HTTP.
pub async fn healthz() -> Json<ProbeStatus> {
    Json(ProbeStatus {
        status: "ok".into(),
    })
}

#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = ProbeStatus), (status = 503, description = "Draining before shutdown", body = ProbeStatus)))]
/// Readiness: 503 once shutdown has begun, so no new traffic is routed here.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<ProbeStatus>) {
    if state.lifecycle.is_draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ProbeStatus {
                status: "draining".into(),
            }),
        )
    } else {
        (
            StatusCode::OK,
            Json(ProbeStatus {
                status: "ok".into(),
            }),
        )
    }
}

/// Identity and sizing of this instance.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Info {
    pub version: String,
    pub hostname: String,
    /// Tokio worker threads of the running runtime.
    pub worker_threads: usize,
    /// CPU-bound jobs that may run at once.
    pub cpu_workers: usize,
    /// Hard cap on CPU-bound jobs waiting for a slot; beyond that they are shed with 503.
    pub cpu_queue: usize,
    /// Longest estimated (and actual) wait for a CPU slot before a CPU job is shed with 503
    /// (`--queue-delay-budget`), in milliseconds.
    pub queue_delay_budget_ms: u64,
    /// CPUs the process may use, as it sees them (fractional for cgroup quotas).
    pub cpu_quota_cores: f64,
    pub cpu_quota_source: QuotaSource,
    pub max_in_flight: usize,
    pub draining: bool,
}

#[utoipa::path(get, path = "/info", tag = "ops", responses((status = 200, body = Info)))]
pub async fn info(State(state): State<AppState>) -> Json<Info> {
    let i = &state.instance;
    Json(Info {
        version: i.version.to_string(),
        hostname: i.hostname.clone(),
        worker_threads: tokio::runtime::Handle::current().metrics().num_workers(),
        cpu_workers: state.pool.size(),
        cpu_queue: state.pool.queue_limit(),
        queue_delay_budget_ms: u64::try_from(state.pool.queue_delay_budget().as_millis())
            .unwrap_or(u64::MAX),
        cpu_quota_cores: i.cpu_quota.cores,
        cpu_quota_source: i.cpu_quota.source,
        max_in_flight: i.max_in_flight,
        draining: state.lifecycle.is_draining(),
    })
}
