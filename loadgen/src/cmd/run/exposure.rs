//! The run's metrics while it lasts: the `/metrics` server and the remote-write pusher, started
//! before the first request and stopped after the final values were seen (final push, linger).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::cli::RunOpts;
use crate::cmd::bad;
use crate::metrics::RunMetrics;
use crate::metrics::remote_write::{Credentials, Pusher, now_ms};

/// The `--remote-write` pusher with its credentials and timeout (none without the flag); bad URLs
/// and unreadable credential files are usage errors.
pub fn remote_write_pusher(opts: &RunOpts) -> anyhow::Result<Option<Pusher>> {
    let Some(url) = &opts.remote_write else {
        return Ok(None);
    };
    let creds = Credentials::from_flags(
        opts.remote_write_user.as_deref(),
        opts.remote_write_password_file.as_deref(),
        opts.remote_write_bearer_token_file.as_deref(),
    )
    .map_err(bad)?;
    if opts.remote_write_timeout.is_zero() {
        return Err(bad("--remote-write-timeout must be above 0"));
    }
    let pusher = Pusher::new(url, opts.remote_write_cacert.as_deref())
        .and_then(|p| p.with_credentials(creds.as_ref()))
        .map_err(bad)?
        .with_timeout(opts.remote_write_timeout);
    Ok(Some(pusher))
}

/// The metrics server and pusher of a run; dropping it stops the server.
pub struct Exposure {
    metrics: Arc<RunMetrics>,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    pusher: Option<Pusher>,
    push_task: Option<JoinHandle<()>>,
}

impl Exposure {
    /// Serves `--metrics-addr` and pushes to `--remote-write` every interval (each when asked).
    pub async fn start(opts: &RunOpts, metrics: &Arc<RunMetrics>) -> anyhow::Result<Self> {
        let server = match opts.metrics_addr {
            Some(addr) => {
                let (stop_tx, stop_rx) = oneshot::channel::<()>();
                let (bound, task) = crate::metrics::serve(addr, Arc::clone(metrics), async {
                    let _ = stop_rx.await;
                })
                .await
                .with_context(|| format!("cannot serve metrics on {addr}"))?;
                if !opts.quiet {
                    crate::errln!("metrics at http://{bound}/metrics");
                }
                Some((stop_tx, task))
            }
            None => None,
        };
        let pusher = remote_write_pusher(opts)?;
        let export = opts.remote_write_histograms;
        let push_task = pusher.clone().map(|pusher| {
            let m = Arc::clone(metrics);
            let every = opts.remote_write_interval.max(Duration::from_millis(100));
            tokio::spawn(async move {
                // The first tick is immediate: a push as the run starts gives every series a
                // sample at (nearly) zero, so a rate over the run counts its first interval too.
                let mut iv = tokio::time::interval(every);
                let mut warned = false;
                loop {
                    iv.tick().await;
                    if let Err(e) = pusher.push(m.remote_write_series(export, now_ms())).await
                        && !warned
                    {
                        crate::errln!("warning: {e}");
                        warned = true;
                    }
                }
            })
        });
        Ok(Self {
            metrics: Arc::clone(metrics),
            server,
            pusher,
            push_task,
        })
    }

    /// The final push, then (unless interrupted) `--metrics-linger` so the last scrape sees the
    /// final values, then the server stops.
    pub async fn finish(self, opts: &RunOpts, interrupted: bool) {
        if let Some(t) = self.push_task {
            t.abort();
        }
        if let Some(pusher) = self.pusher
            && let Err(e) = pusher
                .push(
                    self.metrics
                        .remote_write_series(opts.remote_write_histograms, now_ms()),
                )
                .await
        {
            crate::errln!("warning: final {e}");
        }
        if let Some((stop, task)) = self.server {
            if !interrupted && !opts.metrics_linger.is_zero() {
                // Listening before the line that invites a Ctrl-C, not when the select polls.
                let ctrl_c = super::ctrl_c::listen();
                if !opts.quiet {
                    crate::errln!(
                        "serving final metrics for {} (--metrics-linger)",
                        humantime::format_duration(opts.metrics_linger)
                    );
                }
                tokio::select! {
                    _ = tokio::time::sleep(opts.metrics_linger) => {}
                    _ = ctrl_c => {}
                }
            }
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    }
}
