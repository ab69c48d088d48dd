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
///
/// Reports are untrusted input, and the HDR decoder believes the header: a 40-byte V2 header that
/// claims a 4 GiB payload makes it allocate 4 GiB before it finds the data missing. So the header
/// is parsed here first, and only a histogram this build could have written (the bounds of
/// [`new_hist`], a payload no longer than that histogram can need, deflate inflated through a
/// bounded reader) reaches the decoder. Memory stays at a few hundred kilobytes per histogram
/// whatever the input says.
pub fn decode(what: &str, s: &str) -> Result<Histogram<u64>, ReportError> {
    let bad = |reason: String| ReportError::Histogram {
        what: what.into(),
        reason,
    };
    let s = s.trim();
    if s.is_empty() {
        return Ok(new_hist());
    }
    let limits = Limits::get();
    if s.len() > limits.max_base64 {
        return Err(bad(format!(
            "{} characters of base64, more than any histogram of this configuration needs ({})",
            s.len(),
            limits.max_base64
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| bad(format!("bad base64: {e}")))?;
    let v2 = plain_v2(&bytes, limits).map_err(bad)?;
    check_v2_header(&v2, limits).map_err(bad)?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut v2.as_ref())
        .map_err(|e| bad(format!("bad HDR V2 data: {e:?}")))?;
    Ok(h)
}

/// Checks what a report holds before anything uses it: at most
/// [`MAX_ENDPOINTS`](crate::limits::MAX_ENDPOINTS) endpoints, and every histogram decodable
/// within the bounds of [`decode`] (one at a time, so checking costs one histogram of memory).
pub fn check_report(origin: &str, r: &super::RunReport) -> Result<(), ReportError> {
    use crate::limits::MAX_ENDPOINTS;
    let n = r.endpoints.len().max(r.histograms.endpoints.len());
    if n > MAX_ENDPOINTS {
        return Err(ReportError::Invalid(format!(
            "{origin} has {n} endpoints; loadgen handles at most {MAX_ENDPOINTS}"
        )));
    }
    let h = &r.histograms;
    let overall = [
        ("latency", &h.latency),
        ("service_time", &h.service_time),
        ("schedule_lag", &h.schedule_lag),
    ];
    let per_endpoint = h.endpoints.iter().flat_map(|(name, e)| {
        [
            (name.as_str(), &e.latency),
            (name.as_str(), &e.service_time),
        ]
    });
    for (what, s) in overall.into_iter().chain(per_endpoint) {
        decode(&format!("{origin}: histogram {what}"), s)?;
    }
    Ok(())
}

/// HDR V2 cookies (hdrhistogram's `V2_COOKIE` and `V2_COMPRESSED_COOKIE`, which it keeps private).
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9304 | 0x10;
/// Cookie, payload length, normalizing offset, significant figures, low, high, conversion ratio.
const V2_HEADER_LEN: usize = 4 + 4 + 4 + 4 + 8 + 8 + 8;
/// Longest LEB128 varint the V2 encoding writes for one count.
const MAX_VARINT_LEN: usize = 9;

/// Sizes the histogram of [`new_hist`] can need, computed once from its configuration.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Longest V2 payload: every count slot at the longest varint.
    max_payload: usize,
    /// Longest uncompressed V2 encoding (header and payload).
    max_v2: usize,
    /// Longest V2+Deflate encoding: the plain one plus zlib's worst-case growth (5 bytes per
    /// 16 KiB stored block, header and checksum), rounded up generously.
    max_deflate: usize,
    /// Longest base64 text of either encoding.
    max_base64: usize,
}

impl Limits {
    fn get() -> &'static Limits {
        static LIMITS: std::sync::LazyLock<Limits> = std::sync::LazyLock::new(|| {
            let max_payload = new_hist().distinct_values() * MAX_VARINT_LEN;
            let max_v2 = V2_HEADER_LEN + max_payload;
            let max_deflate = 8 + max_v2 + max_v2 / 1024 + 1024;
            Limits {
                max_payload,
                max_v2,
                max_deflate,
                max_base64: max_deflate.div_ceil(3) * 4,
            }
        });
        &LIMITS
    }
}

/// The plain V2 encoding of `bytes`: as is for V2, inflated (at most `max_v2` bytes) for
/// V2+Deflate.
fn plain_v2<'a>(bytes: &'a [u8], limits: &Limits) -> Result<std::borrow::Cow<'a, [u8]>, String> {
    use std::io::Read as _;
    match be_u32(bytes, 0) {
        Some(V2_COOKIE) => Ok(std::borrow::Cow::Borrowed(bytes)),
        Some(V2_DEFLATE_COOKIE) => {
            if bytes.len() > limits.max_deflate {
                return Err(format!(
                    "{} bytes of V2+Deflate, more than this histogram configuration needs ({})",
                    bytes.len(),
                    limits.max_deflate
                ));
            }
            let claimed = be_u32(bytes, 4).ok_or("V2+Deflate header is truncated")? as usize;
            let compressed = &bytes[8..];
            if claimed > compressed.len() {
                return Err(format!(
                    "V2+Deflate header claims {claimed} compressed bytes, {} present",
                    compressed.len()
                ));
            }
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(&compressed[..claimed])
                .take(limits.max_v2 as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("bad deflate data: {e}"))?;
            if out.len() > limits.max_v2 {
                return Err(format!(
                    "V2+Deflate data inflates past {} bytes, more than this histogram \
                     configuration needs",
                    limits.max_v2
                ));
            }
            if be_u32(&out, 0) != Some(V2_COOKIE) {
                return Err("V2+Deflate data does not hold a V2 histogram".into());
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        Some(c) => Err(format!(
            "unknown HDR cookie {c:#010x} (want V2 or V2+Deflate)"
        )),
        None => Err("shorter than an HDR cookie".into()),
    }
}

/// Refuses a V2 header whose payload length or bounds differ from what [`new_hist`] writes.
fn check_v2_header(v2: &[u8], limits: &Limits) -> Result<(), String> {
    if v2.len() < V2_HEADER_LEN {
        return Err(format!(
            "{} bytes, shorter than an HDR V2 header ({V2_HEADER_LEN})",
            v2.len()
        ));
    }
    let field = |at| be_u32(v2, at).expect("length checked above");
    let wide = |at| be_u64(v2, at).expect("length checked above");
    let payload = field(4) as usize;
    if payload > limits.max_payload {
        return Err(format!(
            "header claims a {payload}-byte payload; this histogram configuration needs at most {}",
            limits.max_payload
        ));
    }
    let present = v2.len() - V2_HEADER_LEN;
    if payload > present {
        return Err(format!(
            "header claims a {payload}-byte payload, {present} present"
        ));
    }
    let (sigfig, low, high) = (field(12), wide(16), wide(24));
    let want = new_hist();
    if (sigfig, low, high) != (u32::from(want.sigfig()), want.low(), want.high()) {
        return Err(format!(
            "bounds {low}..{high} with {sigfig} significant figures; loadgen records \
             {}..{} with {}",
            want.low(),
            want.high(),
            want.sigfig()
        ));
    }
    Ok(())
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
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

    /// A plain V2 header with the given payload length and bounds, and `payload` after it.
    fn v2(payload_len: u32, sigfig: u32, low: u64, high: u64, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(V2_COOKIE.to_be_bytes());
        b.extend(payload_len.to_be_bytes());
        b.extend(0u32.to_be_bytes());
        b.extend(sigfig.to_be_bytes());
        b.extend(low.to_be_bytes());
        b.extend(high.to_be_bytes());
        b.extend(1.0f64.to_be_bytes());
        b.extend(payload);
        b
    }

    fn deflated(inner: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(inner).unwrap();
        let z = z.finish().unwrap();
        let mut b = Vec::new();
        b.extend(V2_DEFLATE_COOKIE.to_be_bytes());
        b.extend((z.len() as u32).to_be_bytes());
        b.extend(z);
        b
    }

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    fn reason(s: &str) -> String {
        match decode("t", s) {
            Err(ReportError::Histogram { reason, .. }) => reason,
            other => panic!("expected a histogram error, got {other:?}"),
        }
    }

    #[test]
    fn a_header_claiming_a_4_gib_payload_is_refused_before_allocating() {
        let r = reason(&b64(&v2(u32::MAX, 3, 1, MAX_US, &[])));
        assert!(r.contains("4294967295-byte payload"), "{r}");
        // The same inside V2+Deflate.
        let r = reason(&b64(&deflated(&v2(u32::MAX, 3, 1, MAX_US, &[]))));
        assert!(r.contains("4294967295-byte payload"), "{r}");
    }

    #[test]
    fn a_payload_shorter_than_its_header_claims_is_refused() {
        let r = reason(&b64(&v2(100, 3, 1, MAX_US, &[0; 10])));
        assert!(r.contains("100-byte payload, 10 present"), "{r}");
        let r = reason(&b64(&V2_COOKIE.to_be_bytes()));
        assert!(r.contains("shorter than an HDR V2 header"), "{r}");
    }

    #[test]
    fn bounds_other_than_loadgens_are_refused() {
        // u64::MAX with 5 figures would make the decoder allocate a huge counts array.
        for (sigfig, low, high) in [
            (5, 1, u64::MAX),
            (3, 1, MAX_US * 2),
            (2, 1, MAX_US),
            (3, 2, MAX_US),
        ] {
            let r = reason(&b64(&v2(0, sigfig, low, high, &[])));
            assert!(r.contains("bounds"), "{r}");
        }
        // The configured bounds with an empty payload are an empty histogram.
        assert!(
            decode("t", &b64(&v2(0, 3, 1, MAX_US, &[])))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_deflate_bomb_is_cut_off_at_the_configured_size() {
        let inner = v2(0, 3, 1, MAX_US, &vec![0u8; 20 << 20]);
        let bomb = deflated(&inner);
        assert!(
            bomb.len() < Limits::get().max_deflate,
            "the bomb must pass the size check"
        );
        let r = reason(&b64(&bomb));
        assert!(r.contains("inflates past"), "{r}");
    }

    #[test]
    fn deflate_headers_that_lie_or_wrap_other_data_are_refused() {
        let mut lying = deflated(&v2(0, 3, 1, MAX_US, &[]));
        lying[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(reason(&b64(&lying)).contains("compressed bytes"));
        let r = reason(&b64(&deflated(b"not a histogram at all")));
        assert!(r.contains("does not hold a V2 histogram"), "{r}");
        let r = reason(&b64(&[0x12, 0x34, 0x56, 0x78, 0]));
        assert!(r.contains("unknown HDR cookie"), "{r}");
    }

    #[test]
    fn text_longer_than_any_encoding_is_refused_before_base64_decoding() {
        let long = "A".repeat(Limits::get().max_base64 + 4);
        assert!(reason(&long).contains("characters of base64"));
    }

    #[test]
    fn a_full_histogram_fits_the_limits() {
        // Every slot counted: the longest encoding this configuration can produce.
        let mut h = new_hist();
        let mut v = 1;
        while v <= MAX_US {
            h.record_n(v, u64::MAX / 4).unwrap();
            v = h.next_non_equivalent(v);
        }
        let s = encode(&h);
        assert!(s.len() <= Limits::get().max_base64);
        assert_eq!(decode("t", &s).unwrap(), h);
    }

    #[test]
    fn empty_string_is_empty_histogram() {
        assert!(decode("t", "").unwrap().is_empty());
        assert!(decode("t", "!!notbase64").is_err());
        assert!(decode("t", "aGVsbG8=").is_err());
    }
}
