//! The shipped scenario files load and describe the classic experiments.

use std::time::Duration;

use loadgen::plan::LoadPlan;
use loadgen::scenario::Scenario;

fn load(name: &str) -> (Scenario, LoadPlan) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let plan = LoadPlan::from_spec(&s.load.clone().unwrap_or_default(), None).unwrap();
    (s, plan)
}

#[test]
fn every_shipped_scenario_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "yaml" | "yml" | "toml") {
            Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 5, "{n} scenario files");
}

#[test]
fn classic_experiments_are_what_they_say() {
    let (_, p) = load("classic-3x100k.yaml");
    assert_eq!(
        (p.concurrency(), p.requests(), p.is_open()),
        (3, Some(300_000), false)
    );

    let (_, p) = load("rate-steps.yaml");
    assert!(p.is_open());
    assert_eq!(p.duration(), Some(Duration::from_secs(240)));
    assert_eq!(
        p.requests(),
        Some(10 * 30 + 50 * 30 + 100 * 30 + 500 * 30 + 50 * 120)
    );
    assert_eq!(p.rate_at(Duration::from_secs(100)), 500.0);

    let (_, p) = load("ramp-250-users.yaml");
    assert_eq!(p.concurrency(), 250);
    assert_eq!(p.users_at(Duration::from_secs(60)), 125);
    assert_eq!(p.users_at(Duration::from_secs(200)), 250);

    let (s, _) = load("crud.toml");
    assert_eq!(s.flows[0].steps.len(), 3);
    let (s, p) = load("default.yaml");
    assert_eq!(s.flows.len(), 4);
    assert!(p.is_open());
}
