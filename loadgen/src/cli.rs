//! The command line: one typed clap struct, env twins for what containers set.
//!
//! Adding a subcommand: add a variant to [`Command`], a match arm in [`crate::app::dispatch`] and a file under
//! `cmd/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::parse;

const EXAMPLES: &str = "\
Examples:
  loadgen --target http://127.0.0.1:8080/ping                       # 200 requests, 50 users
  loadgen --target http://127.0.0.1:8080/ping -c 3 -n 100000         # closed loop, 3 users
  loadgen --target http://127.0.0.1:8080/ping --rate 500 --duration 30s --threshold 'p99<250ms'
  loadgen run scenarios/crud.yaml --target http://127.0.0.1:8080 --out run.json
  loadgen compare docker.json k8s-hpa.json
  loadgen merge w1.json w2.json w3.json --out all.json
  loadgen report docker.json k8s-hpa.json --html comparison.html
  loadgen capacity --target http://127.0.0.1:8080/ping --threshold 'p99<100ms' --out cap.json

Exit codes: 0 ok, 1 runtime error, 2 bad usage or input, 99 a threshold failed, 130 interrupted (Ctrl-C).";

/// An honest HTTP load generator: open and closed loop, latency without coordinated omission,
/// HDR histograms in constant memory, mergeable JSON reports, thresholds and Prometheus metrics.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The quick form: `loadgen --target URL [flags]`.
    #[command(flatten)]
    pub quick: QuickArgs,
}

/// Subcommands.
// Parsed once per process: the size difference of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario file (YAML or TOML). Load flags given here replace the file's `load:` block.
    ///
    /// Example: loadgen run scenarios/crud.yaml --target http://127.0.0.1:8080 --out run.json
    Run(RunCmd),
    /// Print runs side by side with the change of each against the first.
    ///
    /// Example: loadgen compare docker.json k8s-hpa.json
    Compare(CompareCmd),
    /// Merge the reports of several workers into one, exactly (histograms are added).
    ///
    /// Example: loadgen merge w1.json w2.json w3.json --out all.json
    Merge(MergeCmd),
    /// Render reports as one self-contained HTML page: one run, or several runs overlaid.
    ///
    /// Example: loadgen report docker.json k8s-hpa.json --html comparison.html
    Report(ReportCmd),
    /// Find the highest open-loop rate that meets the objectives (--threshold): rising steps,
    /// then bisection (docs/capacity.md).
    ///
    /// Example: loadgen capacity --target http://127.0.0.1:8080/work/cpu?ms=2 --threshold 'p99<100ms' --threshold 'success_rate>99%' --out cap.json
    Capacity(Box<CapacityCmd>),
}

/// `loadgen --target URL`.
#[derive(Debug, Args)]
pub struct QuickArgs {
    /// URL to load, path and query included. Example: --target http://127.0.0.1:8080/ping
    #[arg(long, short = 'u', env = "LOADGEN_TARGET", value_name = "URL")]
    pub target: Option<String>,
    /// HTTP method. Example: --method POST
    #[arg(long, short = 'm', default_value = "GET")]
    pub method: String,
    /// Request header, repeatable. Example: --header 'Authorization: Bearer x'
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE", value_parser = parse::header)]
    pub headers: Vec<(String, String)>,
    /// Request body; `@FILE` reads a file. Templates work: --body '{"n": {{randint 1 1000}}}'
    #[arg(long, short = 'b')]
    pub body: Option<String>,
    #[command(flatten)]
    pub run: RunOpts,
}

/// `loadgen run SCENARIO`.
#[derive(Debug, Args)]
pub struct RunCmd {
    /// Scenario file (`.yaml`, `.yml` or `.toml`).
    pub scenario: PathBuf,
    /// Base URL; overrides the scenario's `target`. Example: --target http://127.0.0.1:8080
    #[arg(long, short = 'u', env = "LOADGEN_TARGET", value_name = "URL")]
    pub target: Option<String>,
    #[command(flatten)]
    pub run: RunOpts,
}

/// Options shared by the quick form and `run`.
#[derive(Debug, Args, Clone)]
pub struct RunOpts {
    /// Closed loop: concurrent users, each with its own keep-alive connection. Example: -c 50
    #[arg(long, short = 'c', visible_alias = "users", value_parser = parse::positive)]
    pub concurrency: Option<u64>,
    /// Stop after this many requests (iterations). Example: -n 100000 or -n 100k
    #[arg(long, short = 'n', value_parser = parse::count)]
    pub requests: Option<u64>,
    /// Stop after this time. Example: --duration 30s
    #[arg(long, short = 'd', value_parser = parse::duration)]
    pub duration: Option<Duration>,
    /// Open loop: arrivals per second, whatever the target does. Example: --rate 500
    #[arg(long, short = 'r', value_parser = parse::rate)]
    pub rate: Option<f64>,
    /// Open loop: ramp linearly from --rate to this rate over --duration. Example: --ramp-to 1000
    #[arg(long, value_parser = parse::rate)]
    pub ramp_to: Option<f64>,
    /// Open loop: most iterations in flight (and connections). Example: --max-in-flight 200
    #[arg(long, value_parser = parse::positive)]
    pub max_in_flight: Option<u64>,
    /// Per-request timeout (connect + response + body). Example: --timeout 5s
    #[arg(long, short = 't', value_parser = parse::duration)]
    pub timeout: Option<Duration>,
    /// Use HTTP/2 (multiplexed; h2c for http://, ALPN for https://).
    #[arg(long)]
    pub http2: bool,
    /// HTTP/2 only: connections shared by the workers. Example: --connections 4
    #[arg(long, default_value = "1", value_parser = parse::positive)]
    pub connections: u64,
    /// Accept any TLS certificate (self-signed test targets only).
    #[arg(long)]
    pub insecure: bool,
    /// Close a connection once it is this old (after its in-flight request) and open a new one,
    /// so a per-connection balancer (a Kubernetes Service) spreads load over replicas added during
    /// the run; `forever` keeps connections (pure throughput runs). Default 10s, jittered 10%
    /// down. Example: --connection-max-age 5s
    #[arg(long, env = "LOADGEN_CONNECTION_MAX_AGE", value_name = "DURATION|forever", value_parser = crate::lifetime::parse_max_age)]
    pub connection_max_age: Option<crate::lifetime::MaxAge>,
    /// Close a connection after this many requests and open a new one. Example: --connection-max-requests 1000
    #[arg(long, env = "LOADGEN_CONNECTION_MAX_REQUESTS", value_name = "N", value_parser = parse::count)]
    pub connection_max_requests: Option<u64>,
    /// A new connection per request (`Connection: close`), like oha --disable-keepalive.
    #[arg(long, conflicts_with_all = ["connection_max_age", "connection_max_requests"])]
    pub no_keepalive: bool,
    /// Wait until this moment before the first request, so workers started seconds apart (the
    /// pods of a Job) send together: RFC 3339 in UTC or unix seconds. Up to 60s in the past starts
    /// at once with a warning; earlier, or more than 24h ahead, is a usage error.
    /// Example: --start-at 2026-12-01T09:30:00Z or --start-at 1796117400
    #[arg(long, env = "LOADGEN_START_AT", value_name = "TIME", value_parser = parse::start_at)]
    pub start_at: Option<std::time::SystemTime>,
    /// Trust the CA certificates in this PEM file beside the system roots (a private or
    /// self-signed CA); a server certificate that is itself in the file is trusted too, as curl
    /// does. Example: --cacert ca.pem
    #[arg(long, env = "LOADGEN_CACERT", value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM, leaf first) for servers that ask for one (mutual TLS); needs
    /// --key. Example: --cert client.pem --key client-key.pem
    #[arg(long, env = "LOADGEN_CERT", value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --cert.
    #[arg(long, env = "LOADGEN_KEY", value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Worker threads (default: the cores available). Example: --threads 2
    #[arg(long, env = "LOADGEN_THREADS", value_parser = parse::positive)]
    pub threads: Option<u64>,
    /// Write the JSON report here; `-` writes it to stdout (the summary then goes to stderr).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<String>,
    /// Pass/fail criterion, repeatable. Example: --threshold 'p99<250ms' --threshold 'success_rate>99.5%'
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Serve Prometheus metrics here while the run lasts. Example: --metrics-addr 0.0.0.0:9464
    #[arg(long, env = "LOADGEN_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Keep serving metrics this long after the run so the last scrape sees final values.
    #[arg(long, env = "LOADGEN_METRICS_LINGER", default_value = "15s", value_parser = parse::duration)]
    pub metrics_linger: Duration,
    /// Push metrics with Prometheus remote write. Example: --remote-write http://prom:9090/api/v1/write
    #[arg(long, env = "LOADGEN_REMOTE_WRITE", value_name = "URL")]
    pub remote_write: Option<String>,
    /// How often to push with --remote-write.
    #[arg(long, default_value = "5s", value_parser = parse::duration)]
    pub remote_write_interval: Duration,
    /// Longest one push may take, response included (the final push delays the report).
    #[arg(long, env = "LOADGEN_REMOTE_WRITE_TIMEOUT", default_value = "10s", value_parser = parse::duration)]
    pub remote_write_timeout: Duration,
    /// The request durations in --remote-write as native histograms (exponential buckets, from
    /// the HDR histograms; Prometheus 3, or 2.40+ with native histograms on), classic `_bucket`
    /// series, or both.
    #[arg(
        long,
        env = "LOADGEN_REMOTE_WRITE_HISTOGRAMS",
        value_enum,
        default_value = "both"
    )]
    pub remote_write_histograms: crate::metrics::native_latency::HistogramExport,
    /// Basic-auth user of --remote-write (the password comes from --remote-write-password-file).
    #[arg(long, env = "LOADGEN_REMOTE_WRITE_USER", requires_all = ["remote_write", "remote_write_password_file"])]
    pub remote_write_user: Option<String>,
    /// File holding the basic-auth password of --remote-write (first line; never pass it inline).
    #[arg(
        long,
        env = "LOADGEN_REMOTE_WRITE_PASSWORD_FILE",
        value_name = "FILE",
        requires = "remote_write_user"
    )]
    pub remote_write_password_file: Option<PathBuf>,
    /// File holding a bearer token for --remote-write (first line), instead of basic auth.
    #[arg(long, env = "LOADGEN_REMOTE_WRITE_BEARER_TOKEN_FILE", value_name = "FILE",
          requires = "remote_write", conflicts_with_all = ["remote_write_user", "remote_write_password_file"])]
    pub remote_write_bearer_token_file: Option<PathBuf>,
    /// Trust the CA certificates in this PEM file for an https --remote-write, beside the system
    /// roots (as --cacert does for the target). Example: --remote-write-cacert prom-ca.pem
    #[arg(
        long,
        env = "LOADGEN_REMOTE_WRITE_CACERT",
        value_name = "FILE",
        requires = "remote_write"
    )]
    pub remote_write_cacert: Option<PathBuf>,
    /// Label on every metric and in the report, repeatable. Example: --label region=eu
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse::label)]
    pub labels: Vec<(String, String)>,
    /// The `deployment` label (docker, k8s-single, k8s-hpa). Example: --deployment docker
    #[arg(long, env = "LOADGEN_DEPLOYMENT")]
    pub deployment: Option<String>,
    /// Run id (the `run` label; default: scenario name and start time).
    #[arg(long, env = "LOADGEN_RUN_ID")]
    pub run_id: Option<String>,
    /// Follow a Deployment and its HPA, or a Knative Configuration or Revision (its Deployments and
    /// PodAutoscalers), while the run lasts; requests sent while it has no ready replica are cold
    /// starts. Example: --watch deployment/workload, --watch configuration/workload
    #[arg(long, env = "LOADGEN_WATCH", value_name = "KIND/NAME")]
    pub watch: Option<String>,
    /// Namespace of --watch (default: the kubeconfig's or the pod's own).
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Minimum spacing of --watch samples.
    #[arg(long, default_value = "1s", value_parser = parse::duration)]
    pub watch_interval: Duration,
    /// With --watch: p99 under which latency counts as recovered after a scale-out (default: back
    /// under the p99 of the 10 s before it, x1.1). Example: --recovery-p99 250ms
    #[arg(long, env = "LOADGEN_RECOVERY_P99", value_name = "DURATION", value_parser = parse::duration)]
    pub recovery_p99: Option<Duration>,
    /// After Ctrl-C, how long requests in flight may take before the partial report is written.
    #[arg(long, default_value = "5s", value_parser = parse::duration)]
    pub grace: Duration,
    /// Open loop: a start later than this after its scheduled time counts as late.
    #[arg(long, default_value = "10ms", value_parser = parse::duration)]
    pub late_tolerance: Duration,
    /// Also write the self-contained HTML report here. Example: --html run.html
    #[arg(long, value_name = "FILE")]
    pub html: Option<String>,
    /// Fraction of requests that carry a sampled W3C `traceparent` header (0 to 1); the slowest of
    /// them are listed in the report with their trace ids. Example: --trace-sample 0.01
    #[arg(long, default_value = "0", value_parser = parse::fraction)]
    pub trace_sample: f64,
    /// No progress display and no summary (the report and errors still appear).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// When stderr is not a terminal (`docker compose logs`, `kubectl logs`): print one plain
    /// progress line this often. Example: --progress-interval 10s
    #[arg(long, env = "LOADGEN_PROGRESS_INTERVAL", default_value = "5s", value_parser = parse::positive_duration)]
    pub progress_interval: Duration,
}

impl RunOpts {
    /// The connection-lifetime flags.
    pub fn lifetime(&self) -> crate::lifetime::LifetimeSettings {
        crate::lifetime::LifetimeSettings {
            max_age: self.connection_max_age,
            max_requests: self.connection_max_requests,
            keepalive: self.no_keepalive.then_some(false),
        }
    }

    /// The load flags given, as typed (`-c 3`, `--duration 2m 30s`), for the summary's first line.
    pub fn load_flags_given(&self) -> Vec<String> {
        let given = [
            ("-c", self.concurrency.map(|c| c.to_string())),
            ("-n", self.requests.map(|n| n.to_string())),
            (
                "--duration",
                self.duration
                    .map(|d| humantime::format_duration(d).to_string()),
            ),
            ("--rate", self.rate.map(|r| format!("{r}/s"))),
            ("--ramp-to", self.ramp_to.map(|r| format!("{r}/s"))),
            ("--max-in-flight", self.max_in_flight.map(|m| m.to_string())),
        ];
        given
            .into_iter()
            .filter_map(|(flag, v)| v.map(|v| format!("{flag} {v}")))
            .collect()
    }

    /// The load flags, applied to the scenario's `load:` block key by key by
    /// [`crate::overrides::apply`].
    pub fn load_flags(&self) -> crate::plan::FlatLoad {
        crate::plan::FlatLoad {
            users: self.concurrency.filter(|_| self.rate.is_none()),
            requests: self.requests,
            duration: self.duration,
            rate: self.rate,
            ramp_to: self.ramp_to,
            max_in_flight: self
                .max_in_flight
                .or(self.concurrency.filter(|_| self.rate.is_some())),
            // No flag for it: the scenario's is kept.
            think_time: None,
        }
    }
}

/// `loadgen compare`.
#[derive(Debug, Args)]
pub struct CompareCmd {
    /// Reports to compare; the first is the baseline.
    #[arg(required = true, num_args = 1..)]
    pub reports: Vec<String>,
    /// Fit the tables to this many columns: runs as rows when they fit, else metrics as rows and
    /// runs as columns. Default: the terminal's width (any width when the output is not a
    /// terminal). Example: --width 100
    #[arg(long, env = "COLUMNS", value_parser = clap::value_parser!(u16).range(20..))]
    pub width: Option<u16>,
}

/// `loadgen report`.
#[derive(Debug, Args)]
pub struct ReportCmd {
    /// Reports; one gives the run page, several the comparison page (the first is the baseline).
    #[arg(required = true, num_args = 1..)]
    pub reports: Vec<String>,
    /// Where to write the HTML file. Example: --html report.html
    #[arg(long, required = true, value_name = "FILE")]
    pub html: String,
}

/// `loadgen merge`.
#[derive(Debug, Args)]
pub struct MergeCmd {
    /// Reports to merge.
    #[arg(required = true, num_args = 1..)]
    pub reports: Vec<String>,
    /// Where to write the merged report (`-` = stdout).
    #[arg(long, short = 'o', required = true)]
    pub out: String,
    /// Thresholds evaluated on the merged result (sets the exit code). Example: --threshold 'p99<250ms'
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Do not print the merged summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `loadgen capacity [SCENARIO] --target URL --threshold EXPR...`.
#[derive(Debug, Args)]
pub struct CapacityCmd {
    /// Scenario file whose request mix is searched (its `load:` block is replaced by the steps).
    /// Without it, the one request of --target/--method/--header/--body is.
    pub scenario: Option<PathBuf>,
    #[command(flatten)]
    pub request: QuickArgs,
    #[command(flatten)]
    pub search: SearchArgs,
}

/// The search flags.
#[derive(Debug, Args, Clone)]
pub struct SearchArgs {
    /// First rate tried (requests per second). Example: --start-rate 100
    #[arg(long, env = "LOADGEN_CAPACITY_START_RATE", default_value = "50", value_parser = parse::rate)]
    pub start_rate: f64,
    /// Factor between rising steps until an objective breaks. Example: --growth 1.5
    #[arg(long, env = "LOADGEN_CAPACITY_GROWTH", default_value = "2")]
    pub growth: f64,
    /// Stop narrowing once the lowest failing rate is within this of the highest passing one.
    /// Example: --precision 2%
    #[arg(long, env = "LOADGEN_CAPACITY_PRECISION", default_value = "5%", value_parser = parse::fraction)]
    pub precision: f64,
    /// Never try a rate above this (the result is then "at least"). Example: --max-rate 5000
    #[arg(long, env = "LOADGEN_CAPACITY_MAX_RATE", value_parser = parse::rate)]
    pub max_rate: Option<f64>,
    /// Most steps tried.
    #[arg(long, env = "LOADGEN_CAPACITY_MAX_STEPS", default_value = "20", value_parser = parse::positive)]
    pub max_steps: u64,
    /// Bound of the whole search: no step starts that would end after it; the best passing rate
    /// so far is reported as bounded. Example: --max-duration 10m
    #[arg(long, env = "LOADGEN_CAPACITY_MAX_DURATION", value_parser = parse::duration)]
    pub max_duration: Option<Duration>,
    /// Length of each step, settle part included. Example: --step-duration 30s
    #[arg(long, env = "LOADGEN_CAPACITY_STEP_DURATION", default_value = "15s", value_parser = parse::duration)]
    pub step_duration: Duration,
    /// First part of each step, not judged (the target settles at the new rate). Example: --step-warmup 10s
    #[arg(long, env = "LOADGEN_CAPACITY_STEP_WARMUP", default_value = "5s", value_parser = parse::duration)]
    pub step_warmup: Duration,
    /// With --watch: how long a step is repeated at its rate while the HPA has not settled
    /// (desired != ready replicas in its judged window); then it counts as unsettled.
    #[arg(long, env = "LOADGEN_CAPACITY_SETTLE_TIMEOUT", default_value = "2m", value_parser = parse::duration)]
    pub settle_timeout: Duration,
}

impl SearchArgs {
    /// The search as [`crate::capacity`] takes it.
    pub fn settings(&self) -> crate::model::capacity::SearchSettings {
        crate::model::capacity::SearchSettings {
            start_rate: self.start_rate,
            growth: self.growth,
            precision: self.precision,
            max_rate: self.max_rate,
            max_steps: self.max_steps.min(u64::from(u32::MAX)) as u32,
            max_duration: self.max_duration,
            step_duration: self.step_duration,
            step_warmup: self.step_warmup,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_quick_and_run() {
        let c = Cli::try_parse_from([
            "loadgen",
            "--target",
            "http://x/ping",
            "-c",
            "3",
            "-n",
            "100k",
        ])
        .unwrap();
        assert!(c.command.is_none());
        assert_eq!(c.quick.run.requests, Some(100_000));
        let c = Cli::try_parse_from([
            "loadgen",
            "run",
            "s.yaml",
            "--rate",
            "10",
            "--duration",
            "5s",
        ])
        .unwrap();
        assert!(matches!(c.command, Some(Command::Run(_))));
        assert!(Cli::try_parse_from(["loadgen", "--rate", "x"]).is_err());
        assert!(Cli::try_parse_from(["loadgen", "merge", "a.json"]).is_err());
    }
}
