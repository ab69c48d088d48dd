//! Analyses of a finished run that need both the replica timeline and the time series: what each
//! scale-out cost ([`scale_events`]) and whether the load reached the ready pods ([`spread`]).
//!
//! Pure functions of recorded data, so a live run, a report read back and a `merge` agree.

pub mod scale_events;
pub mod spread;

pub use scale_events::{ScaleCostConfig, scale_events};
pub use spread::spread_warnings;

use crate::model::RunReport;

/// Fills `scale_events` and `warnings` of a report from its timeline and time series (clears them
/// when the run was not watched).
pub fn analyse(report: &mut RunReport, cfg: &ScaleCostConfig) {
    let Some(timeline) = &report.replicas else {
        report.scale_events.clear();
        report.warnings.clear();
        return;
    };
    let width = report.timeseries_resolution_s;
    report.scale_events = scale_events(timeline, &report.timeseries, width, cfg);
    report.warnings = spread_warnings(timeline, &report.timeseries, width);
}
