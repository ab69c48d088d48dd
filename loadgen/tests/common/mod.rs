//! A small real HTTP server on 127.0.0.1:0 for the integration tests, plus helpers to run loadgen.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};

/// What the server saw.
#[derive(Default)]
pub struct Seen {
    pub ping: AtomicU64,
    pub created: AtomicU64,
    pub got: AtomicU64,
    pub deleted: AtomicU64,
    pub not_found: AtomicU64,
    pub status: Mutex<HashMap<u16, u64>>,
    pub tasks: Mutex<HashMap<String, String>>,
    pub ping_times: Mutex<Vec<Instant>>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    _shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

#[derive(serde::Deserialize)]
struct SlowQ {
    ms: Option<u64>,
}

pub fn router(seen: Arc<Seen>) -> Router {
    Router::new()
        .route(
            "/ping",
            get(|State(s): State<Arc<Seen>>| async move {
                s.ping.fetch_add(1, Ordering::Relaxed);
                s.ping_times.lock().unwrap().push(Instant::now());
                ([("x-served-by", "test-a")], "pong")
            }),
        )
        .route(
            "/fast",
            get(|| async { ([("x-served-by", "test-b")], "ok") }),
        )
        .route(
            "/status/{code}",
            get(
                |State(s): State<Arc<Seen>>, UrlPath(code): UrlPath<u16>| async move {
                    *s.status.lock().unwrap().entry(code).or_default() += 1;
                    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
                },
            ),
        )
        .route(
            "/slow",
            get(|Query(q): Query<SlowQ>| async move {
                tokio::time::sleep(Duration::from_millis(q.ms.unwrap_or(200))).await;
                "slow"
            }),
        )
        .route(
            "/tasks",
            post(|State(s): State<Arc<Seen>>, body: String| async move {
                let v: serde_json::Value = match serde_json::from_str(&body) {
                    Ok(v) => v,
                    Err(_) => {
                        return (StatusCode::BAD_REQUEST, "bad json".to_string()).into_response();
                    }
                };
                let id = format!("t{}", s.created.fetch_add(1, Ordering::Relaxed));
                s.tasks
                    .lock()
                    .unwrap()
                    .insert(id.clone(), v["title"].as_str().unwrap_or("").to_string());
                (
                    StatusCode::CREATED,
                    axum::Json(serde_json::json!({"id": id, "title": v["title"]})),
                )
                    .into_response()
            }),
        )
        .route(
            "/tasks/{id}",
            get(
                |State(s): State<Arc<Seen>>, UrlPath(id): UrlPath<String>| async move {
                    match s.tasks.lock().unwrap().get(&id) {
                        Some(t) => {
                            s.got.fetch_add(1, Ordering::Relaxed);
                            (
                                StatusCode::OK,
                                axum::Json(serde_json::json!({"id": id, "title": t})),
                            )
                                .into_response()
                        }
                        None => {
                            s.not_found.fetch_add(1, Ordering::Relaxed);
                            StatusCode::NOT_FOUND.into_response()
                        }
                    }
                },
            )
            .delete(
                |State(s): State<Arc<Seen>>, UrlPath(id): UrlPath<String>| async move {
                    if s.tasks.lock().unwrap().remove(&id).is_some() {
                        s.deleted.fetch_add(1, Ordering::Relaxed);
                        StatusCode::NO_CONTENT
                    } else {
                        s.not_found.fetch_add(1, Ordering::Relaxed);
                        StatusCode::NOT_FOUND
                    }
                },
            ),
        )
        .with_state(seen)
}

/// Starts the server on its own runtime thread.
pub fn start() -> TestServer {
    let seen = Arc::new(Seen::default());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let s2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(l.local_addr().unwrap()).unwrap();
            axum::serve(l, router(s2))
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
        });
    });
    TestServer {
        addr: addr_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        seen,
        _shutdown: Some(stop_tx),
    }
}

/// Runs loadgen in-process with these arguments; returns the exit code.
pub fn loadgen(args: &[&str]) -> u8 {
    use clap::Parser;
    let mut all = vec!["loadgen"];
    all.extend_from_slice(args);
    let cli = loadgen::cli::Cli::try_parse_from(all).expect("valid arguments");
    loadgen::app::dispatch(cli)
}

/// Reads a JSON report.
pub fn report(path: &Path) -> loadgen::model::RunReport {
    loadgen::model::RunReport::load(path.to_str().unwrap()).expect("a valid report")
}

/// A temp dir and a path inside it.
pub fn out(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// The loadgen binary built by cargo for this test run.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_loadgen")
}

/// Writes a scenario file into `dir`.
pub fn scenario_file(dir: &tempfile::TempDir, name: &str, yaml: &str) -> PathBuf {
    let path = out(dir, name);
    std::fs::write(&path, yaml).unwrap();
    path
}

/// `loadgen run SCENARIO --target TARGET EXTRA... -q --out OUT`, in-process; the exit code.
pub fn run_scenario(scenario: &Path, target: &str, extra: &[&str], out: &Path) -> u8 {
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--target",
        target,
        "-q",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    loadgen(&args)
}

/// Runs the real engine in-process: `users` closed-loop users sending `GET /ping` to `url` for
/// `duration`, recording into `metrics`, with cold starts followed by `cold_starts` if given.
pub async fn run_engine_on_ping(
    url: &str,
    users: u64,
    duration: Duration,
    metrics: Arc<loadgen::metrics::RunMetrics>,
    cold_starts: Option<Arc<loadgen::coldstart::ColdStartTracker>>,
) -> loadgen::engine::RunData {
    let target = Arc::new(loadgen::client::Target::parse(url).unwrap());
    let connector = loadgen::client::Connector::new(
        target,
        &loadgen::client::ClientConfig {
            http2: false,
            insecure: false,
            cacert: None,
            client_cert: None,
        },
    )
    .await
    .unwrap();
    let scenario =
        Arc::new(loadgen::scenario::Scenario::single("GET", "/ping", &[], None).unwrap());
    let plan = loadgen::plan::LoadPlan::flat(&loadgen::plan::FlatLoad {
        users: Some(users),
        duration: Some(duration),
        ..Default::default()
    })
    .unwrap();
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    loadgen::engine::run(
        loadgen::engine::EngineConfig {
            plan,
            timeout: Duration::from_secs(5),
            h2_connections: 1,
            http2: false,
            grace: Duration::from_secs(1),
            late_tolerance: Duration::from_millis(10),
            shards: 2,
            trace_sample: 0.0,
            lifetime: Default::default(),
            live_window_s: 1,
            cold_starts,
        },
        scenario,
        connector,
        metrics,
        stop_rx,
        None,
    )
    .await
}
