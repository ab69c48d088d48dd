//! One file per subcommand; [`crate::app`] only dispatches to them.
//!
//! - [`run`]: `loadgen run SCENARIO` and the quick `loadgen --target URL`: prepare, run to a
//!   report, finish.
//! - [`capacity`]: the highest rate that meets the objectives, one run per step.
//! - [`merge`]: several workers' reports into one; [`compare`]: runs side by side in a table;
//!   [`report`]: HTML pages of report files.
//!
//! Every command that ends with a report hands it to [`finish`]: the JSON, the HTML page, the
//! terminal summary and the exit code are decided in one place.

pub mod capacity;
pub mod compare;
mod finish;
pub mod merge;
pub mod report;
pub mod run;

pub use finish::{Outputs, finish};

use crate::exit::BadInput;
use crate::model::RunReport;

/// A usage error (exit code 2) with this message.
pub fn bad(msg: impl Into<String>) -> anyhow::Error {
    BadInput(msg.into()).into()
}

/// Reads report files; an unreadable or invalid one is a usage error naming the file.
pub fn load_reports(paths: &[String]) -> anyhow::Result<Vec<RunReport>> {
    paths
        .iter()
        .map(|p| RunReport::load(p).map_err(|e| bad(e.to_string())))
        .collect()
}
