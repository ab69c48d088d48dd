//! Logs and traces. Logs go to stdout as JSON or text; traces are exported over OTLP/http only
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `--otlp-endpoint`) is set, continuing an incoming W3C
//! `traceparent` so a load generator's sampled requests can be found in the trace backend.

use std::time::Duration;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{HeaderMap, Request, Response};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{
    DefaultOnBodyChunk, DefaultOnEos, DefaultOnFailure, DefaultOnRequest, MakeSpan, OnResponse,
    TraceLayer,
};
use tracing::{Level, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::{Config, LogFormat};
use crate::shutdown::TRACE_FLUSH_TIMEOUT;

/// Why logging or tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {0:?}: {1}")]
    Filter(String, String),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps the trace pipeline alive; call [`Telemetry::shutdown`] at exit to flush pending spans.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn tracing_exported(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes and stops the exporter (blocking; call outside the async runtime). Waits at most
    /// [`TRACE_FLUSH_TIMEOUT`]: spans a slow or unreachable collector has not taken by then are
    /// dropped, so exit is never held up by the OTLP client's request timeout.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown_with_timeout(TRACE_FLUSH_TIMEOUT)
        {
            eprintln!("workload: flushing traces failed: {e}");
        }
    }
}

/// Installs the global subscriber. Must run before the Tokio runtime starts: the OTLP exporter
/// uses a blocking HTTP client on the SDK's own batch thread.
pub fn init(config: &Config) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_new(&config.log_filter)
        .map_err(|e| TelemetryError::Filter(config.log_filter.clone(), e.to_string()))?;
    let provider = match &config.otlp_endpoint {
        Some(endpoint) if config.exports_traces() => {
            Some(otlp_provider(endpoint, &config.service_name)?)
        }
        _ => None,
    };
    let otel_layer = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("workload")));
    let json = config.log_format == LogFormat::Json;
    // The log layers see events only. Formatting every request span's fields into a string (what
    // the fmt layer does for spans) was most of the per-request cost of tracing; request spans
    // exist for the trace exporter, and without one they are never created.
    let events_only = || filter_fn(|meta| meta.is_event());
    tracing_subscriber::registry()
        .with(filter)
        .with(json.then(|| {
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_filter(events_only())
        }))
        .with((!json).then(|| tracing_subscriber::fmt::layer().with_filter(events_only())))
        .with(otel_layer)
        // Without an exporter nobody reads spans: disable them outright, so a span costs a
        // callsite check instead of a registry entry per request.
        .with(
            provider
                .is_none()
                .then(|| filter_fn(|meta| !meta.is_span())),
        )
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(Telemetry { provider })
}

fn otlp_provider(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider, TelemetryError> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    // The default batch processor exports from its own thread, so the client must be blocking.
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    // Like the SDK does for the generic variable: the signal path is appended to the base URL.
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(url)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_string())
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(provider)
}

/// The per-request tracing layer.
pub type HttpTraceLayer = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    RequestSpan,
    DefaultOnRequest,
    RecordStatus,
    DefaultOnBodyChunk,
    DefaultOnEos,
    DefaultOnFailure,
>;

/// A span per request named after the route template, continuing an incoming `traceparent`, for
/// the requests that are traced (see [`RequestSpan`]).
pub fn http_trace_layer(sample_ratio: f64) -> HttpTraceLayer {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan { sample_ratio })
        .on_response(RecordStatus)
        // 5xx are expected under load shedding and fault injection: no error log per request.
        .on_failure(DefaultOnFailure::new().level(Level::DEBUG))
}

/// Makes the request span, or none: head sampling happens here, before the span exists.
///
/// A span fed to the OpenTelemetry layer costs tens of microseconds of CPU whether or not the
/// SDK's sampler later drops it, which at load-test rates is most of a cheap request's cost. So
/// the decision is parent-based and taken first: a sampled incoming `traceparent` is continued,
/// an unsampled one is not traced, and a request without one is traced with `sample_ratio`.
#[derive(Debug, Clone, Copy)]
pub struct RequestSpan {
    sample_ratio: f64,
}

impl RequestSpan {
    /// Whether a request with this (possibly empty) remote parent is traced.
    fn traced(&self, parent: &opentelemetry::trace::SpanContext) -> bool {
        if parent.is_valid() {
            parent.is_sampled()
        } else {
            self.sample_ratio >= 1.0
                || (self.sample_ratio > 0.0 && rand::random::<f64>() < self.sample_ratio)
        }
    }
}

impl MakeSpan<Body> for RequestSpan {
    fn make_span(&mut self, req: &Request<Body>) -> Span {
        use opentelemetry::trace::TraceContextExt as _;
        let parent = if req.headers().contains_key("traceparent") {
            opentelemetry::global::get_text_map_propagator(|p| {
                p.extract(&HeaderExtractor(req.headers()))
            })
        } else {
            opentelemetry::Context::new()
        };
        if !self.traced(parent.span().span_context()) {
            return Span::none();
        }
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or(crate::metrics::UNMATCHED, |p| p.as_str());
        let span = tracing::info_span!(
            "request",
            otel.name = %format_args!("{} {}", req.method(), route),
            otel.kind = "server",
            http.request.method = %req.method(),
            http.route = route,
            url.path = req.uri().path(),
            http.response.status_code = tracing::field::Empty,
        );
        let _ = span.set_parent(parent);
        span
    }
}

/// Records the status code on the span.
#[derive(Debug, Clone, Copy)]
pub struct RecordStatus;

impl<B> OnResponse<B> for RecordStatus {
    fn on_response(self, response: &Response<B>, _latency: Duration, span: &Span) {
        span.record("http.response.status_code", response.status().as_u16());
    }
}

/// Reads W3C trace context from request headers.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use opentelemetry::trace::{Span as _, Tracer as _};

    use super::*;

    /// A collector that accepts connections (the kernel's backlog does) and never answers: the
    /// export hangs until the OTLP client's own timeout, far longer than the flush may take.
    #[test]
    fn flushing_to_a_collector_that_never_answers_is_bounded() {
        let collector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", collector.local_addr().unwrap());
        let provider = otlp_provider(&endpoint, "flush-test").unwrap();
        provider.tracer("test").start("a pending span").end();
        let telemetry = Telemetry {
            provider: Some(provider),
        };
        let start = Instant::now();
        telemetry.shutdown();
        let took = start.elapsed();
        // An upper bound with a wide margin: the default flush waited 5 s and the client 10 s.
        assert!(
            took < TRACE_FLUSH_TIMEOUT + Duration::from_millis(2500),
            "flush took {took:?}"
        );
        drop(collector);
    }
}
