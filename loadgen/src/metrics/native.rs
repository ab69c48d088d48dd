//! HDR latency histograms as Prometheus native histograms (exponential buckets, remote write).
//!
//! A native histogram of schema `s` has buckets whose bounds are powers of `2^(2^-s)`: bucket `i`
//! holds the values in `(2^((i-1)/2^s), 2^(i/2^s)]`, with values at or below the zero threshold
//! in a separate zero bucket. Remote write carries the non-empty buckets as spans of consecutive
//! indexes and, bucket after bucket in index order, the difference of each count from the one
//! before (the first count itself).
//!
//! The HDR histograms keep latencies in microseconds to a fraction of a percent; each HDR bucket
//! goes to the native bucket holding its highest equivalent value, the value the report quotes
//! for it. So a native bucket counts exactly the requests whose reported latency falls in it, and
//! a quantile read from the native histogram lies in the same native bucket as the report's.

use hdrhistogram::Histogram;

/// The schema exported: buckets 2^(1/8) ≈ 9% wide (a quantile is placed within ±4.5%), the
/// resolution client_golang picks by default (bucket factor 1.1). Latencies of 1 µs to an hour
/// span about 250 such buckets; a run fills a few dozen, so a series stays a few hundred bytes.
pub const SCHEMA: i32 = 3;

/// The zero bucket's upper bound, in seconds. The HDR histograms record 1 µs at least, so it only
/// ever holds a latency recorded as 0; the value is client_golang's default.
pub const ZERO_THRESHOLD: f64 = 2.938_735_877_055_719e-39; // 2^-128

/// Consecutive native buckets: `offset` from the end of the previous span (from index 0 for the
/// first), `length` buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub offset: i32,
    pub length: u32,
}

/// A cumulative integer native histogram of positive values, as remote write encodes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Native {
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: u64,
    /// Every observation, the zero bucket's included.
    pub count: u64,
    /// Sum of the observations, in seconds (HDR keeps no exact sum: each bucket counts at its
    /// median equivalent value, as the HDR mean does).
    pub sum: f64,
    pub spans: Vec<Span>,
    /// First count absolute, then each bucket's difference from the previous one.
    pub deltas: Vec<i64>,
}

impl Native {
    /// (index, count) of every non-empty bucket, in index order: the spans and deltas decoded.
    pub fn buckets(&self) -> Vec<(i32, u64)> {
        let mut out = Vec::new();
        let mut deltas = self.deltas.iter();
        let mut index = 0i32;
        let mut count = 0i64;
        // The first offset is the first index; each later one counts from the bucket after the
        // previous span's last.
        for span in &self.spans {
            index += span.offset;
            for _ in 0..span.length {
                count += deltas.next().copied().unwrap_or(0);
                out.push((index, count.max(0) as u64));
                index += 1;
            }
        }
        out
    }
}

/// Upper bound of native bucket `index` of `schema`: 2^(index / 2^schema).
pub fn upper_bound(index: i32, schema: i32) -> f64 {
    (f64::from(index) * (-f64::from(schema)).exp2()).exp2()
}

/// The native bucket of `schema` that holds `v` (> 0 seconds): the smallest `i` with
/// `v <= 2^(i / 2^schema)`. Exact at powers of two (their own bucket's upper bound), computed
/// from the binary exponent and mantissa so it does not drift with large indexes.
pub fn bucket_index(v: f64, schema: i32) -> i32 {
    debug_assert!(v > 0.0 && v.is_finite(), "{v}");
    let (frac, exp) = frexp(v);
    let per_octave = 1i32 << schema;
    // frac is in [0.5, 1): v = frac * 2^exp, so v's octave is (2^(exp-1), 2^exp], and within it
    // the sub-bucket j is the smallest with frac <= 2^(j/2^schema - 1).
    if frac == 0.5 {
        return (exp - 1) * per_octave;
    }
    let mut j = 1;
    while j < per_octave && frac > (f64::from(j) / f64::from(per_octave) - 1.0).exp2() {
        j += 1;
    }
    (exp - 1) * per_octave + j
}

/// `v = frac * 2^exp` with `frac` in [0.5, 1), for normal positive `v`.
fn frexp(v: f64) -> (f64, i32) {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first.
        let (f, e) = frexp(v * (1u64 << 54) as f64);
        return (f, e - 54);
    }
    let frac = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (frac, biased - 1022)
}

/// The native histogram of `h`, whose values are in `units_per_second` (1e6: microseconds).
pub fn from_hdr(h: &Histogram<u64>, units_per_second: f64) -> Native {
    let mut zero_count = 0;
    let mut sum = 0.0;
    let mut buckets: Vec<(i32, u64)> = Vec::new();
    for v in h.iter_recorded() {
        let n = v.count_at_value();
        let highest = v.value_iterated_to();
        sum += n as f64 * h.median_equivalent(highest) as f64 / units_per_second;
        let seconds = highest as f64 / units_per_second;
        if seconds <= ZERO_THRESHOLD {
            zero_count += n;
            continue;
        }
        let index = bucket_index(seconds, SCHEMA);
        match buckets.last_mut() {
            Some((last, count)) if *last == index => *count += n,
            _ => buckets.push((index, n)),
        }
    }
    let (spans, deltas) = encode_buckets(&buckets);
    Native {
        schema: SCHEMA,
        zero_threshold: ZERO_THRESHOLD,
        zero_count,
        count: zero_count + buckets.iter().map(|(_, n)| n).sum::<u64>(),
        sum,
        spans,
        deltas,
    }
}

/// Spans and deltas of `(index, count)` pairs in strictly increasing index order.
fn encode_buckets(buckets: &[(i32, u64)]) -> (Vec<Span>, Vec<i64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut deltas = Vec::with_capacity(buckets.len());
    let mut next_index = 0i32; // the index right after the last bucket encoded
    let mut previous = 0i64;
    for (n, &(index, count)) in buckets.iter().enumerate() {
        match spans.last_mut() {
            Some(span) if n > 0 && index == next_index => span.length += 1,
            _ => spans.push(Span {
                offset: index - next_index,
                length: 1,
            }),
        }
        let count = count as i64;
        deltas.push(count - previous);
        previous = count;
        next_index = index + 1;
    }
    (spans, deltas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hist;

    fn hdr(values_us: &[(u64, u64)]) -> Histogram<u64> {
        let mut h = hist::new_hist();
        for &(v, n) in values_us {
            h.record_n(v, n).unwrap();
        }
        h
    }

    /// The native quantile as Prometheus computes it for a value in bucket `i`: somewhere in
    /// (upper_bound(i-1), upper_bound(i)].
    fn bucket_of_rank(n: &Native, rank: u64) -> i32 {
        let mut seen = n.zero_count;
        for (i, c) in n.buckets() {
            seen += c;
            if seen >= rank {
                return i;
            }
        }
        panic!("rank {rank} beyond count {}", n.count)
    }

    #[test]
    fn powers_of_two_are_the_upper_bound_of_their_own_bucket() {
        assert_eq!(bucket_index(1.0, 3), 0);
        assert_eq!(bucket_index(2.0, 3), 8);
        assert_eq!(bucket_index(0.5, 3), -8);
        assert_eq!(bucket_index(1.0 + 1e-12, 3), 1);
        assert_eq!(bucket_index(2f64.powi(-20), 3), -160);
        assert_eq!(bucket_index(2f64.powi(-20) * 1.000001, 3), -159);
    }

    #[test]
    fn every_value_lies_in_the_bounds_of_its_bucket() {
        for schema in [0, 1, 3, 5, 8] {
            let mut v = 1e-6;
            while v < 4000.0 {
                let i = bucket_index(v, schema);
                let (lo, hi) = (upper_bound(i - 1, schema), upper_bound(i, schema));
                // 1e-12 relative: the bounds themselves are computed with exp2.
                assert!(
                    v > lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12),
                    "{v} in {i} ({lo}, {hi}] schema {schema}"
                );
                v *= 1.0137;
            }
        }
    }

    #[test]
    fn bucket_edges_of_schema_3_split_as_prometheus_does() {
        // 2^(1/8) = 1.0905...: just below and above an inner bound land on either side.
        let bound = upper_bound(3, 3);
        assert_eq!(bucket_index(bound * (1.0 - 1e-9), 3), 3);
        assert_eq!(bucket_index(bound * (1.0 + 1e-9), 3), 4);
    }

    #[test]
    fn an_empty_histogram_has_no_bucket_and_no_count() {
        let n = from_hdr(&hist::new_hist(), 1e6);
        assert_eq!((n.count, n.zero_count, n.sum), (0, 0, 0.0));
        assert!(n.spans.is_empty() && n.deltas.is_empty());
        assert_eq!(n.schema, SCHEMA);
    }

    #[test]
    fn one_value_lands_in_the_bucket_that_holds_it() {
        // 1 ms = 2^-9.97 s: bucket ceil(-9.9658 * 8) = -79, (0.000976.., 0.001062..] s.
        let n = from_hdr(&hdr(&[(1000, 7)]), 1e6);
        assert_eq!(n.buckets(), vec![(-79, 7)]);
        assert_eq!(n.count, 7);
        assert_eq!(
            n.spans,
            vec![Span {
                offset: -79,
                length: 1
            }]
        );
        assert_eq!(n.deltas, vec![7]);
        assert!((n.sum - 0.007).abs() < 1e-9, "{}", n.sum);
        assert!(upper_bound(-80, 3) < 0.001 && 0.001 <= upper_bound(-79, 3));
    }

    #[test]
    fn spans_break_at_gaps_and_deltas_run_across_them() {
        // 10 ms, 11 ms (next bucket: 10 ms * 1.0905 < 11 ms), then 1 s.
        let n = from_hdr(&hdr(&[(10_000, 5), (11_000, 3), (1_000_000, 2)]), 1e6);
        let b = n.buckets();
        assert_eq!(b.iter().map(|(_, c)| *c).collect::<Vec<_>>(), vec![5, 3, 2]);
        assert_eq!(b[1].0, b[0].0 + 1);
        assert_eq!(n.spans.len(), 2);
        assert_eq!(
            n.spans[0],
            Span {
                offset: b[0].0,
                length: 2
            }
        );
        assert_eq!(n.spans[1].offset, b[2].0 - (b[1].0 + 1));
        assert_eq!(n.deltas, vec![5, -2, -1]);
        assert_eq!(n.count, 10);
    }

    #[test]
    fn hdr_buckets_that_share_a_native_bucket_are_added() {
        // 1000..=1060 µs are all within (976.6, 1062.1] µs: one native bucket.
        let values: Vec<(u64, u64)> = (1000..=1060).map(|v| (v, 1)).collect();
        let n = from_hdr(&hdr(&values), 1e6);
        assert_eq!(n.buckets(), vec![(-79, 61)]);
    }

    #[test]
    fn a_uniform_distribution_keeps_its_quantiles_within_one_bucket() {
        // 1..=100_000 µs, one each: the report's p50 and p99 and the native ones agree.
        let mut h = hist::new_hist();
        for v in 1..=100_000u64 {
            h.record(v).unwrap();
        }
        let n = from_hdr(&h, 1e6);
        assert_eq!(n.count, 100_000);
        for q in [0.5, 0.9, 0.99, 0.999] {
            let reported = h.value_at_quantile(q) as f64 / 1e6;
            let rank = (q * n.count as f64).ceil() as u64;
            assert_eq!(
                bucket_of_rank(&n, rank),
                bucket_index(reported, SCHEMA),
                "q{q}"
            );
        }
        let mean = h.mean() / 1e6;
        assert!(
            (n.sum / n.count as f64 - mean).abs() < 1e-9 * mean.max(1.0),
            "{} vs {mean}",
            n.sum
        );
    }

    #[test]
    fn a_bimodal_distribution_puts_the_tail_where_the_report_does() {
        // 990 fast requests at 2 ms, 10 slow at 800 ms: p99 is the 990th, p99.9 a slow one.
        let h = hdr(&[(2_000, 990), (800_000, 10)]);
        let n = from_hdr(&h, 1e6);
        assert_eq!(bucket_of_rank(&n, 990), bucket_index(0.002, SCHEMA));
        assert_eq!(bucket_of_rank(&n, 999), bucket_index(0.8, SCHEMA));
        assert_eq!(
            bucket_index(h.value_at_quantile(0.999) as f64 / 1e6, SCHEMA),
            bucket_index(0.8, SCHEMA)
        );
    }

    #[test]
    fn huge_values_keep_their_count_and_a_finite_bucket() {
        // An hour (the report's clamp) and far beyond, in a histogram that takes them.
        let mut h = Histogram::<u64>::new(3).unwrap();
        h.record_n(hist::MAX_US, 3).unwrap();
        h.record_n(u64::MAX / 4, 2).unwrap();
        let n = from_hdr(&h, 1e6);
        assert_eq!(n.count, 5);
        let b = n.buckets();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0], (bucket_index(3600.0, SCHEMA), 3));
        assert!(b[1].0 > b[0].0 && b[1].0 < 400, "{b:?}");
        assert!(n.sum.is_finite());
    }

    #[test]
    fn a_latency_recorded_as_zero_goes_to_the_zero_bucket() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        h.record_n(0, 4).unwrap();
        h.record(5).unwrap();
        let n = from_hdr(&h, 1e6);
        assert_eq!((n.zero_count, n.count), (4, 5));
        assert_eq!(n.buckets().len(), 1);
    }

    #[test]
    fn frexp_matches_the_definition() {
        for v in [1.0, 0.75, 3.0, 1e-300, 1e300, 0.001] {
            let (f, e) = frexp(v);
            assert!((0.5..1.0).contains(&f), "{v}: {f}");
            assert_eq!(f * 2f64.powi(e), v, "{v}");
        }
        // The smallest subnormal, 2^-1074.
        assert_eq!(frexp(5e-324), (0.5, -1073));
        assert_eq!(ZERO_THRESHOLD, 2f64.powi(-128));
    }
}
