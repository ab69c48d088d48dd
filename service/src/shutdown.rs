//! Graceful shutdown as an explicit, tested sequence:
//!
//! 1. a signal (SIGTERM/SIGINT, or any future in tests) arrives;
//! 2. [`Lifecycle::start_draining`]: `/readyz` answers 503 so the load balancer / Kubernetes
//!    endpoints controller takes the instance out of rotation, while requests are still served;
//! 3. the drain delay passes (time for that to propagate);
//! 4. the listener stops accepting and idle keep-alive connections are closed;
//! 5. in-flight requests get up to the shutdown timeout to finish;
//! 6. bounded clean-up, at most [`SHUTDOWN_OVERHEAD`] in all: the metrics listener stops
//!    ([`METRICS_STOP_TIMEOUT`]), CPU jobs still spinning on the blocking pool get
//!    [`RUNTIME_STOP_TIMEOUT`], pending trace spans get [`TRACE_FLUSH_TIMEOUT`] to be exported;
//!    then the process exits 0.
//!
//! So from the first signal to exit takes at most drain delay + shutdown timeout +
//! [`SHUTDOWN_OVERHEAD`] (plus scheduling noise): an orchestrator's kill deadline (Kubernetes
//! `terminationGracePeriodSeconds`, `docker stop -t`) must be at least that, or the drain is cut.
//!
//! A second signal during any of this exits at once (see [`signal_with_escalation`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Longest wait for the metrics listener to finish its in-flight scrapes after the application
/// listener is done.
pub const METRICS_STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest wait for the runtime's threads (CPU jobs on the blocking pool) at exit.
pub const RUNTIME_STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest wait for pending trace spans to be exported at exit (an unreachable or slow collector
/// costs this much, not the OTLP client's whole request timeout).
pub const TRACE_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Most time the process may take after drain delay + shutdown timeout before it exits: the sum
/// of the bounded clean-up steps above. A literal, so manifests' tests can read it from here.
pub const SHUTDOWN_OVERHEAD: Duration = Duration::from_secs(4);

const _: () = assert!(
    METRICS_STOP_TIMEOUT
        .saturating_add(RUNTIME_STOP_TIMEOUT)
        .saturating_add(TRACE_FLUSH_TIMEOUT)
        .as_nanos()
        <= SHUTDOWN_OVERHEAD.as_nanos(),
    "SHUTDOWN_OVERHEAD must cover every clean-up step"
);

/// Exit code when a second signal cuts the drain short (128 + SIGINT, as shells do).
pub const FORCED_EXIT_CODE: i32 = 130;

/// Readiness state shared by `/readyz` and the server loop.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    draining: Arc<AtomicBool>,
}

impl Lifecycle {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on `/readyz` reports 503.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// Installs the SIGTERM/SIGINT handlers now and returns a future that resolves on the first
/// signal; it then arms a watcher that exits the process at once on the next one (an operator
/// pressing Ctrl-C twice wants out now, not after the drain).
///
/// The handlers are installed before the future is first polled on purpose: a signal arriving
/// between "listening" and the first poll would otherwise hit the default disposition and kill
/// the process without a drain.
pub fn signal_with_escalation() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut signals = Signals::install()?;
    Ok(async move {
        let name = signals.next().await;
        tracing::info!(
            signal = name,
            "shutdown requested; draining (send again to exit at once)"
        );
        tokio::spawn(async move {
            let name = signals.next().await;
            tracing::warn!(signal = name, "second signal; exiting now");
            std::process::exit(FORCED_EXIT_CODE);
        });
    })
}

#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "ctrl-c"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draining_is_shared_between_clones() {
        let a = Lifecycle::new();
        let b = a.clone();
        assert!(!b.is_draining());
        a.start_draining();
        assert!(b.is_draining());
    }
}
