//! HTTPS targets: the real loadgen against the real workload serving TLS with a CA made in the
//! test. `--cacert` makes HTTP/1.1 and HTTP/2 work, without it every request fails as `tls`,
//! `--insecure` still works, and an unusable `--cacert` file is a usage error.

mod common;
#[path = "../../service/tests/common/pki.rs"]
mod pki;

use std::net::SocketAddr;

use common::{loadgen, out, report};

/// The workload serving HTTPS on 127.0.0.1 port 0 on a runtime of its own; stopped on drop.
struct TlsWorkload {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TlsWorkload {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn start_tls_workload(pki: &pki::TestPki) -> TlsWorkload {
    let mut config = workload::Config::local_test();
    config.tls_cert = Some(pki.cert.clone());
    config.tls_key = Some(pki.key.clone());
    config.shutdown_timeout = std::time::Duration::from_secs(1);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let app = workload::Application::build(config).await.unwrap();
            addr_tx.send(app.app_addr()).unwrap();
            app.run_until_stopped(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
    });
    TlsWorkload {
        addr: addr_rx.recv().unwrap(),
        stop: Some(stop),
        thread: Some(thread),
    }
}

/// Runs 20 requests from 2 users at `https://127.0.0.1:PORT/ping` with `extra` flags.
fn run(server: &TlsWorkload, extra: &[&str]) -> (u8, loadgen::model::RunReport) {
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
    let server = start_tls_workload(&pki);
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
    let server = start_tls_workload(&pki);
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
    let server = start_tls_workload(&pki);
    let (code, r) = run(&server, &["--insecure"]);
    assert_eq!(code, 0);
    assert_eq!(r.summary.successes, 20, "{:?}", r.summary.errors);
}

#[test]
fn an_unusable_cacert_file_is_a_usage_error() {
    let pki = pki::make();
    let server = start_tls_workload(&pki);
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
