//! The watch task: two kube-runtime watchers (the Deployment by name, the namespace's HPAs) merged
//! into one state, sampled into the timeline by a [`Recorder`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::observe::{self, DeploymentView, HpaView};
use super::{MAX_SAMPLES, WatchConfig, lock};
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

    fn primed(&self) -> bool {
        self.prime_deadline.is_none()
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

    fn update_deployment(&mut self, view: DeploymentView, now: Instant) {
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

/// HPA bookkeeping: every HPA in the namespace whose `scaleTargetRef` names our Deployment.
#[derive(Default)]
struct HpaSet {
    matching: BTreeMap<String, HpaView>,
    seen_in_relist: BTreeSet<String>,
    listed: bool,
}

impl HpaSet {
    /// Applies one event; returns true when the view of the HPA we report may have changed.
    fn apply(&mut self, event: Event<HorizontalPodAutoscaler>, deployment: &str) -> bool {
        match event {
            Event::Init => {
                self.seen_in_relist.clear();
                false
            }
            Event::InitApply(hpa) => {
                self.seen_in_relist.insert(hpa.name_any());
                self.upsert(&hpa, deployment);
                false
            }
            Event::InitDone => {
                let seen = std::mem::take(&mut self.seen_in_relist);
                self.matching.retain(|name, _| seen.contains(name));
                self.listed = true;
                true
            }
            Event::Apply(hpa) => {
                self.upsert(&hpa, deployment);
                true
            }
            Event::Delete(hpa) => self.matching.remove(&hpa.name_any()).is_some(),
        }
    }

    fn upsert(&mut self, hpa: &HorizontalPodAutoscaler, deployment: &str) {
        let name = hpa.name_any();
        if observe::hpa_targets(hpa, deployment) {
            self.matching.insert(name, observe::hpa_view(hpa));
        } else {
            // Its target may have been edited away from our Deployment.
            self.matching.remove(&name);
        }
    }

    /// The HPA reported (first by name; the API server rejects none of several, but the controller
    /// fights itself then, which we warn about).
    fn current(&self) -> (Option<String>, HpaView) {
        self.matching
            .iter()
            .next()
            .map(|(n, v)| (Some(n.clone()), *v))
            .unwrap_or_default()
    }
}

pub(super) async fn run(
    cfg: WatchConfig,
    client: kube::Client,
    namespace: String,
    rec: Arc<Mutex<Recorder>>,
    mut stop: oneshot::Receiver<()>,
) {
    let name = cfg.target.name.clone();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client, &namespace);

    let dep_source = Source {
        what: format!("deployment/{name} in namespace {namespace}"),
        rbac_hint: "the service account needs get, list and watch on deployments.apps",
    };
    let hpa_source = Source {
        what: format!("horizontalpodautoscalers in namespace {namespace}"),
        rbac_hint: "the service account needs get, list and watch on \
                    horizontalpodautoscalers.autoscaling (autoscaling/v2)",
    };

    let field_selector = format!("metadata.name={name}");
    let mut dep_stream: Option<BoxStream<'static, _>> = Some(
        watcher::watcher(
            deployments,
            watcher::Config::default().fields(&field_selector),
        )
        .default_backoff()
        .boxed(),
    );
    let mut hpa_stream: Option<BoxStream<'static, _>> = Some(
        watcher::watcher(hpas, watcher::Config::default())
            .default_backoff()
            .boxed(),
    );

    let mut dep_listed = false;
    let mut dep_seen = false;
    let mut hpa_set = HpaSet::default();
    let mut warned_several_hpas = false;

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
                    Some(Ok(event)) => match event {
                        Event::Init => dep_seen = false,
                        Event::InitApply(d) | Event::Apply(d) => {
                            dep_seen = true;
                            lock(&rec).update_deployment(observe::deployment_view(&d), now);
                        }
                        Event::InitDone => {
                            dep_listed = true;
                            if !dep_seen {
                                let mut r = lock(&rec);
                                r.warn(format!("deployment/{name} not found in namespace {namespace}"));
                                r.update_deployment(DeploymentView::default(), now);
                            }
                        }
                        Event::Delete(_) => {
                            let mut r = lock(&rec);
                            r.warn(format!("deployment/{name} was deleted during the run"));
                            r.update_deployment(DeploymentView::default(), now);
                        }
                    },
                }
                if dep_stream.is_none() {
                    dep_listed = true;
                }
            }
            item = next_of(&mut hpa_stream) => {
                let now = Instant::now();
                match item {
                    None => hpa_stream = None,
                    Some(Err(err)) => {
                        if !hpa_source.handle_error(&rec, &err) {
                            hpa_stream = None;
                        }
                    }
                    Some(Ok(event)) => {
                        if hpa_set.apply(event, &name) && hpa_set.listed {
                            let (hpa_name, view) = hpa_set.current();
                            let mut r = lock(&rec);
                            if hpa_set.matching.len() > 1 && !warned_several_hpas {
                                warned_several_hpas = true;
                                let names: Vec<&str> = hpa_set.matching.keys().map(String::as_str).collect();
                                r.warn(format!(
                                    "several HPAs target deployment/{name} ({}); reporting {}",
                                    names.join(", "),
                                    names[0]
                                ));
                            }
                            r.update_hpa(hpa_name, view, now);
                        }
                    }
                }
                if hpa_stream.is_none() {
                    hpa_set.listed = true;
                }
            }
        }
        if dep_listed && hpa_set.listed {
            lock(&rec).set_primed(Instant::now());
        }
    }
}
