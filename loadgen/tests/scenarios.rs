//! The shipped scenario files load and describe the classic experiments.

use std::time::Duration;

use loadgen::plan::LoadPlan;
use loadgen::scenario::Scenario;

fn load(name: &str) -> (Scenario, LoadPlan) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let plan = s.load.plan.clone();
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

#[test]
fn classic_3x100k_comment_commands_are_runnable_and_say_what_they_do() {
    use clap::Parser;
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/classic-3x100k.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    // Every `loadgen run` command in the comment parses and names its target: a worker started
    // from it would otherwise fail with "no target".
    let commands: Vec<Vec<String>> = text
        .lines()
        .filter_map(|l| {
            l.trim_start_matches('#')
                .trim()
                .strip_prefix("loadgen run ")
        })
        .map(|rest| {
            let rest = rest.split(" # ").next().unwrap();
            std::iter::once("loadgen".to_string())
                .chain(std::iter::once("run".to_string()))
                .chain(rest.split_whitespace().map(|w| {
                    // Resolve the scenario path relative to the crate.
                    if w.starts_with("scenarios/") {
                        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                            .join(w)
                            .to_string_lossy()
                            .into_owned()
                    } else {
                        w.to_string()
                    }
                }))
                .collect()
        })
        .collect();
    assert_eq!(commands.len(), 2, "{text}");
    let mut per_worker = None;
    for c in &commands {
        let cli = loadgen::cli::Cli::try_parse_from(c).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        let Some(loadgen::cli::Command::Run(r)) = cli.command else {
            panic!("{c:?} is not `run`")
        };
        assert!(r.target.is_some(), "{c:?} has no --target");
        if r.run.concurrency.is_some() {
            per_worker = Some(r);
        }
    }
    // The per-worker form: one user with its own 100,000 requests; three of them make the
    // classic 3 x 100,000.
    let r = per_worker.expect("a per-worker command with -c 1");
    let (s, _) = load("classic-3x100k.yaml");
    let p = loadgen::overrides::apply(&s.load, &r.run.load_flags()).unwrap();
    assert_eq!((p.concurrency(), p.requests()), (1, Some(100_000)));
    // The in-process form: three users drawing from one pool of 300,000, and the comment says so.
    let (_, p) = load("classic-3x100k.yaml");
    assert_eq!((p.concurrency(), p.requests()), (3, Some(300_000)));
    assert!(text.contains("ONE shared"), "{text}");
}
