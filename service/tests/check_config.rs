//! `workload check-config`, the step that runs before the server (initContainer, compose
//! one-shot): the real binary, its exit code and the message an operator reads in its log.

mod common;

use std::net::TcpListener;
use std::process::{Command, Output};

use common::BIN;
use common::pki;

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
    for setting in ["WORKLOAD_LOG", "OTEL_EXPORTER_OTLP_ENDPOINT"] {
        let naming: Vec<_> = lines.iter().filter(|l| l.contains(setting)).collect();
        assert_eq!(naming.len(), 1, "{setting}: {stderr}");
    }
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

#[test]
fn a_usable_tls_certificate_and_key_pass() {
    let pki = pki::make();
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let out = check_config(
        &[],
        &[("WORKLOAD_TLS_CERT", cert), ("WORKLOAD_TLS_KEY", key)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn tls_files_the_server_would_refuse_stop_the_step_naming_the_file_and_why() {
    let pki = pki::make();
    let missing = pki.dir.path().join("missing.pem");
    let cases = [
        (
            &missing,
            &pki.key,
            "cannot read the TLS certificate",
            "missing.pem",
        ),
        (
            &pki.cert,
            &pki.cert,
            "cannot read the TLS private key",
            "server.pem",
        ),
        (
            &pki.cert,
            &pki.other_key,
            "are not usable together",
            "other-key.pem",
        ),
    ];
    for (cert, key, reason, file) in cases {
        let out = check_config(
            &[],
            &[
                ("WORKLOAD_TLS_CERT", cert.to_str().unwrap()),
                ("WORKLOAD_TLS_KEY", key.to_str().unwrap()),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let line = stderr
            .lines()
            .find(|l| l.starts_with("workload check-config: --tls-cert / WORKLOAD_TLS_CERT"))
            .unwrap_or_else(|| panic!("no TLS line in {stderr}"));
        assert!(line.contains(reason) && line.contains(file), "{line}");
    }
}
