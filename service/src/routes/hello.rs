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

use crate::error::{AppError, JsonObject};
use crate::pool::Cancel;
use crate::prime::{self, MAX_N_EXCLUSIVE, MIN_N, Stopped};
use crate::state::AppState;

/// Request: `{}` for a random n in [1e9, 1e13), or a given n in [2, 1e13).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HelloRequest {
    #[schema(minimum = 2, exclusive_maximum = 10_000_000_000_000_i64, format = Int64)]
    #[serde(default, deserialize_with = "integral::deserialize")]
    pub n: Option<i64>,
}

/// JSON Schema's `integer` is any number with a zero fractional part, so `600851475143.0` is as
/// valid as `600851475143`; serde's `i64` only takes the latter. This accepts both (and `null`);
/// `2.5` or an integer outside `i64` is still a type error (422).
mod integral {
    use serde::Deserializer;
    use serde::de::{Error, Unexpected, Visitor};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_option(Integral)
    }

    struct Integral;

    impl<'de> Visitor<'de> for Integral {
        type Value = Option<i64>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an integer")
        }

        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
        }

        fn visit_f64<E: Error>(self, v: f64) -> Result<Self::Value, E> {
            // Exclusive upper bound: i64::MAX as f64 rounds up to 2^63, which does not fit.
            let fits =
                v.is_finite() && v.fract() == 0.0 && v >= i64::MIN as f64 && v < i64::MAX as f64;
            if fits {
                Ok(Some(v as i64))
            } else {
                Err(E::invalid_type(Unexpected::Float(v), &self))
            }
        }
    }
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
    request_body(content = Option<HelloRequest>, description = "`{}` or `{\"n\": 600851475143}`; an empty body or `null` counts as `{}`"),
    responses(
        (status = 200, body = HelloResponse),
        (status = 400, description = "Malformed JSON", body = crate::error::ErrorBody),
        (status = 413, description = "Body above --max-body-bytes", body = crate::error::ErrorBody),
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
        .run(move |cancel| factor_job(n, cancel))
        .await?
        // Only a dropped request cancels, so nobody normally reads this answer.
        .map_err(|Stopped| {
            AppError::from_status(StatusCode::SERVICE_UNAVAILABLE, "calculation cancelled")
        })?;
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

/// The CPU-pool job: the factor of `n` and the seconds it took, or [`Stopped`] as soon as the
/// request is gone (timed out, client left), so an abandoned job frees its CPU slot within a few
/// thousand divisions instead of finishing work nobody will read.
fn factor_job(n: u64, cancel: &Cancel) -> Result<(Option<u64>, f64), Stopped> {
    let start = Instant::now();
    let factor = prime::largest_prime_factor_until(n, || cancel.is_cancelled())?;
    Ok((factor, start.elapsed().as_secs_f64()))
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
    // JSON `null` counts as `{}` too: the document declares the body optional, and a schema-driven
    // client may spell "no body" as null.
    let Json(request) = Json::<Option<JsonObject<HelloRequest>>>::from_bytes(body)?;
    Ok(request.map(|JsonObject(r)| r).unwrap_or_default())
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::Metrics;
    use crate::pool::CpuPool;

    /// A prime just below the cap: the longest trial division the endpoint accepts (~1.6 million
    /// divisions, far more than can run in the millisecond the request below lives).
    const WORST_N: u64 = 9_999_999_999_971;

    #[test]
    fn the_job_answers_when_not_cancelled() {
        assert_eq!(
            factor_job(600_851_475_143, &Cancel::default()).map(|(f, _)| f),
            Ok(Some(6857))
        );
    }

    #[tokio::test]
    async fn a_dropped_request_stops_its_job_early() {
        let pool = CpuPool::new(1, 0, Duration::from_secs(60), Metrics::new("test", 1.0));
        let (tx, rx) = std::sync::mpsc::channel();
        let request = pool.run(move |cancel| tx.send(factor_job(WORST_N, cancel)).unwrap());
        // The request times out (the timeout middleware drops it the same way).
        let _ = tokio::time::timeout(Duration::from_millis(1), request).await;
        let outcome = tokio::task::spawn_blocking(move || rx.recv().unwrap())
            .await
            .unwrap();
        assert_eq!(
            outcome.map(|(f, _)| f),
            Err(Stopped),
            "the job ran to the end"
        );
        // Its slot is free again: with no queue, the next job runs instead of being shed. The job
        // hands its outcome over just before its worker releases the slot: allow for that moment.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match pool.run(|_| 7).await {
                Ok(v) => break assert_eq!(v, 7),
                Err(e) if tokio::time::Instant::now() < deadline => {
                    assert_eq!(
                        e.status,
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "{e:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => panic!("the slot was never released: {e:?}"),
            }
        }
    }
}
