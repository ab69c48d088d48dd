//! Property tests for report histograms, the in-suite twin of the `histogram` fuzz target: any
//! bytes, a real encoding with bytes changed, or a V2 header with any fields decode or fail with an
//! error, never panic; what decodes encodes back to the same histogram.

use base64::Engine as _;
use proptest::prelude::*;

use loadgen::report::hist;

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
