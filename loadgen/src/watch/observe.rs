//! Reading replica counts out of Deployment, HPA and Knative PodAutoscaler objects.
//!
//! The API server omits zero-valued status counters (`readyReplicas` is absent while no pod is ready),
//! so a present `status` with a missing counter means 0, while a missing `status` means "not known yet".

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{ApiResource, DynamicObject};

/// What the Deployment says about its replicas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeploymentView {
    pub desired: Option<i32>,
    pub current: Option<i32>,
    pub ready: Option<i32>,
}

/// What the HPA says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HpaView {
    pub desired: Option<i32>,
    pub cpu_utilization_percent: Option<i32>,
}

pub fn deployment_view(d: &Deployment) -> DeploymentView {
    // `spec.replicas` defaults to 1 when unset (the API server fills it in, but be safe).
    let desired = d.spec.as_ref().map(|s| s.replicas.unwrap_or(1));
    let status = d.status.as_ref();
    DeploymentView {
        desired,
        current: status.map(|s| s.replicas.unwrap_or(0)),
        ready: status.map(|s| s.ready_replicas.unwrap_or(0)),
    }
}

/// True when the HPA scales the Deployment `name` (`scaleTargetRef` kind Deployment, same name; the
/// HPA can only target objects in its own namespace).
pub fn hpa_targets(hpa: &HorizontalPodAutoscaler, name: &str) -> bool {
    hpa.spec.as_ref().is_some_and(|spec| {
        let r = &spec.scale_target_ref;
        r.kind == "Deployment"
            && r.name == name
            && r.api_version
                .as_deref()
                .is_none_or(|v| v == "apps/v1" || v.starts_with("apps/"))
    })
}

pub fn hpa_view(hpa: &HorizontalPodAutoscaler) -> HpaView {
    let Some(status) = hpa.status.as_ref() else {
        return HpaView::default();
    };
    // The CPU Resource metric (not ContainerResource, External, ...). Absent while metrics-server has no
    // data, which is exactly the `<unknown>` users see in `kubectl get hpa`.
    let cpu = status.current_metrics.iter().flatten().find_map(|m| {
        let r = m.resource.as_ref()?;
        (m.type_ == "Resource" && r.name == "cpu")
            .then_some(r.current.average_utilization)
            .flatten()
    });
    HpaView {
        desired: Some(status.desired_replicas),
        cpu_utilization_percent: cpu,
    }
}

/// Several Deployments as one (a Knative Configuration's revisions): each count is the sum of the
/// known ones, unknown only when no Deployment knows it. No Deployment at all is unknown, not 0.
pub fn sum_deployments<'a>(views: impl IntoIterator<Item = &'a DeploymentView>) -> DeploymentView {
    views
        .into_iter()
        .fold(DeploymentView::default(), |acc, v| DeploymentView {
            desired: add(acc.desired, v.desired),
            current: add(acc.current, v.current),
            ready: add(acc.ready, v.ready),
        })
}

fn add(a: Option<i32>, b: Option<i32>) -> Option<i32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.saturating_add(b)),
        (a, b) => a.or(b),
    }
}

/// Knative Serving's internal autoscaler object (`autoscaling.internal.knative.dev/v1alpha1`),
/// read through kube's dynamic API: no CRD crate for one field.
pub fn pod_autoscaler_resource() -> ApiResource {
    ApiResource {
        group: "autoscaling.internal.knative.dev".into(),
        version: "v1alpha1".into(),
        api_version: "autoscaling.internal.knative.dev/v1alpha1".into(),
        kind: "PodAutoscaler".into(),
        plural: "podautoscalers".into(),
    }
}

/// A PodAutoscaler's `status.desiredScale`: the autoscaler's decision, as an HPA's
/// `status.desiredReplicas` is. Absent or negative (Knative's "not decided yet") is unknown; 0 is
/// scale to zero. Knative has no CPU utilization here (it scales on concurrency).
pub fn pod_autoscaler_view(pa: &DynamicObject) -> HpaView {
    let desired = pa
        .data
        .get("status")
        .and_then(|s| s.get("desiredScale"))
        .and_then(serde_json::Value::as_i64)
        .filter(|d| *d >= 0)
        .and_then(|d| i32::try_from(d).ok());
    HpaView {
        desired,
        cpu_utilization_percent: None,
    }
}

/// Several PodAutoscalers as one decision (a Configuration's revisions): the sum of their desired
/// scales, unknown only when none is known.
pub fn sum_autoscalers<'a>(views: impl IntoIterator<Item = &'a HpaView>) -> HpaView {
    HpaView {
        desired: views.into_iter().fold(None, |acc, v| add(acc, v.desired)),
        cpu_utilization_percent: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pa(status: serde_json::Value) -> DynamicObject {
        let mut o = DynamicObject::new("workload-00001", &pod_autoscaler_resource());
        o.data = serde_json::json!({ "status": status });
        o
    }

    #[test]
    fn desired_scale_zero_is_a_decision_and_negative_is_unknown() {
        let view = |s| pod_autoscaler_view(&pa(s)).desired;
        assert_eq!(
            view(serde_json::json!({"desiredScale": 3, "actualScale": 1})),
            Some(3)
        );
        assert_eq!(view(serde_json::json!({"desiredScale": 0})), Some(0));
        assert_eq!(view(serde_json::json!({"desiredScale": -1})), None);
        assert_eq!(view(serde_json::json!({})), None);
    }

    #[test]
    fn sums_keep_zero_apart_from_unknown() {
        let d = |desired, ready| DeploymentView {
            desired: Some(desired),
            current: Some(desired),
            ready,
        };
        let sum = sum_deployments(&[d(2, Some(2)), d(1, None)]);
        assert_eq!((sum.desired, sum.ready), (Some(3), Some(2)));
        assert_eq!(sum_deployments(&[d(0, Some(0))]).ready, Some(0));
        assert_eq!(sum_deployments(&[]), DeploymentView::default());
        let h = |desired| HpaView {
            desired,
            cpu_utilization_percent: None,
        };
        assert_eq!(sum_autoscalers(&[h(Some(0)), h(None)]).desired, Some(0));
        assert_eq!(sum_autoscalers(&[h(Some(2)), h(Some(1))]).desired, Some(3));
        assert_eq!(sum_autoscalers(&[]).desired, None);
    }
}
