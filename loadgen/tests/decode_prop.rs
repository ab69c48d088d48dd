//! Property tests for report histograms, the in-suite twin of the `histogram` fuzz target: any
//! bytes, a real encoding with bytes changed, or a V2 header with any fields decode or fail with an
//! error, never panic; what decodes encodes back to the same histogram.

use base64::Engine as _;
use proptest::prelude::*;

use loadgen::model::hist;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A real encoding (V2 + deflate) of a histogram with a spread of values.
fn real_encoding() -> Vec<u8> {
    let mut h = hist::new_hist();
    for v in [1u64, 7, 250, 9_999, 1_234_567, hist::MAX_US] {
        hist::record(&mut h, v);
    }
    base64::engine::general_purpose::STANDARD
        .decode(hist::encode(&h))
        .unwrap()
}

/// Decoding either fails or yields a histogram that survives its own round trip.
fn decodes_or_fails(text: &str) -> Result<(), TestCaseError> {
    if let Ok(h) = hist::decode("p", text) {
        let _ = hist::stats(&h);
        prop_assert_eq!(hist::decode("p", &hist::encode(&h)).unwrap(), h);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decodes_or_fails(&b64(&bytes))?;
    }

    #[test]
    fn a_real_encoding_with_bytes_changed_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut b = real_encoding();
        for (i, v) in edits {
            let at = i.index(b.len());
            b[at] = v;
        }
        decodes_or_fails(&b64(&b))?;
        let at = cut.index(b.len());
        decodes_or_fails(&b64(&b[..at]))?;
    }

    #[test]
    fn plain_v2_headers_with_any_fields_never_panic(
        payload_len in any::<u32>(),
        offset in prop_oneof![Just(0u32), any::<u32>()],
        sigfig in 0u32..8,
        low in prop_oneof![Just(1u64), any::<u64>()],
        high in prop_oneof![Just(hist::MAX_US), any::<u64>()],
        payload in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut b = Vec::new();
        b.extend(0x1c84_9313u32.to_be_bytes());
        b.extend(payload_len.to_be_bytes());
        b.extend(offset.to_be_bytes());
        b.extend(sigfig.to_be_bytes());
        b.extend(low.to_be_bytes());
        b.extend(high.to_be_bytes());
        b.extend(1.0f64.to_be_bytes());
        b.extend(payload);
        decodes_or_fails(&b64(&b))?;
    }
}

/// A real report (the `report` fuzz target's seed) with `edits` applied as JSON pointer = value.
fn edited_report(edits: &[(&str, serde_json::Value)]) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../fuzz/seeds/report/run.json")).unwrap();
    for (ptr, val) in edits {
        if let Some(slot) = v.pointer_mut(ptr) {
            *slot = val.clone();
        }
    }
    v.to_string()
}

/// Every reader of a report: summary, compare, merge with itself, HTML of the merge.
fn read_everything(text: &str) {
    use loadgen::model::RunReport;
    use loadgen::report::{compare, html, merge, summary};
    let Ok(r) = RunReport::from_json("p", text) else {
        return;
    };
    let _ = summary::render(&r);
    let two = [r.clone(), r];
    let _ = compare::table(&["a".into(), "b".into()], &two, Some(80));
    if let Ok(m) = merge::merge(&two) {
        let _ = html::render_run(&m);
    }
}

fn extreme_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-1.0),
        Just(1e308),
        Just(-1e308),
        Just(f64::MIN_POSITIVE),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
    ]
}

fn extreme_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        Just(u64::MAX / 2 + 1),
        any::<u64>()
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn reports_with_extreme_numbers_never_panic_any_reader(
        floats in prop::collection::vec(extreme_f64(), 8),
        ints in prop::collection::vec(extreme_u64(), 6),
    ) {
        let f = |i: usize| serde_json::json!(floats[i]);
        let n = |i: usize| serde_json::json!(ints[i]);
        read_everything(&edited_report(&[
            ("/summary/duration_s", f(0)),
            ("/summary/rps", f(1)),
            ("/timeseries_resolution_s", f(2)),
            ("/timeseries/0/t_s", f(3)),
            ("/timeseries/0/p99_ms", f(4)),
            ("/generator/cpu_percent_max", f(5)),
            ("/plan/duration_s", f(6)),
            ("/summary/latency_ms/p99", f(7)),
            ("/summary/requests", n(0)),
            ("/summary/failures", n(1)),
            ("/started_at_unix_ms", n(2)),
            ("/workers", serde_json::json!(ints[3] % (u32::MAX as u64 + 1))),
            ("/timeseries/0/requests", n(4)),
            ("/plan/concurrency", n(5)),
        ]));
    }
}
