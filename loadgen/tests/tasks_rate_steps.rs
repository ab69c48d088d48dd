//! Seed 002's experiment, shipped as `scenarios/tasks-rate-steps.yaml`: Artillery's flow of GET
//! /tasks then POST /tasks at 10, 50, 100 and 500 arrivals per second. Run against the real
//! workload past its task cap, every request succeeds (the store evicts its oldest task); with
//! `--tasks-when-full reject` the creates past the cap fail with 507, so the first run would catch
//! a store that refuses again.

mod common;
#[path = "common/real_workload.rs"]
mod real_workload;

use std::path::{Path, PathBuf};

use common::{out, report, run_scenario};
use loadgen::scenario::Scenario;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/tasks-rate-steps.yaml")
}

#[test]
fn the_shipped_flow_is_seed_002s() {
    let s = Scenario::load(&shipped()).unwrap_or_else(|e| panic!("{e}"));
    let calls: Vec<(String, String)> = s.flows[0]
        .steps
        .iter()
        .map(|st| {
            let e = &s.endpoints[st.endpoint];
            (e.method.clone(), e.path.clone())
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("GET".into(), "/tasks".into()),
            ("POST".into(), "/tasks".into())
        ]
    );
    let plan = &s.load.plan;
    assert!(plan.is_open());
    let rates: Vec<f64> = [15, 45, 75, 105]
        .map(|t| plan.rate_at(std::time::Duration::from_secs(t)))
        .to_vec();
    assert_eq!(rates, [10.0, 50.0, 100.0, 500.0]);
    assert!(
        plan.requests().unwrap() > 10_000,
        "the full run passes the default --tasks-capacity"
    );
}

/// The shipped file with each phase shortened to `secs` (the flow, rates and checks unchanged).
fn shortened(dir: &tempfile::TempDir, secs: u32) -> PathBuf {
    let text = std::fs::read_to_string(shipped()).unwrap();
    let mut doc: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    for phase in doc["load"]["phases"].as_sequence_mut().unwrap() {
        phase["duration"] = yaml_serde::Value::String(format!("{secs}s"));
    }
    let path = out(dir, "tasks-short.yaml");
    std::fs::write(&path, yaml_serde::to_string(&doc).unwrap()).unwrap();
    path
}

fn run_against(when_full: workload::store::WhenFull) -> loadgen::model::RunReport {
    let mut config = workload::Config::local_test();
    config.tasks_capacity = 100;
    config.tasks_when_full = when_full;
    let server = real_workload::start(config);
    let dir = tempfile::tempdir().unwrap();
    let o = out(&dir, "run.json");
    run_scenario(
        &shortened(&dir, 1),
        &format!("http://{}", server.addr),
        &[],
        &o,
    );
    report(&o)
}

#[test]
fn past_the_task_cap_every_create_succeeds() {
    let r = run_against(workload::store::WhenFull::EvictOldest);
    let create = r.endpoints.iter().find(|e| e.name == "create").unwrap();
    // 10 + 50 + 100 + 500 arrivals in 4 s: six times the capacity of 100
    assert!(create.requests > 600, "{} creates", create.requests);
    assert_eq!(
        r.summary.failures, 0,
        "{:?} {:?}",
        r.summary.status_codes, r.error_messages
    );
    assert_eq!(r.summary.dropped, 0);
    assert_eq!(r.summary.status_codes.get("201"), Some(&create.requests));
}

#[test]
fn with_reject_the_creates_past_the_cap_fail_with_507() {
    let r = run_against(workload::store::WhenFull::Reject);
    let create = r.endpoints.iter().find(|e| e.name == "create").unwrap();
    assert_eq!(create.successes, 100, "{:?}", create.status_codes);
    assert_eq!(
        create.status_codes.get("507"),
        Some(&(create.requests - 100)),
        "{:?}",
        create.status_codes
    );
}
