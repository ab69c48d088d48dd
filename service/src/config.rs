//! Typed configuration: one clap struct, every setting a flag with an env twin.
//!
//! The env names are part of the shared interface (compose files, Kubernetes manifests and the
//! system tests set them), so they are spelled out explicitly rather than derived.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::store::WhenFull;

/// Command line of the `workload` binary.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "workload",
    version,
    about = "The HTTP API under test: CPU-bound, I/O-bound and CRUD endpoints, instrumented and production-shaped"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands; without one the server runs.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Probe the local instance's /healthz (port taken from --addr / WORKLOAD_ADDR); exit 0 or 1.
    /// For container images that ship no curl.
    Healthcheck {
        /// How long to wait for the answer.
        #[arg(long, env = "WORKLOAD_HEALTHCHECK_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// Path to probe: `/healthz` for the workload; the health path of another image when
        /// the binary is copied into it (docs/own-service.md).
        #[arg(long, env = "WORKLOAD_HEALTHCHECK_PATH", default_value = "/healthz", value_parser = parse_probe_path)]
        path: String,
    },
    /// Check the settings and the environment the server would start with (listeners can be
    /// bound, log filter, OTLP endpoint), print every problem, exit 0 when there is none and 1
    /// otherwise. Runs before the server as an initContainer / a compose one-shot service.
    CheckConfig,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log shippers).
    Json,
    /// Human-readable text.
    Text,
}

/// Every server setting. Each flag is `global`, so it is accepted before or after a subcommand:
/// `workload --addr :8081 serve`, `workload serve --addr :8081` and
/// `workload healthcheck --addr 127.0.0.1:8081` all work.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Application listener.
    #[arg(
        long,
        global = true,
        env = "WORKLOAD_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub addr: SocketAddr,

    /// Metrics listener (Prometheus text format at /metrics), separate so traffic never hides it.
    #[arg(
        long,
        global = true,
        env = "WORKLOAD_METRICS_ADDR",
        default_value = "0.0.0.0:9000"
    )]
    pub metrics_addr: SocketAddr,

    /// After SIGTERM/SIGINT: how long /readyz answers 503 while the listener still accepts,
    /// so load balancers and Kubernetes endpoints stop sending traffic first.
    #[arg(long, global = true, env = "WORKLOAD_DRAIN_DELAY", default_value = "5s", value_parser = humantime::parse_duration)]
    pub drain_delay: Duration,

    /// After the drain delay: how long in-flight requests may take before the process exits anyway.
    #[arg(long, global = true, env = "WORKLOAD_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// Longest time one request may take; beyond it the answer is 503 (reason "timeout").
    #[arg(long, global = true, env = "WORKLOAD_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Concurrent traffic requests beyond which new ones are shed at once with 503 + Retry-After.
    /// Probes, /info, docs and metrics are never shed.
    #[arg(long, global = true, env = "WORKLOAD_MAX_IN_FLIGHT", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,

    /// Largest accepted request body; larger bodies get 413.
    #[arg(long, global = true, env = "WORKLOAD_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Tokio worker threads; default: the CPUs the cgroup quota allows (rounded up, at least 1).
    #[arg(long, global = true, env = "WORKLOAD_WORKER_THREADS", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub worker_threads: Option<u32>,

    /// Concurrent CPU-bound jobs (/work/cpu, /api/v1/hello) on the blocking pool; default: the
    /// worker thread count. More jobs than this wait their turn instead of oversubscribing the CPU.
    #[arg(long, global = true, env = "WORKLOAD_CPU_WORKERS", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpu_workers: Option<u32>,

    /// Hard cap on CPU jobs waiting for a busy CPU pool, a memory safety net; beyond it a CPU job
    /// is shed at once with 503 + Retry-After (reason "overload"). What normally sheds is
    /// --queue-delay-budget. Default: 256 x the CPU workers. 0 = no queue.
    #[arg(long, global = true, env = "WORKLOAD_CPU_QUEUE", value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub cpu_queue: Option<u32>,

    /// Longest a CPU job may be expected to wait for a CPU slot: a job whose estimated wait
    /// (running + queued jobs x recent mean job time / CPU workers) exceeds it is shed at once
    /// with 503 + Retry-After (reason "queue_delay"). Default: a tenth of --request-timeout (3s
    /// for 30s). 0s = no queueing once job times are known.
    #[arg(long, global = true, env = "WORKLOAD_QUEUE_DELAY_BUDGET", value_parser = humantime::parse_duration)]
    pub queue_delay_budget: Option<Duration>,

    /// Largest `ms` accepted by /work/cpu and /work/io.
    #[arg(
        long,
        global = true,
        env = "WORKLOAD_MAX_WORK_MS",
        default_value_t = 10_000
    )]
    pub max_work_ms: u64,

    /// Log format.
    #[arg(
        long,
        global = true,
        env = "WORKLOAD_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    pub log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, global = true, env = "WORKLOAD_LOG", default_value = "info")]
    pub log_filter: String,

    /// Most tasks kept in memory; see --tasks-when-full for what a create does beyond.
    #[arg(
        long,
        global = true,
        env = "WORKLOAD_TASKS_CAPACITY",
        default_value_t = 10_000
    )]
    pub tasks_capacity: usize,

    /// What POST /tasks does when the store holds --tasks-capacity tasks: evict-oldest removes the
    /// oldest task (every create succeeds), reject answers 507.
    #[arg(
        long,
        global = true,
        env = "WORKLOAD_TASKS_WHEN_FULL",
        value_enum,
        default_value_t = WhenFull::EvictOldest
    )]
    pub tasks_when_full: WhenFull,

    /// Fraction (0..=1) of traffic requests answered with an injected 500. Never touches probes or metrics.
    #[arg(long, global = true, env = "WORKLOAD_FAULT_ERROR_RATIO", default_value_t = 0.0, value_parser = parse_ratio)]
    pub fault_error_ratio: f64,

    /// Lower bound of a random extra delay added to traffic requests.
    #[arg(long, global = true, env = "WORKLOAD_FAULT_DELAY_MIN", default_value = "0s", value_parser = humantime::parse_duration)]
    pub fault_delay_min: Duration,

    /// Upper bound of the random extra delay (0s = no delay).
    #[arg(long, global = true, env = "WORKLOAD_FAULT_DELAY_MAX", default_value = "0s", value_parser = humantime::parse_duration)]
    pub fault_delay_max: Duration,

    /// Record the HTTP metrics middleware (off only to measure its overhead).
    #[arg(long, global = true, env = "WORKLOAD_HTTP_METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub http_metrics: bool,

    /// Open a tracing span per request when traces are exported (off only to measure its overhead).
    #[arg(long, global = true, env = "WORKLOAD_HTTP_TRACING", default_value_t = true, action = clap::ArgAction::Set)]
    pub http_tracing: bool,

    /// With OTLP export: fraction (0..=1) of requests without a trace context that start a trace.
    /// A request whose `traceparent` is sampled is always traced and an unsampled one never
    /// (parent-based), so `loadgen --trace-sample` picks what is traced. The decision is taken
    /// before the span exists: an untraced request costs no span at all. Lower it for load tests.
    #[arg(long, global = true, env = "WORKLOAD_TRACE_SAMPLE_RATIO", default_value_t = 1.0, value_parser = parse_ratio)]
    pub trace_sample_ratio: f64,

    /// OTLP/http endpoint; traces are exported only when set (standard OpenTelemetry variable).
    /// Plain http:// only (no TLS in the exporter): other schemes are refused at start.
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Service name reported in traces.
    #[arg(
        long,
        global = true,
        env = "OTEL_SERVICE_NAME",
        default_value = "workload"
    )]
    pub service_name: String,

    /// Identity put in `x-served-by` and /info; default: the kernel hostname (the pod name on Kubernetes).
    #[arg(long, global = true, env = "WORKLOAD_HOSTNAME")]
    pub hostname: Option<String>,

    // ---- connections (see crate::connection and docs/workload-connections.md) ----
    /// Time a client has to complete a request head once its first byte arrived (and, for a new
    /// connection, from accept: TLS handshake and first request head). Stalled clients
    /// (slowloris) are cut off after it.
    #[arg(long, global = true, env = "WORKLOAD_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// A keep-alive connection with no request in flight and no new request started for this
    /// long is closed (HTTP/2: GOAWAY). 0 = never. Longer than common load balancers' idle
    /// timeout (60 s), so a balancer never reuses a connection the workload just closed.
    #[arg(long, global = true, env = "WORKLOAD_IDLE_TIMEOUT", default_value = "75s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// Once a connection is this old (plus or minus 10% jitter), its next response carries
    /// `Connection: close` and it closes after it (HTTP/2: GOAWAY), so long-lived clients
    /// reconnect and a Service's new pods get their share. 0 = never.
    #[arg(long, global = true, env = "WORKLOAD_MAX_CONNECTION_AGE", default_value = "5m", value_parser = humantime::parse_duration)]
    pub max_connection_age: Duration,

    /// Open application connections beyond which a new connection is accepted and closed at once
    /// (counted as rejected, reason "connection_limit").
    #[arg(long, global = true, env = "WORKLOAD_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Serve HTTPS (HTTP/1.1 and HTTP/2 by ALPN) with this PEM certificate chain; needs --tls-key.
    #[arg(
        long,
        global = true,
        env = "WORKLOAD_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(
        long,
        global = true,
        env = "WORKLOAD_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
}

/// Configuration problems clap cannot see on its own.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("--fault-delay-min ({min:?}) is larger than --fault-delay-max ({max:?})")]
    DelayRange { min: Duration, max: Duration },
    #[error("--max-body-bytes must be at least 1")]
    BodyLimit,
    #[error("--tasks-capacity must be at least 1")]
    TasksCapacity,
    #[error(
        "--request-timeout must be at least {} (got {}): a shorter timeout answers every request 503",
        humantime::format_duration(MIN_REQUEST_TIMEOUT),
        humantime::format_duration(*.0)
    )]
    RequestTimeout(Duration),
    #[error(
        "--header-read-timeout must be at least {} (got {}): stalled clients must be cut off",
        humantime::format_duration(MIN_REQUEST_TIMEOUT),
        humantime::format_duration(*.0)
    )]
    HeaderReadTimeout(Duration),
    #[error(
        "--queue-delay-budget ({}) is longer than --request-timeout ({}): a job admitted to wait that long would time out",
        humantime::format_duration(*.budget),
        humantime::format_duration(*.timeout)
    )]
    QueueDelayBudget { budget: Duration, timeout: Duration },
    #[error(
        "--otlp-endpoint / OTEL_EXPORTER_OTLP_ENDPOINT {0:?}: only http:// is supported (this build's \
         OTLP exporter has no TLS); point it at a collector on a plain-HTTP port, such as a local \
         OpenTelemetry Collector sidecar that forwards over TLS"
    )]
    OtlpScheme(String),
    #[error(
        "OTEL_EXPORTER_OTLP_ENDPOINT {0:?} is not an http:// URL with a host (example: http://tempo:4318)"
    )]
    OtlpUrl(String),
}

/// Shortest accepted `--request-timeout`. Zero (or anything below the timer's resolution) would
/// time out every request before its handler runs.
pub const MIN_REQUEST_TIMEOUT: Duration = Duration::from_millis(1);

impl Config {
    /// Checks what clap's per-flag parsers cannot: minimums of durations and relations between
    /// settings. The rest is checked at parse time: `--fault-error-ratio` is a finite number in
    /// 0..=1, counts have their ranges in their value parsers. Durations that may be zero:
    /// `--drain-delay` (no drain), `--shutdown-timeout` (in-flight requests are cut at once) and the
    /// fault delays (no delay); none can overflow (timers saturate at the far future).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.request_timeout < MIN_REQUEST_TIMEOUT {
            return Err(ConfigError::RequestTimeout(self.request_timeout));
        }
        if self.header_read_timeout < MIN_REQUEST_TIMEOUT {
            return Err(ConfigError::HeaderReadTimeout(self.header_read_timeout));
        }
        if let Some(budget) = self.queue_delay_budget
            && budget > self.request_timeout
        {
            return Err(ConfigError::QueueDelayBudget {
                budget,
                timeout: self.request_timeout,
            });
        }
        if self.fault_delay_min > self.fault_delay_max {
            return Err(ConfigError::DelayRange {
                min: self.fault_delay_min,
                max: self.fault_delay_max,
            });
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::BodyLimit);
        }
        if self.tasks_capacity == 0 {
            return Err(ConfigError::TasksCapacity);
        }
        if let Some(e) = self.otlp_endpoint_error() {
            return Err(e);
        }
        Ok(())
    }

    /// Why the OTLP endpoint cannot work, if it cannot. Refused at start rather than left to the
    /// exporter, which would fail on every batch in the background and lose every span without a
    /// word.
    pub fn otlp_endpoint_error(&self) -> Option<ConfigError> {
        let endpoint = self
            .otlp_endpoint
            .as_deref()
            .filter(|_| self.exports_traces())?;
        let lower = endpoint.trim().to_ascii_lowercase();
        if lower.starts_with("https://") {
            Some(ConfigError::OtlpScheme(endpoint.to_string()))
        } else if !is_http_url(&lower) {
            Some(ConfigError::OtlpUrl(endpoint.to_string()))
        } else {
            None
        }
    }

    /// True when an OTLP endpoint is configured (an empty value counts as unset).
    pub fn exports_traces(&self) -> bool {
        self.otlp_endpoint
            .as_deref()
            .is_some_and(|e| !e.trim().is_empty())
    }

    /// A configuration with defaults, both listeners on 127.0.0.1 port 0 and no drain delay:
    /// what tests and embedders start from. Ignores the environment.
    pub fn local_test() -> Self {
        let mut config = Cli::parse_from(["workload"]).config;
        config.addr = ([127, 0, 0, 1], 0).into();
        config.metrics_addr = ([127, 0, 0, 1], 0).into();
        config.drain_delay = Duration::ZERO;
        config.shutdown_timeout = Duration::from_secs(5);
        config.log_format = LogFormat::Text;
        config.worker_threads = None;
        config.cpu_workers = None;
        config.cpu_queue = None;
        config.queue_delay_budget = None;
        config.fault_error_ratio = 0.0;
        config.fault_delay_min = Duration::ZERO;
        config.fault_delay_max = Duration::ZERO;
        config.otlp_endpoint = None;
        config.hostname = Some("test-host".into());
        config.tls_cert = None;
        config.tls_key = None;
        config.tasks_when_full = WhenFull::default();
        config
    }
}

/// An absolute path with no whitespace or control characters: it goes into a request line.
fn parse_probe_path(s: &str) -> Result<String, String> {
    if s.starts_with('/') && !s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not an absolute path like /healthz"))
    }
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let value: f64 = s.parse().map_err(|e| format!("not a number: {e}"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not in 0..=1"))
    }
}

/// `http://host[...]` with a non-empty host (lower-cased already): the only form this build's
/// OTLP exporter can send to.
fn is_http_url(endpoint: &str) -> bool {
    endpoint
        .strip_prefix("http://")
        .and_then(|r| r.split(['/', '?', '#']).next())
        .is_some_and(|authority| {
            let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
            !host.is_empty() && !authority.contains(char::is_whitespace)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn an_otlp_endpoint_other_than_plain_http_is_refused() {
        let with = |endpoint: &str| {
            let mut c = Config::local_test();
            c.otlp_endpoint = Some(endpoint.to_string());
            c.validate()
        };
        assert_eq!(with("http://collector:4318"), Ok(()));
        assert_eq!(with("HTTP://collector:4318/"), Ok(()));
        assert_eq!(with(""), Ok(()), "empty means unset");
        assert_eq!(
            with("https://collector:4318"),
            Err(ConfigError::OtlpScheme("https://collector:4318".into())),
            "no TLS in this build's exporter"
        );
        for bad in [
            "collector:4318",
            "grpc://collector:4317",
            "http://",
            "http://:4318",
            "http://a b",
        ] {
            assert_eq!(
                with(bad),
                Err(ConfigError::OtlpUrl(bad.to_string())),
                "{bad}"
            );
        }
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_interface() {
        let cli = Cli::try_parse_from(["workload"]).unwrap();
        // Defaults may be overridden by the environment of whoever runs the test; only check
        // values when the env twin is absent.
        if std::env::var_os("WORKLOAD_ADDR").is_none() {
            assert_eq!(cli.config.addr, "0.0.0.0:8080".parse().unwrap());
        }
        if std::env::var_os("WORKLOAD_METRICS_ADDR").is_none() {
            assert_eq!(cli.config.metrics_addr, "0.0.0.0:9000".parse().unwrap());
        }
        if std::env::var_os("WORKLOAD_DRAIN_DELAY").is_none() {
            assert_eq!(cli.config.drain_delay, Duration::from_secs(5));
        }
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(Cli::try_parse_from(["workload", "--fault-error-ratio", "1.5"]).is_err());
        assert!(Cli::try_parse_from(["workload", "--drain-delay", "soon"]).is_err());
        assert!(Cli::try_parse_from(["workload", "--max-in-flight", "0"]).is_err());
        assert!(Cli::try_parse_from(["workload", "--log-format", "xml"]).is_err());
        assert!(Cli::try_parse_from(["workload", "--cpu-queue", "-1"]).is_err());
        assert!(Cli::try_parse_from(["workload", "--cpu-queue", "many"]).is_err());
        let mut config = Config::local_test();
        config.fault_delay_min = Duration::from_secs(2);
        config.fault_delay_max = Duration::from_secs(1);
        assert!(matches!(
            config.validate(),
            Err(ConfigError::DelayRange { .. })
        ));
    }

    #[test]
    fn request_timeout_has_a_sane_minimum() {
        let mut config = Config::local_test();
        config.request_timeout = Duration::ZERO;
        let err = config.validate().unwrap_err();
        assert_eq!(err, ConfigError::RequestTimeout(Duration::ZERO));
        assert!(
            err.to_string()
                .contains("--request-timeout must be at least 1ms"),
            "{err}"
        );
        config.request_timeout = Duration::from_micros(999);
        assert!(config.validate().is_err());
        config.request_timeout = Duration::from_millis(1);
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn the_queue_delay_budget_defaults_to_none_and_may_not_exceed_the_request_timeout() {
        let mut config = Config::local_test();
        assert_eq!(config.queue_delay_budget, None);
        config.request_timeout = Duration::from_secs(2);
        config.queue_delay_budget = Some(Duration::from_secs(3));
        let err = config.validate().unwrap_err();
        assert!(
            err.to_string()
                .contains("--queue-delay-budget (3s) is longer than --request-timeout (2s)"),
            "{err}"
        );
        config.queue_delay_budget = Some(Duration::from_secs(2));
        assert_eq!(config.validate(), Ok(()));
        config.queue_delay_budget = Some(Duration::ZERO);
        assert_eq!(config.validate(), Ok(()));
        let cli = Cli::try_parse_from(["workload", "--queue-delay-budget", "250ms"]).unwrap();
        assert_eq!(
            cli.config.queue_delay_budget,
            Some(Duration::from_millis(250))
        );
        assert!(Cli::try_parse_from(["workload", "--queue-delay-budget", "soon"]).is_err());
    }

    #[test]
    fn zero_is_fine_where_it_means_none() {
        let mut config = Config::local_test();
        config.drain_delay = Duration::ZERO;
        config.shutdown_timeout = Duration::ZERO;
        config.fault_delay_min = Duration::ZERO;
        config.fault_delay_max = Duration::ZERO;
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn ratios_must_be_finite_and_in_range() {
        for bad in ["-0.1", "1.01", "NaN", "inf", "-inf", "half"] {
            assert!(
                Cli::try_parse_from(["workload", "--fault-error-ratio", bad]).is_err(),
                "{bad}"
            );
        }
        for good in ["0", "0.5", "1"] {
            assert!(Cli::try_parse_from(["workload", "--fault-error-ratio", good]).is_ok());
        }
    }

    #[test]
    fn switches_take_values() {
        let cli = Cli::try_parse_from([
            "workload",
            "--http-metrics",
            "false",
            "--http-tracing=false",
        ])
        .unwrap();
        assert!(!cli.config.http_metrics);
        assert!(!cli.config.http_tracing);
    }

    #[test]
    fn healthcheck_subcommand_parses() {
        let cli = Cli::try_parse_from(["workload", "healthcheck", "--timeout", "1s"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Healthcheck { .. })));
        let cli = Cli::try_parse_from(["workload", "healthcheck", "--path", "/health"]).unwrap();
        assert!(
            matches!(cli.command, Some(Command::Healthcheck { path, .. }) if path == "/health")
        );
        for bad in ["health", "/a b", "/a\r\nX: y"] {
            assert!(
                Cli::try_parse_from(["workload", "healthcheck", "--path", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn check_config_subcommand_parses_with_settings() {
        let cli =
            Cli::try_parse_from(["workload", "check-config", "--addr", "127.0.0.1:8081"]).unwrap();
        assert!(matches!(cli.command, Some(Command::CheckConfig)));
        assert_eq!(cli.config.addr, "127.0.0.1:8081".parse().unwrap());
    }

    #[test]
    fn settings_are_accepted_after_a_subcommand() {
        let cli = Cli::try_parse_from([
            "workload",
            "healthcheck",
            "--addr",
            "127.0.0.1:8081",
            "--timeout",
            "1s",
        ])
        .unwrap();
        assert_eq!(cli.config.addr, "127.0.0.1:8081".parse().unwrap());
        assert!(
            matches!(cli.command, Some(Command::Healthcheck { timeout, .. }) if timeout == Duration::from_secs(1))
        );

        let cli = Cli::try_parse_from([
            "workload",
            "serve",
            "--metrics-addr",
            "127.0.0.1:9001",
            "--drain-delay",
            "1s",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Serve)));
        assert_eq!(cli.config.metrics_addr, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(cli.config.drain_delay, Duration::from_secs(1));

        // Before the subcommand still works.
        let cli =
            Cli::try_parse_from(["workload", "--addr", "127.0.0.1:8082", "healthcheck"]).unwrap();
        assert_eq!(cli.config.addr, "127.0.0.1:8082".parse().unwrap());
    }
}
