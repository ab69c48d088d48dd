//! Test harness: the real application on 127.0.0.1 port 0, in-process, with a real HTTP client.
#![allow(dead_code)]

pub mod pki;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use std::time::Instant;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use workload::shutdown::Lifecycle;
use workload::startup::StartupError;
use workload::{Application, Config};

pub struct TestApp {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub client: reqwest::Client,
    pub lifecycle: Lifecycle,
    stop: Option<oneshot::Sender<()>>,
    pub server: JoinHandle<Result<(), StartupError>>,
}

/// Defaults for tests: both listeners on 127.0.0.1:0, no drain delay.
pub fn config() -> Config {
    Config::local_test()
}

pub async fn spawn(config: Config) -> TestApp {
    let app = Application::build(config)
        .await
        .expect("application builds");
    let addr = app.app_addr();
    let metrics_addr = app.metrics_addr();
    let lifecycle = app.lifecycle();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        metrics_addr,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        lifecycle,
        stop: Some(stop),
        server,
    }
}

pub async fn spawn_default() -> TestApp {
    spawn(config()).await
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub async fn metrics_text(&self) -> String {
        let response = self
            .client
            .get(format!("http://{}/metrics", self.metrics_addr))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// Value of the series with exactly these labels (order-insensitive).
    /// `http_server_rejected_requests_total{reason}`.
    pub async fn rejected(&self, reason: &str) -> Option<f64> {
        self.metric("http_server_rejected_requests_total", &[("reason", reason)])
            .await
    }

    /// `total` GETs of `path`, each sent once all of them (and any other party of `barrier`)
    /// have reached `barrier`; each gives its response and how long it took.
    pub fn gets_released_together(
        &self,
        path: &str,
        total: usize,
        barrier: std::sync::Arc<tokio::sync::Barrier>,
    ) -> Vec<JoinHandle<(reqwest::Response, Duration)>> {
        (0..total)
            .map(|_| {
                let client = self.client.clone();
                let url = self.url(path);
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let start = Instant::now();
                    let response = client.get(url).send().await.unwrap();
                    (response, start.elapsed())
                })
            })
            .collect()
    }

    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        find_metric(&self.metrics_text().await, name, labels)
    }

    /// Triggers shutdown and waits for the server to return.
    pub async fn stop(mut self) -> Result<(), StartupError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), self.server)
            .await
            .expect("server stops within 30s")
            .expect("server task does not panic")
    }

    pub fn trigger_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Parses `name{k="v",...} value` lines; returns the value whose label set equals `labels`.
pub fn find_metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(parse_line)
        .find(|(n, l, _)| n == name && *l == want)
        .map(|(_, _, v)| v)
}

/// Every series of a metric name, as (labels, value).
pub fn series(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(parse_line)
        .filter(|(n, _, _)| n == name)
        .map(|(_, l, v)| (l, v))
        .collect()
}

fn parse_line(line: &str) -> Option<(String, BTreeMap<String, String>, f64)> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => {
            let body = rest.strip_suffix('}')?;
            let mut labels = BTreeMap::new();
            // Label values in these tests contain no commas or escaped quotes.
            for pair in body.split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=')?;
                labels.insert(k.to_string(), v.trim_matches('"').to_string());
            }
            (name.to_string(), labels)
        }
        None => (series.to_string(), BTreeMap::new()),
    };
    Some((name, labels, value))
}

/// Asserts the shared error shape and returns its `error` kind.
pub async fn assert_error(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status, "status");
    assert!(
        response.headers().contains_key("x-served-by"),
        "x-served-by missing on an error response"
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "content-type {content_type}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], status, "body {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "body {body}"
    );
    body["error"].as_str().expect("error kind").to_string()
}

// ---- the real binary as a child process ----

pub const BIN: &str = env!("CARGO_BIN_EXE_workload");

/// A running `workload` process and the addresses it logged.
pub struct Proc {
    pub child: Child,
    pub app: SocketAddr,
    pub metrics: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(extra: &[&str]) -> Proc {
    start_with_env(extra, &[])
}

/// Starts the binary on 127.0.0.1 port 0 with extra flags and env, and reads the addresses it logs.
pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Proc {
    start_wrapped(&[], extra, env)
}

/// Like [`start_with_env`], run through `wrapper` (e.g. `["taskset", "-c", "0"]`) when not empty.
pub fn start_wrapped(wrapper: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    let mut child = command
        .args([
            "--addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--hostname",
            "proc-test",
        ])
        .args(extra)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("workload binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["message"] == "workload listening" {
                let addr = |k: &str| v[k].as_str().unwrap().parse::<SocketAddr>().unwrap();
                let _ = tx.send((addr("app_addr"), addr("metrics_addr")));
            }
        }
    });
    let (app, metrics) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("workload logs its listening addresses");
    Proc {
        child,
        app,
        metrics,
    }
}

pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the process to exit (bounded) and returns its exit code.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("process did not exit within {limit:?}");
}
