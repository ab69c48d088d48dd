//! `loadgen compare A.json B.json ...`: the runs side by side, the first as the baseline.

use crate::cli::CompareCmd;
use crate::exit;

/// Prints the comparison table (and the phase table when the runs share phases).
pub fn run(c: CompareCmd) -> anyhow::Result<u8> {
    let runs = super::load_reports(&c.reports)?;
    let names: Vec<String> = c
        .reports
        .iter()
        .map(|p| {
            std::path::Path::new(p)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.clone())
        })
        .collect();
    // The terminal's width when stdout is one (comfy-table asks it), else no limit.
    let width = c
        .width
        .or_else(|| comfy_table::Table::new().width())
        .map(usize::from);
    crate::outln!("{}", crate::report::compare::table(&names, &runs, width));
    if let Some(t) = crate::report::compare::phase_table(&names, &runs, width) {
        crate::outln!("\nphase by phase (phases the runs share by name):\n{t}");
    }
    Ok(exit::OK)
}
