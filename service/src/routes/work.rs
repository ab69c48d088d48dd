//! Benchmark knobs: CPU work of a chosen cost, I/O wait of a chosen time, a chosen status code.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiPath, ApiQuery, AppError, ErrorBody};
use crate::pool;
use crate::state::AppState;

/// `ms` when the query does not give one.
pub const DEFAULT_WORK_MS: u64 = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorkParams {
    /// Milliseconds of work, 0..=max (`--max-work-ms`, default 10000); default 100 (or the
    /// maximum, if lower).
    // The served document states the running instance's maximum (see `openapi::document`).
    #[param(minimum = 0, maximum = 10_000)]
    pub ms: Option<u64>,
}

/// What a work request did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WorkReport {
    /// `cpu` or `io`.
    pub kind: String,
    pub requested_ms: u64,
    /// Wall time the work took, in milliseconds.
    pub elapsed_ms: f64,
}

fn requested(state: &AppState, params: &WorkParams) -> Result<Duration, AppError> {
    let max = state.instance.max_work_ms;
    // The default never exceeds the maximum: a request without `ms` is always valid.
    let ms = params.ms.unwrap_or(DEFAULT_WORK_MS.min(max));
    if ms > max {
        return Err(AppError::invalid(format!(
            "ms must be at most {max}, got {ms}"
        )));
    }
    Ok(Duration::from_millis(ms))
}

#[utoipa::path(get, path = "/work/cpu", tag = "traffic", params(WorkParams),
    responses(
        (status = 200, body = WorkReport),
        (status = 400, body = ErrorBody),
        (status = 422, description = "ms above the maximum", body = ErrorBody),
        (status = 503, description = "Overloaded (CPU pool queue full or in-flight limit) or timed out; has Retry-After", body = ErrorBody),
    ))]
/// Spins one CPU-pool thread until it has used `ms` milliseconds of CPU time (not wall time: a
/// throttled container still does the work asked, it just takes longer).
pub async fn cpu(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<WorkParams>,
) -> Result<Json<WorkReport>, AppError> {
    let duration = requested(&state, &params)?;
    let start = Instant::now();
    let wall_cap = pool::burn_wall_cap(duration, state.instance.request_timeout);
    state
        .pool
        .run(move |cancel| pool::burn(duration, wall_cap, cancel))
        .await?;
    Ok(Json(WorkReport {
        kind: "cpu".into(),
        requested_ms: duration.as_millis() as u64,
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
    }))
}

#[utoipa::path(get, path = "/work/io", tag = "traffic", params(WorkParams),
    responses(
        (status = 200, body = WorkReport),
        (status = 400, body = ErrorBody),
        (status = 422, description = "ms above the maximum", body = ErrorBody),
        (status = 503, description = "Overloaded (in-flight limit) or timed out; has Retry-After", body = ErrorBody),
    ))]
/// Waits `ms` milliseconds without holding a thread (an async timer), like a slow database call.
pub async fn io(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<WorkParams>,
) -> Result<Json<WorkReport>, AppError> {
    let duration = requested(&state, &params)?;
    let start = Instant::now();
    tokio::time::sleep(duration).await;
    Ok(Json(WorkReport {
        kind: "io".into(),
        requested_ms: duration.as_millis() as u64,
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
    }))
}

/// Body of a 2xx/3xx `/status/{code}` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusReport {
    pub status: u16,
}

#[utoipa::path(get, path = "/status/{code}", tag = "traffic",
    params(("code" = u16, Path, minimum = 200, maximum = 599, description = "Status to answer, 200..=599")),
    responses(
        (status = 200, body = StatusReport),
        (status = "2XX", description = "The requested 2xx status", body = StatusReport),
        (status = "3XX", description = "The requested 3xx status", body = StatusReport),
        (status = 400, description = "code out of range", body = ErrorBody),
        (status = "4XX", description = "The requested 4xx status", body = ErrorBody),
        (status = "5XX", description = "The requested 5xx status", body = ErrorBody),
    ))]
/// Answers the requested status (errors in the shared error shape).
pub async fn status(ApiPath(code): ApiPath<u16>) -> Result<Response, AppError> {
    let status = StatusCode::from_u16(code)
        .ok()
        .filter(|s| (200..=599).contains(&s.as_u16()))
        .ok_or_else(|| {
            AppError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("code must be in 200..=599, got {code}"),
            )
        })?;
    if status.as_u16() >= 400 {
        return Ok(AppError::new(
            status,
            "requested_status",
            format!("status {code} as requested"),
        )
        .into_response());
    }
    Ok((status, Json(StatusReport { status: code })).into_response())
}
