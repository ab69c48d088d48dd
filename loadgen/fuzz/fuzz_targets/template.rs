//! Request templates (`{{var}}`, `{{randInt a b}}`, ...): parsing and rendering never panic.
#![no_main]

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use libfuzzer_sys::fuzz_target;
use loadgen::scenario::template::{RenderCtx, Template};
use rand::SeedableRng;

fuzz_target!(|src: &str| {
    let Ok(t) = Template::parse(src) else {
        return;
    };
    let _ = t.static_text();
    let vars: HashMap<String, String> = t.vars().map(|v| (v.to_string(), v.repeat(2))).collect();
    let counter = AtomicU64::new(u64::MAX - 1);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let mut ctx = RenderCtx {
        rng: &mut rng,
        counter: &counter,
        user: u64::MAX,
        iteration: u64::MAX,
        vars: &vars,
    };
    let mut out = String::new();
    t.render(&mut ctx, &mut out).expect("every variable is set");
    t.render(&mut ctx, &mut out).expect("every variable is set");
});
