//! HTTPS: the application served with a certificate made in the test, HTTP/1.1 and HTTP/2
//! chosen by ALPN; unusable certificate or key files stop the binary at start.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::pki::{self, TestPki};
use common::{BIN, spawn};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::AsyncReadExt;

fn tls_config(pki: &TestPki) -> workload::Config {
    let mut c = common::config();
    c.tls_cert = Some(pki.cert.clone());
    c.tls_key = Some(pki.key.clone());
    c
}

/// A client that trusts only the test CA and offers exactly `alpn`.
fn connector(pki: &TestPki, alpn: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pki.ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn https_serves_http1_and_http2_chosen_by_alpn() {
    let pki = pki::make();
    let app = spawn(tls_config(&pki)).await;
    for (alpn, version) in [
        (&b"http/1.1"[..], http::Version::HTTP_11),
        (&b"h2"[..], http::Version::HTTP_2),
    ] {
        let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let tls = connector(&pki, alpn)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("the handshake succeeds with the test CA trusted");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
        let io = TokioIo::new(tls);
        let request = http::Request::get("https://localhost/ping")
            .header(http::header::HOST, "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = if version == http::Version::HTTP_2 {
            let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            send.send_request(request).await.unwrap()
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            let mut request = request;
            *request.uri_mut() = "/ping".parse().unwrap();
            send.send_request(request).await.unwrap()
        };
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), version);
        assert_eq!(response.headers()["x-served-by"], "test-host");
    }
}

#[tokio::test]
async fn a_client_stalled_in_the_tls_handshake_is_closed_after_the_header_read_timeout() {
    let pki = pki::make();
    let mut c = tls_config(&pki);
    c.header_read_timeout = Duration::from_secs(1);
    let app = spawn(c).await;
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .expect("closed within 10 s");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

fn run_with_tls(cert: &std::path::Path, key: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .env_remove("WORKLOAD_TLS_CERT")
        .env_remove("WORKLOAD_TLS_KEY")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unusable_certificate_or_key_files_exit_2_at_start_naming_the_file() {
    let pki = pki::make();
    let missing = pki.dir.path().join("missing.pem");
    let (code, err) = run_with_tls(&missing, &pki.key);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("cannot read the TLS certificate") && err.contains("missing.pem"),
        "{err}"
    );

    let garbage = pki.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let (code, err) = run_with_tls(&garbage, &pki.key);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("holds no PEM certificate"), "{err}");

    let (code, err) = run_with_tls(&pki.cert, &pki.cert);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot read the TLS private key"), "{err}");

    let (code, err) = run_with_tls(&pki.cert, &pki.other_key);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not usable together"), "{err}");

    // One without the other is a usage error.
    let out = Command::new(BIN)
        .arg("--tls-cert")
        .arg(&pki.cert)
        .env_remove("WORKLOAD_TLS_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}

/// `workload healthcheck` with the server's own settings, as a compose healthcheck runs it.
fn healthcheck(addr: std::net::SocketAddr, tls: Option<&TestPki>) -> (Option<i32>, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["healthcheck", "--addr", &addr.to_string()])
        .env_remove("WORKLOAD_TLS_CERT")
        .env_remove("WORKLOAD_TLS_KEY");
    if let Some(pki) = tls {
        cmd.env("WORKLOAD_TLS_CERT", &pki.cert)
            .env("WORKLOAD_TLS_KEY", &pki.key);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_healthcheck_speaks_tls_when_the_server_does() {
    let pki = pki::make();
    let app = spawn(tls_config(&pki)).await;
    let addr = app.addr;
    let (code, err) = tokio::task::spawn_blocking(move || healthcheck(addr, Some(&pki)))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
}

#[tokio::test]
async fn a_plain_healthcheck_of_a_tls_server_fails_saying_the_answer_was_not_http() {
    let pki = pki::make();
    let app = spawn(tls_config(&pki)).await;
    let addr = app.addr;
    let (code, err) = tokio::task::spawn_blocking(move || healthcheck(addr, None))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no valid HTTP answer"), "{err}");
}

#[tokio::test]
async fn a_tls_healthcheck_of_a_plain_server_fails_in_the_handshake() {
    let pki = pki::make();
    let app = spawn(common::config()).await;
    let addr = app.addr;
    let (code, err) = tokio::task::spawn_blocking(move || healthcheck(addr, Some(&pki)))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("TLS handshake with"), "{err}");
}
