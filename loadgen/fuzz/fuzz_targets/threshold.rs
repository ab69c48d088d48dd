//! Threshold expressions (`p99<250ms`, `success_rate>99.5%`): parsing and evaluation never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadgen::model::Summary;
use loadgen::threshold::Threshold;

fuzz_target!(|expr: &str| {
    if let Ok(t) = Threshold::parse(expr) {
        let _ = t.evaluate(&Summary::default());
    }
});
