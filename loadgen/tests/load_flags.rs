//! A load flag on `run` replaces the key of the scenario's `load:` block it names, and only that
//! one: `loadgen run classic-3x100k.yaml -d 1s` is the file's 3 users for a second (it ran the
//! default 50 users when a flag replaced the whole block). The summary's first line says which
//! settings came from the command line; a flag that cannot sit beside the file's loop is a usage
//! error naming both.

mod common;
#[path = "common/real_workload.rs"]
mod real_workload;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bin, out, report};

fn classic() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/classic-3x100k.yaml")
}

/// `loadgen run ARGS...` as a user types it: exit code, stdout, stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(bin())
        .arg("run")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_duration_flag_runs_the_files_users_for_that_long_and_says_so() {
    let server = real_workload::start(workload::Config::local_test());
    let target = format!("http://{}", server.addr);
    let dir = tempfile::tempdir().unwrap();
    let o = out(&dir, "run.json");
    let (code, stdout, stderr) = run(&[
        classic().to_str().unwrap(),
        "--target",
        &target,
        "-d",
        "1s",
        "--out",
        o.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let r = report(&o);
    assert_eq!(
        r.plan.concurrency, 3,
        "the file's users, not the default 50"
    );
    assert_eq!(r.plan.duration_s, Some(1.0));
    assert_eq!(
        r.plan.requests,
        Some(300_000),
        "the file's request cap stays"
    );
    assert!(r.summary.duration_s < 3.0, "{}", r.summary.duration_s);
    let first = stdout.lines().find(|l| !l.trim().is_empty()).unwrap();
    assert!(
        first.starts_with("classic-3x100k ")
            && first.contains("closed loop: 3 users")
            && first.ends_with("; from the command line: --duration 1s"),
        "{first}"
    );
    // Users and a request count: the classic experiment's one-client form.
    let (_, stdout, _) = run(&[
        classic().to_str().unwrap(),
        "--target",
        &target,
        "-n",
        "30",
        "-c",
        "1",
        "-q",
        "--out",
        o.to_str().unwrap(),
    ]);
    let r = report(&o);
    assert_eq!((r.plan.concurrency, r.summary.requests), (1, 30));
    assert!(
        r.plan
            .description
            .ends_with("; from the command line: -c 1, -n 30"),
        "{} {stdout}",
        r.plan.description
    );
}

#[test]
fn a_rate_over_a_closed_loop_file_is_a_usage_error_naming_both() {
    let (code, stdout, stderr) = run(&[
        classic().to_str().unwrap(),
        "--target",
        "http://127.0.0.1:9",
        "--rate",
        "100",
    ]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(
        stderr
            .contains("--rate 100/s (open loop) on top of the scenario's `users: 3` (closed loop)"),
        "{stderr}"
    );
    // A rate over phases of users.
    let dir = std::env::temp_dir().join(format!("load-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let users = dir.join("users-phases.yaml");
    std::fs::write(
        &users,
        "name: u\nload:\n  phases:\n    - {duration: 5s, users: 2}\n    - {duration: 5s, users: 4}\nrequests:\n  - {name: p, path: /ping}\n",
    )
    .unwrap();
    let (code, _, stderr) = run(&[
        users.to_str().unwrap(),
        "--target",
        "http://127.0.0.1:9",
        "--rate",
        "70",
    ]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--rate 70/s (open loop) on top of the scenario's 2 phases of users"),
        "{stderr}"
    );
}
