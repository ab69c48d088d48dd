//! The watch task: two kube-runtime watchers merged into one state, sampled into the timeline by a
//! [`Recorder`]: the Deployment by name and the namespace's HPAs, or a Knative target's
//! Deployments and PodAutoscalers by label (each set summed: a revision rolling out is still the
//! same service).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::DynamicObject;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::members::{self, Members};
use super::observe::{self, DeploymentView, HpaView};
use super::{MAX_SAMPLES, WatchConfig, WatchTarget, lock};
use crate::coldstart::ColdStartTracker;
use crate::metrics::WatchGauges;
use crate::model::replicas::{ReplicaSample, ReplicaTimeline, ScaleOutSummary};

/// Most distinct warnings kept; a flapping API server must not grow the report without bound.
const MAX_WARNINGS: usize = 32;

/// Samples wait at most this long for both initial lists, so the first sample has the Deployment and
/// the HPA together instead of one half-empty sample followed by a delayed one.
const PRIME_GRACE: Duration = Duration::from_secs(2);

/// Turns the merged state into samples: on change, at most once per interval.
#[derive(Debug)]
pub(super) struct Recorder {
    timeline: ReplicaTimeline,
    run_start: Instant,
    interval: Duration,
    /// The newest observed state (its `t_s` is unused).
    state: ReplicaSample,
    last_recorded_at: Option<Instant>,
    /// Sampling starts once both initial lists are in, or at this deadline.
    prime_deadline: Option<Instant>,
    samples_full: bool,
    /// Figures from every change, at the time of the event (samples are rate-limited, these are not).
    summary: ScaleOutSummary,
    /// The run's replica and CPU gauges; they follow every change, not only the samples.
    gauges: WatchGauges,
    /// Told every ready count, so the engine knows when the target is at zero.
    cold_starts: Option<Arc<ColdStartTracker>>,
}

impl Recorder {
    pub(super) fn new(
        cfg: &WatchConfig,
        namespace: Option<String>,
        run_start: Instant,
        gauges: WatchGauges,
    ) -> Self {
        Self {
            timeline: ReplicaTimeline {
                target: cfg.target.to_string(),
                namespace,
                interval_s: cfg.interval.as_secs_f64(),
                ..Default::default()
            },
            run_start,
            interval: cfg.interval,
            state: ReplicaSample::default(),
            last_recorded_at: None,
            prime_deadline: Some(Instant::now() + PRIME_GRACE),
            samples_full: false,
            summary: ScaleOutSummary::default(),
            gauges,
            cold_starts: None,
        }
    }

    /// Records a warning once (same text is not repeated) and logs it.
    pub(super) fn warn(&mut self, message: String) {
        if self.timeline.warnings.contains(&message) {
            return;
        }
        tracing::warn!(target: "loadgen::watch", "{message}");
        if self.timeline.warnings.len() < MAX_WARNINGS {
            self.timeline.warnings.push(message);
        } else if self.timeline.warnings.len() == MAX_WARNINGS {
            self.timeline
                .warnings
                .push("further watch warnings suppressed".to_string());
        }
    }

    pub(super) fn primed(&self) -> bool {
        self.prime_deadline.is_none()
    }

    /// True while the autoscaler (or `spec.replicas`) asks for more pods than are ready.
    pub(super) fn scaling(&self) -> bool {
        let desired = self.state.hpa_desired.max(self.state.desired);
        matches!((desired, self.state.ready), (Some(d), Some(r)) if d > r)
    }

    fn set_primed(&mut self, now: Instant) {
        if self.prime_deadline.take().is_some() {
            self.record_if_due(now);
        }
    }

    fn dirty(&self) -> bool {
        match self.timeline.samples.last() {
            Some(last) => !last.same_values(&self.state),
            None => self.has_data(),
        }
    }

    /// From now on, tell `tracker` every ready count, starting with the one known now.
    pub(super) fn follow_cold_starts(&mut self, tracker: Arc<ColdStartTracker>) {
        tracker.observe_ready(self.state.ready, Instant::now().into_std());
        self.cold_starts = Some(tracker);
    }

    fn update_deployment(&mut self, view: DeploymentView, now: Instant) {
        if let Some(t) = &self.cold_starts {
            t.observe_ready(view.ready, now.into_std());
        }
        self.state.desired = view.desired;
        self.state.current = view.current;
        self.state.ready = view.ready;
        set_gauge(&self.gauges.desired, view.desired);
        set_gauge(&self.gauges.current, view.current);
        set_gauge(&self.gauges.ready, view.ready);
        self.changed(now);
    }

    fn update_hpa(&mut self, name: Option<String>, view: HpaView, now: Instant) {
        if name.is_some() {
            self.timeline.hpa = name;
        }
        self.state.hpa_desired = view.desired;
        self.state.cpu_utilization_percent = view.cpu_utilization_percent;
        set_gauge(
            &self.gauges.cpu_utilization_percent,
            view.cpu_utilization_percent,
        );
        self.changed(now);
    }

    /// When the task must wake up to take a pending sample, if ever.
    fn next_deadline(&self) -> Option<Instant> {
        if let Some(deadline) = self.prime_deadline {
            return Some(deadline);
        }
        if !self.dirty() {
            return None;
        }
        self.last_recorded_at.map(|at| at + self.interval)
    }

    fn on_deadline(&mut self, now: Instant) {
        if self.prime_deadline.is_some_and(|d| now >= d) {
            self.prime_deadline = None;
        }
        self.record_if_due(now);
    }

    /// The state changed at `now`: fold it into the summary, then sample if due.
    fn changed(&mut self, now: Instant) {
        if self.has_data() {
            self.summary.observe(&ReplicaSample {
                t_s: self.t_s(now),
                ..self.state
            });
        }
        self.record_if_due(now);
    }

    fn record_if_due(&mut self, now: Instant) {
        if !self.primed() || !self.dirty() {
            return;
        }
        if self
            .last_recorded_at
            .is_some_and(|at| now < at + self.interval)
        {
            return; // the deadline wakes us up at the end of the interval
        }
        self.push_sample(now);
    }

    /// The run begins now, after the watch did (a `--start-at` wait): times count from here.
    pub(super) fn start_run(&mut self, at: Instant) {
        let offset_s = at.saturating_duration_since(self.run_start).as_secs_f64();
        crate::model::replicas::rebase(&mut self.timeline.samples, &mut self.summary, offset_s);
        self.run_start = self.run_start.max(at);
    }

    fn t_s(&self, now: Instant) -> f64 {
        now.saturating_duration_since(self.run_start).as_secs_f64()
    }

    fn push_sample(&mut self, now: Instant) {
        if self.timeline.samples.len() >= MAX_SAMPLES {
            if !self.samples_full {
                self.samples_full = true;
                self.warn(format!(
                    "replica timeline reached {MAX_SAMPLES} samples; later changes are not recorded"
                ));
            }
            return;
        }
        let sample = ReplicaSample {
            t_s: self.t_s(now),
            ..self.state
        };
        self.timeline.samples.push(sample);
        self.last_recorded_at = Some(now);
    }

    /// The timeline as it would be if the watch ended at `now` (pending state included).
    pub(super) fn timeline_at(&self, now: Instant) -> ReplicaTimeline {
        let mut timeline = self.timeline.clone();
        if self.dirty() && timeline.samples.len() < MAX_SAMPLES {
            timeline.samples.push(ReplicaSample {
                t_s: self.t_s(now),
                ..self.state
            });
        }
        timeline.summary = self.summary.clone();
        timeline
    }

    fn has_data(&self) -> bool {
        !ReplicaSample::default().same_values(&self.state)
    }

    /// Final timeline: the pending state is recorded at `now`.
    pub(super) fn finish(&mut self, now: Instant) -> ReplicaTimeline {
        let timeline = self.timeline_at(now);
        self.timeline = timeline.clone();
        timeline
    }
}

/// An unknown value leaves the gauge at its last known one.
fn set_gauge(gauge: &metrics::Gauge, value: Option<i32>) {
    if let Some(v) = value {
        gauge.set(f64::from(v));
    }
}

/// What to do with a watcher error.
enum ErrorAction {
    /// Retry (the stream backs off by itself); log once.
    Retry,
    /// Give up on this resource: retrying cannot help (RBAC, resource not served).
    Stop,
    /// Normal operation (410 Gone: the watcher re-lists); not worth a warning.
    Ignore,
}

fn classify(err: &watcher::Error) -> ErrorAction {
    let code = match err {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => match e {
            kube::Error::Api(status) => Some(status.code),
            _ => None,
        },
        watcher::Error::WatchError(status) => Some(status.code),
        watcher::Error::NoResourceVersion => None,
    };
    match code {
        Some(410) => ErrorAction::Ignore,
        Some(401 | 403 | 404) => ErrorAction::Stop,
        _ => ErrorAction::Retry,
    }
}

/// The resource a stream follows, for messages.
struct Source {
    what: String,
    rbac_hint: &'static str,
}

impl Source {
    fn handle_error(&self, rec: &Mutex<Recorder>, err: &watcher::Error) -> bool {
        match classify(err) {
            ErrorAction::Ignore => true,
            ErrorAction::Retry => {
                lock(rec).warn(format!("watch of {} failed, retrying: {err}", self.what));
                true
            }
            ErrorAction::Stop => {
                lock(rec).warn(format!(
                    "watch of {} stopped: {err} ({})",
                    self.what, self.rbac_hint
                ));
                false
            }
        }
    }
}

/// Polls a stream that may have been given up on (then it never yields).
async fn next_of<S: Stream + Unpin>(stream: &mut Option<S>) -> Option<S::Item> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// One watch stream of `(name, view)` events (see [`Members`]).
type ViewStream<V> = BoxStream<'static, Result<Event<(String, Option<V>)>, watcher::Error>>;

/// The Deployments the target runs on: a Deployment by name, or a Knative target's by label.
fn deployment_stream(
    client: &kube::Client,
    namespace: &str,
    target: &WatchTarget,
) -> (ViewStream<DeploymentView>, Source) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let rbac_hint = "the service account needs get, list and watch on deployments.apps";
    let (config, what) = match target.label_selector() {
        None => (
            watcher::Config::default().fields(&format!("metadata.name={}", target.name)),
            format!("{target} in namespace {namespace}"),
        ),
        Some(selector) => (
            watcher::Config::default().labels(&selector),
            format!("Deployments labelled {selector} in namespace {namespace}"),
        ),
    };
    let stream = watcher::watcher(api, config)
        .default_backoff()
        .map_ok(|ev| {
            members::map_event(ev, |d: &Deployment| {
                (d.name_any(), Some(observe::deployment_view(d)))
            })
        })
        .boxed();
    (stream, Source { what, rbac_hint })
}

/// The autoscaler's decisions: the namespace's HPAs whose `scaleTargetRef` names the Deployment,
/// or a Knative target's PodAutoscalers by label (kube's dynamic API: no CRD crate).
fn autoscaler_stream(
    client: &kube::Client,
    namespace: &str,
    target: &WatchTarget,
) -> (ViewStream<HpaView>, Source) {
    match target.label_selector() {
        None => {
            let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
            let name = target.name.clone();
            let stream = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .map_ok(move |ev| {
                    members::map_event(ev, |h: &HorizontalPodAutoscaler| {
                        let ours = observe::hpa_targets(h, &name);
                        (h.name_any(), ours.then(|| observe::hpa_view(h)))
                    })
                })
                .boxed();
            let source = Source {
                what: format!("horizontalpodautoscalers in namespace {namespace}"),
                rbac_hint: "the service account needs get, list and watch on \
                            horizontalpodautoscalers.autoscaling (autoscaling/v2)",
            };
            (stream, source)
        }
        Some(selector) => {
            let ar = observe::pod_autoscaler_resource();
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
            let stream = watcher::watcher(api, watcher::Config::default().labels(&selector))
                .default_backoff()
                .map_ok(|ev| {
                    members::map_event(ev, |pa: &DynamicObject| {
                        (pa.name_any(), Some(observe::pod_autoscaler_view(pa)))
                    })
                })
                .boxed();
            let source = Source {
                what: format!("podautoscalers labelled {selector} in namespace {namespace}"),
                rbac_hint: "the service account needs get, list and watch on \
                            podautoscalers.autoscaling.internal.knative.dev",
            };
            (stream, source)
        }
    }
}

/// What the watch loop knows about the target's objects, and the warnings it gave once.
struct Tracked {
    target: WatchTarget,
    namespace: String,
    deployments: Members<DeploymentView>,
    deployments_seen: bool,
    autoscalers: Members<HpaView>,
    warned_several_hpas: bool,
}

impl Tracked {
    /// The Deployments changed: their sum goes to the recorder (unknown, with a warning, when none
    /// is left).
    fn deployments_changed(&mut self, rec: &Mutex<Recorder>, now: Instant) {
        let mut r = lock(rec);
        if self.deployments.views.is_empty() {
            r.warn(self.missing_message());
        } else {
            self.deployments_seen = true;
        }
        r.update_deployment(
            observe::sum_deployments(self.deployments.views.values()),
            now,
        );
    }

    fn missing_message(&self) -> String {
        let (t, ns) = (&self.target, &self.namespace);
        match (t.label_selector(), self.deployments_seen) {
            (None, false) => format!("{t} not found in namespace {ns}"),
            (None, true) => format!("{t} was deleted during the run"),
            (Some(sel), false) => format!("no Deployment labelled {sel} in namespace {ns}"),
            (Some(sel), true) => {
                format!("the Deployments labelled {sel} were deleted during the run")
            }
        }
    }

    /// The autoscalers changed: a Deployment's HPA is reported as is (the first by name when
    /// several target it, with a warning: their controllers fight); a Knative target's
    /// PodAutoscalers are summed, as its Deployments are.
    fn autoscalers_changed(&mut self, rec: &Mutex<Recorder>, now: Instant) {
        let mut r = lock(rec);
        let views = &self.autoscalers.views;
        if self.target.label_selector().is_some() {
            r.update_hpa(
                self.autoscalers.names(),
                observe::sum_autoscalers(views.values()),
                now,
            );
            return;
        }
        if views.len() > 1 && !self.warned_several_hpas {
            self.warned_several_hpas = true;
            let names: Vec<&str> = views.keys().map(String::as_str).collect();
            r.warn(format!(
                "several HPAs target {} ({}); reporting {}",
                self.target,
                names.join(", "),
                names[0]
            ));
        }
        let (name, view) = views
            .iter()
            .next()
            .map(|(n, v)| (Some(n.clone()), *v))
            .unwrap_or_default();
        r.update_hpa(name, view, now);
    }
}

pub(super) async fn run(
    cfg: WatchConfig,
    client: kube::Client,
    namespace: String,
    rec: Arc<Mutex<Recorder>>,
    mut stop: oneshot::Receiver<()>,
) {
    let (dep_stream, dep_source) = deployment_stream(&client, &namespace, &cfg.target);
    let (scaler_stream, scaler_source) = autoscaler_stream(&client, &namespace, &cfg.target);
    let mut dep_stream = Some(dep_stream);
    let mut scaler_stream = Some(scaler_stream);
    let mut tracked = Tracked {
        target: cfg.target,
        namespace,
        deployments: Members::default(),
        deployments_seen: false,
        autoscalers: Members::default(),
        warned_several_hpas: false,
    };

    loop {
        let deadline = lock(&rec).next_deadline();
        tokio::select! {
            _ = &mut stop => break,
            _ = sleep_until_opt(deadline) => lock(&rec).on_deadline(Instant::now()),
            item = next_of(&mut dep_stream) => {
                let now = Instant::now();
                match item {
                    None => dep_stream = None,
                    Some(Err(err)) => {
                        if !dep_source.handle_error(&rec, &err) {
                            dep_stream = None;
                        }
                    }
                    Some(Ok(event)) => {
                        if tracked.deployments.apply(event) && tracked.deployments.listed {
                            tracked.deployments_changed(&rec, now);
                        }
                    }
                }
                if dep_stream.is_none() {
                    tracked.deployments.listed = true;
                }
            }
            item = next_of(&mut scaler_stream) => {
                let now = Instant::now();
                match item {
                    None => scaler_stream = None,
                    Some(Err(err)) => {
                        if !scaler_source.handle_error(&rec, &err) {
                            scaler_stream = None;
                        }
                    }
                    Some(Ok(event)) => {
                        if tracked.autoscalers.apply(event) && tracked.autoscalers.listed {
                            tracked.autoscalers_changed(&rec, now);
                        }
                    }
                }
                if scaler_stream.is_none() {
                    tracked.autoscalers.listed = true;
                }
            }
        }
        if tracked.deployments.listed && tracked.autoscalers.listed {
            lock(&rec).set_primed(Instant::now());
        }
    }
}
