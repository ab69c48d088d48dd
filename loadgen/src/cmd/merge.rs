//! `loadgen merge A.json B.json ... --out all.json`: the reports of workers that ran together,
//! merged into one (histograms added, not averaged), with thresholds judged on the whole.

use crate::cli::MergeCmd;
use crate::report::merge;

use super::{Outputs, bad, finish, load_reports};

/// Merges, writes and judges.
pub fn run(m: MergeCmd) -> anyhow::Result<u8> {
    let thresholds = crate::threshold::parse_all(&m.thresholds).map_err(bad)?;
    let runs = load_reports(&m.reports)?;
    let mut merged = merge::merge(&runs).map_err(|e| bad(e.to_string()))?;
    merged.thresholds = thresholds
        .iter()
        .map(|t| t.evaluate(&merged.summary))
        .collect();
    let outputs = Outputs {
        json: Some(m.out),
        html: None,
        quiet: m.quiet,
    };
    finish(&merged, &outputs, false)
}
