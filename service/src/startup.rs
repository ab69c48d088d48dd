//! Builds the application (both listeners bound, so port 0 works and tests learn the real ports)
//! and runs it until a shutdown future resolves, following the sequence in [`crate::shutdown`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, header};
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa_swagger_ui::SwaggerUi;

use crate::admission;
use crate::config::Config;
use crate::connection::ConnectionRules;
use crate::cpu::{self, CpuQuota};
use crate::listener::{ClosableListener, FIRST_REQUEST_GRACE};
use crate::metrics::{self, Metrics};
use crate::middleware::{self as mw, Faults, Shedder, Timeout};
use crate::openapi;
use crate::pool::{self, CpuPool};
use crate::routes::{hello, ops, ping, tasks, work};
use crate::serve::{self, Server};
use crate::shutdown::Lifecycle;
use crate::state::{self, AppState, Instance};
use crate::store::TaskStore;
use crate::telemetry;
use crate::tls;

/// How often recorded histogram samples are folded into buckets when nobody scrapes.
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Why the application could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot bind {what} listener on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// A built, bound, not yet running workload.
#[derive(Debug)]
pub struct Application {
    app_listener: TcpListener,
    metrics_listener: TcpListener,
    router: Router,
    metrics_router: Router,
    app_server: Server,
    metrics_server: Server,
    state: AppState,
    drain_delay: Duration,
    shutdown_timeout: Duration,
}

impl Application {
    /// Validates the configuration, detects the CPU quota and binds both listeners.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        config.validate()?;
        let quota = cpu::detect();
        let state = build_state(&config, quota);
        let router = router(&config, state.clone());
        let metrics_router = metrics_router(state.metrics.clone(), &state.instance.hostname);
        let (app_server, metrics_server) = servers(&config, &state)?;
        serve::ensure_fd_headroom(config.max_connections);
        let app_listener = bind("application", config.addr).await?;
        let metrics_listener = bind("metrics", config.metrics_addr).await?;
        Ok(Self {
            app_listener,
            metrics_listener,
            router,
            metrics_router,
            app_server,
            metrics_server,
            state,
            drain_delay: config.drain_delay,
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    pub fn app_addr(&self) -> SocketAddr {
        self.app_listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn app_port(&self) -> u16 {
        self.app_addr().port()
    }

    pub fn metrics_port(&self) -> u16 {
        self.metrics_addr().port()
    }

    pub fn lifecycle(&self) -> Lifecycle {
        self.state.lifecycle.clone()
    }

    /// Serves until `shutdown` resolves, then drains: readiness 503, drain delay, stop accepting,
    /// in-flight requests finish within the shutdown timeout. Returns Ok after a clean or
    /// timed-out drain (both are a normal exit), Err when a server fails on its own.
    pub async fn run_until_stopped<F>(self, shutdown: F) -> Result<(), StartupError>
    where
        F: Future<Output = ()> + Send,
    {
        let Self {
            app_listener,
            metrics_listener,
            router,
            metrics_router,
            app_server,
            metrics_server,
            state,
            drain_delay,
            shutdown_timeout,
        } = self;
        let app_addr = app_listener.local_addr()?;
        let metrics_addr = metrics_listener.local_addr()?;

        let (app_listener, close_listener) = ClosableListener::new(app_listener)?;
        let (stop_app, app_stopped) = tokio::sync::oneshot::channel::<()>();
        let mut app_server = tokio::spawn(app_server.run(app_listener, router, async {
            let _ = app_stopped.await;
        }));
        let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let mut metrics_server =
            tokio::spawn(metrics_server.run(metrics_listener, metrics_router, async {
                let _ = metrics_stopped.await;
            }));
        let upkeep = {
            let metrics = state.metrics.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(METRICS_UPKEEP_INTERVAL);
                loop {
                    tick.tick().await;
                    metrics.run_upkeep();
                }
            })
        };
        tracing::info!(
            %app_addr,
            %metrics_addr,
            worker_threads = tokio::runtime::Handle::current().metrics().num_workers(),
            cpu_workers = state.pool.size(),
            cpu_queue = state.pool.queue_limit(),
            queue_delay_budget = %humantime::format_duration(state.pool.queue_delay_budget()),
            cpu_quota_cores = state.instance.cpu_quota.cores,
            version = state.instance.version,
            "workload listening"
        );

        let outcome = async {
            tokio::select! {
                res = &mut app_server => return Some(flatten("application", res)),
                res = &mut metrics_server => return Some(flatten("metrics", res)),
                () = shutdown => {}
            }
            state.lifecycle.start_draining();
            tracing::info!(drain_delay = %humantime::format_duration(drain_delay), "readiness off; draining");
            tokio::select! {
                res = &mut app_server => return Some(flatten("application", res)),
                () = tokio::time::sleep(drain_delay) => {}
            }
            // Close the listener first, then give connections accepted just before a moment to
            // have their first request read, and only then shut connections down (see
            // crate::listener for why); the grace comes out of the shutdown timeout.
            close_listener.close();
            let grace = FIRST_REQUEST_GRACE.min(shutdown_timeout);
            tokio::select! {
                res = &mut app_server => return Some(flatten("application", res)),
                () = tokio::time::sleep(grace) => {}
            }
            let _ = stop_app.send(());
            tracing::info!(
                shutdown_timeout = %humantime::format_duration(shutdown_timeout),
                "listener closed; waiting for in-flight requests"
            );
            match tokio::time::timeout(shutdown_timeout - grace, &mut app_server).await {
                Ok(res) => Some(flatten("application", res)),
                Err(_) => {
                    tracing::warn!("in-flight requests did not finish within the shutdown timeout; exiting anyway");
                    app_server.abort();
                    None
                }
            }
        }
        .await;

        let _ = stop_metrics.send(());
        if tokio::time::timeout(crate::shutdown::METRICS_STOP_TIMEOUT, &mut metrics_server)
            .await
            .is_err()
        {
            metrics_server.abort();
        }
        upkeep.abort();
        match outcome {
            Some(Err(e)) => Err(e),
            _ => {
                tracing::info!("shutdown complete");
                Ok(())
            }
        }
    }
}

fn flatten(
    what: &'static str,
    res: Result<(), tokio::task::JoinError>,
) -> Result<(), StartupError> {
    res.map_err(|e| {
        StartupError::Serve(std::io::Error::other(format!(
            "{what} server task failed: {e}"
        )))
    })
}

/// Most connections the metrics listener keeps open: scrapers use one or two.
const METRICS_MAX_CONNECTIONS: usize = 64;

/// The application server (connection rules, limit, TLS) and the metrics server (same
/// timeouts, no maximum age: a scraper's connection needs no rebalancing; plain HTTP).
fn servers(config: &Config, state: &AppState) -> Result<(Server, Server), StartupError> {
    let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
    let rules = ConnectionRules {
        header_read_timeout: config.header_read_timeout,
        idle_timeout: nonzero(config.idle_timeout),
        max_age: nonzero(config.max_connection_age),
    };
    let metrics_server = Server::new(
        ConnectionRules {
            max_age: None,
            ..rules.clone()
        },
        METRICS_MAX_CONNECTIONS,
    );
    let mut app_server =
        Server::new(rules, config.max_connections as usize).with_metrics(state.metrics.clone());
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        app_server = app_server.with_tls(tls::server_config(cert, key)?);
    }
    Ok((app_server, metrics_server))
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { what, addr, source })
}

/// Handler state for a configuration.
pub fn build_state(config: &Config, quota: CpuQuota) -> AppState {
    let version = env!("CARGO_PKG_VERSION");
    let metrics = Metrics::new(version, quota.cores);
    let cpu_workers = config
        .cpu_workers
        .map(|n| n as usize)
        .or(config.worker_threads.map(|n| n as usize))
        .unwrap_or_else(|| quota.worker_threads());
    let cpu_queue = config.cpu_queue.map_or_else(
        || cpu_workers.max(1) * pool::DEFAULT_QUEUE_PER_WORKER,
        |n| n as usize,
    );
    AppState {
        instance: Arc::new(Instance {
            version,
            hostname: config.hostname.clone().unwrap_or_else(state::hostname),
            cpu_quota: quota,
            max_in_flight: config.max_in_flight as usize,
            max_work_ms: config.max_work_ms,
            request_timeout: config.request_timeout,
        }),
        store: Arc::new(
            TaskStore::new(config.tasks_capacity, config.tasks_when_full)
                .counting_evictions(metrics.tasks_evicted()),
        ),
        pool: CpuPool::new(
            cpu_workers,
            cpu_queue,
            config
                .queue_delay_budget
                .unwrap_or_else(|| admission::default_budget(config.request_timeout)),
            metrics.clone(),
        ),
        lifecycle: Lifecycle::new(),
        metrics,
    }
}

/// The application router with every layer, in order from the outside in:
/// identity header + error shape, tracing span, metrics, panic catcher, body limit (see
/// [`outer_layers`]), then per traffic route: load shedding, timeout, fault injection.
pub fn router(config: &Config, state: AppState) -> Router {
    let faults = Faults {
        error_ratio: config.fault_error_ratio,
        delay_min: config.fault_delay_min,
        delay_max: config.fault_delay_max,
    };
    let mut traffic: Router<AppState> = Router::new()
        .route("/ping", get(ping::ping))
        .route("/api/v1/hello", post(hello::hello))
        .route("/tasks", get(tasks::list).post(tasks::create))
        .route("/tasks/{id}", get(tasks::get).delete(tasks::delete))
        .route("/work/cpu", get(work::cpu))
        .route("/work/io", get(work::io))
        .route("/status/{code}", get(work::status));
    if faults.enabled() {
        traffic = traffic.route_layer(from_fn_with_state(faults, mw::faults));
    }
    let traffic = traffic
        .route_layer(from_fn_with_state(
            Timeout {
                limit: config.request_timeout,
                metrics: state.metrics.clone(),
            },
            mw::timeout,
        ))
        .route_layer(from_fn_with_state(
            Shedder::new(config.max_in_flight as usize, state.metrics.clone()),
            mw::shed,
        ));

    let ops: Router<AppState> = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/info", get(ops::info))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi::document(config.max_work_ms)));

    let app = traffic
        .merge(ops)
        .fallback(mw::not_found)
        .with_state(state.clone());
    outer_layers(app, config, &state)
}

/// The layers every response passes through, from the inside out:
/// - body limit;
/// - panic catcher: a panicking handler becomes an ordinary 500 *here*, inside the metrics and
///   tracing layers, so the 500 is counted in the duration histogram, recorded on the span and
///   the active gauge goes back down like for any other answer (outside them, the panic unwound
///   through the metrics future and the 500 was never recorded);
/// - metrics (the route label comes from `MatchedPath`, set by the router before these run);
/// - tracing span (only with an exporter);
/// - identity header and the shared error shape (outermost, so every answer gets them).
pub fn outer_layers(app: Router, config: &Config, state: &AppState) -> Router {
    let metrics = config
        .http_metrics
        .then(|| metrics::MetricsLayer::new(state.metrics.clone()));
    // The tracing layer exists to feed the trace exporter: without one it is not installed (its
    // spans would be disabled anyway; see telemetry::init).
    let tracing = (config.http_tracing && config.exports_traces())
        .then(|| telemetry::http_trace_layer(config.trace_sample_ratio));
    // One `Router::layer` call for the whole stack, outermost first: axum boxes every route
    // again at each call, and each box costs two allocations per request (the service's clone
    // and its future). Layered one call each, the tracing layer's box alone made an untraced
    // request cost 8% more instructions than metrics-only (bench/workload-overhead.sh).
    app.layer(
        ServiceBuilder::new()
            .layer(from_fn_with_state(
                served_by(&state.instance.hostname),
                mw::finalize,
            ))
            .option_layer(tracing)
            .option_layer(metrics)
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(DefaultBodyLimit::max(config.max_body_bytes)),
    )
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    crate::error::AppError::from_status(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "the handler panicked",
    )
    .into_response()
}

fn served_by(hostname: &str) -> HeaderValue {
    HeaderValue::from_str(hostname).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// The metrics listener's router: `/metrics` only (same identity header and error shape).
pub fn metrics_router(metrics: Arc<Metrics>, hostname: &str) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .fallback(mw::not_found)
        .with_state(metrics)
        .layer(from_fn_with_state(served_by(hostname), mw::finalize))
}

async fn render_metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::QuotaSource;

    /// No route of the application panics on purpose, so the composition is checked with one
    /// that does, behind the same [`outer_layers`], served on 127.0.0.1:0.
    #[tokio::test]
    async fn a_panicking_handler_is_a_500_counted_in_the_duration_histogram() {
        let config = Config::local_test();
        let quota = CpuQuota {
            cores: 1.0,
            source: QuotaSource::Host,
        };
        let state = build_state(&config, quota);
        let routes = Router::new().route(
            "/boom/{id}",
            get(|| async {
                panic!("a handler bug");
                #[allow(unreachable_code)]
                ""
            }),
        );
        let app = outer_layers(routes, &config, &state);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(axum::serve(listener, app).into_future());

        let response = reqwest::get(format!("http://{addr}/boom/7")).await.unwrap();
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()["x-served-by"], "test-host");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["status"], 500, "{body}");

        let text = state.metrics.render();
        let count = text
            .lines()
            .find(|l| {
                l.starts_with("http_server_request_duration_seconds_count{")
                    && l.contains("route=\"/boom/{id}\"")
                    && l.contains("status=\"500\"")
            })
            .unwrap_or_else(|| panic!("no 500 in the duration histogram:\n{text}"));
        assert!(count.ends_with(" 1"), "{count}");
        assert!(
            text.lines().any(|l| l == "http_server_active_requests 0"),
            "the active gauge did not come back down:\n{text}"
        );
        server.abort();
    }
}
