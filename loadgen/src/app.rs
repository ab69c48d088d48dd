//! Command dispatch and the run pipeline: scenario -> plan -> engine -> report -> exit code.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;
use tokio::sync::watch;

use crate::cli::{Cli, Command, CompareCmd, MergeCmd, RunOpts};
use crate::client::{ClientConfig, Connector, Target};
use crate::engine::{self, EngineConfig, Live, RunData};
use crate::exit::{self, BadInput};
use crate::lifetime::ConnectionLifetime;
use crate::metrics::RunMetrics;
use crate::metrics::remote_write::Pusher;
use crate::plan::LoadPlan;
use crate::report::{
    EndpointHistograms, EndpointSummary, Histograms, LoadMode, PlanInfo, RunReport, SCHEMA_VERSION,
    Summary, hist, merge,
};
use crate::scenario::Scenario;
use crate::threshold::Threshold;

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // One rustls crypto provider for every TLS client (targets, remote write, kube): ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    ExitCode::from(dispatch(cli))
}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    BadInput(msg.into()).into()
}

/// The `--remote-write` pusher with its credentials and timeout (none without the flag); bad URLs
/// and unreadable credential files are usage errors.
fn remote_write_pusher(opts: &crate::cli::RunOpts) -> anyhow::Result<Option<Pusher>> {
    let Some(url) = &opts.remote_write else {
        return Ok(None);
    };
    let creds = crate::metrics::remote_write::Credentials::from_flags(
        opts.remote_write_user.as_deref(),
        opts.remote_write_password_file.as_deref(),
        opts.remote_write_bearer_token_file.as_deref(),
    )
    .map_err(bad)?;
    if opts.remote_write_timeout.is_zero() {
        return Err(bad("--remote-write-timeout must be above 0"));
    }
    let pusher = Pusher::new(url)
        .and_then(|p| p.with_credentials(creds.as_ref()))
        .map_err(bad)?
        .with_timeout(opts.remote_write_timeout);
    Ok(Some(pusher))
}

/// Runs a parsed command line and returns the exit code.
pub fn dispatch(cli: Cli) -> u8 {
    let result = match cli.command {
        None => run_blocking(Job::Quick(cli.quick)),
        Some(Command::Run(r)) => run_blocking(Job::Scenario(r)),
        Some(Command::Compare(c)) => compare(c),
        Some(Command::Merge(m)) => merge_cmd(m),
        Some(Command::Report(r)) => report_cmd(r),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            crate::errln!("error: {e:#}");
            if e.downcast_ref::<BadInput>().is_some() {
                exit::USAGE
            } else if e.downcast_ref::<exit::InterruptedBeforeStart>().is_some() {
                exit::INTERRUPTED
            } else {
                exit::RUNTIME
            }
        }
    }
}

enum Job {
    Quick(crate::cli::QuickArgs),
    Scenario(crate::cli::RunCmd),
}

fn run_blocking(job: Job) -> anyhow::Result<u8> {
    let opts = match &job {
        Job::Quick(q) => &q.run,
        Job::Scenario(r) => &r.run,
    };
    let threads = opts.threads.map(|t| t as usize).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    // One thread: the current-thread scheduler, whose tasks wake each other without the atomics
    // and cross-thread hand-offs of the work-stealing one (wrk -t1 is one thread too).
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let rt = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let prepared = prepare(job, threads).await?;
        execute(prepared).await
    })
}

/// Everything a run needs, validated.
pub struct Prepared {
    pub scenario: Arc<Scenario>,
    pub target: Target,
    pub plan: LoadPlan,
    pub thresholds: Vec<Threshold>,
    pub opts: RunOpts,
    pub threads: usize,
    pub timeout: Duration,
    pub lifetime: ConnectionLifetime,
}

/// How far in the past `--start-at` may be: a worker that starts a little late (a slow image
/// pull) starts at once and says so; one much later was given a wrong time.
pub const START_AT_MAX_PAST: Duration = Duration::from_secs(60);
/// How far ahead `--start-at` may be: more than a day is a typo (a wrong year or unit).
pub const START_AT_MAX_AHEAD: Duration = Duration::from_secs(86_400);

/// Checks `--start-at` against the clock: how long to wait (zero when it is a little past).
pub fn start_wait(
    at: std::time::SystemTime,
    now: std::time::SystemTime,
) -> Result<Duration, String> {
    let when = humantime::format_rfc3339_millis(at);
    match at.duration_since(now) {
        Ok(ahead) if ahead > START_AT_MAX_AHEAD => Err(format!(
            "--start-at {when} is {} ahead: more than {} (a wrong date or unit?)",
            humantime::format_duration(Duration::from_secs(ahead.as_secs())),
            humantime::format_duration(START_AT_MAX_AHEAD)
        )),
        Ok(ahead) => Ok(ahead),
        Err(e) if e.duration() > START_AT_MAX_PAST => Err(format!(
            "--start-at {when} is {} in the past: more than {} (workers meant to start together would not)",
            humantime::format_duration(Duration::from_secs(e.duration().as_secs())),
            humantime::format_duration(START_AT_MAX_PAST)
        )),
        Err(_) => Ok(Duration::ZERO),
    }
}

async fn prepare(job: Job, threads: usize) -> anyhow::Result<Prepared> {
    let (scenario, target, opts) = match job {
        Job::Quick(q) => {
            let url = q.target.as_deref().ok_or_else(|| {
                bad("missing --target URL (or use a subcommand: run, compare, merge); see --help")
            })?;
            let mut target = Target::parse(url).map_err(bad)?;
            let path = std::mem::take(&mut target.path_and_query);
            target.base_path.clear();
            let body = match q.body {
                Some(b) if b.starts_with('@') => Some(
                    std::fs::read_to_string(&b[1..])
                        .map_err(|e| bad(format!("cannot read body file {}: {e}", &b[1..])))?,
                ),
                other => other,
            };
            let scenario = Scenario::single(&q.method, &path, &q.headers, body).map_err(bad)?;
            target.path_and_query = path;
            (scenario, target, q.run)
        }
        Job::Scenario(r) => {
            let scenario = Scenario::load(&r.scenario).map_err(|e| bad(e.to_string()))?;
            let target = match (&r.target, &scenario.target) {
                (Some(url), _) => Target::parse(url).map_err(bad)?,
                (None, Some(target)) => target.clone(),
                (None, None) => {
                    return Err(bad(format!(
                        "no target: pass --target URL or set `target:` in {}",
                        r.scenario.display()
                    )));
                }
            };
            (scenario, target, r.run)
        }
    };
    let plan = scenario.load.with_flags(&opts.load_flags()).map_err(bad)?;
    let lifetime = ConnectionLifetime::resolve(&opts.lifetime(), &scenario.lifetime, opts.http2)
        .map_err(bad)?;
    if let Some(at) = opts.start_at {
        start_wait(at, std::time::SystemTime::now()).map_err(bad)?;
    }
    let mut thresholds = scenario.thresholds.clone();
    thresholds.extend(crate::threshold::parse_all(&opts.thresholds).map_err(bad)?);
    if let Some(w) = &opts.watch {
        crate::watch::WatchConfig::new(w, opts.namespace.clone(), opts.watch_interval)
            .map_err(|e| bad(e.to_string()))?;
    }
    remote_write_pusher(&opts)?;
    if let Some(out) = &opts.out
        && out != "-"
        && let Some(dir) = std::path::Path::new(out).parent()
        && !dir.as_os_str().is_empty()
        && !dir.is_dir()
    {
        return Err(bad(format!(
            "--out {out}: directory {} does not exist",
            dir.display()
        )));
    }
    let timeout = opts.timeout.or(scenario.timeout).unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        return Err(bad("--timeout must be above 0"));
    }
    Ok(Prepared {
        scenario: Arc::new(scenario),
        target,
        plan,
        thresholds,
        opts,
        threads,
        timeout,
        lifetime,
    })
}

/// The run id: `--run-id`, else a `--label run=X` (the same thing spelled as a label, which
/// would otherwise put a second `run` label on every series), else scenario name and start time.
fn run_id(p: &Prepared) -> String {
    let from_label = || {
        p.opts
            .labels
            .iter()
            .find(|(k, _)| k == "run")
            .map(|(_, v)| v.clone())
    };
    p.opts
        .run_id
        .clone()
        .or_else(from_label)
        .unwrap_or_else(|| {
            let ts = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
            format!(
                "{}-{}",
                p.scenario.name,
                ts.replace([':', '-'], "").trim_end_matches('Z')
            )
        })
}

/// Runs a prepared plan end to end and returns the exit code.
pub async fn execute(p: Prepared) -> anyhow::Result<u8> {
    let (report, interrupted) = run_to_report(&p).await?;
    let quiet = p.opts.quiet;
    let to_stdout = p.opts.out.as_deref() == Some("-");
    // Files first: whatever happens to the terminal afterwards (a closed pipe), the report and
    // the HTML page are on disk.
    if let Some(out) = &p.opts.out
        && !to_stdout
    {
        report.write(out)?;
    }
    if let Some(html) = &p.opts.html {
        std::fs::write(html, crate::report::html::render_run(&report))
            .map_err(|e| anyhow::anyhow!("cannot write {html}: {e}"))?;
    }
    if !quiet {
        let text = crate::report::summary::render(&report);
        if to_stdout {
            crate::console::err(format_args!("{text}"));
        } else {
            crate::console::out(format_args!("{text}"));
        }
    }
    if to_stdout {
        report.write("-")?;
    } else if let Some(out) = &p.opts.out
        && !quiet
    {
        crate::outln!("report written to {out}");
    }
    for t in report.thresholds.iter().filter(|t| !t.passed) {
        crate::errln!("threshold failed: {} (actual {:.3})", t.expr, t.actual);
    }
    Ok(if interrupted {
        exit::INTERRUPTED
    } else if report.thresholds.iter().any(|t| !t.passed) {
        exit::THRESHOLD_FAILED
    } else {
        exit::OK
    })
}

/// Runs and builds the report (with metrics, remote write, watch and Ctrl-C handling).
pub async fn run_to_report(p: &Prepared) -> anyhow::Result<(RunReport, bool)> {
    let run = run_id(p);
    let mut labels: BTreeMap<String, String> = p.opts.labels.iter().cloned().collect();
    labels.remove("run");
    labels.insert(
        "deployment".into(),
        p.opts
            .deployment
            .clone()
            .or_else(|| labels.get("deployment").cloned())
            .unwrap_or_else(|| "unknown".into()),
    );
    let mut global: Vec<(String, String)> =
        labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    global.push(("run".into(), run.clone()));
    let want_metrics = p.opts.metrics_addr.is_some() || p.opts.remote_write.is_some();
    let metrics = Arc::new(if want_metrics {
        RunMetrics::enabled(&p.scenario.name, &global)
    } else {
        RunMetrics::disabled(&p.scenario.name)
    });

    // Metrics server.
    let (server_stop_tx, server_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = match p.opts.metrics_addr {
        Some(addr) => {
            let (bound, task) = crate::metrics::serve(addr, Arc::clone(&metrics), async {
                let _ = server_stop_rx.await;
            })
            .await
            .with_context(|| format!("cannot serve metrics on {addr}"))?;
            if !p.opts.quiet {
                crate::errln!("metrics at http://{bound}/metrics");
            }
            Some(task)
        }
        None => None,
    };
    // Remote write.
    let pusher = remote_write_pusher(&p.opts)?;
    let push_task = pusher.clone().map(|pusher| {
        let m = Arc::clone(&metrics);
        let every = p.opts.remote_write_interval.max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut iv = tokio::time::interval(every);
            iv.tick().await;
            let mut warned = false;
            loop {
                iv.tick().await;
                if let Err(e) = pusher.push_text(&m.render()).await
                    && !warned
                {
                    crate::errln!("warning: {e}");
                    warned = true;
                }
            }
        })
    });

    // Ctrl-C stops scheduling.
    let (stop_tx, stop_rx) = watch::channel(false);
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            crate::errln!(
                "\ninterrupted: stopping, waiting for requests in flight, then writing the report"
            );
            let _ = stop_tx.send(true);
            // Keep the sender alive so the engine does not see a closed channel.
            std::future::pending::<()>().await;
        }
    });

    // Replica watch.
    let watch_handle = match &p.opts.watch {
        Some(w) => {
            let cfg =
                crate::watch::WatchConfig::new(w, p.opts.namespace.clone(), p.opts.watch_interval)
                    .map_err(|e| bad(e.to_string()))?;
            Some(crate::watch::spawn(cfg, metrics.watch_gauges()).await)
        }
        None => None,
    };

    let connector = Connector::new(
        Arc::new(p.target.clone()),
        &ClientConfig {
            http2: p.opts.http2,
            insecure: p.opts.insecure,
            cacert: p.opts.cacert.clone(),
        },
    )
    .await
    .map_err(bad)?;
    let (live_tx, live_rx) = watch::channel(Live::default());
    let progress = crate::progress::mode(p.opts.quiet, p.opts.progress_interval)
        .map(|mode| crate::progress::spawn(live_rx, mode, &p.plan));
    let cfg = EngineConfig {
        plan: p.plan.clone(),
        timeout: p.timeout,
        h2_connections: p.opts.connections as usize,
        http2: p.opts.http2,
        grace: p.opts.grace,
        late_tolerance: p.opts.late_tolerance,
        shards: (p.threads * 2).max(2),
        trace_sample: p.opts.trace_sample,
        lifetime: p.lifetime,
        live_window_s: p.opts.progress_interval.as_secs().max(1),
    };
    // The start barrier: after everything that can fail or take time (metrics server, watch,
    // DNS), so the first request goes out at the moment itself.
    if let Some(at) = p.opts.start_at {
        let now = std::time::SystemTime::now();
        match start_wait(at, now) {
            Ok(wait) if wait.is_zero() => crate::errln!(
                "warning: --start-at {} had passed {} ago: starting now",
                humantime::format_rfc3339_millis(at),
                humantime::format_duration(Duration::from_millis(
                    now.duration_since(at).map_or(0, |d| d.as_millis() as u64)
                ))
            ),
            Ok(wait) => {
                if !p.opts.quiet {
                    crate::errln!(
                        "waiting {} for --start-at {}",
                        humantime::format_duration(Duration::from_millis(wait.as_millis() as u64)),
                        humantime::format_rfc3339_millis(at)
                    );
                }
                let mut stop = stop_rx.clone();
                if !engine::sleep_or_stop(std::time::Instant::now() + wait, &mut stop).await {
                    return Err(exit::InterruptedBeforeStart.into());
                }
            }
            Err(e) => return Err(bad(e)),
        }
    }
    let data = engine::run(
        cfg,
        Arc::clone(&p.scenario),
        connector,
        Arc::clone(&metrics),
        stop_rx,
        progress.is_some().then_some(live_tx),
    )
    .await;
    if let Some(pg) = progress {
        let _ = pg.await;
    }
    ctrl_c.abort();
    let replicas = match watch_handle {
        Some(h) => Some(h.finish().await),
        None => None,
    };
    let interrupted = data.interrupted;
    let mut report = build_report(p, &run, labels, &data, replicas);
    if report.replicas.is_some() {
        metrics.record_scale_events(&report.scale_events);
    }
    if !data.error_samples.is_empty() && !p.opts.quiet {
        for e in &data.error_samples {
            crate::errln!("error sample: {e}");
        }
    }
    report.thresholds = p
        .thresholds
        .iter()
        .map(|t| t.evaluate(&report.summary))
        .collect();

    // Final push, then linger so the last scrape sees the final values.
    if let Some(t) = push_task {
        t.abort();
    }
    if let Some(pusher) = pusher
        && let Err(e) = pusher.push_text(&metrics.render()).await
    {
        crate::errln!("warning: final {e}");
    }
    if let Some(task) = server {
        if !interrupted && !p.opts.metrics_linger.is_zero() {
            if !p.opts.quiet {
                crate::errln!(
                    "serving final metrics for {} (--metrics-linger)",
                    humantime::format_duration(p.opts.metrics_linger)
                );
            }
            tokio::select! {
                _ = tokio::time::sleep(p.opts.metrics_linger) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        let _ = server_stop_tx.send(());
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    Ok((report, interrupted))
}

/// Builds the JSON report of a run.
pub fn build_report(
    p: &Prepared,
    run: &str,
    labels: BTreeMap<String, String>,
    d: &RunData,
    replicas: Option<crate::watch::ReplicaTimeline>,
) -> RunReport {
    let open = p.plan.is_open();
    let secs = d.duration.as_secs_f64();
    let overall = d.totals.overall();
    let requests = overall.successes + overall.failures;
    let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let mut endpoints = Vec::new();
    let mut ep_hists = BTreeMap::new();
    for (e, acc) in p.scenario.endpoints.iter().zip(&d.totals.endpoints) {
        let n = acc.successes + acc.failures;
        endpoints.push(EndpointSummary {
            name: e.name.clone(),
            method: e.method.clone(),
            path: e.path.clone(),
            requests: n,
            successes: acc.successes,
            failures: acc.failures,
            rps: per_sec(n),
            latency_ms: hist::stats(&acc.latency),
            service_time_ms: open.then(|| hist::stats(&acc.service)),
            status_codes: acc.status_map(),
            errors: acc.error_map(),
        });
        ep_hists.insert(
            e.name.clone(),
            EndpointHistograms {
                latency: hist::encode(&acc.latency),
                service_time: hist::encode(&acc.service),
            },
        );
    }
    let (phases, phase_hists) =
        crate::report::phases::build(p.plan.phases(), &d.totals.phases, d.duration, open);
    let summary = Summary {
        requests,
        successes: overall.successes,
        failures: overall.failures,
        success_rate: merge::success_rate(overall.successes, requests),
        duration_s: (secs * 1000.0).round() / 1000.0,
        rps: per_sec(requests),
        latency_ms: hist::stats(&overall.latency),
        service_time_ms: open.then(|| hist::stats(&overall.service)),
        status_codes: overall.status_map(),
        errors: overall.error_map(),
        backends: d.totals.backends.clone(),
        dropped: d.dropped,
        retries: d.retries,
        late: d.totals.late,
        iterations: d.totals.iterations,
    };
    let generator = crate::selfmon::judge(&crate::selfmon::Judge {
        threads: p.threads,
        cpu_mean: d.cpu_mean,
        cpu_max: d.cpu_max,
        cpu_saturated_share: d.cpu_saturated_share,
        lag: merge::lag_stats(&d.totals.lag),
        open,
        iterations: d.totals.iterations,
        late: d.totals.late,
        dropped: d.dropped,
        concurrency: p.plan.concurrency(),
        late_tolerance_ms: p.opts.late_tolerance.as_secs_f64() * 1000.0,
    });
    let started_ms = d
        .started_at
        .duration_since(UNIX_EPOCH)
        .map(|x| x.as_millis() as u64)
        .unwrap_or(0);
    let mut report = RunReport {
        schema_version: SCHEMA_VERSION,
        tool: format!("loadgen {}", env!("CARGO_PKG_VERSION")),
        run: run.to_string(),
        scenario: p.scenario.name.clone(),
        target: p.target.url.clone(),
        mode: if open {
            LoadMode::Open
        } else {
            LoadMode::Closed
        },
        labels,
        started_at: humantime::format_rfc3339_millis(d.started_at).to_string(),
        started_at_unix_ms: started_ms,
        interrupted: d.interrupted,
        workers: 1,
        plan: PlanInfo {
            description: p.plan.describe(),
            duration_s: p
                .plan
                .duration()
                .filter(|d| d.as_secs() < 10 * 365 * 86400)
                .map(|d| d.as_secs_f64()),
            requests: p.plan.requests(),
            concurrency: p.plan.concurrency(),
        },
        summary,
        endpoints,
        phases,
        timeseries: d.series.points.clone(),
        timeseries_resolution_s: d.series.resolution as f64,
        generator,
        thresholds: Vec::new(),
        slowest_traces: d.slowest_traces.clone(),
        histograms: Histograms {
            encoding: hist::ENCODING.into(),
            unit: hist::UNIT.into(),
            latency: hist::encode(&overall.latency),
            service_time: hist::encode(&overall.service),
            schedule_lag: hist::encode(&d.totals.lag),
            connect: hist::encode(&d.totals.connect),
            endpoints: ep_hists,
            phases: phase_hists,
        },
        connections: connection_stats(p.lifetime, d),
        start_spread_s: None,
        replicas: replicas.map(|mut r| {
            let throughput: Vec<(f64, f64)> =
                d.series.points.iter().map(|p| (p.t_s, p.rps)).collect();
            r.record_throughput(&throughput);
            r
        }),
        scale_events: Vec::new(),
        warnings: Vec::new(),
    };
    crate::analysis::analyse(
        &mut report,
        &crate::analysis::ScaleCostConfig {
            recovery_p99_ms: p.opts.recovery_p99.map(|d| d.as_secs_f64() * 1000.0),
        },
    );
    report
}

/// The report's `connections` block.
fn connection_stats(l: ConnectionLifetime, d: &RunData) -> crate::report::ConnectionStats {
    crate::report::ConnectionStats {
        max_age_s: l.max_age.map(|a| a.as_secs_f64()),
        max_age_jitter: if l.max_age.is_some() {
            crate::lifetime::JITTER
        } else {
            0.0
        },
        max_requests: l.max_requests,
        keepalive: l.keepalive,
        lifetime: l.describe(),
        opened: d.connections_opened,
        reconnects: d.reconnects,
        closed: crate::lifetime::CloseReason::ALL
            .iter()
            .filter(|r| d.closed[r.index()] > 0)
            .map(|r| (r.as_str().to_string(), d.closed[r.index()]))
            .collect(),
        connect_ms: hist::stats(&d.totals.connect),
    }
}

fn load_all(paths: &[String]) -> anyhow::Result<Vec<RunReport>> {
    paths
        .iter()
        .map(|p| RunReport::load(p).map_err(|e| bad(e.to_string())))
        .collect()
}

fn compare(c: CompareCmd) -> anyhow::Result<u8> {
    let runs = load_all(&c.reports)?;
    let names: Vec<String> = c
        .reports
        .iter()
        .map(|p| {
            std::path::Path::new(p)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.clone())
        })
        .collect();
    crate::outln!("{}", crate::report::compare::table(&names, &runs));
    if let Some(t) = crate::report::compare::phase_table(&names, &runs) {
        crate::outln!("\nphase by phase (phases the runs share by name):\n{t}");
    }
    Ok(exit::OK)
}

/// `loadgen report FILE... --html OUT`.
fn report_cmd(r: crate::cli::ReportCmd) -> anyhow::Result<u8> {
    let reports = load_all(&r.reports)?;
    let html = crate::report::html::render_files(&r.reports, &reports);
    std::fs::write(&r.html, html).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", r.html))?;
    Ok(exit::OK)
}

fn merge_cmd(m: MergeCmd) -> anyhow::Result<u8> {
    let thresholds = crate::threshold::parse_all(&m.thresholds).map_err(bad)?;
    let runs = load_all(&m.reports)?;
    let mut merged = merge::merge(&runs).map_err(|e| bad(e.to_string()))?;
    merged.thresholds = thresholds
        .iter()
        .map(|t| t.evaluate(&merged.summary))
        .collect();
    let to_stdout = m.out == "-";
    if !to_stdout {
        merged.write(&m.out)?;
    }
    if !m.quiet {
        let text = crate::report::summary::render(&merged);
        if to_stdout {
            crate::console::err(format_args!("{text}"));
        } else {
            crate::console::out(format_args!("{text}"));
        }
    }
    if to_stdout {
        merged.write("-")?;
    }
    for t in merged.thresholds.iter().filter(|t| !t.passed) {
        crate::errln!("threshold failed: {} (actual {:.3})", t.expr, t.actual);
    }
    Ok(if merged.thresholds.iter().any(|t| !t.passed) {
        exit::THRESHOLD_FAILED
    } else {
        exit::OK
    })
}
