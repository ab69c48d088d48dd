//! `POST /api/v1/hello`: the classic tutorial's CPU-bound endpoint, largest prime factor of n by
//! trial division, run on the CPU pool.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::AppError;
use crate::prime::{self, MAX_N_EXCLUSIVE, MIN_N};
use crate::state::AppState;

/// Request: `{}` for a random n in [1e9, 1e13), or a given n in [2, 1e13).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HelloRequest {
    #[schema(minimum = 2, maximum = 9_999_999_999_999_i64)]
    pub n: Option<i64>,
}

/// Response of `/api/v1/hello`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HelloResponse {
    pub message1: String,
    pub message2: String,
    pub n: u64,
    pub largest_prime_factor: u64,
    /// Seconds the calculation took.
    pub elapsed_time: f64,
}

#[utoipa::path(post, path = "/api/v1/hello", tag = "traffic",
    request_body(content = HelloRequest, description = "`{}` or `{\"n\": 600851475143}`; an empty body counts as `{}`"),
    responses(
        (status = 200, body = HelloResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
        (status = 415, description = "Not JSON", body = crate::error::ErrorBody),
        (status = 422, description = "n < 2 or n >= 1e13", body = crate::error::ErrorBody),
        (status = 503, description = "Overloaded or timed out", body = crate::error::ErrorBody),
    ))]
pub async fn hello(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<HelloResponse>, AppError> {
    let body = body.map_err(|e| AppError::from_status(e.status(), e.body_text()))?;
    let request = parse_request(&headers, &body)?;
    let n = match request.n {
        None => rand::rng().random_range(prime::RANDOM_RANGE),
        Some(n) if n < MIN_N as i64 => {
            return Err(AppError::invalid(format!(
                "n must be at least {MIN_N}, got {n}"
            )));
        }
        Some(n) if n as u64 >= MAX_N_EXCLUSIVE => {
            return Err(AppError::invalid(format!(
                "n must be below {MAX_N_EXCLUSIVE}, got {n}"
            )));
        }
        Some(n) => n as u64,
    };
    let (factor, elapsed) = state
        .pool
        .run(move |_| {
            let start = Instant::now();
            let factor = prime::largest_prime_factor(n);
            (factor, start.elapsed().as_secs_f64())
        })
        .await?;
    let factor = factor.ok_or_else(|| AppError::invalid("n has no prime factor"))?;
    Ok(Json(HelloResponse {
        message1: "Hello, world!".to_string(),
        message2: format!(
            "The largest prime factor of {n} is {factor}. Calculation took {elapsed:.6} seconds."
        ),
        n,
        largest_prime_factor: factor,
        elapsed_time: elapsed,
    }))
}

/// An empty body counts as `{}` (clients of the original tutorial POST without one); anything else
/// must be JSON with a JSON content type.
fn parse_request(headers: &HeaderMap, body: &Bytes) -> Result<HelloRequest, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(HelloRequest::default());
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime_type::Essence>().ok())
        .is_some_and(|m| m.is_json());
    if !is_json {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Expected request with `Content-Type: application/json`",
        ));
    }
    let Json(request) = Json::<HelloRequest>::from_bytes(body)?;
    Ok(request)
}

/// Just enough content-type parsing: `application/json`, `application/*+json`, parameters ignored.
mod mime_type {
    pub struct Essence(String);

    impl std::str::FromStr for Essence {
        type Err = ();
        fn from_str(s: &str) -> Result<Self, ()> {
            let essence = s.split(';').next().ok_or(())?.trim().to_ascii_lowercase();
            Ok(Self(essence))
        }
    }

    impl Essence {
        pub fn is_json(&self) -> bool {
            self.0 == "application/json"
                || (self.0.starts_with("application/") && self.0.ends_with("+json"))
        }
    }
}
