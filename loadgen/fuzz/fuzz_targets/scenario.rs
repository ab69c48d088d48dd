//! Scenario files (YAML or TOML, chosen by the first byte) and the load plan they describe:
//! any text is a scenario or a clear error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadgen::plan::LoadPlan;
use loadgen::scenario::Scenario;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if let Ok(s) = Scenario::from_str("fuzz", text, first & 1 == 1)
        && let Some(spec) = &s.load
    {
        let _ = LoadPlan::from_spec(spec, None);
    }
});
