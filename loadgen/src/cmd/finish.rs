//! A finished report turned into its outputs and the exit code, the same for every command.

use crate::cli::RunOpts;
use crate::exit;
use crate::model::RunReport;

/// Where a finished report goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    /// `--out`: a JSON file, or `-` for stdout (the summary then goes to stderr).
    pub json: Option<String>,
    /// `--html`: the self-contained page.
    pub html: Option<String>,
    /// `--quiet`: no summary and no "report written" line.
    pub quiet: bool,
}

impl Outputs {
    /// The outputs a run's flags ask for.
    pub fn of(opts: &RunOpts) -> Self {
        Self {
            json: opts.out.clone(),
            html: opts.html.clone(),
            quiet: opts.quiet,
        }
    }
}

/// Writes the report where `outputs` say, prints the summary and failed thresholds, and returns
/// the exit code: interrupted, a threshold failed (for a capacity report: no step passed), or OK.
/// A capacity report's summary is its step table and capacity line.
pub fn finish(report: &RunReport, outputs: &Outputs, interrupted: bool) -> anyhow::Result<u8> {
    let to_stdout = outputs.json.as_deref() == Some("-");
    // Files first: whatever happens to the terminal afterwards (a closed pipe), the report and
    // the HTML page are on disk.
    if let Some(out) = &outputs.json
        && !to_stdout
    {
        report.write(out)?;
    }
    if let Some(html) = &outputs.html {
        std::fs::write(html, crate::report::html::render_run(report))
            .map_err(|e| anyhow::anyhow!("cannot write {html}: {e}"))?;
    }
    if !outputs.quiet {
        let text = match &report.capacity {
            Some(c) => format!("{}\n", crate::report::capacity::render(c)),
            None => crate::report::summary::render(report),
        };
        if to_stdout {
            crate::console::err(format_args!("{text}"));
        } else {
            crate::console::out(format_args!("{text}"));
        }
    }
    for t in report.thresholds.iter().filter(|t| !t.passed) {
        crate::errln!("threshold failed: {} (actual {:.3})", t.expr, t.actual);
    }
    if to_stdout {
        // Last, after everything for stderr is out: a container runtime logs the two streams into
        // one file through separate readers, so a stderr line written while the report is being
        // written can land inside it (seen with `kubectl logs` of the loadgen Job).
        use std::io::Write;
        let _ = std::io::stderr().flush();
        report.write("-")?;
    } else if let Some(out) = &outputs.json
        && !outputs.quiet
    {
        crate::outln!("report written to {out}");
    }
    Ok(if interrupted {
        exit::INTERRUPTED
    } else if report.thresholds.iter().any(|t| !t.passed)
        || report
            .capacity
            .as_ref()
            .is_some_and(|c| c.capacity_rps.is_none())
    {
        exit::THRESHOLD_FAILED
    } else {
        exit::OK
    })
}
