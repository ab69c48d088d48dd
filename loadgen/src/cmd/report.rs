//! `loadgen report FILE... --html OUT`: the HTML page of one run, or of several compared.

use crate::cli::ReportCmd;
use crate::exit;

/// Writes the page.
pub fn run(r: ReportCmd) -> anyhow::Result<u8> {
    let reports = super::load_reports(&r.reports)?;
    let html = crate::report::html::render_files(&r.reports, &reports);
    std::fs::write(&r.html, html).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", r.html))?;
    Ok(exit::OK)
}
