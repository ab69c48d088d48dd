//! The arithmetic that turns a report's counts and histograms into its figures, in one place for
//! a run's report (`cmd::run::build`), `merge` and the phase table (`report::phases`):
//!
//! - a row's figures (rate, success rate, latency and service-time statistics) come from its
//!   counts, its duration and its two histograms through [`Figures::of`], whatever the row: the
//!   run's summary, an endpoint or a phase;
//! - counts read from reports are untrusted (a crafted or corrupt file): they are added with
//!   [`add`] and [`add_map`], which refuse a sum that overflows rather than cap it, and the
//!   histograms through [`Distributions::add_encoded`], which decodes them within the limits of
//!   [`hist::decode`].

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::phases::PhaseSummary;
use super::{
    EndpointHistograms, EndpointSummary, LagStats, LatencyStats, ReportError, Summary, hist,
};

/// Success rate in percent (100 with no requests: nothing failed).
pub fn success_rate(successes: u64, requests: u64) -> f64 {
    if requests == 0 {
        100.0
    } else {
        successes as f64 / requests as f64 * 100.0
    }
}

/// `n` per second over `secs` (0 over no time).
pub fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// Schedule-lag statistics from its histogram.
pub fn lag_stats(h: &Histogram<u64>) -> LagStats {
    let st = hist::stats(h);
    LagStats {
        mean: st.mean,
        p99: st.p99,
        max: st.max,
    }
}

/// The figures of one row of a report, computed from its counts and histograms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub rps: f64,
    pub success_rate: f64,
    pub latency_ms: LatencyStats,
    /// Open loop only: closed-loop latency is already measured from the send.
    pub service_time_ms: Option<LatencyStats>,
}

impl Figures {
    /// `requests` of which `successes` over `secs` seconds, with their latency and service-time
    /// histograms.
    pub fn of(
        requests: u64,
        successes: u64,
        secs: f64,
        latency: &Histogram<u64>,
        service: &Histogram<u64>,
        open: bool,
    ) -> Self {
        Self {
            rps: per_sec(requests, secs),
            success_rate: success_rate(successes, requests),
            latency_ms: hist::stats(latency),
            service_time_ms: open.then(|| hist::stats(service)),
        }
    }
}

impl Summary {
    /// Sets the summary's figures.
    pub fn set_figures(&mut self, f: Figures) {
        self.rps = f.rps;
        self.success_rate = f.success_rate;
        self.latency_ms = f.latency_ms;
        self.service_time_ms = f.service_time_ms;
    }
}

impl EndpointSummary {
    /// Sets the endpoint's figures (an endpoint row has no success rate of its own).
    pub fn set_figures(&mut self, f: Figures) {
        self.rps = f.rps;
        self.latency_ms = f.latency_ms;
        self.service_time_ms = f.service_time_ms;
    }
}

impl PhaseSummary {
    /// Sets the phase's figures.
    pub fn set_figures(&mut self, f: Figures) {
        self.rps = f.rps;
        self.success_rate = f.success_rate;
        self.latency_ms = f.latency_ms;
        self.service_time_ms = f.service_time_ms;
    }
}

impl EndpointHistograms {
    /// The report's encoding of a row's two histograms.
    pub fn encode(latency: &Histogram<u64>, service: &Histogram<u64>) -> Self {
        Self {
            latency: hist::encode(latency),
            service_time: hist::encode(service),
        }
    }
}

/// `a + b` for counts read from reports: a crafted or corrupt report must not overflow a sum, and
/// a capped sum would be a wrong figure, so the sum is refused. `what` names the count.
pub fn sum(a: u64, b: u64, what: &str) -> Result<u64, ReportError> {
    a.checked_add(b).ok_or_else(|| {
        ReportError::Invalid(format!(
            "the reports' {what} add up to more than {}: not real runs",
            u64::MAX
        ))
    })
}

/// Adds a count read from a report (see [`sum`]).
pub fn add(into: &mut u64, v: u64, what: &str) -> Result<(), ReportError> {
    *into = sum(*into, v, what)?;
    Ok(())
}

/// Adds counts by key read from a report (status codes, errors, backends; see [`sum`]).
pub fn add_map(
    into: &mut BTreeMap<String, u64>,
    from: &BTreeMap<String, u64>,
    what: &str,
) -> Result<(), ReportError> {
    for (k, v) in from {
        add(into.entry(k.clone()).or_default(), *v, what)?;
    }
    Ok(())
}

/// The latency and service-time histograms of one row, added up over several reports.
#[derive(Debug, Clone)]
pub struct Distributions {
    pub latency: Histogram<u64>,
    pub service: Histogram<u64>,
}

impl Default for Distributions {
    fn default() -> Self {
        Self {
            latency: hist::new_hist(),
            service: hist::new_hist(),
        }
    }
}

impl Distributions {
    /// Decodes a report's two histograms of the row (`what` names them in errors) and adds them.
    pub fn add_encoded(&mut self, what: &str, h: &EndpointHistograms) -> Result<(), ReportError> {
        self.add(
            what,
            hist::decode(what, &h.latency)?,
            hist::decode(what, &h.service_time)?,
        )
    }

    /// Adds two decoded histograms of the row.
    pub fn add(
        &mut self,
        what: &str,
        latency: Histogram<u64>,
        service: Histogram<u64>,
    ) -> Result<(), ReportError> {
        let fail = |e: hdrhistogram::AdditionError| ReportError::Histogram {
            what: what.to_string(),
            reason: e.to_string(),
        };
        self.latency.add(latency).map_err(fail)?;
        self.service.add(service).map_err(fail)
    }

    /// The row's figures over `secs` seconds.
    pub fn figures(&self, requests: u64, successes: u64, secs: f64, open: bool) -> Figures {
        Figures::of(
            requests,
            successes,
            secs,
            &self.latency,
            &self.service,
            open,
        )
    }

    /// The report's encoding of the two histograms.
    pub fn encode(&self) -> EndpointHistograms {
        EndpointHistograms::encode(&self.latency, &self.service)
    }
}
