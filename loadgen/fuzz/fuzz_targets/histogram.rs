//! HDR histograms as reports carry them (V2 or V2+Deflate, base64): any bytes decode within
//! bounded memory or fail with an error, and what decodes encodes back to the same histogram.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use loadgen::model::hist;

fuzz_target!(|data: &[u8]| {
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    if let Ok(h) = hist::decode("fuzz", &text) {
        let _ = hist::stats(&h);
        let back = hist::decode("fuzz", &hist::encode(&h)).expect("own encoding decodes");
        assert_eq!(back, h);
    }
});
