//! Terminal output that never takes the run down.
//!
//! `print!` and `eprint!` panic when the write fails, and a closed pipe makes it fail: a user who
//! runs `loadgen ... --out r.json | head -1` would get a panic (exit 101) instead of a report.
//! What goes to the terminal is a courtesy copy of what the report holds, so a failed write to
//! stdout or stderr (a broken pipe, a closed descriptor) is ignored here.

use std::io::Write;

/// Writes to stdout, ignoring a closed pipe.
pub fn out(args: std::fmt::Arguments<'_>) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_fmt(args);
    let _ = o.flush();
}

/// Writes to stderr, ignoring a closed pipe.
pub fn err(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `println!` that survives a closed stdout.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => { $crate::console::out(format_args!("{}\n", format_args!($($t)*))) };
}

/// `eprintln!` that survives a closed stderr.
#[macro_export]
macro_rules! errln {
    ($($t:tt)*) => { $crate::console::err(format_args!("{}\n", format_args!($($t)*))) };
}

/// True when `e` (or what it wraps) is a broken pipe.
pub fn is_broken_pipe(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}
