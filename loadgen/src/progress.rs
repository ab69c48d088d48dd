//! The live progress line (indicatif), shown only on a terminal and without --quiet.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;

use crate::engine::Live;

/// Whether a live display makes sense.
pub fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// Draws progress until the sender is dropped. Progress is elapsed time against the planned
/// duration, or requests against the planned count.
pub fn spawn(
    mut rx: watch::Receiver<Live>,
    planned_duration: Option<Duration>,
    planned_requests: Option<u64>,
) -> tokio::task::JoinHandle<()> {
    let (len, by_time) = match (planned_duration, planned_requests) {
        (Some(d), _) => (d.as_millis() as u64, true),
        (None, Some(n)) => (n, false),
        (None, None) => (0, true),
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(4));
    let style = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {percent:>3}% {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let l = *rx.borrow();
            bar.set_position(
                if by_time {
                    l.elapsed.as_millis() as u64
                } else {
                    l.requests
                }
                .min(len),
            );
            bar.set_message(format!(
                "{} req  {:.0}/s  p99 {}  errors {}  in flight {}{}",
                l.requests,
                l.last_rps,
                crate::report::summary::ms(l.last_p99_ms),
                l.failures,
                l.in_flight,
                if l.dropped > 0 {
                    format!("  dropped {}", l.dropped)
                } else {
                    String::new()
                }
            ));
        }
        bar.finish_and_clear();
    })
}
