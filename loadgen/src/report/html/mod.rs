//! The HTML report: one self-contained file per run, or one page comparing several runs.
//!
//! Markup is written with maud's `html!`, which escapes every spliced value, so a run name, URL,
//! backend name, phase name or error message that came from the user or the network cannot
//! become markup, whichever section shows it. Nothing derived from a report is ever spliced
//! unescaped (`PreEscaped` appears only on the page's own stylesheet constant). Charts are SVG
//! drawn here, server-side; the page carries no script and its content policy forbids any fetch.
//!
//! # Layout
//!
//! In the order a page is put together:
//!
//! - [`series`]: a run's data as chart points (rates per second of each bucket's true width,
//!   latencies, phases, scale events, replica steps).
//! - [`svg`]: the chart kit (scales, ticks, line and bar charts, legends), which knows nothing
//!   of runs; [`latency`]: distribution and percentile charts of HDR histograms, built on it;
//!   [`colors`]: the series colours.
//! - [`run`]: the sections of one run's page, with [`replicas`] for a watched run and
//!   [`capacity`] for a capacity report's search;
//!   [`compare`]: the page of several runs; [`table`]: the header and key-value tables they
//!   share.
//! - [`page`]: the shell around either (head, content security policy, styles).

mod capacity;
pub mod colors;
mod compare;
mod latency;
mod page;
mod replicas;
mod run;
mod series;
mod svg;
mod table;

pub use compare::run_names;

use crate::model::RunReport;

/// The page for one run.
pub fn render_run(report: &RunReport) -> String {
    run::render(report)
}

/// One page overlaying several runs on one time axis (seconds since each run's start); the first
/// run is the baseline of the relative changes.
pub fn render_comparison(reports: &[(String, RunReport)]) -> String {
    compare::render(reports)
}

/// The page for `loadgen report FILE... --html OUT`: one report gives the run page, several the
/// comparison page (the first is the baseline). `paths` name the runs when nothing better does.
pub fn render_files(paths: &[String], reports: &[RunReport]) -> String {
    match reports {
        [one] => render_run(one),
        _ => {
            let names = run_names(paths, reports);
            let runs: Vec<(String, RunReport)> =
                names.into_iter().zip(reports.iter().cloned()).collect();
            render_comparison(&runs)
        }
    }
}
