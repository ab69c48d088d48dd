//! One run, step by step: labels and metrics, their exposure, Ctrl-C, the replica watch, the
//! connector, the `--start-at` barrier, the engine, then the report and the metrics' last word.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{ClientConfig, Connector};
use crate::cmd::bad;
use crate::coldstart::ColdStartTracker;
use crate::engine::{self, EngineConfig, Live};
use crate::exit;
use crate::metrics::RunMetrics;
use crate::model::RunReport;
use crate::watch::WatchHandle;

use super::ctrl_c;
use super::exposure::Exposure;
use super::{Prepared, build_report, start_wait};

/// Most the first request waits for the watch's first view of its target.
const WATCH_PRIME_LIMIT: Duration = Duration::from_secs(3);
/// Most the end of a run waits for a scale-out under way to become ready (see
/// [`WatchHandle::settle`]); a scale-out that cannot complete (no room on the nodes) costs this.
const WATCH_SETTLE_LIMIT: Duration = Duration::from_secs(5);

/// Runs and builds the report (with metrics, remote write, watch and Ctrl-C handling); true
/// when Ctrl-C cut the run short.
pub async fn run_to_report(p: &Prepared) -> anyhow::Result<(RunReport, bool)> {
    let run = run_id(p);
    let labels = labels(p);
    let metrics = Arc::new(run_metrics(p, &run, &labels));
    let exposure = Exposure::start(&p.opts, &metrics).await?;
    let (stop_rx, ctrl_c) = stop_on_ctrl_c();
    let watch = start_watch(p, &metrics).await?;
    let cold_starts = watch.as_ref().map(|w| {
        let tracker = Arc::new(ColdStartTracker::new(metrics.cold_start_metrics()));
        w.follow_cold_starts(Arc::clone(&tracker));
        tracker
    });
    let connector = connect(p).await?;
    let (live_tx, live_rx) = watch::channel(Live::default());
    let progress = crate::progress::mode(p.opts.quiet, p.opts.progress_interval)
        .map(|mode| crate::progress::spawn(live_rx, mode, &p.plan));
    if let Some(w) = &watch
        && !w.wait_primed(WATCH_PRIME_LIMIT).await
    {
        tracing::warn!(
            "the watch has not listed its target after {WATCH_PRIME_LIMIT:?}; the run starts without its state"
        );
    }
    // The start barrier: after everything that can fail or take time (metrics server, watch,
    // DNS), so the first request goes out at the moment itself.
    wait_for_start_at(p, &stop_rx).await?;
    let data = engine::run(
        EngineConfig {
            cold_starts: cold_starts.clone(),
            ..engine_config(p)
        },
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
    if let Some(w) = &watch {
        // The watch began before the start barrier's wait; its times must count from the run's
        // own origin, the engine's, like every other series of the report.
        w.start_run(tokio::time::Instant::from_std(data.start));
    }
    let replicas = match watch {
        Some(h) => {
            h.settle(WATCH_SETTLE_LIMIT).await;
            let mut timeline = h.finish().await;
            if let Some(t) = &cold_starts {
                let (list, total) = t.finish(data.start);
                timeline.set_cold_starts(list, total);
            }
            Some(timeline)
        }
        None => None,
    };
    let mut report = build_report(p, &run, labels, &data, replicas);
    if report.replicas.is_some() {
        metrics.record_scale_events(&report.scale_events);
    }
    report.thresholds = p
        .thresholds
        .iter()
        .map(|t| t.evaluate(&report.summary))
        .collect();
    exposure.finish(&p.opts, data.interrupted).await;
    Ok((report, data.interrupted))
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

/// The run's labels: `--label`s without `run` (it has its own flag), and `deployment` from
/// `--deployment`, else its label, else `unknown`.
fn labels(p: &Prepared) -> BTreeMap<String, String> {
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
    labels
}

/// The run's Prometheus series, labelled with `labels` and `run`; disabled (recording nothing)
/// when neither `--metrics-addr` nor `--remote-write` would show them.
fn run_metrics(p: &Prepared, run: &str, labels: &BTreeMap<String, String>) -> RunMetrics {
    if p.opts.metrics_addr.is_none() && p.opts.remote_write.is_none() {
        return RunMetrics::disabled(&p.scenario.name);
    }
    let mut global: Vec<(String, String)> =
        labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    global.push(("run".into(), run.to_string()));
    let metrics = RunMetrics::enabled(&p.scenario.name, &global);
    if p.opts.remote_write.is_some() && p.opts.remote_write_histograms.native() {
        metrics.with_native_histograms()
    } else {
        metrics
    }
}

/// Ctrl-C stops scheduling: the engine waits for requests in flight, then the report is written.
/// Listening before this returns, not when the task first runs: the `--start-at` wait is
/// announced right after, and a Ctrl-C then must end it cleanly.
fn stop_on_ctrl_c() -> (watch::Receiver<bool>, JoinHandle<()>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let ctrl_c = ctrl_c::listen();
    let task = tokio::spawn(async move {
        if ctrl_c.await.is_ok() {
            crate::errln!(
                "\ninterrupted: stopping, waiting for requests in flight, then writing the report"
            );
            let _ = stop_tx.send(true);
            // Keep the sender alive so the engine does not see a closed channel.
            std::future::pending::<()>().await;
        }
    });
    (stop_rx, task)
}

/// `--watch`: Deployment and HPA replicas recorded beside the run.
async fn start_watch(
    p: &Prepared,
    metrics: &Arc<RunMetrics>,
) -> anyhow::Result<Option<WatchHandle>> {
    let Some(w) = &p.opts.watch else {
        return Ok(None);
    };
    let cfg = crate::watch::WatchConfig::new(w, p.opts.namespace.clone(), p.opts.watch_interval)
        .map_err(|e| bad(e.to_string()))?;
    Ok(Some(crate::watch::spawn(cfg, metrics.watch_gauges()).await))
}

/// The connector every worker connects through (TLS settings, DNS resolved now).
async fn connect(p: &Prepared) -> anyhow::Result<Connector> {
    Connector::new(
        Arc::new(p.target.clone()),
        &ClientConfig {
            http2: p.opts.http2,
            insecure: p.opts.insecure,
            cacert: p.opts.cacert.clone(),
            client_cert: p
                .opts
                .cert
                .clone()
                .zip(p.opts.key.clone())
                .map(|(cert, key)| crate::client::ClientCert { cert, key }),
        },
    )
    .await
    .map_err(bad)
}

/// The engine's settings for this run.
fn engine_config(p: &Prepared) -> EngineConfig {
    EngineConfig {
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
        cold_starts: None,
    }
}

/// Waits for `--start-at` (at once, with a warning, when it has just passed); Ctrl-C while
/// waiting ends the command with nothing sent.
async fn wait_for_start_at(p: &Prepared, stop: &watch::Receiver<bool>) -> anyhow::Result<()> {
    let Some(at) = p.opts.start_at else {
        return Ok(());
    };
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
            let mut stop = stop.clone();
            if !engine::sleep_or_stop(std::time::Instant::now() + wait, &mut stop).await {
                return Err(exit::InterruptedBeforeStart.into());
            }
        }
        Err(e) => return Err(bad(e)),
    }
    Ok(())
}
