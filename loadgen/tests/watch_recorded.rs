//! The replica watcher against recorded Kubernetes API responses.
//!
//! A fake API server (an axum router) replays the fixtures in `tests/fixtures/k8s/`: list responses
//! with a `resourceVersion`, then watch streams of newline-delimited `{"type":"MODIFIED",...}` events
//! released at scripted times, as an API server sends them. The real `kube::Client` talks to it either
//! in-process (as its tower service, with tokio's clock paused so the event times and so the recorded
//! timings are exact) or over TCP on 127.0.0.1 through a kubeconfig file (the real HTTP stack).

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use loadgen::coldstart::ColdStartTracker;
use loadgen::metrics::{ColdStartMetrics, WatchGauges};
use loadgen::model::replicas::{ReplicaSample, ReplicaTimeline};
use loadgen::watch::{self, WatchConfig};
use tokio::time::Instant;

const NS: &str = "scalebench";

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/k8s")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Watch events of a fixture, each released `offset` seconds after the epoch.
fn timed_events(name: &str, offsets: &[f64]) -> Vec<(f64, String)> {
    let lines: Vec<String> = fixture(name).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), offsets.len(), "{name}: one offset per event");
    offsets.iter().copied().zip(lines).collect()
}

#[derive(Clone)]
enum Reply {
    Ok(String),
    Status(u16, String),
}

/// What the fake API server answers for one resource.
#[derive(Clone, Default)]
struct ResourceScript {
    /// Successive list responses; the last one repeats.
    lists: Vec<Reply>,
    /// Successive watch streams; after the last one, watches stay open with no events.
    watches: Vec<Vec<(f64, String)>>,
    /// Close each scripted watch stream after its last event (as the server's `timeoutSeconds` would).
    close_after_events: bool,
}

#[derive(Clone)]
struct FakeApi {
    epoch: Instant,
    scripts: Arc<HashMap<&'static str, ResourceScript>>,
    counters: Arc<Mutex<HashMap<(&'static str, bool), usize>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeApi {
    fn new(epoch: Instant, deployments: ResourceScript, hpas: ResourceScript) -> Self {
        Self::with_scripts(
            epoch,
            [
                ("deployments", deployments),
                ("horizontalpodautoscalers", hpas),
            ],
        )
    }

    /// A fake API serving `scripts` by resource plural (`deployments`, `podautoscalers`, ...).
    fn with_scripts<const N: usize>(
        epoch: Instant,
        scripts: [(&'static str, ResourceScript); N],
    ) -> Self {
        let scripts: HashMap<_, _> = scripts.into_iter().collect();
        Self {
            epoch,
            scripts: Arc::new(scripts),
            counters: Arc::default(),
            requests: Arc::default(),
        }
    }

    fn router(&self) -> Router {
        Router::new()
            .route(
                "/apis/apps/v1/namespaces/{ns}/deployments",
                get(|s, u, q| serve(s, u, q, "deployments")),
            )
            .route(
                "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
                get(|s, u, q| serve(s, u, q, "horizontalpodautoscalers")),
            )
            .route(
                "/apis/autoscaling.internal.knative.dev/v1alpha1/namespaces/{ns}/podautoscalers",
                get(|s, u, q| serve(s, u, q, "podautoscalers")),
            )
            .fallback(|uri: Uri| async move {
                json_response(
                    404,
                    format!(r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"the server could not find the requested resource ({uri})","reason":"NotFound","code":404}}"#),
                )
            })
            .with_state(self.clone())
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn json_response(code: u16, body: String) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap()
}

async fn serve(
    State(api): State<FakeApi>,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    resource: &'static str,
) -> Response {
    api.requests.lock().unwrap().push(uri.to_string());
    let is_watch = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    let n = {
        let mut counters = api.counters.lock().unwrap();
        let c = counters.entry((resource, is_watch)).or_default();
        *c += 1;
        *c - 1
    };
    let Some(script) = api.scripts.get(resource) else {
        return json_response(
            404,
            format!(
                r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{resource} is not served","reason":"NotFound","code":404}}"#
            ),
        );
    };
    if !is_watch {
        let reply = script
            .lists
            .get(n)
            .or(script.lists.last())
            .cloned()
            .expect("a list reply");
        return match reply {
            Reply::Ok(body) => json_response(200, body),
            Reply::Status(code, body) => json_response(code, body),
        };
    }
    let Some(events) = script.watches.get(n).cloned() else {
        let body = Body::from_stream(futures::stream::pending::<Result<Bytes, Infallible>>());
        return Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap();
    };
    let epoch = api.epoch;
    let close = script.close_after_events;
    let stream = futures::stream::unfold(events.into_iter(), move |mut it| async move {
        let (offset, line) = it.next()?;
        tokio::time::sleep_until(epoch + Duration::from_secs_f64(offset)).await;
        Some((Ok::<_, Infallible>(Bytes::from(format!("{line}\n"))), it))
    });
    let body = if close {
        Body::from_stream(stream)
    } else {
        use futures::StreamExt;
        Body::from_stream(stream.chain(futures::stream::pending()))
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap()
}

/// The recorded scale-out (`deployment-watch.jsonl`, `hpa-watch.jsonl`), each event released at its
/// offset in seconds from the API's epoch.
fn scripts_at(deployment_at: &[f64], hpa_at: &[f64]) -> (ResourceScript, ResourceScript) {
    let deployments = ResourceScript {
        lists: vec![Reply::Ok(fixture("deployment-list.json"))],
        watches: vec![timed_events("deployment-watch.jsonl", deployment_at)],
        close_after_events: false,
    };
    let hpas = ResourceScript {
        lists: vec![Reply::Ok(fixture("hpa-list.json"))],
        watches: vec![timed_events("hpa-watch.jsonl", hpa_at)],
        close_after_events: false,
    };
    (deployments, hpas)
}

fn scale_out_scripts() -> (ResourceScript, ResourceScript) {
    scripts_at(
        // spec 3 (pods 1) | pods 3 | ready 2 | ready 3 | spec 5 | ready 4 | ready 5 | bookmark
        &[10.0, 10.4, 12.0, 14.0, 30.0, 33.0, 35.0, 40.0],
        // desired 3 cpu 175 | other-api changes | cpu 150 | cpu 140 | desired 5 cpu 120 | cpu 71
        &[9.5, 15.0, 20.0, 20.3, 29.0, 45.0],
    )
}

/// A kubeconfig in `dir` pointing the real kube client at the fake API on `addr` (namespace NS).
fn write_kubeconfig(dir: &tempfile::TempDir, addr: std::net::SocketAddr) -> PathBuf {
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\n\
             users:\n- name: loadgen\n  user:\n    token: recorded-fixture-token\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: loadgen\n    namespace: {NS}\n\
             current-context: fake\n"
        ),
    )
    .unwrap();
    path
}

/// The recorded Knative scale from zero and back (`knative-*.jsonl`): 0 -> 1 -> 3 -> 0.
fn knative_api(epoch: Instant) -> FakeApi {
    FakeApi::with_scripts(
        epoch,
        [
            (
                "deployments",
                ResourceScript {
                    lists: vec![Reply::Ok(fixture("knative-deployment-list.json"))],
                    watches: vec![timed_events(
                        "knative-deployment-watch.jsonl",
                        // spec 1 (pod created) | ready 1 | spec 3 (ready 1) | ready 3 | all 0
                        &[5.2, 7.0, 20.2, 23.0, 91.0],
                    )],
                    close_after_events: false,
                },
            ),
            (
                "podautoscalers",
                ResourceScript {
                    lists: vec![Reply::Ok(fixture("knative-podautoscaler-list.json"))],
                    watches: vec![timed_events(
                        "knative-podautoscaler-watch.jsonl",
                        // desiredScale 1 | actualScale 1 | desiredScale 3 | desiredScale 0
                        &[5.0, 7.1, 20.0, 90.0],
                    )],
                    close_after_events: false,
                },
            ),
        ],
    )
}

/// Knative scale to zero and back, watched as `configuration/workload`: the revision's Deployment
/// and PodAutoscaler are found by label, the PodAutoscaler's `desiredScale` is the autoscaler's
/// decision, zero is a real replica count (initial 0, a scale-up from 0, final 0), and the cold
/// starts the watcher's zero signal opens are timed to the watch events.
#[test]
fn follows_a_knative_configuration_from_zero_to_three_and_back() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let prom = recorder.handle();
    let gauges = WatchGauges::register(&recorder);
    let (timeline, requests, cold) = paused_runtime().block_on(async {
        let epoch = Instant::now();
        let api = knative_api(epoch);
        let client = kube::Client::new(api.router(), "default");
        let handle =
            watch::spawn_with_client_at(config("configuration/workload"), client, epoch, gauges);
        let tracker = Arc::new(ColdStartTracker::new(ColdStartMetrics::noop()));
        handle.follow_cold_starts(Arc::clone(&tracker));
        let at = |s: f64| (epoch + Duration::from_secs_f64(s)).into_std();
        tokio::time::sleep_until(epoch + Duration::from_secs(2)).await;
        // At zero: the first request opens a cold start, answered at 7.5 s (the pod was ready at 7).
        let first = tracker
            .on_send(at(2.0))
            .expect("a cold start opens at zero");
        tracker.on_done(first, at(7.5), 5_500_000, true);
        tokio::time::sleep_until(epoch + Duration::from_secs(30)).await;
        assert_eq!(tracker.on_send(at(30.0)), None, "pods are ready");
        // Scaled back to zero at 91 s: the next request is a second cold start, never answered.
        tokio::time::sleep_until(epoch + Duration::from_secs(95)).await;
        let second = tracker.on_send(at(95.0)).expect("zero seen again");
        tracker.on_done(second, at(96.0), 1_000_000, false);
        let timeline = handle.finish().await;
        let cold = tracker.finish(epoch.into_std());
        (timeline, api.requests(), cold)
    });
    let at = |t_s: f64, d: i32, c: i32, r: i32, pa: i32| ReplicaSample {
        t_s,
        desired: Some(d),
        current: Some(c),
        ready: Some(r),
        hpa_desired: Some(pa),
        cpu_utilization_percent: None,
    };
    let expected = vec![
        at(0.0, 0, 0, 0, 0),
        at(5.0, 0, 0, 0, 1), // the PodAutoscaler decides first (the activator asked)
        at(6.0, 1, 1, 0, 1), // the Deployment at 5.2, coalesced to the interval's end
        at(7.0, 1, 1, 1, 1),
        // actualScale 1 at 7.1 is not a decision: no sample
        at(20.0, 1, 1, 1, 3),
        at(21.0, 3, 3, 1, 3),
        at(23.0, 3, 3, 3, 3),
        at(90.0, 3, 3, 3, 0),
        at(91.0, 0, 0, 0, 0),
    ];
    assert_eq!(timeline.samples, expected, "{timeline:#?}");
    assert!(timeline.warnings.is_empty(), "{:?}", timeline.warnings);
    assert_eq!(timeline.target, "configuration/workload");
    assert_eq!(timeline.hpa.as_deref(), Some("workload-00001"));
    let s = &timeline.summary;
    assert_eq!(
        (s.initial_replicas, s.max_replicas, s.final_replicas),
        (Some(0), Some(3), Some(0))
    );
    assert_eq!(s.initial_desired_replicas, Some(0));
    assert_eq!(s.time_to_first_scale_up_s, Some(5.2));
    assert_eq!(s.time_to_first_ready_scale_up_s, Some(7.0));
    assert_eq!(s.time_to_max_replicas_s, Some(23.0));

    // The scale-up from zero is a scale event like any other.
    let events =
        loadgen::analysis::scale_events::scale_events(&timeline, &[], 1.0, &Default::default());
    assert_eq!(
        events.first().map(|e| (e.t_s, e.from_replicas)),
        Some((5.0, Some(0)))
    );

    let (list, total) = cold;
    assert_eq!(total, 2);
    let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-6);
    assert!(close(Some(list[0].t_s), 2.0), "{list:?}");
    assert!(close(list[0].to_first_response_s, 5.5), "{list:?}");
    assert!(
        close(list[0].ready_at_s, 7.0),
        "the watcher saw the pod ready at 7 s: {list:?}"
    );
    assert!(close(Some(list[1].t_s), 95.0), "{list:?}");
    assert_eq!((list[1].to_first_response_s, list[1].failed), (None, 1));

    // Both objects were asked for by the configuration's label.
    for path in [
        "/apis/apps/v1/namespaces/scalebench/deployments?",
        "/apis/autoscaling.internal.knative.dev/v1alpha1/namespaces/scalebench/podautoscalers?",
    ] {
        assert!(
            requests.iter().any(|r| r.starts_with(path)
                && r.contains("labelSelector=serving.knative.dev%2Fconfiguration%3Dworkload")
                && r.contains("watch=true")),
            "{path} {requests:#?}"
        );
    }
    // The gauges went back to 0: a real value, not "unknown".
    let text = prom.render();
    for line in [
        r#"loadgen_observed_replicas{kind="desired"} 0"#,
        r#"loadgen_observed_replicas{kind="ready"} 0"#,
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

/// A revision is followed by its own label.
#[test]
fn follows_a_knative_revision_by_its_label() {
    let (timeline, requests) = paused_runtime().block_on(async {
        let epoch = Instant::now();
        let api = knative_api(epoch);
        let client = kube::Client::new(api.router(), "default");
        let handle = watch::spawn_with_client_at(
            config("rev/workload-00001"),
            client,
            epoch,
            WatchGauges::noop(),
        );
        tokio::time::sleep_until(epoch + Duration::from_secs(30)).await;
        (handle.finish().await, api.requests())
    });
    assert_eq!(timeline.target, "revision/workload-00001");
    assert_eq!(timeline.summary.max_replicas, Some(3));
    assert!(
        requests
            .iter()
            .any(|r| r.contains("labelSelector=serving.knative.dev%2Frevision%3Dworkload-00001")),
        "{requests:#?}"
    );
}

fn sample(t_s: f64, d: i32, c: i32, r: i32, hpa: i32, cpu: i32) -> ReplicaSample {
    ReplicaSample {
        t_s,
        desired: Some(d),
        current: Some(c),
        ready: Some(r),
        hpa_desired: Some(hpa),
        cpu_utilization_percent: Some(cpu),
    }
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

fn config(target: &str) -> WatchConfig {
    WatchConfig::new(target, Some(NS.to_string()), Duration::from_secs(1)).unwrap()
}

/// A scale-out 1 -> 3 -> 5 replayed with exact event times: every change becomes a sample at its
/// time, changes closer than the interval are coalesced to the end of the interval, an unrelated HPA
/// is ignored, and the gauges end at the final values.
#[test]
fn records_a_scale_out_with_exact_timings() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let prom = recorder.handle();
    // The gauges come from this recorder alone: nothing is installed process-wide.
    let gauges = WatchGauges::register(&recorder);
    let (timeline, requests) = paused_runtime().block_on(async {
        let epoch = Instant::now();
        let (deployments, hpas) = scale_out_scripts();
        let api = FakeApi::new(epoch, deployments, hpas);
        let client = kube::Client::new(api.router(), "default");
        let handle =
            watch::spawn_with_client_at(config("deployment/workload"), client, epoch, gauges);
        tokio::time::sleep_until(epoch + Duration::from_secs(60)).await;
        let timeline = handle.finish().await;
        (timeline, api.requests())
    });

    let expected = vec![
        sample(0.0, 1, 1, 1, 1, 12),
        sample(9.5, 1, 1, 1, 3, 175), // HPA decides first
        // Deployment spec 3 at 10.0 and its pods at 10.4 are within 1 s of the 9.5 sample: coalesced
        // into one sample at the interval's end.
        sample(10.5, 3, 3, 1, 3, 175),
        sample(12.0, 3, 3, 2, 3, 175),
        sample(14.0, 3, 3, 3, 3, 175),
        sample(20.0, 3, 3, 3, 3, 150),
        sample(21.0, 3, 3, 3, 3, 140), // 20.3 coalesced
        sample(29.0, 3, 3, 3, 5, 120),
        sample(30.0, 5, 5, 3, 5, 120),
        sample(33.0, 5, 5, 4, 5, 120),
        sample(35.0, 5, 5, 5, 5, 120),
        sample(45.0, 5, 5, 5, 5, 71),
    ];
    assert_eq!(timeline.samples, expected, "{timeline:#?}");
    assert!(timeline.warnings.is_empty(), "{:?}", timeline.warnings);
    assert_eq!(timeline.target, "deployment/workload");
    assert_eq!(timeline.namespace.as_deref(), Some(NS));
    assert_eq!(timeline.hpa.as_deref(), Some("workload"));

    let s = &timeline.summary;
    assert_eq!(s.initial_replicas, Some(1));
    assert_eq!(s.max_replicas, Some(5));
    assert_eq!(s.final_replicas, Some(5));
    assert_eq!(s.max_desired_replicas, Some(5));
    // The summary is timed to the events, not to the rate-limited samples: spec.replicas rose at 10.0.
    assert_eq!(s.initial_desired_replicas, Some(1));
    assert_eq!(s.time_to_first_scale_up_s, Some(10.0));
    assert_eq!(s.time_to_first_ready_scale_up_s, Some(12.0));
    assert_eq!(s.time_to_max_replicas_s, Some(35.0));
    assert_eq!(s.max_cpu_utilization_percent, Some(175));
    // Computed from the samples alone (a report read back), the first scale-up is at its sample.
    let from_samples = timeline.compute_summary();
    assert_eq!(from_samples.time_to_first_scale_up_s, Some(10.5));
    assert_eq!(from_samples.time_to_max_replicas_s, Some(35.0));

    // Throughput per replica over the recorded steps.
    let per = timeline.throughput_per_replica(&[(5.0, 100.0), (13.0, 240.0), (50.0, 500.0)]);
    let got: Vec<(i32, f64)> = per.iter().map(|p| (p.replicas, p.per_replica)).collect();
    assert_eq!(got, vec![(1, 100.0), (2, 120.0), (5, 100.0)]);

    // The watcher asked for our Deployment only, in the right namespace, and watched from the
    // listed resourceVersion.
    assert!(
        requests.iter().any(
            |r| r.starts_with("/apis/apps/v1/namespaces/scalebench/deployments?")
                && r.contains("fieldSelector=metadata.name%3Dworkload")
                && r.contains("watch=true")
                && r.contains("resourceVersion=48211")
        ),
        "{requests:#?}"
    );

    let text = prom.render();
    for line in [
        r#"loadgen_observed_replicas{kind="desired"} 5"#,
        r#"loadgen_observed_replicas{kind="current"} 5"#,
        r#"loadgen_observed_replicas{kind="ready"} 5"#,
        "loadgen_observed_cpu_utilization_percent 71",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

/// The end-of-run summary of a watched run shows the scale-out timeline: when the autoscaler
/// scaled, when the highest replica count was reached, and the throughput each replica carried
/// (stored in the JSON report too, and absent from older reports without breaking them).
#[test]
fn summary_shows_the_scale_out_timeline() {
    let mut timeline = paused_runtime().block_on(async {
        let epoch = Instant::now();
        let (deployments, hpas) = scale_out_scripts();
        let api = FakeApi::new(epoch, deployments, hpas);
        let client = kube::Client::new(api.router(), "default");
        let handle = watch::spawn_with_client_at(
            config("deployment/workload"),
            client,
            epoch,
            WatchGauges::noop(),
        );
        tokio::time::sleep_until(epoch + Duration::from_secs(60)).await;
        handle.finish().await
    });
    // A run whose throughput follows the replicas: 100/s per ready replica every second (1 ready
    // until 12 s, 2 until 14 s, 3 until 33 s, 4 until 35 s, then 5).
    let mut report = loadgen::model::RunReport {
        scenario: "ramp".into(),
        ..Default::default()
    };
    report.timeseries = (0..60)
        .map(|t| {
            let ready = timeline.ready_at(t as f64).unwrap();
            let rps = 100.0 * f64::from(ready);
            loadgen::model::TimePoint {
                t_s: t as f64,
                requests: rps as u64,
                rps,
                ..Default::default()
            }
        })
        .collect();
    timeline.record_throughput(&report.throughput_series());
    assert_eq!(timeline.summary.throughput_per_replica, Some(100.0));
    report.replicas = Some(timeline);

    let text = loadgen::report::summary::render(&report);
    assert!(
        text.contains("replicas: initial 1, max 5, final 5"),
        "{text}"
    );
    assert!(text.contains("first scale-up 10.0s"), "{text}");
    assert!(text.contains("first ready scale-up 12.0s"), "{text}");
    assert!(text.contains("highest replica count at 35.0s"), "{text}");
    assert!(
        text.contains("throughput per ready replica: 100.0/s"),
        "{text}"
    );

    // In the JSON report, and optional for reports written before it existed.
    let json = serde_json::to_value(report.replicas.as_ref().unwrap()).unwrap();
    assert_eq!(json["summary"]["throughput_per_replica"], 100.0);
    let mut old = json.clone();
    old["summary"]
        .as_object_mut()
        .unwrap()
        .remove("throughput_per_replica");
    let back: ReplicaTimeline = serde_json::from_value(old).unwrap();
    assert_eq!(back.summary.throughput_per_replica, None);
    assert_eq!(back.summary.max_replicas, Some(5));
}

/// The timeline survives the JSON report round trip.
#[test]
fn timeline_round_trips_through_json() {
    let timeline = paused_runtime().block_on(async {
        let epoch = Instant::now();
        let (deployments, hpas) = scale_out_scripts();
        let api = FakeApi::new(epoch, deployments, hpas);
        let client = kube::Client::new(api.router(), NS);
        // Namespace from the client's default.
        let cfg = WatchConfig::new("deploy/workload", None, Duration::from_secs(5)).unwrap();
        let handle = watch::spawn_with_client_at(cfg, client, epoch, WatchGauges::noop());
        tokio::time::sleep_until(epoch + Duration::from_secs(50)).await;
        handle.finish().await
    });
    assert_eq!(timeline.namespace.as_deref(), Some(NS));
    // With a 5 s interval, the samples are at least 5 s apart.
    for pair in timeline.samples.windows(2) {
        assert!(pair[1].t_s - pair[0].t_s >= 5.0 - 1e-9, "{pair:?}");
    }
    assert_eq!(timeline.samples.last().unwrap().ready, Some(5));
    let json = serde_json::to_string(&timeline).unwrap();
    let back: ReplicaTimeline = serde_json::from_str(&json).unwrap();
    assert_eq!(back, timeline);
}

/// RBAC forbids listing Deployments and HPAs: both are reported as warnings naming the missing
/// permission, there are no samples, and finishing returns at once instead of retrying forever.
#[test]
fn forbidden_watch_is_reported_and_does_not_hang() {
    let timeline = paused_runtime().block_on(async {
        let epoch = Instant::now();
        let api = FakeApi::new(
            epoch,
            ResourceScript {
                lists: vec![Reply::Status(403, fixture("forbidden-deployments.json"))],
                ..Default::default()
            },
            ResourceScript {
                lists: vec![Reply::Status(403, fixture("forbidden-hpa.json"))],
                ..Default::default()
            },
        );
        let client = kube::Client::new(api.router(), NS);
        let handle = watch::spawn_with_client_at(
            config("deployment/workload"),
            client,
            epoch,
            WatchGauges::noop(),
        );
        tokio::time::sleep(Duration::from_secs(30)).await;
        let timeline = tokio::time::timeout(Duration::from_secs(1), handle.finish())
            .await
            .expect("finish returns promptly");
        // Forbidden is final: one list attempt each, no retry loop.
        assert_eq!(api.requests().len(), 2, "{:?}", api.requests());
        timeline
    });
    assert!(timeline.samples.is_empty(), "{:?}", timeline.samples);
    assert_eq!(timeline.warnings.len(), 2, "{:?}", timeline.warnings);
    let all = timeline.warnings.join("\n");
    assert!(all.contains("forbidden"), "{all}");
    assert!(
        all.contains("get, list and watch on deployments.apps"),
        "{all}"
    );
    assert!(
        all.contains("horizontalpodautoscalers.autoscaling"),
        "{all}"
    );
    assert_eq!(timeline.summary.max_replicas, None);
}

/// Only the HPA is forbidden: replicas are still recorded, without the HPA columns, plus a warning.
#[test]
fn forbidden_hpa_still_records_the_deployment() {
    let timeline = paused_runtime().block_on(async {
        let epoch = Instant::now();
        let (deployments, _) = scale_out_scripts();
        let api = FakeApi::new(
            epoch,
            deployments,
            ResourceScript {
                lists: vec![Reply::Status(403, fixture("forbidden-hpa.json"))],
                ..Default::default()
            },
        );
        let client = kube::Client::new(api.router(), NS);
        let handle = watch::spawn_with_client_at(
            config("deployment/workload"),
            client,
            epoch,
            WatchGauges::noop(),
        );
        tokio::time::sleep_until(epoch + Duration::from_secs(60)).await;
        handle.finish().await
    });
    assert_eq!(timeline.warnings.len(), 1, "{:?}", timeline.warnings);
    assert!(timeline.warnings[0].contains("horizontalpodautoscalers"));
    assert_eq!(timeline.hpa, None);
    assert!(timeline.samples.iter().all(|s| s.hpa_desired.is_none()));
    assert_eq!(timeline.samples[0].t_s, 0.0);
    assert_eq!(timeline.summary.time_to_first_scale_up_s, Some(10.0));
    assert_eq!(timeline.summary.time_to_max_replicas_s, Some(35.0));
}

/// A Deployment that does not exist is a warning, not a hang or an error.
#[test]
fn missing_deployment_is_a_warning() {
    let timeline = paused_runtime().block_on(async {
        let epoch = Instant::now();
        let api = FakeApi::new(
            epoch,
            ResourceScript {
                lists: vec![Reply::Ok(fixture("deployment-list-empty.json"))],
                ..Default::default()
            },
            ResourceScript {
                lists: vec![Reply::Ok(fixture("hpa-list.json"))],
                ..Default::default()
            },
        );
        let client = kube::Client::new(api.router(), NS);
        let handle = watch::spawn_with_client_at(
            config("deployment/nothere"),
            client,
            epoch,
            WatchGauges::noop(),
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        handle.finish().await
    });
    assert_eq!(
        timeline.warnings,
        vec!["deployment/nothere not found in namespace scalebench".to_string()]
    );
    assert!(timeline.samples.is_empty(), "{:?}", timeline.samples);
    assert_eq!(
        timeline.hpa, None,
        "HPAs targeting other deployments are ignored"
    );
}

#[test]
fn bad_targets_are_rejected() {
    for bad in [
        "statefulset/workload",
        "pod/workload",
        "hpa/workload",
        "workload",
        "deployment/",
        "deployment/Work_load",
    ] {
        let err = WatchConfig::new(bad, None, Duration::from_secs(1)).unwrap_err();
        assert!(
            err.to_string().contains("invalid watch target"),
            "{bad}: {err}"
        );
    }
    let err = WatchConfig::new("daemonset/x", None, Duration::from_secs(1)).unwrap_err();
    assert!(err.to_string().contains("watch a Deployment"), "{err}");
    assert!(err.to_string().contains("configuration/NAME"), "{err}");
    assert!(WatchConfig::new("deployment/x", None, Duration::ZERO).is_err());
    let ok = WatchConfig::new(
        "deployments.apps/workload",
        Some(String::new()),
        Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(ok.target.name, "workload");
    assert_eq!(ok.namespace, None, "an empty namespace means the default");
}

/// Over real TCP through a kubeconfig file: the watch stream ends with a `410 Expired` ERROR event
/// (normal on a real cluster), the watcher re-lists and the re-listed state lands in the timeline
/// without a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_client_over_tcp_survives_a_relist() {
    let epoch = Instant::now();
    let api = FakeApi::new(
        epoch,
        ResourceScript {
            lists: vec![
                Reply::Ok(fixture("deployment-list.json")),
                Reply::Ok(fixture("deployment-list-after-relist.json")),
            ],
            watches: vec![timed_events("deployment-watch-expired.jsonl", &[0.3, 0.6])],
            close_after_events: true,
        },
        ResourceScript {
            lists: vec![Reply::Ok(fixture("hpa-list.json"))],
            ..Default::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = api.router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig_path = write_kubeconfig(&dir, addr);
    let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig_path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();

    let cfg = WatchConfig::new("deployment/workload", None, Duration::from_millis(50)).unwrap();
    let handle = watch::spawn_with_client_at(cfg, client, epoch, WatchGauges::noop());
    // Wait (bounded) until the re-listed state has arrived.
    let deadline = Instant::now() + Duration::from_secs(20);
    while handle.snapshot().samples.last().and_then(|s| s.ready) != Some(5) {
        assert!(Instant::now() < deadline, "{:#?}", handle.snapshot());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let timeline = tokio::time::timeout(Duration::from_secs(10), handle.finish())
        .await
        .expect("finish returns promptly");
    server.abort();

    assert!(timeline.warnings.is_empty(), "{:?}", timeline.warnings);
    assert_eq!(
        timeline.namespace.as_deref(),
        Some(NS),
        "namespace from the kubeconfig context"
    );
    let ready: Vec<Option<i32>> = timeline.samples.iter().map(|s| s.ready).collect();
    assert_eq!(ready.first(), Some(&Some(1)));
    assert_eq!(ready.last(), Some(&Some(5)));
    let s = &timeline.summary;
    assert_eq!((s.initial_replicas, s.max_replicas), (Some(1), Some(5)));
    let t_up = s.time_to_first_scale_up_s.unwrap();
    let t_max = s.time_to_max_replicas_s.unwrap();
    assert!((0.3..5.0).contains(&t_up), "{t_up}");
    assert!((0.6..10.0).contains(&t_max), "{t_max}");
    assert!(t_up <= t_max);
    let reqs = api.requests();
    let lists = reqs
        .iter()
        .filter(|r| r.contains("/deployments?") && !r.contains("watch=true"))
        .count();
    assert_eq!(
        lists, 2,
        "initial list plus one re-list after 410: {reqs:#?}"
    );
}

/// An API server that is not there: warnings, no samples, and finish still returns. The URL is
/// https so the client builds its rustls configuration: with two crypto providers in the build (the
/// TLS note in the workspace's Cargo.toml) this panics instead.
#[tokio::test]
async fn unreachable_api_server_is_reported() {
    // Bind and drop to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = kube::Config::new(format!("https://127.0.0.1:{port}").parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let handle = watch::spawn_with_client(config_for_unreachable(), client);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let timeline = tokio::time::timeout(Duration::from_secs(10), handle.finish())
        .await
        .expect("finish returns promptly");
    assert!(timeline.samples.is_empty());
    assert!(!timeline.warnings.is_empty());
    assert!(
        timeline.warnings.iter().any(|w| w.contains("retrying")),
        "{:?}",
        timeline.warnings
    );
}

fn config_for_unreachable() -> WatchConfig {
    config("deployment/workload")
}

/// A target whose backends change as a Service's would: only `pod-a` answers (200 ms, every tenth
/// request shed with 503) from the autoscaler's decision until `SPREAD_AT`, then `pod-a`, `pod-b`
/// and `pod-c` take turns at 2 ms, and never more than those three although five pods are ready
/// later. Times are seconds since `epoch`, the fake API server's epoch too.
const OVERLOADED_FROM: f64 = 1.9;
const SPREAD_AT: f64 = 4.5;

async fn changing_backends(epoch: Instant) -> std::net::SocketAddr {
    use std::sync::atomic::{AtomicU64, Ordering};
    let counter = Arc::new(AtomicU64::new(0));
    let app = Router::new().fallback(move || {
        let counter = Arc::clone(&counter);
        async move {
            let t = epoch.elapsed().as_secs_f64();
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let overloaded = (OVERLOADED_FROM..SPREAD_AT).contains(&t);
            let (backend, delay_ms, status) = if t < SPREAD_AT {
                let shed = overloaded && n.is_multiple_of(10);
                let delay = if overloaded { 200 } else { 2 };
                ("pod-a", delay, if shed { 503 } else { 200 })
            } else {
                (["pod-a", "pod-b", "pod-c"][(n % 3) as usize], 2, 200)
            };
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            Response::builder()
                .status(status)
                .header("x-served-by", backend)
                .body(Body::from("ok"))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// End to end through the real binary: the recorded scale-out (1 -> 3 at 1.9 s, ready at 3.5 s;
/// -> 5 at 7.9 s, ready at 9.0 s) replayed over TCP, against a target whose new backends answer
/// from 4.5 s. The report's scale events carry the figures, the summary prints them, and a warning
/// says the load stayed on 3 of the 5 ready pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_run_reports_what_each_scale_out_cost_and_pinned_load() {
    let epoch = Instant::now();
    let (deployments, hpas) = scripts_at(
        // spec 3 | pods 3 | ready 2 | ready 3 | spec 5 | ready 4 | ready 5 | bookmark
        &[2.0, 2.2, 3.0, 3.5, 8.0, 8.5, 9.0, 9.5],
        // desired 3 | other-api | cpu | cpu | desired 5 | cpu
        &[OVERLOADED_FROM, 2.5, 4.0, 4.1, 7.9, 10.0],
    );
    let api = FakeApi::new(epoch, deployments, hpas);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = listener.local_addr().unwrap();
    let router = api.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let target = changing_backends(epoch).await;

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(&dir, api_addr);
    let report_path = dir.path().join("report.json");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--target", &format!("http://{target}/")])
        .args(["--rate", "100", "--duration", "21s", "--threads", "1"])
        .args([
            "--watch",
            "deployment/workload",
            "--watch-interval",
            "100ms",
        ])
        .args(["--recovery-p99", "100ms"])
        .args(["--out", report_path.to_str().unwrap()])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("POD_NAMESPACE")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), output)
        .await
        .expect("the run ends")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = loadgen::model::RunReport::load(report_path.to_str().unwrap()).unwrap();
    let events = &report.scale_events;
    assert_eq!(events.len(), 2, "{events:#?}");
    let (first, second) = (&events[0], &events[1]);
    assert_eq!((first.from_replicas, first.to_replicas), (Some(1), 3));
    assert_eq!((second.from_replicas, second.to_replicas), (Some(3), 5));
    // The loadgen's run starts a little after the fake API's epoch; differences are exact up to
    // the 100 ms watch interval, plus what a busy machine delays an event by.
    let within = |v: Option<f64>, lo: f64, hi: f64| v.is_some_and(|v| (lo..=hi).contains(&v));
    assert!(within(first.time_to_ready_s, 1.4, 2.6), "{first:#?}");
    assert!(within(second.time_to_ready_s, 0.9, 2.1), "{second:#?}");
    // New backends answer from 4.5 s: 2.6 s after the decision, plus at most one bucket.
    assert!(
        within(first.time_to_first_new_backend_s, 2.5, 3.8),
        "{first:#?}"
    );
    assert!(
        matches!(first.first_new_backend.as_deref(), Some("pod-b" | "pod-c")),
        "{first:#?}"
    );
    assert_eq!(
        second.time_to_first_new_backend_s, None,
        "no backend beyond pod-a..c ever answers"
    );
    // p99 is back under the given 100 ms once the three backends share the load (a loaded
    // machine adds tens of ms to a 2 ms answer; the overload adds 200).
    assert!(first.recovery_threshold_given);
    let p99s: Vec<(f64, u64, f64)> = report
        .timeseries
        .iter()
        .map(|p| (p.t_s, p.requests, p.p99_ms))
        .collect();
    assert!(
        within(first.recovery_s, 2.0, 5.0),
        "{first:#?}\n(t_s, requests, p99 ms): {p99s:?}"
    );
    assert!(first.shed_during > 0, "{first:#?}");
    assert!(first.failed_during >= first.shed_during, "{first:#?}");
    let before = first.before.as_ref().expect("a second before the event");
    let during = first.during.as_ref().unwrap();
    // The first second also pays for connection set-up, so only the overload is asserted on it.
    assert!(
        during.max_p99_ms >= 200.0 && before.p99_ms < during.max_p99_ms,
        "{first:#?}"
    );
    assert!(first.after.as_ref().unwrap().p99_ms < 100.0, "{first:#?}");

    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.starts_with("load is pinned to 3 of 5 ready pods")
                && w.contains("set a connection lifetime (--connection-max-age)")),
        "{:?}",
        report.warnings
    );
    assert!(stdout.contains("scale event"), "{stdout}");
    assert!(stdout.contains("1 -> 3"), "{stdout}");
    assert!(
        stdout.contains("WARNING: load is pinned to 3 of 5 ready pods"),
        "{stdout}"
    );
}

/// A run's first request waits for the watch's first list: against an API that takes 400 ms to
/// list a Knative configuration at zero, the one request of the run still goes out with the
/// target known to be at zero, so it opens a cold start (sent first, the request would pass
/// unnoticed and the report would say no cold start happened).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_request_waits_for_the_watch_to_know_the_target_is_at_zero() {
    let epoch = Instant::now();
    let api = knative_api(epoch);
    let slow_lists = axum::middleware::from_fn(
        |request: axum::extract::Request, next: axum::middleware::Next| async move {
            let watching = request
                .uri()
                .query()
                .is_some_and(|q| q.contains("watch=true"));
            if !watching {
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            next.run(request).await
        },
    );
    let router = api.router().layer(slow_lists);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    // The activator's part: the request is held 300 ms while a pod starts, then answered.
    let target = {
        let app = Router::new().fallback(|| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            "ok"
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    };

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(&dir, api_addr);
    let report_path = dir.path().join("report.json");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--target", &format!("http://{target}/api/v1/hello")])
        .args(["--requests", "1", "--concurrency", "1", "--quiet"])
        .args(["--watch", "configuration/workload", "--namespace", NS])
        .args(["--out", report_path.to_str().unwrap()])
        .env("KUBECONFIG", &kubeconfig)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the run ends")
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = loadgen::model::RunReport::load(report_path.to_str().unwrap()).unwrap();
    let timeline = report.replicas.expect("a replica timeline");
    assert_eq!(timeline.samples[0].ready, Some(0), "{timeline:#?}");
    assert_eq!(timeline.cold_starts.len(), 1, "{timeline:#?}");
    let cold = &timeline.cold_starts[0];
    assert_eq!((cold.held, cold.failed), (1, 0), "{cold:#?}");
    let answered = cold.to_first_response_s.expect("answered");
    assert!((0.3..2.0).contains(&answered), "{cold:#?}");
}
