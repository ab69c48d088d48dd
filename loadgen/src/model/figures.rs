//! The arithmetic that turns a report's counts and histograms into its figures (rates, success
//! rates, latency statistics), so a run's report, `merge` and the phase table compute them alike.

use hdrhistogram::Histogram;

use super::{LagStats, hist};

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
