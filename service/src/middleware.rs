//! Cross-cutting request handling for traffic routes: load shedding, the request timeout, fault
//! injection; and for every response: identity header and the shared error shape.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use tokio::sync::Semaphore;

use crate::error::AppError;
use crate::metrics::{Metrics, RejectReason};

pub static X_SERVED_BY: HeaderName = HeaderName::from_static("x-served-by");

/// Seconds a shed client is told to wait.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// The answer to a request shed for overload (in-flight limit or full CPU queue): 503, kind
/// `overloaded`, `Retry-After`. The caller counts it under reason `overload`.
pub fn overloaded(message: &str) -> AppError {
    AppError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
        .with_retry_after(RETRY_AFTER_SECONDS)
}

/// Concurrency limit for traffic: beyond `max_in_flight` requests are answered 503 at once, so
/// overload shows up as fast errors and a signal for the autoscaler instead of an unbounded queue
/// whose latency grows until every client times out.
#[derive(Debug, Clone)]
pub struct Shedder {
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Shedder {
    pub fn new(max_in_flight: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
            metrics,
        }
    }
}

pub async fn shed(State(shedder): State<Shedder>, req: Request, next: Next) -> Response {
    match shedder.permits.clone().try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(req).await;
            drop(permit);
            response
        }
        Err(_) => {
            shedder.metrics.reject(RejectReason::Overload);
            overloaded("too many requests in flight; retry later").into_response()
        }
    }
}

/// Request timeout for traffic routes; the handler's future is dropped (CPU jobs notice through
/// their cancel flag) and the client gets 503 with `Retry-After`.
#[derive(Debug, Clone)]
pub struct Timeout {
    pub limit: Duration,
    pub metrics: Arc<Metrics>,
}

pub async fn timeout(State(t): State<Timeout>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(t.limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            t.metrics.reject(RejectReason::Timeout);
            AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "request took longer than {}",
                    humantime::format_duration(t.limit)
                ),
            )
            .with_retry_after(RETRY_AFTER_SECONDS)
            .into_response()
        }
    }
}

/// Fault injection (podinfo style): a ratio of random 500s and a random extra delay. Applied to
/// traffic routes only, never to probes, /info or metrics.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    pub error_ratio: f64,
    pub delay_min: Duration,
    pub delay_max: Duration,
}

impl Faults {
    pub fn enabled(&self) -> bool {
        self.error_ratio > 0.0 || self.delay_max > Duration::ZERO
    }

    /// (delay, fail) for one request.
    fn draw(&self) -> (Duration, bool) {
        let mut rng = rand::rng();
        let delay = if self.delay_max > self.delay_min {
            rng.random_range(self.delay_min..=self.delay_max)
        } else {
            self.delay_min
        };
        let fail = self.error_ratio > 0.0 && rng.random_bool(self.error_ratio.min(1.0));
        (delay, fail)
    }
}

pub async fn faults(State(f): State<Faults>, req: Request, next: Next) -> Response {
    let (delay, fail) = f.draw();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if fail {
        return AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected_fault",
            "fault injected by --fault-error-ratio",
        )
        .into_response();
    }
    next.run(req).await
}

/// Outermost layer: `x-served-by` on every response, and error responses that did not come from
/// our own code (router 405, panics, limits) rewritten into the shared JSON shape.
pub async fn finalize(State(host): State<HeaderValue>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let mut response = if response.status().as_u16() >= 400 && !is_json(&response) {
        normalize_error(response).await
    } else {
        response
    };
    response.headers_mut().insert(X_SERVED_BY.clone(), host);
    response
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

async fn normalize_error(response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            parts
                .status
                .canonical_reason()
                .unwrap_or("error")
                .to_string()
        });
    let mut fresh = AppError::from_status(parts.status, text).into_response();
    // Keep headers such as Allow (405) and Retry-After, but not the old body's type and length.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fresh.headers_mut().insert(name.clone(), value.clone());
        }
    }
    fresh
}

/// 404 for every path no route matches.
pub async fn not_found(req: Request<Body>) -> AppError {
    AppError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}
