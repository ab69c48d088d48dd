//! `workload check-config`, the step that runs before the server (initContainer, compose
//! one-shot): the real binary, its exit code and the message an operator reads in its log.

mod common;

use std::net::TcpListener;
use std::process::{Command, Output};

use common::BIN;

/// Runs `workload check-config` with `args`, without any WORKLOAD_* setting of the caller's.
fn check_config(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("WORKLOAD_") || key.starts_with("OTEL_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("check-config").args(args);
    for flag in ["--addr", "--metrics-addr"] {
        if !args.contains(&flag) {
            cmd.args([flag, "127.0.0.1:0"]);
        }
    }
    cmd.envs(env.iter().copied()).output().unwrap()
}

#[test]
fn a_good_configuration_passes_and_says_so() {
    let out = check_config(&[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("workload check-config: ok"), "{stderr}");
}

#[test]
fn a_bad_setting_from_the_environment_exits_1_with_the_reason() {
    let out = check_config(&[], &[("WORKLOAD_REQUEST_TIMEOUT", "0s")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("workload check-config: --request-timeout must be at least 1ms"),
        "{stderr}"
    );
    assert!(!stderr.contains(": ok"), "{stderr}");
}

#[test]
fn every_problem_gets_its_own_line() {
    let out = check_config(
        &[],
        &[
            ("WORKLOAD_LOG", "workload=["),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "tempo:4318"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with("workload check-config:"))
        .collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].contains("WORKLOAD_LOG"), "{stderr}");
    assert!(lines[1].contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{stderr}");
}

#[test]
fn a_listener_that_cannot_be_bound_is_reported_before_the_server_starts() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = check_config(&["--addr", &addr], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("--addr / WORKLOAD_ADDR {addr} cannot be bound")),
        "{stderr}"
    );
}

#[test]
fn an_unparsable_value_is_a_usage_error() {
    let out = check_config(&[], &[("WORKLOAD_MAX_IN_FLIGHT", "0")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--max-in-flight"), "{stderr}");
}
