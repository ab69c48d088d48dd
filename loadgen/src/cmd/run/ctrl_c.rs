//! Ctrl-C listeners that are listening from the moment they are made.
//!
//! `tokio::signal::ctrl_c()` registers only when first polled. Spawned, or awaited after a line
//! is printed, it leaves a gap in which a Ctrl-C is lost, or (before any handler exists) kills
//! the process with the default disposition instead of the clean exit the line promised.

use std::future::Future;
use std::io;

use futures::FutureExt;

/// A future that resolves on the first Ctrl-C after this call returns; make it before announcing
/// anything a Ctrl-C should interrupt.
pub fn listen() -> impl Future<Output = io::Result<()>> + Send + 'static {
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    // The first poll registers the listener; it completes here only if that failed.
    let registered = (&mut ctrl_c).now_or_never();
    async move {
        match registered {
            Some(failed) => failed,
            None => ctrl_c.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_ctrl_c_right_after_listening_is_seen() {
        let ctrl_c = listen();
        // Nothing polls `ctrl_c` until the signal is sent: a listener registered lazily would
        // miss it (or leave the default disposition to kill this test process).
        let sent = Command::new("kill")
            .args(["-INT", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let seen = tokio::time::timeout(Duration::from_secs(10), ctrl_c).await;
        assert!(matches!(seen, Ok(Ok(()))), "{seen:?}");
    }
}
