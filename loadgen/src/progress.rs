//! Progress while the run lasts: a live bar on a terminal, plain lines every few seconds when
//! stderr is a pipe or a file (`docker compose logs -f`, `kubectl logs -f` show nothing of a bar
//! until the run ends), nothing with --quiet.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;

use crate::engine::Live;
use crate::plan::LoadPlan;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A redrawn bar (stderr is a terminal).
    Bar,
    /// One plain line per interval (stderr is not a terminal).
    Lines(Duration),
}

/// The display that fits: none with --quiet, a bar on a terminal, lines otherwise.
pub fn mode(quiet: bool, interval: Duration) -> Option<Mode> {
    if quiet {
        None
    } else if std::io::stderr().is_terminal() {
        Some(Mode::Bar)
    } else {
        Some(Mode::Lines(interval))
    }
}

/// Shows progress until the sender is dropped.
pub fn spawn(
    rx: watch::Receiver<Live>,
    mode: Mode,
    plan: &LoadPlan,
) -> tokio::task::JoinHandle<()> {
    match mode {
        Mode::Bar => spawn_bar(rx, plan.duration(), plan.requests()),
        Mode::Lines(every) => spawn_lines(rx, every, plan.clone()),
    }
}

/// Prints one line per `every` (and none after the run: the summary follows).
fn spawn_lines(
    mut rx: watch::Receiver<Live>,
    every: Duration,
    plan: LoadPlan,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut iv = tokio::time::interval(every);
        iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        iv.tick().await;
        loop {
            tokio::select! {
                _ = iv.tick() => {
                    let l = *rx.borrow_and_update();
                    crate::errln!("{}", line(&l, &plan));
                }
                r = rx.changed() => if r.is_err() { break },
            }
        }
    })
}

/// One plain progress line: elapsed and total, phase, rate or users, requests, throughput,
/// errors and p99 over the last interval.
pub fn line(l: &Live, plan: &LoadPlan) -> String {
    let secs = |d: Duration| format!("{}s", d.as_secs());
    let total = plan
        .duration()
        .filter(|d| *d < crate::limits::MAX_DURATION)
        .map(secs)
        .or_else(|| plan.requests().map(|n| format!("{n} req")))
        .unwrap_or_else(|| "?".into());
    let phases = plan.phases();
    // A default name (`phase 2`) would only repeat the number.
    let phase = match phases.get(l.phase) {
        Some(p) if p.name != format!("phase {}", l.phase + 1) => format!(" {}", p.name),
        _ => String::new(),
    };
    let target = if plan.is_open() {
        format!("rate {:.0}/s", l.target)
    } else {
        format!("users {:.0}", l.target)
    };
    let mut s = format!(
        "progress {}/{total} phase {}/{}{phase} {target} requests {} throughput {:.1}/s errors {} p99 {}",
        secs(l.elapsed),
        l.phase + 1,
        phases.len(),
        l.requests,
        l.window_rps,
        l.failures,
        crate::humanize::ms(l.window_p99_ms),
    );
    if l.dropped > 0 {
        s.push_str(&format!(" dropped {}", l.dropped));
    }
    s
}

/// Draws a bar: elapsed time against the planned duration, or requests against the planned count.
fn spawn_bar(
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
                crate::humanize::ms(l.last_p99_ms),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_phase_target_and_the_interval_figures() {
        let spec: crate::scenario::LoadSpec = yaml_serde::from_str(
            "phases: [{name: warm, duration: 10s, rate: 5}, {duration: 20s, rate: 50}]",
        )
        .unwrap();
        let plan = crate::scenario::load::compile(&spec).unwrap().plan;
        let l = Live {
            elapsed: Duration::from_millis(12_400),
            requests: 400,
            failures: 3,
            phase: 1,
            target: 50.0,
            window_rps: 49.8,
            window_p99_ms: 12.5,
            ..Live::default()
        };
        let first = Live { phase: 0, ..l };
        assert!(line(&first, &plan).contains(" phase 1/2 warm rate 50/s "));
        assert_eq!(
            line(&l, &plan),
            "progress 12s/30s phase 2/2 rate 50/s requests 400 throughput 49.8/s \
             errors 3 p99 12.5ms"
        );
    }
}
