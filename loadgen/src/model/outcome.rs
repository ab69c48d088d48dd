//! One finished request ([`Outcome`]) and the one way it is recorded ([`OutcomeSink`]).
//!
//! A worker hands each outcome once to a sink; the stats, the Prometheus series and the live
//! progress counters are sinks, and the engine's fan-out (`crate::engine::sink`) is one too. The
//! sinks are concrete types composed in a fixed struct, so the hot path costs no allocation and no
//! dynamic dispatch.

use std::time::Instant;

/// Transport-level failure kinds (the `kind` label of `loadgen_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    ConnectRefused,
    Timeout,
    Reset,
    Tls,
    Body,
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::ConnectRefused,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::Tls,
        ErrorKind::Body,
        ErrorKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Tls => "tls",
            ErrorKind::Body => "body",
            ErrorKind::Other => "other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Why a request failed, beyond its status code: transport kinds plus failed captures and checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Transport(ErrorKind),
    /// A capture found nothing (the next steps of the flow are skipped).
    Capture,
    /// The status was not one of `expect.status`.
    Check,
    /// The request could not be built (a template referenced a variable no capture set, or
    /// rendered an invalid header): nothing was sent, so it has no latency and is not a request.
    Template,
}

/// How many [`Failure`] kinds there are (the length of a per-kind count array).
pub const N_FAIL: usize = 9;

impl Failure {
    /// The kind's slot in a per-kind count array.
    pub fn index(self) -> usize {
        match self {
            Failure::Transport(k) => k.index(),
            Failure::Capture => 6,
            Failure::Check => 7,
            Failure::Template => 8,
        }
    }

    /// The name of slot `i`, as in the report's `errors`.
    pub fn name(i: usize) -> &'static str {
        match i {
            0..=5 => ErrorKind::ALL[i].as_str(),
            6 => "capture",
            7 => "check",
            _ => "template",
        }
    }

    pub fn as_str(self) -> &'static str {
        Failure::name(self.index())
    }
}

/// One finished request.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    pub endpoint: usize,
    /// From the intended start (open loop) or the send (closed loop), microseconds.
    pub latency_us: u64,
    /// From the actual send, microseconds.
    pub service_us: u64,
    pub status: Option<u16>,
    pub failure: Option<Failure>,
    pub success: bool,
    pub backend: Option<&'a str>,
}

/// Something that records finished requests.
pub trait OutcomeSink {
    /// Records `o`, which completed at `done`.
    fn record(&mut self, o: &Outcome<'_>, done: Instant);
}
