//! JSON reports, as `merge`, `compare` and `report --html` read them: decoding, merging with
//! itself and rendering never panic, and what decodes merges or fails with an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadgen::model::RunReport;
use loadgen::report::{compare, html, merge, summary};

fuzz_target!(|text: &str| {
    let Ok(r) = RunReport::from_json("fuzz", text) else {
        return;
    };
    let _ = summary::render(&r);
    let two = [r.clone(), r];
    let _ = compare::table(&["a".into(), "b".into()], &two);
    if let Ok(m) = merge::merge(&two) {
        let _ = html::render_run(&m);
    }
});
