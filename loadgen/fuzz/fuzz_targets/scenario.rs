//! Scenario files (YAML or TOML, chosen by the first byte) and the load plan they describe:
//! any text is a scenario or a clear error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadgen::scenario::Scenario;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    // Compiling includes the load plan: a scenario that compiles has a plan the engine can run.
    if let Ok(s) = Scenario::from_str("fuzz", text, first & 1 == 1) {
        let _ = s.load.plan.requests();
    }
});
