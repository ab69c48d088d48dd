//! Series colours. Distinct from each other and from the greys of text and grid, so a screenshot
//! can be checked for each series by colour (tests/system/test_html_report.py does).

pub const THROUGHPUT: &str = "#1f77b4";
pub const TARGET_RATE: &str = "#7f7f7f";
pub const ERRORS: &str = "#d62728";
pub const P50: &str = "#2ca02c";
pub const P99: &str = "#9467bd";
pub const MAX: &str = "#ff7f0e";
pub const DISTRIBUTION: &str = "#17becf";
pub const READY: &str = "#8c564b";
pub const DESIRED: &str = "#e377c2";
pub const CURRENT: &str = "#bcbd22";
pub const CPU: &str = "#393b79";
pub const PER_REPLICA: &str = "#637939";
/// Scale events marked on the time axis.
pub const MARKER: &str = "#555555";
/// The single run's line on the latency-by-percentile chart.
pub const PERCENTILES: &str = "#6b6ecf";
/// One colour per run on the comparison page (cycled, dashed after the first round).
pub const RUNS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
];
/// One colour per backend on the throughput-per-backend chart (none used by another chart,
/// so a screenshot tells them apart); the busiest backends come first.
pub const BACKENDS: [&str; 8] = [
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5",
];
