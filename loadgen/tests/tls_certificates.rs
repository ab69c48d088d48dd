//! The certificates users make, served by the real workload to the real loadgen: each either
//! works or fails with a sentence that names the fault and its fix, in the JSON report's
//! `error_messages` and in the terminal summary.
//!
//! The certificates are made at test time the ways users make them: the `openssl` command line
//! (`req -x509`, which OpenSSL 3 marks CA:TRUE; a CA plus a leaf, mkcert's shape; a chain through
//! an intermediate CA), and rcgen where the dates are the point (openssl 3.0 cannot backdate).

mod common;
#[path = "common/real_workload.rs"]
mod real_workload;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{loadgen, out, report};
use real_workload::{Workload, start_tls};

/// Runs `openssl ARGS` in `dir`, failing the test with its stderr if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command line is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate file and its key.
struct Pair {
    cert: PathBuf,
    key: PathBuf,
}

/// `openssl req -x509 -newkey rsa:2048 -nodes ... -subj /CN=localhost -addext
/// subjectAltName=...`: the self-signed certificate most users make.
fn req_x509(dir: &Path, name: &str, san: &str) -> Pair {
    req_x509_named(dir, name, "/CN=localhost", san)
}

/// A CA made with `openssl req -x509`, named uniquely: a machine's system roots may hold a
/// `CN=localhost` of their own, which webpki would then try as the issuer.
fn ca(dir: &Path, name: &str) -> Pair {
    let unique = dir.file_name().unwrap().to_string_lossy().into_owned();
    let subject = format!("/O=scalebench test/CN={name} {unique}");
    req_x509_named(dir, name, &subject, "DNS:unused.test")
}

fn req_x509_named(dir: &Path, name: &str, subject: &str, san: &str) -> Pair {
    let (cert, key) = (format!("{name}.pem"), format!("{name}-key.pem"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-subj",
            subject,
            "-addext",
            &format!("subjectAltName={san}"),
        ],
    );
    Pair {
        cert: dir.join(cert),
        key: dir.join(key),
    }
}

/// A key and a certificate for it signed by `ca` with the extensions `ext` (openssl.cnf lines).
fn signed(dir: &Path, name: &str, ca: &Pair, ext: &str) -> Pair {
    let (cert, key, csr, extfile) = (
        format!("{name}.pem"),
        format!("{name}-key.pem"),
        format!("{name}.csr"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&extfile), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!(
                "/O=scalebench test/CN={name} {}",
                dir.file_name().unwrap().to_string_lossy()
            ),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            ca.cert.to_str().unwrap(),
            "-CAkey",
            ca.key.to_str().unwrap(),
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            &extfile,
            "-out",
            &cert,
        ],
    );
    Pair {
        cert: dir.join(cert),
        key: dir.join(key),
    }
}

/// A server certificate as mkcert makes them: CA:FALSE, serverAuth, the names in the SAN only.
fn leaf_ext(san: &str) -> String {
    format!(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName={san}\n"
    )
}

const LOCAL: &str = "DNS:localhost,IP:127.0.0.1";

/// Runs 6 requests from 2 users at `https://HOST:PORT/ping`; the exit code and the report.
fn run(server: &Workload, host: &str, extra: &[&str]) -> (u8, loadgen::model::RunReport) {
    let dir = tempfile::tempdir().unwrap();
    let o = out(&dir, "run.json");
    let url = format!("https://{host}:{}/ping", server.addr.port());
    let mut args = vec!["--target", &url, "-c", "2", "-n", "6", "-q"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", o.to_str().unwrap()]);
    let code = loadgen(&args);
    (code, report(&o))
}

fn assert_works(server: &Workload, host: &str, extra: &[&str]) {
    let (code, r) = run(server, host, extra);
    assert_eq!(r.summary.successes, 6, "{extra:?}: {:?}", r.error_messages);
    assert_eq!(code, 0, "{extra:?}");
    assert!(r.error_messages.is_empty(), "{:?}", r.error_messages);
}

/// Every request fails as `tls` and the report's one message holds each of `words`.
fn assert_fails_with(server: &Workload, host: &str, extra: &[&str], words: &[&str]) -> String {
    let (_, r) = run(server, host, extra);
    assert_eq!(
        r.summary.errors.get("tls"),
        Some(&6),
        "{extra:?}: {:?}",
        r.summary.errors
    );
    assert_eq!(r.error_messages.len(), 1, "{:?}", r.error_messages);
    let message = r.error_messages[0].clone();
    for w in words {
        assert!(message.contains(w), "{w:?} not in {message:?}");
    }
    message
}

fn is_ca(cert: &Path) -> bool {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("CA:TRUE")
}

#[test]
fn an_openssl_req_x509_certificate_passed_as_cacert_is_trusted_over_http1_and_http2() {
    let dir = tempfile::tempdir().unwrap();
    let own = req_x509(dir.path(), "cert", LOCAL);
    assert!(
        is_ca(&own.cert),
        "OpenSSL 3 marks req -x509 certificates CA:TRUE"
    );
    let server = start_tls(&own.cert, &own.key);
    let ca = own.cert.to_str().unwrap();
    for host in ["127.0.0.1", "localhost"] {
        assert_works(&server, host, &["--cacert", ca]);
        assert_works(&server, host, &["--cacert", ca, "--http2"]);
    }
}

#[test]
fn an_openssl_req_x509_certificate_not_in_cacert_fails_as_a_ca_used_as_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let own = req_x509(dir.path(), "cert", LOCAL);
    let other = req_x509(dir.path(), "other", LOCAL);
    let server = start_tls(&own.cert, &own.key);
    assert_fails_with(
        &server,
        "127.0.0.1",
        &["--cacert", other.cert.to_str().unwrap()],
        &[
            "is a CA certificate",
            "CA:TRUE",
            "pass this very certificate with --cacert",
        ],
    );
}

#[test]
fn a_trusted_req_x509_certificate_for_another_host_names_both() {
    let dir = tempfile::tempdir().unwrap();
    let own = req_x509(dir.path(), "cert", "DNS:example.test");
    let server = start_tls(&own.cert, &own.key);
    let ca = own.cert.to_str().unwrap();
    for extra in [&["--cacert", ca][..], &["--cacert", ca, "--http2"][..]] {
        assert_fails_with(
            &server,
            "127.0.0.1",
            extra,
            &["is for example.test, not for 127.0.0.1", "subjectAltName"],
        );
    }
}

#[test]
fn a_ca_and_its_leaf_as_mkcert_makes_them_work_and_name_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path(), "ca");
    let leaf = signed(dir.path(), "leaf", &ca, &leaf_ext(LOCAL));
    let server = start_tls(&leaf.cert, &leaf.key);
    let ca_file = ca.cert.to_str().unwrap();
    assert_works(&server, "127.0.0.1", &["--cacert", ca_file]);
    assert_works(&server, "localhost", &["--cacert", ca_file, "--http2"]);
    // the leaf itself as the trusted certificate, as curl accepts it
    assert_works(
        &server,
        "127.0.0.1",
        &["--cacert", leaf.cert.to_str().unwrap()],
    );
    // no --cacert: a private CA is unknown to the system's roots
    assert_fails_with(
        &server,
        "127.0.0.1",
        &[],
        &["not signed by a CA loadgen trusts", "pass --cacert FILE"],
    );
}

#[test]
fn a_leaf_for_another_host_lists_the_names_it_holds_and_the_one_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path(), "ca");
    let leaf = signed(
        dir.path(),
        "leaf",
        &ca,
        &leaf_ext("DNS:api.example.test,DNS:www.example.test"),
    );
    let server = start_tls(&leaf.cert, &leaf.key);
    assert_fails_with(
        &server,
        "localhost",
        &["--cacert", ca.cert.to_str().unwrap()],
        &["is for api.example.test, www.example.test, not for localhost"],
    );
}

#[test]
fn a_chain_through_an_intermediate_ca_is_trusted_from_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = ca(dir.path(), "root");
    let intermediate = signed(
        dir.path(),
        "intermediate",
        &root,
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n",
    );
    let leaf = signed(dir.path(), "leaf", &intermediate, &leaf_ext(LOCAL));
    let chain = dir.path().join("chain.pem");
    let mut pem = std::fs::read(&leaf.cert).unwrap();
    pem.extend(std::fs::read(&intermediate.cert).unwrap());
    std::fs::write(&chain, pem).unwrap();
    let root_file = root.cert.to_str().unwrap();

    let server = start_tls(&chain, &leaf.key);
    assert_works(&server, "127.0.0.1", &["--cacert", root_file]);
    assert_works(&server, "127.0.0.1", &["--cacert", root_file, "--http2"]);
    drop(server);
    // the server forgot its intermediate: the root alone cannot vouch for the leaf
    let server = start_tls(&leaf.cert, &leaf.key);
    assert_fails_with(
        &server,
        "127.0.0.1",
        &["--cacert", root_file],
        &["not signed by a CA loadgen trusts"],
    );
}

/// A self-signed CA:TRUE certificate for 127.0.0.1 valid in `[from, to]` (rcgen: openssl 3.0's
/// command line cannot make one that is already expired).
fn dated(dir: &Path, name: &str, from: (i32, u8, u8), to: (i32, u8, u8)) -> Pair {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
    params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
    let cert = params.self_signed(&key).unwrap();
    let pair = Pair {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    std::fs::write(&pair.cert, cert.pem()).unwrap();
    std::fs::write(&pair.key, key.serialize_pem()).unwrap();
    pair
}

#[test]
fn an_expired_or_not_yet_valid_certificate_says_its_dates() {
    let dir = tempfile::tempdir().unwrap();
    let expired = dated(dir.path(), "expired", (2020, 1, 1), (2021, 1, 1));
    let server = start_tls(&expired.cert, &expired.key);
    let message = assert_fails_with(
        &server,
        "127.0.0.1",
        &["--cacert", expired.cert.to_str().unwrap()],
        &["expired on 2021-01-01T00:00:00Z", "renew"],
    );
    assert!(message.contains("it is now 20"), "{message}");
    drop(server);

    let future = dated(dir.path(), "future", (2199, 1, 1), (2200, 1, 1));
    let server = start_tls(&future.cert, &future.key);
    assert_fails_with(
        &server,
        "127.0.0.1",
        &["--cacert", future.cert.to_str().unwrap()],
        &["not valid before 2199-01-01T00:00:00Z", "clocks"],
    );
}

#[test]
fn an_expired_leaf_of_a_trusted_ca_says_its_date() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2020, 6, 30);
    let leaf = params.signed_by(&key, &issuer).unwrap();
    let write = |name: &str, pem: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    let (ca, cert, key) = (
        write("ca.pem", ca_cert.pem()),
        write("leaf.pem", leaf.pem()),
        write("leaf-key.pem", key.serialize_pem()),
    );
    let server = start_tls(&cert, &key);
    assert_fails_with(
        &server,
        "127.0.0.1",
        &["--cacert", ca.to_str().unwrap()],
        &["expired on 2020-06-30T00:00:00Z"],
    );
}

#[test]
fn the_terminal_summary_says_the_sentence_too() {
    let dir = tempfile::tempdir().unwrap();
    let own = req_x509(dir.path(), "cert", LOCAL);
    let server = start_tls(&own.cert, &own.key);
    let url = format!("https://127.0.0.1:{}/ping", server.addr.port());
    let out = Command::new(common::bin())
        .args(["--target", &url, "-n", "2", "-c", "1"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("errors: tls=2"), "{text}");
    assert!(
        text.contains("error: connect: the server's certificate is a CA certificate"),
        "{text}"
    );
}

/// A server on 127.0.0.1 that answers `ok` over HTTPS and counts the requests; with `client_ca`
/// only to clients with a certificate it signed (mutual TLS, which the workload does not ask
/// for). Stopped on drop.
struct HttpsServer {
    addr: std::net::SocketAddr,
    requests: Arc<AtomicU64>,
    _thread: real_workload::ServerThread,
}

fn start_https(server: &Pair, client_ca: Option<&Path>) -> HttpsServer {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(client_ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(client_ca).unwrap() {
                roots.add(c.unwrap()).unwrap();
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let chain = CertificateDer::pem_file_iter(&server.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&server.key).unwrap();
    let config = builder.with_single_cert(chain, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&requests);
    let thread = real_workload::ServerThread::spawn(move |mut stopped| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let tcp = tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, _)) => tcp,
                        Err(_) => continue,
                    },
                };
                let acceptor = acceptor.clone();
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let answer = hyper::service::service_fn(move |_req| {
                        counted.fetch_add(1, Ordering::Relaxed);
                        async {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                            ))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), answer)
                        .await;
                });
            }
        });
    });
    HttpsServer {
        addr,
        requests,
        _thread: thread,
    }
}

#[test]
fn a_server_that_asks_for_a_client_certificate_gets_one_from_cert_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path(), "ca");
    let server_pair = signed(dir.path(), "server", &ca, &leaf_ext(LOCAL));
    let client = signed(
        dir.path(),
        "client",
        &ca,
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         extendedKeyUsage=clientAuth\n",
    );
    let server = start_https(&server_pair, Some(&ca.cert));
    let url = format!("https://127.0.0.1:{}/", server.addr.port());
    let ca_file = ca.cert.to_str().unwrap();
    let run = |extra: &[&str]| {
        let d = tempfile::tempdir().unwrap();
        let o = out(&d, "run.json");
        let mut args = vec![
            "--target", &url, "-c", "1", "-n", "8", "-q", "--cacert", ca_file,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", o.to_str().unwrap()]);
        let code = loadgen(&args);
        (code, report(&o))
    };

    let (_, r) = run(&[]);
    // The refusal comes after the client's side of the handshake (TLS 1.3): a request written
    // meanwhile may meet the server's close as a reset before the alert is read.
    assert_eq!(r.summary.failures, 8, "{:?}", r.summary.errors);
    assert!(
        r.summary.errors.get("tls") >= Some(&1),
        "{:?}",
        r.summary.errors
    );
    assert!(
        r.error_messages.iter().any(|m| m
            .contains("the server asks for a client certificate (mutual TLS) and loadgen sent none: pass --cert FILE --key FILE")),
        "{:?}",
        r.error_messages
    );

    let (code, r) = run(&[
        "--cert",
        client.cert.to_str().unwrap(),
        "--key",
        client.key.to_str().unwrap(),
    ]);
    assert_eq!(r.summary.successes, 8, "{:?}", r.error_messages);
    assert_eq!(code, 0);
}

#[test]
fn a_key_that_is_not_the_certificates_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let one = req_x509(dir.path(), "one", LOCAL);
    let two = req_x509(dir.path(), "two", LOCAL);
    let out = Command::new(common::bin())
        .args([
            "--target",
            "https://127.0.0.1:9/",
            "-n",
            "1",
            "-q",
            "--cert",
        ])
        .arg(&one.cert)
        .arg("--key")
        .arg(&two.key)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--key"), "{err}");
}

#[test]
fn remote_write_trusts_remote_write_cacert_as_the_load_trusts_cacert() {
    let dir = tempfile::tempdir().unwrap();
    let own = req_x509(dir.path(), "receiver", LOCAL);
    let receiver = start_https(&own, None);
    let target = common::start();
    let push = |extra: &[&str]| {
        let url = format!("https://127.0.0.1:{}/api/v1/write", receiver.addr.port());
        let out = Command::new(common::bin())
            .args(["--target", &target.url(), "-n", "3", "--remote-write", &url])
            .args(extra)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    let err = push(&[]);
    assert!(
        err.contains(
            "remote write failed: the server's certificate is a CA certificate (CA:TRUE, as \
             `openssl req -x509` makes them) that is not in --remote-write-cacert"
        ),
        "{err}"
    );
    assert_eq!(receiver.requests.load(Ordering::Relaxed), 0);

    let err = push(&["--remote-write-cacert", own.cert.to_str().unwrap()]);
    assert!(!err.contains("remote write"), "{err}");
    assert!(receiver.requests.load(Ordering::Relaxed) >= 1);
}
