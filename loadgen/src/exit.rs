//! Exit codes (documented in `--help`).

/// Everything went as planned (thresholds, if any, passed).
pub const OK: u8 = 0;
/// The run could not be carried out (I/O, bind failure, ...).
pub const RUNTIME: u8 = 1;
/// Bad flags or input files (clap uses 2 for usage errors too).
pub const USAGE: u8 = 2;
/// At least one threshold failed (k6's convention).
pub const THRESHOLD_FAILED: u8 = 99;
/// Stopped with Ctrl-C; a partial report was written.
pub const INTERRUPTED: u8 = 130;

/// Stopped with Ctrl-C before the first request (while waiting for `--start-at`): exits with
/// [`INTERRUPTED`], without a report (nothing ran).
#[derive(Debug, thiserror::Error)]
#[error("interrupted while waiting for --start-at: nothing was sent, no report written")]
pub struct InterruptedBeforeStart;

/// Bad input from the user: exits with [`USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);
