//! One JSON error shape for every failure, so clients parse errors the same way whether they come
//! from a handler, an extractor, the router (404/405), a limit (413) or a middleware (503).
//!
//! ```json
//! {"status": 422, "error": "invalid_input", "message": "n must be at least 2"}
//! ```

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema, PartialEq)]
pub struct ErrorBody {
    /// The HTTP status code, repeated for clients that only keep the body.
    pub status: u16,
    /// Stable machine-readable kind, e.g. `not_found`, `invalid_input`, `overloaded`.
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
}

/// An error a handler or middleware returns; renders as [`ErrorBody`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {kind}: {message}")]
pub struct AppError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (shed and timed-out requests).
    pub retry_after: Option<u32>,
}

impl AppError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Stable kind for a status produced outside our handlers (router, limits, timeouts).
    pub fn kind_for(status: StatusCode) -> &'static str {
        match status.as_u16() {
            400 => "bad_request",
            404 => "not_found",
            405 => "method_not_allowed",
            408 => "request_timeout",
            413 => "payload_too_large",
            415 => "unsupported_media_type",
            422 => "invalid_input",
            429 => "too_many_requests",
            500 => "internal",
            503 => "unavailable",
            504 => "timeout",
            s if (400..500).contains(&s) => "client_error",
            _ => "server_error",
        }
    }

    pub fn from_status(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, Self::kind_for(status), message)
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            status: self.status.as_u16(),
            error: self.kind.to_string(),
            message: self.message.clone(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let kind = match &rejection {
            JsonRejection::JsonSyntaxError(_) => "malformed_json",
            JsonRejection::JsonDataError(_) => "invalid_input",
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            _ => Self::kind_for(status),
        };
        Self::new(status, kind, rejection.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            rejection.body_text(),
        )
    }
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            rejection.body_text(),
        )
    }
}

/// `axum::Json` whose rejections use the shared error shape.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query` whose rejections use the shared error shape.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path` whose rejections use the shared error shape.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

/// A JSON body that must be an object, deserialized into `T`.
///
/// serde's derived `Deserialize` also builds a struct from an array (`["title", true]` for
/// `{title, done}`), which the OpenAPI document (`type: object`) does not allow; this refuses
/// anything but an object as a data error (422 through [`ApiJson`]).
#[derive(Debug)]
pub struct JsonObject<T>(pub T);

impl<'de, T: serde::de::DeserializeOwned> serde::Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(d)?;
        if !value.is_object() {
            return Err(D::Error::custom(format!(
                "expected a JSON object, got {}",
                json_kind(&value)
            )));
        }
        T::deserialize(value)
            .map(JsonObject)
            .map_err(D::Error::custom)
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
