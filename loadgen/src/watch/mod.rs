//! The replica watcher: follows a Deployment and the HorizontalPodAutoscaler that scales it, or a
//! Knative Configuration or Revision (its Deployments and PodAutoscalers), while a run lasts, and
//! records replicas and CPU utilization over time. It also tells a
//! [`crate::coldstart::ColdStartTracker`] every ready count, so the engine knows when the target
//! is at zero.
//!
//! Why a watcher and not polling: the API server pushes every change of `spec.replicas` and
//! `status.readyReplicas` as it happens, so the time to scale out is measured to the event, not to
//! the next poll. Samples are still rate-limited (`interval`) so memory stays bounded on long runs.
//!
//! The watcher must never cost the run: a missing kubeconfig, a forbidden list (RBAC), an unreachable
//! API server all end up as `warnings` in the [`ReplicaTimeline`] and a log line, never as an error.
//!
//! ```no_run
//! # async fn demo() -> Result<(), loadgen::watch::WatchError> {
//! use std::time::Duration;
//! use loadgen::watch::{self, WatchConfig};
//! let cfg = WatchConfig::new("deployment/workload", Some("scalebench".into()), Duration::from_secs(1))?;
//! let handle = watch::spawn(cfg, loadgen::metrics::WatchGauges::noop()).await;
//! // ... run the load ...
//! let timeline = handle.finish().await;
//! println!("max replicas: {:?}", timeline.summary.max_replicas);
//! # Ok(()) }
//! ```

mod members;
mod observe;
mod runner;
mod target;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use target::{TargetKind, WatchTarget};

use crate::metrics::WatchGauges;
use crate::model::replicas::ReplicaTimeline;
use runner::Recorder;

/// Errors that stop the watcher from being configured at all (bad `--watch` argument). Everything
/// that goes wrong once it runs is a warning in the timeline instead.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("invalid watch target {input:?}: {reason}")]
    InvalidTarget { input: String, reason: String },
    #[error("the watch interval must be at least 10ms, got {0:?}")]
    IntervalTooShort(Duration),
}

/// What to watch and how often at most to sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    /// What to follow (`--watch deployment/NAME`, `configuration/NAME`, `revision/NAME`).
    pub target: WatchTarget,
    /// Namespace; `None` uses the client's default (kubeconfig context, or the pod's own namespace
    /// in-cluster).
    pub namespace: Option<String>,
    /// Minimum spacing between two samples. A change is recorded at once if the last sample is older
    /// than this, otherwise at the end of the interval (with the state then).
    pub interval: Duration,
}

impl WatchConfig {
    /// Parses `target` (`deployment/NAME`, `configuration/NAME`, `revision/NAME`, in any spelling
    /// kubectl accepts: `deploy/NAME`, `config/NAME`, `rev/NAME`, ...).
    pub fn new(
        target: &str,
        namespace: Option<String>,
        interval: Duration,
    ) -> Result<Self, WatchError> {
        if interval < Duration::from_millis(10) {
            return Err(WatchError::IntervalTooShort(interval));
        }
        Ok(Self {
            target: target.parse()?,
            namespace: namespace.filter(|ns| !ns.trim().is_empty()),
            interval,
        })
    }
}

/// Most samples kept (a day at one per second). Past it recording stops with a warning; the gauges
/// still move.
pub const MAX_SAMPLES: usize = 86_400;

/// How long [`WatchHandle::finish`] waits for the watch task to wind down before abandoning it.
const FINISH_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the waits below look at the watch's state.
const POLL: Duration = Duration::from_millis(5);

/// A running watch. Dropping it without [`WatchHandle::finish`] stops the task too.
#[derive(Debug)]
pub struct WatchHandle {
    recorder: Arc<Mutex<Recorder>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Builds a client from the environment (kubeconfig, else in-cluster service account) and starts
/// watching, setting `gauges` (the run's, see [`crate::metrics::RunMetrics::watch_gauges`]) on
/// every change. The run starts now: sample times are measured from this call. Never fails:
/// without a usable client the timeline carries one warning and no samples.
pub async fn spawn(cfg: WatchConfig, gauges: WatchGauges) -> WatchHandle {
    let start = Instant::now();
    // kube builds its rustls config from the process-wide provider; the workspace ships ring only.
    // Installing it here makes the watcher independent of what `main` did first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match kube::Client::try_default().await {
        Ok(client) => spawn_with_client_at(cfg, client, start, gauges),
        Err(err) => {
            let mut recorder = Recorder::new(&cfg, cfg.namespace.clone(), start, gauges);
            recorder.warn(format!(
                "cannot build a Kubernetes client (no kubeconfig and not in a cluster?): {err}; \
                 replicas are not recorded"
            ));
            WatchHandle {
                recorder: Arc::new(Mutex::new(recorder)),
                stop: None,
                task: None,
            }
        }
    }
}

/// Starts watching with a given client (tests inject one), without gauges; the run starts now.
pub fn spawn_with_client(cfg: WatchConfig, client: kube::Client) -> WatchHandle {
    spawn_with_client_at(cfg, client, Instant::now(), WatchGauges::noop())
}

/// Starts watching with a given client, measuring sample times from `run_start`.
pub fn spawn_with_client_at(
    cfg: WatchConfig,
    client: kube::Client,
    run_start: Instant,
    gauges: WatchGauges,
) -> WatchHandle {
    let namespace = cfg
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let recorder = Arc::new(Mutex::new(Recorder::new(
        &cfg,
        Some(namespace.clone()),
        run_start,
        gauges,
    )));
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(runner::run(
        cfg,
        client,
        namespace,
        Arc::clone(&recorder),
        stop_rx,
    ));
    WatchHandle {
        recorder,
        stop: Some(stop_tx),
        task: Some(task),
    }
}

impl WatchHandle {
    /// A copy of what was recorded so far (for live progress); the summary is computed on the copy.
    pub fn snapshot(&self) -> ReplicaTimeline {
        lock(&self.recorder).timeline_at(Instant::now())
    }

    /// Tells `tracker` every ready count from now on (the one known now first), so a request
    /// sent while the target is at zero opens a cold start (see [`crate::coldstart`]).
    pub fn follow_cold_starts(&self, tracker: Arc<crate::coldstart::ColdStartTracker>) {
        lock(&self.recorder).follow_cold_starts(tracker);
    }

    /// Waits, at most `limit`, until the watch has listed its target once (the first sample is
    /// due), and says whether it had. A run's first request must go out with the target's state
    /// known: a request sent while the target is at zero opens a cold start only if the watch
    /// already knew it was at zero. Without a client (no task) there is nothing to wait for.
    pub async fn wait_primed(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.task.is_none() || lock(&self.recorder).primed() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// After the load, waits at most `limit` while a scale-out is still becoming ready (more
    /// pods asked for than ready), so its time to ready is measured even when the run ended
    /// first: a cold start's one request is answered the moment its pod is ready, before the
    /// Deployment's status says so. Returns at once when nothing is scaling.
    pub async fn settle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.task.is_some() && lock(&self.recorder).scaling() && Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
        }
    }

    /// The run itself begins now (after a `--start-at` wait that the watch spanned): sample
    /// times, like the run's own series, count from this moment.
    pub fn start_run(&self, at: Instant) {
        lock(&self.recorder).start_run(at);
    }

    /// Stops the watch and returns the timeline with its summary. The state at this moment is
    /// recorded as a last sample if it changed since the previous one.
    pub async fn finish(mut self) -> ReplicaTimeline {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            match tokio::time::timeout(FINISH_TIMEOUT, task).await {
                Ok(Ok(())) => {}
                Ok(Err(join_err)) => {
                    lock(&self.recorder).warn(format!("replica watch task failed: {join_err}"))
                }
                Err(_) => {
                    abort.abort();
                    lock(&self.recorder)
                        .warn("replica watch did not stop within 5s and was abandoned".to_string());
                }
            }
        }
        lock(&self.recorder).finish(Instant::now())
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The recorder is only touched between awaits, so a poisoned lock means a panic inside it; the data
/// is still the best there is.
fn lock(m: &Mutex<Recorder>) -> std::sync::MutexGuard<'_, Recorder> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
