//! Logs and traces. Logs go to stdout as JSON or text; traces are exported over OTLP/http only
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `--otlp-endpoint`) is set, continuing an incoming W3C
//! `traceparent` so a load generator's sampled requests can be found in the trace backend.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{HeaderMap, Request, Response};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
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

/// The per-request tracing layer: a span per traced request, named after the route template,
/// continuing an incoming `traceparent`; nothing at all for the others.
///
/// Hand-written rather than tower-http's `TraceLayer`: that one runs its callbacks, classifier
/// and response-body wrapper for every request, traced or not, and emits (filtered, but still
/// dispatched) events at request start and end of stream; an unsampled request paid for all of
/// it. Here the sampling decision comes first, and an unsampled request goes straight to the
/// inner service with its future passed through untouched (see [`TracedFuture`]).
#[derive(Debug, Clone, Copy)]
pub struct HttpTraceLayer {
    sampler: RequestSpan,
}

/// The layer for requests without a trace context traced with probability `sample_ratio`.
pub fn http_trace_layer(sample_ratio: f64) -> HttpTraceLayer {
    HttpTraceLayer {
        sampler: RequestSpan { sample_ratio },
    }
}

impl<S> tower::Layer<S> for HttpTraceLayer {
    type Service = HttpTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpTrace {
            inner,
            sampler: self.sampler,
        }
    }
}

/// See [`HttpTraceLayer`].
#[derive(Debug, Clone)]
pub struct HttpTrace<S> {
    inner: S,
    sampler: RequestSpan,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for HttpTrace<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TracedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match self.sampler.span_for(&req) {
            None => TracedFuture {
                inner: self.inner.call(req),
                span: None,
            },
            Some(span) => {
                let inner = span.in_scope(|| self.inner.call(req));
                TracedFuture {
                    inner,
                    span: Some(span),
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// Future of [`HttpTrace`]: the inner future, entered in the request's span when traced.
    pub struct TracedFuture<F> {
        #[pin]
        inner: F,
        span: Option<Span>,
    }
}

impl<F, ResBody, E> Future for TracedFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(span) = this.span.as_ref() else {
            return this.inner.poll(cx);
        };
        let result = span.in_scope(|| this.inner.poll(cx));
        if let Poll::Ready(Ok(response)) = &result {
            span.record("http.response.status_code", response.status().as_u16());
        }
        result
    }
}

/// Decides whether a request is traced, and makes its span if so: head sampling happens here,
/// before the span exists.
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

    /// The request's span, or None when it is not traced.
    fn span_for<B>(&self, req: &Request<B>) -> Option<Span> {
        use opentelemetry::trace::TraceContextExt as _;
        let parent = if req.headers().contains_key(&TRACEPARENT) {
            opentelemetry::global::get_text_map_propagator(|p| {
                p.extract(&HeaderExtractor(req.headers()))
            })
        } else {
            opentelemetry::Context::new()
        };
        if !self.traced(parent.span().span_context()) {
            return None;
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
        Some(span)
    }
}

/// The W3C trace context header, named once: looking it up by `&str` parses the name on every
/// request.
static TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

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

    fn request(traceparent: Option<&str>) -> Request<()> {
        let mut builder = Request::get("/ping");
        if let Some(tp) = traceparent {
            builder = builder.header("traceparent", tp);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn an_unsampled_request_gets_no_span_and_its_future_is_passed_through() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let never = RequestSpan { sample_ratio: 0.0 };
        assert!(never.span_for(&request(None)).is_none());
        let unsampled = "00-1bf7651916cd43dd8448eb211c80319d-b7ad6b7169203331-00";
        let always = RequestSpan { sample_ratio: 1.0 };
        assert!(
            always.span_for(&request(Some(unsampled))).is_none(),
            "an unsampled parent is never continued"
        );
        // Through the service: the untraced future carries no span.
        use tower::{Layer as _, Service as _};
        let inner = tower::service_fn(|_: Request<()>| async {
            Ok::<_, std::convert::Infallible>(Response::new(()))
        });
        let mut service = http_trace_layer(0.0).layer(inner);
        let future = service.call(request(None));
        assert!(future.span.is_none());
    }

    #[test]
    fn a_sampled_parent_is_traced_whatever_the_ratio() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let never = RequestSpan { sample_ratio: 0.0 };
        let sampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        assert!(never.traced(&parent_of(sampled)));
        let always = RequestSpan { sample_ratio: 1.0 };
        assert!(always.traced(&opentelemetry::trace::SpanContext::empty_context()));
    }

    fn parent_of(traceparent: &str) -> opentelemetry::trace::SpanContext {
        use opentelemetry::trace::TraceContextExt as _;
        let req = request(Some(traceparent));
        let cx = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&HeaderExtractor(req.headers()))
        });
        cx.span().span_context().clone()
    }

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
