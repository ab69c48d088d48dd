//! HDR histogram helpers: one configuration for every histogram, (de)serialization to the report's
//! `hdr-v2-deflate-base64` strings, and the statistics the summary shows.

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use super::{LatencyStats, ReportError};

/// Encoding name written into reports.
pub const ENCODING: &str = "hdr-v2-deflate-base64";
/// Unit of recorded values.
pub const UNIT: &str = "us";
/// Largest recordable value: one hour in microseconds (longer values are clamped, never lost).
pub const MAX_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds with 3 significant figures (0.1% resolution).
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds are valid")
}

/// A coarser histogram (2 significant figures) for per-second buckets: small and cheap to reset.
pub fn new_small_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 2).expect("static histogram bounds are valid")
}

/// Records `us` microseconds, clamped to the histogram's range.
#[inline]
pub fn record(h: &mut Histogram<u64>, us: u64) {
    let v = us.clamp(1, MAX_US);
    // Cannot fail: the value is clamped to the configured range.
    let _ = h.record(v);
}

/// Serializes to V2 + deflate, base64.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .expect("serializing into a Vec cannot fail");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// Decodes what [`encode`] wrote; an empty string is an empty histogram.
pub fn decode(what: &str, s: &str) -> Result<Histogram<u64>, ReportError> {
    if s.is_empty() {
        return Ok(new_hist());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| ReportError::Histogram {
            what: what.into(),
            reason: format!("bad base64: {e}"),
        })?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| ReportError::Histogram {
            what: what.into(),
            reason: format!("bad HDR V2 data: {e:?}"),
        })?;
    // Re-home into the standard configuration so adding histograms never fails on bounds.
    let mut out = new_hist();
    out.add(&h).map_err(|e| ReportError::Histogram {
        what: what.into(),
        reason: format!("incompatible histogram: {e:?}"),
    })?;
    Ok(out)
}

/// Milliseconds from microseconds, rounded to the microsecond.
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Summary statistics in milliseconds (all zero for an empty histogram).
pub fn stats(h: &Histogram<u64>) -> LatencyStats {
    if h.is_empty() {
        return LatencyStats::default();
    }
    LatencyStats {
        min: ms(h.min()),
        mean: (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
        p50: ms(h.value_at_quantile(0.50)),
        p90: ms(h.value_at_quantile(0.90)),
        p95: ms(h.value_at_quantile(0.95)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
        stdev: (h.stdev() / 1000.0 * 1000.0).round() / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact() {
        let mut h = new_hist();
        for v in [1u64, 10, 999, 12_345, 2_000_000, MAX_US * 2] {
            record(&mut h, v);
        }
        let back = decode("t", &encode(&h)).unwrap();
        assert_eq!(h, back);
        assert_eq!(back.len(), 6);
        assert_eq!(back.max(), h.max());
    }

    #[test]
    fn empty_string_is_empty_histogram() {
        assert!(decode("t", "").unwrap().is_empty());
        assert!(decode("t", "!!notbase64").is_err());
        assert!(decode("t", "aGVsbG8=").is_err());
    }
}
