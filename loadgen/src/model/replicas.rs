//! The replica timeline a `--watch` run records (the report's `replicas`) and the scale-out
//! figures computed from it.
//!
//! Part of the run's data rather than of the watcher (`crate::watch` fills it) so the report, the
//! summary printer and the HTML renderer can use it on a timeline read back from JSON, with no
//! Kubernetes client around.

use serde::{Deserialize, Serialize};

use super::cold_starts::{ColdStart, MAX_COLD_STARTS};

/// One observation of the Deployment and its HPA. `None` means "not known" (no HPA, not yet listed,
/// forbidden), which is different from zero replicas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaSample {
    /// Seconds since the run started.
    pub t_s: f64,
    /// `spec.replicas` of the Deployment: what it was asked to run.
    #[serde(default)]
    pub desired: Option<i32>,
    /// `status.replicas`: pods that exist (including not-ready ones).
    #[serde(default)]
    pub current: Option<i32>,
    /// `status.readyReplicas`: pods that pass readiness and so receive traffic.
    #[serde(default)]
    pub ready: Option<i32>,
    /// What the autoscaler last decided: the HPA's `status.desiredReplicas`, or for a Knative
    /// target the sum of its PodAutoscalers' `status.desiredScale`.
    #[serde(default)]
    pub hpa_desired: Option<i32>,
    /// The HPA's current average CPU utilization, in percent of the pods' CPU request.
    #[serde(default)]
    pub cpu_utilization_percent: Option<i32>,
}

impl ReplicaSample {
    /// True when the observed values (not the time) are the same.
    pub fn same_values(&self, other: &ReplicaSample) -> bool {
        self.desired == other.desired
            && self.current == other.current
            && self.ready == other.ready
            && self.hpa_desired == other.hpa_desired
            && self.cpu_utilization_percent == other.cpu_utilization_percent
    }
}

/// Scale-out figures. Times are seconds since the run started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScaleOutSummary {
    /// Ready replicas at the first sample.
    pub initial_replicas: Option<i32>,
    /// Highest ready replica count seen.
    pub max_replicas: Option<i32>,
    /// Ready replicas at the last sample.
    pub final_replicas: Option<i32>,
    /// Desired replicas (`spec.replicas`) at the first observation.
    pub initial_desired_replicas: Option<i32>,
    /// Highest desired replica count (`spec.replicas`) seen.
    pub max_desired_replicas: Option<i32>,
    /// First time `spec.replicas` rose above its initial value: when the autoscaler decided to scale.
    pub time_to_first_scale_up_s: Option<f64>,
    /// First time the ready count rose above its initial value: when new capacity took traffic.
    pub time_to_first_ready_scale_up_s: Option<f64>,
    /// First time the ready count reached its maximum, if that maximum is above the initial count.
    pub time_to_max_replicas_s: Option<f64>,
    /// Highest HPA CPU utilization seen, in percent of request.
    pub max_cpu_utilization_percent: Option<i32>,
    /// Requests per second per ready replica: the per-second average, i.e. the mean over the
    /// run's time-series buckets of (that bucket's throughput / the ready replicas in force at
    /// its start). Buckets before the first sample or with 0 or unknown ready replicas are left
    /// out. Filled in from the report's time series when the report is built or merged (see
    /// [`ReplicaTimeline::record_throughput`]); absent in older reports.
    pub throughput_per_replica: Option<f64>,
}

/// Everything the watcher recorded during one run. Lives in the JSON report under `replicas`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaTimeline {
    /// What was watched: `deployment/NAME`, `configuration/NAME` or `revision/NAME`.
    #[serde(default)]
    pub target: String,
    /// The namespace watched.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The autoscaler: the HPA whose `scaleTargetRef` names the Deployment, or for a Knative
    /// target the names of its PodAutoscalers (comma-separated), if one was found.
    #[serde(default)]
    pub hpa: Option<String>,
    /// Minimum spacing of samples, in seconds.
    #[serde(default)]
    pub interval_s: f64,
    /// Samples in time order: one on each change, at most one per interval.
    #[serde(default)]
    pub samples: Vec<ReplicaSample>,
    /// Watch failures (forbidden, unreachable API server, object missing). The run went on regardless.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Computed from `samples` when the watch finished.
    #[serde(default)]
    pub summary: ScaleOutSummary,
    /// Cold starts the clients measured: requests sent while the target had no ready replica
    /// (at most [`MAX_COLD_STARTS`], in time order).
    #[serde(default)]
    pub cold_starts: Vec<ColdStart>,
    /// Every cold start, including those past [`MAX_COLD_STARTS`] that were only counted.
    #[serde(default)]
    pub cold_starts_total: u64,
}

/// One point of a "throughput per ready replica" series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PerReplicaPoint {
    pub t_s: f64,
    /// Ready replicas in force at `t_s`.
    pub replicas: i32,
    /// Throughput at `t_s` divided by `replicas`.
    pub per_replica: f64,
}

impl ReplicaTimeline {
    /// The last sample taken at or before `t_s` (the timeline is a step function).
    pub fn sample_at(&self, t_s: f64) -> Option<&ReplicaSample> {
        let idx = self.samples.partition_point(|s| s.t_s <= t_s);
        idx.checked_sub(1).map(|i| &self.samples[i])
    }

    /// Ready replicas in force at `t_s`, if known.
    pub fn ready_at(&self, t_s: f64) -> Option<i32> {
        self.sample_at(t_s).and_then(|s| s.ready)
    }

    /// Divides a throughput series `(t_s, requests per second)` by the ready replicas in force at each
    /// point. Points before the first sample, or with zero or unknown ready replicas, are skipped:
    /// "per replica" means nothing there.
    pub fn throughput_per_replica(&self, throughput: &[(f64, f64)]) -> Vec<PerReplicaPoint> {
        throughput
            .iter()
            .filter_map(|&(t_s, rps)| {
                let replicas = self.ready_at(t_s).filter(|r| *r > 0)?;
                Some(PerReplicaPoint {
                    t_s,
                    replicas,
                    per_replica: rps / f64::from(replicas),
                })
            })
            .collect()
    }

    /// Stores the cold starts the clients measured (`total` counts those past the cap too).
    pub fn set_cold_starts(&mut self, mut cold_starts: Vec<ColdStart>, total: u64) {
        cold_starts.truncate(MAX_COLD_STARTS);
        self.cold_starts_total = total.max(cold_starts.len() as u64);
        self.cold_starts = cold_starts;
    }

    /// Mean of [`Self::throughput_per_replica`] over the points where it is defined.
    pub fn mean_throughput_per_replica(&self, throughput: &[(f64, f64)]) -> Option<f64> {
        let points = self.throughput_per_replica(throughput);
        if points.is_empty() {
            return None;
        }
        Some(points.iter().map(|p| p.per_replica).sum::<f64>() / points.len() as f64)
    }

    /// Stores [`ScaleOutSummary::throughput_per_replica`] for a run's throughput series
    /// `(t_s, requests per second)`.
    pub fn record_throughput(&mut self, throughput: &[(f64, f64)]) {
        self.summary.throughput_per_replica = self.mean_throughput_per_replica(throughput);
    }

    /// Computes the scale-out figures from the samples (for a timeline read back from JSON; the
    /// watcher itself fills `summary` from every change it saw, so its times are not rounded to the
    /// sampling interval).
    pub fn compute_summary(&self) -> ScaleOutSummary {
        let mut summary = ScaleOutSummary::default();
        for s in &self.samples {
            summary.observe(s);
        }
        summary
    }
}

/// Moves a timeline's origin `offset_s` seconds later: the watch began before the run (a `--start-at`
/// barrier), and its times must count from the run's start like every other series of the report.
/// Samples from before the new origin collapse to the state at t = 0 (the last of them); the
/// summary's times shift alike, clamped at 0.
pub fn rebase(samples: &mut Vec<ReplicaSample>, summary: &mut ScaleOutSummary, offset_s: f64) {
    if offset_s <= 0.0 {
        return;
    }
    let before = samples.iter().filter(|s| s.t_s <= offset_s).count();
    if before > 1 {
        samples.drain(..before - 1);
    }
    for s in samples.iter_mut() {
        s.t_s = (s.t_s - offset_s).max(0.0);
    }
    for t in [
        &mut summary.time_to_first_scale_up_s,
        &mut summary.time_to_first_ready_scale_up_s,
        &mut summary.time_to_max_replicas_s,
    ]
    .into_iter()
    .flatten()
    {
        *t = (*t - offset_s).max(0.0);
    }
}

impl ScaleOutSummary {
    /// Folds one observed state (in time order) into the figures.
    pub fn observe(&mut self, s: &ReplicaSample) {
        if let Some(d) = s.desired {
            match self.initial_desired_replicas {
                None => self.initial_desired_replicas = Some(d),
                Some(initial) if d > initial && self.time_to_first_scale_up_s.is_none() => {
                    self.time_to_first_scale_up_s = Some(s.t_s);
                }
                Some(_) => {}
            }
            self.max_desired_replicas = self.max_desired_replicas.max(Some(d));
        }
        if let Some(r) = s.ready {
            match (self.initial_replicas, self.max_replicas) {
                (Some(initial), Some(max)) => {
                    if r > initial && self.time_to_first_ready_scale_up_s.is_none() {
                        self.time_to_first_ready_scale_up_s = Some(s.t_s);
                    }
                    if r > max {
                        self.max_replicas = Some(r);
                        self.time_to_max_replicas_s = Some(s.t_s);
                    }
                }
                _ => {
                    self.initial_replicas = Some(r);
                    self.max_replicas = Some(r);
                }
            }
            self.final_replicas = Some(r);
        }
        if let Some(cpu) = s.cpu_utilization_percent {
            self.max_cpu_utilization_percent = self.max_cpu_utilization_percent.max(Some(cpu));
        }
    }
}

/// A sample for unit tests: `desired` pods asked for (Deployment and HPA agree), `ready` of them ready.
#[cfg(test)]
pub(crate) fn test_sample(t_s: f64, desired: i32, ready: i32) -> ReplicaSample {
    ReplicaSample {
        t_s,
        desired: Some(desired),
        current: Some(desired),
        ready: Some(ready),
        hpa_desired: Some(desired),
        cpu_utilization_percent: None,
    }
}

/// A timeline of `samples` and nothing else, for unit tests.
#[cfg(test)]
pub(crate) fn test_timeline(samples: Vec<ReplicaSample>) -> ReplicaTimeline {
    ReplicaTimeline {
        samples,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rebase_counts_from_the_run_start_and_keeps_the_state_at_it() {
        let at = |t_s: f64, desired: i32| super::ReplicaSample {
            t_s,
            desired: Some(desired),
            ..Default::default()
        };
        // Watched from 0, the run began at 16 s (the start barrier); the HPA acted at 28.6 s.
        let mut samples = vec![at(0.0, 1), at(5.0, 1), at(28.6, 4), at(32.7, 4)];
        let mut summary = super::ScaleOutSummary {
            time_to_first_scale_up_s: Some(28.6),
            ..Default::default()
        };
        super::rebase(&mut samples, &mut summary, 16.0);
        let times: Vec<f64> = samples
            .iter()
            .map(|s| (s.t_s * 10.0).round() / 10.0)
            .collect();
        assert_eq!(times, vec![0.0, 12.6, 16.7]);
        assert_eq!(samples[0].desired, Some(1));
        assert!((summary.time_to_first_scale_up_s.unwrap() - 12.6).abs() < 1e-9);
        super::rebase(&mut samples, &mut summary, 0.0);
        assert_eq!(samples.len(), 3, "no offset, no change");
    }

    use super::*;

    use super::test_sample as s;
    use super::test_timeline as timeline;

    #[test]
    fn summary_of_a_scale_out() {
        let t = timeline(vec![
            s(0.0, 1, 1),
            s(10.0, 3, 1),
            s(14.0, 3, 3),
            s(30.0, 5, 3),
            s(35.0, 5, 5),
            s(90.0, 2, 2),
        ]);
        let sum = t.compute_summary();
        assert_eq!(sum.initial_replicas, Some(1));
        assert_eq!(sum.max_replicas, Some(5));
        assert_eq!(sum.final_replicas, Some(2));
        assert_eq!(sum.max_desired_replicas, Some(5));
        assert_eq!(sum.time_to_first_scale_up_s, Some(10.0));
        assert_eq!(sum.time_to_first_ready_scale_up_s, Some(14.0));
        assert_eq!(sum.time_to_max_replicas_s, Some(35.0));
    }

    /// Scale to zero is a real state, not "unknown": a run that starts at zero and goes
    /// 0 -> 1 -> 3 -> 0 starts at 0, scales up at the first pod and ends at 0.
    #[test]
    fn summary_of_a_run_from_zero_and_back() {
        let sum = timeline(vec![
            s(0.0, 0, 0),
            s(2.0, 1, 0),
            s(4.5, 1, 1),
            s(10.0, 3, 1),
            s(13.0, 3, 3),
            s(80.0, 0, 0),
        ])
        .compute_summary();
        assert_eq!(sum.initial_replicas, Some(0));
        assert_eq!(sum.initial_desired_replicas, Some(0));
        assert_eq!(sum.time_to_first_scale_up_s, Some(2.0));
        assert_eq!(sum.time_to_first_ready_scale_up_s, Some(4.5));
        assert_eq!(sum.max_replicas, Some(3));
        assert_eq!(sum.time_to_max_replicas_s, Some(13.0));
        assert_eq!(sum.final_replicas, Some(0));
    }

    #[test]
    fn no_scale_up_means_no_times() {
        let sum = timeline(vec![s(0.0, 2, 2), s(5.0, 2, 2)]).compute_summary();
        assert_eq!(sum.time_to_first_scale_up_s, None);
        assert_eq!(sum.time_to_max_replicas_s, None);
        assert_eq!(sum.max_replicas, Some(2));
        assert_eq!(
            timeline(vec![]).compute_summary(),
            ScaleOutSummary::default()
        );
    }

    #[test]
    fn throughput_per_replica_uses_the_step_in_force() {
        let t = timeline(vec![s(1.0, 1, 1), s(10.0, 4, 4), s(20.0, 4, 0)]);
        let tp = [
            (0.5, 100.0),
            (1.0, 100.0),
            (9.9, 120.0),
            (10.0, 400.0),
            (25.0, 50.0),
        ];
        let pts = t.throughput_per_replica(&tp);
        let got: Vec<(f64, i32, f64)> = pts
            .iter()
            .map(|p| (p.t_s, p.replicas, p.per_replica))
            .collect();
        assert_eq!(
            got,
            vec![(1.0, 1, 100.0), (9.9, 1, 120.0), (10.0, 4, 100.0)]
        );
        assert_eq!(
            t.mean_throughput_per_replica(&tp),
            Some((100.0 + 120.0 + 100.0) / 3.0)
        );
        assert_eq!(t.mean_throughput_per_replica(&[]), None);
    }

    #[test]
    fn round_trips_through_json_and_tolerates_missing_fields() {
        let mut t = timeline(vec![s(0.0, 1, 1)]);
        t.warnings.push("x".into());
        t.summary = t.compute_summary();
        let back: ReplicaTimeline =
            serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        let minimal: ReplicaTimeline =
            serde_json::from_str(r#"{"samples":[{"t_s":1.5}]}"#).unwrap();
        assert_eq!(minimal.samples[0].ready, None);
    }
}
