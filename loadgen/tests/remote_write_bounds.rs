//! Remote write with credentials (basic auth or a bearer token from a file) and with bounds: a
//! receiver that stalls or answers endlessly cannot hold the run or grow memory.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{bin, out, start};

/// How the fake receiver answers a push.
#[derive(Clone, Copy)]
enum Answer {
    /// 204 when the Authorization header is this, else 401.
    Auth(&'static str),
    /// 200 promising 10 MB, then one byte every 200 ms.
    SlowBody,
    /// 500 with an endless chunked body, as fast as it goes.
    EndlessError,
}

/// A remote-write receiver on 127.0.0.1:0; records the Authorization header of every push.
struct Receiver {
    url: String,
    seen_auth: Arc<Mutex<Vec<Option<String>>>>,
}

fn receiver(answer: Answer) -> Receiver {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1/write", l.local_addr().unwrap());
    let seen_auth: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = Arc::clone(&seen_auth);
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || serve(conn, answer, &seen));
        }
    });
    Receiver { url, seen_auth }
}

fn serve(conn: TcpStream, answer: Answer, seen: &Mutex<Vec<Option<String>>>) {
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let (mut len, mut auth) = (0usize, None);
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap_or((l, ""));
            match k.to_ascii_lowercase().as_str() {
                "content-length" => len = v.trim().parse().unwrap_or(0),
                "authorization" => auth = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let ok_auth = |want: &str| auth.as_deref() == Some(want);
        seen.lock().unwrap().push(auth.clone());
        let sent = match answer {
            Answer::Auth(want) if ok_auth(want) => w.write_all(b"HTTP/1.1 204 No Content\r\n\r\n"),
            Answer::Auth(_) => {
                w.write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 12\r\n\r\nunauthorized")
            }
            Answer::SlowBody => {
                let _ = w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10000000\r\n\r\n");
                while w.write_all(b"x").is_ok() {
                    std::thread::sleep(Duration::from_millis(200));
                }
                return;
            }
            Answer::EndlessError => {
                let _ = w.write_all(b"HTTP/1.1 500 Oops\r\ntransfer-encoding: chunked\r\n\r\n");
                let chunk = format!("4000\r\n{}\r\n", "e".repeat(0x4000));
                while w.write_all(chunk.as_bytes()).is_ok() {}
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// A short run against the test server that pushes to `rw` with `args` and `env`.
fn run_pushing(rw: &str, args: &[&str], env: &[(&str, &str)]) -> (Output, Duration) {
    let srv = start();
    let target = format!("{}/ping", srv.url());
    let t0 = Instant::now();
    let o = Command::new(bin())
        .args(["--target", &target, "-n", "20", "-q", "--remote-write", rw])
        .args(["--remote-write-interval", "200ms"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (o, t0.elapsed())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn secret_file(dir: &tempfile::TempDir, name: &str, content: &str) -> String {
    let p = out(dir, name);
    std::fs::write(&p, content).unwrap();
    p.to_str().unwrap().to_string()
}

/// The run succeeded and the receiver got at least one push, each with `auth`.
fn assert_every_push_accepted(o: &Output, rx: &Receiver, auth: &str) {
    let err = stderr(o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("remote write"), "every push accepted: {err}");
    let seen = rx.seen_auth.lock().unwrap();
    assert!(!seen.is_empty(), "at least the final push");
    assert!(seen.iter().all(|a| a.as_deref() == Some(auth)), "{seen:?}");
}

#[test]
fn basic_auth_from_env_twins_sends_the_password_file_and_never_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let pw = secret_file(&dir, "pw", "s3cret-pw\n");
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("loadgen:s3cret-pw")
    );
    let rx = receiver(Answer::Auth(Box::leak(want.clone().into_boxed_str())));
    let (o, _) = run_pushing(
        &rx.url,
        &[],
        &[
            ("LOADGEN_REMOTE_WRITE_USER", "loadgen"),
            ("LOADGEN_REMOTE_WRITE_PASSWORD_FILE", &pw),
        ],
    );
    assert_every_push_accepted(&o, &rx, &want);
}

#[test]
fn a_bearer_token_file_is_sent_and_a_refusal_is_reported_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let good = secret_file(&dir, "good", "tok-123\r\n");
    let rx = receiver(Answer::Auth("Bearer tok-123"));
    let (o, _) = run_pushing(&rx.url, &["--remote-write-bearer-token-file", &good], &[]);
    assert_every_push_accepted(&o, &rx, "Bearer tok-123");

    let wrong = secret_file(&dir, "wrong", "tok-wrong-456");
    let (o, _) = run_pushing(&rx.url, &["--remote-write-bearer-token-file", &wrong], &[]);
    let err = stderr(&o);
    assert!(
        err.contains("remote write got 401 Unauthorized: unauthorized"),
        "{err}"
    );
    assert!(!err.contains("tok-wrong-456"), "{err}");
}

#[test]
fn credential_flags_in_the_wrong_combination_or_unreadable_files_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let pw = secret_file(&dir, "pw", "pw-secret");
    let empty = secret_file(&dir, "empty", "\n");
    let missing = out(&dir, "missing").to_str().unwrap().to_string();
    let rw = "http://127.0.0.1:9/api/v1/write";
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--remote-write-user", "u"],
            "--remote-write-password-file",
        ),
        (
            vec!["--remote-write-password-file", &pw],
            "--remote-write-user",
        ),
        (
            vec![
                "--remote-write-user",
                "u",
                "--remote-write-password-file",
                &pw,
                "--remote-write-bearer-token-file",
                &pw,
            ],
            "cannot be used with",
        ),
        (
            vec!["--remote-write-bearer-token-file", &missing],
            "cannot read --remote-write-bearer-token-file",
        ),
        (
            vec![
                "--remote-write-user",
                "u",
                "--remote-write-password-file",
                &empty,
            ],
            "the file is empty",
        ),
        (
            vec!["--remote-write-timeout", "0s"],
            "--remote-write-timeout must be above 0",
        ),
    ];
    for (args, msg) in cases {
        let o = Command::new(bin())
            .args([
                "--target",
                "http://127.0.0.1:9/",
                "-n",
                "1",
                "-q",
                "--remote-write",
                rw,
            ])
            .args(&args)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
        assert!(!err.contains("pw-secret"), "{err}");
    }
    // Without --remote-write the credential flags mean nothing: a usage error too.
    let o = Command::new(bin())
        .args([
            "--target",
            "http://127.0.0.1:9/",
            "-n",
            "1",
            "--remote-write-bearer-token-file",
            &pw,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn a_receiver_that_dribbles_its_body_cannot_hold_the_run_or_the_report() {
    let rx = receiver(Answer::SlowBody);
    let dir = tempfile::tempdir().unwrap();
    let report = out(&dir, "r.json");
    let (o, took) = run_pushing(
        &rx.url,
        &[
            "--remote-write-timeout",
            "1s",
            "--out",
            report.to_str().unwrap(),
        ],
        &[],
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("final remote write timed out after 1s"),
        "{err}"
    );
    assert!(
        report.exists(),
        "the report is written after the final push"
    );
    // The body would take 23 days; the run takes the final push's 1 s plus the run itself.
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[test]
fn an_endless_error_body_is_read_only_as_far_as_the_message_needs() {
    let rx = receiver(Answer::EndlessError);
    // A long timeout: only the response cap can end the push quickly.
    let (o, took) = run_pushing(&rx.url, &["--remote-write-timeout", "60s"], &[]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("final remote write got 500 Internal Server Error: eeee"),
        "{err}"
    );
    assert!(
        err.len() < 4096,
        "the message is cut short: {} bytes",
        err.len()
    );
    assert!(took < Duration::from_secs(30), "{took:?}");
}
