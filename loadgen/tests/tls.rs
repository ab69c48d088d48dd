//! HTTPS targets: the real loadgen against the real workload serving TLS with a CA made in the
//! test. `--cacert` makes HTTP/1.1 and HTTP/2 work, without it every request fails as `tls`,
//! `--insecure` still works, and an unusable `--cacert` file is a usage error.

mod common;
#[path = "../../service/tests/common/pki.rs"]
mod pki;
#[path = "common/real_workload.rs"]
mod real_workload;

use common::{loadgen, out, report};
use real_workload::{Workload, start_tls};

/// Runs 20 requests from 2 users at `https://127.0.0.1:PORT/ping` with `extra` flags.
fn run(server: &Workload, extra: &[&str]) -> (u8, loadgen::model::RunReport) {
    let dir = tempfile::tempdir().unwrap();
    let o = out(&dir, "run.json");
    let url = format!("https://{}/ping", server.addr);
    let mut args = vec!["--target", &url, "-c", "2", "-n", "20", "-q"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", o.to_str().unwrap()]);
    let code = loadgen(&args);
    (code, report(&o))
}

#[test]
fn with_cacert_http1_and_http2_both_succeed() {
    let pki = pki::make();
    let server = start_tls(&pki.cert, &pki.key);
    let ca = pki.ca.to_str().unwrap();
    for extra in [&["--cacert", ca][..], &["--cacert", ca, "--http2"][..]] {
        let (code, r) = run(&server, extra);
        assert_eq!(code, 0, "{extra:?}");
        assert_eq!(r.summary.successes, 20, "{extra:?}: {:?}", r.summary.errors);
        assert_eq!(r.summary.backends.get("test-host"), Some(&20), "{extra:?}");
    }
}

#[test]
fn without_cacert_every_request_fails_as_tls() {
    let pki = pki::make();
    let server = start_tls(&pki.cert, &pki.key);
    for extra in [&[][..], &["--http2"][..]] {
        let (_, r) = run(&server, extra);
        assert_eq!(r.summary.failures, 20, "{extra:?}");
        assert_eq!(
            r.summary.errors.get("tls"),
            Some(&20),
            "{extra:?}: {:?}",
            r.summary.errors
        );
    }
}

#[test]
fn insecure_still_accepts_the_untrusted_certificate() {
    let pki = pki::make();
    let server = start_tls(&pki.cert, &pki.key);
    let (code, r) = run(&server, &["--insecure"]);
    assert_eq!(code, 0);
    assert_eq!(r.summary.successes, 20, "{:?}", r.summary.errors);
}

#[test]
fn an_unusable_cacert_file_is_a_usage_error() {
    let pki = pki::make();
    let server = start_tls(&pki.cert, &pki.key);
    let url = format!("https://{}/ping", server.addr);
    let missing = pki.dir.path().join("missing.pem");
    let garbage = pki.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "no certificate here\n").unwrap();
    for file in [&missing, &garbage] {
        let out = std::process::Command::new(common::bin())
            .args(["--target", &url, "-n", "1", "-q", "--cacert"])
            .arg(file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("--cacert"), "{err}");
    }
}
