//! Graceful shutdown as an explicit, tested sequence:
//!
//! 1. a signal (SIGTERM/SIGINT, or any future in tests) arrives;
//! 2. [`Lifecycle::start_draining`]: `/readyz` answers 503 so the load balancer / Kubernetes
//!    endpoints controller takes the instance out of rotation, while requests are still served;
//! 3. the drain delay passes (time for that to propagate);
//! 4. the listener stops accepting and idle keep-alive connections are closed;
//! 5. in-flight requests get up to the shutdown timeout to finish; then the process exits 0.
//!
//! A second signal during any of this exits at once (see [`signal_with_escalation`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Resolves on the first SIGTERM or SIGINT, and arms a watcher that exits the process at once on
/// the next one (an operator pressing Ctrl-C twice wants out now, not after the drain).
pub async fn signal_with_escalation() {
    let name = next_signal().await;
    tracing::info!(signal = name, "shutdown requested; draining (send again to exit at once)");
    tokio::spawn(async {
        let name = next_signal().await;
        tracing::warn!(signal = name, "second signal; exiting now");
        std::process::exit(FORCED_EXIT_CODE);
    });
}

#[cfg(unix)]
async fn next_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler can be installed");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler can be installed");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(not(unix))]
async fn next_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "ctrl-c"
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
