//! Reading replica counts out of Deployment and HPA objects.
//!
//! The API server omits zero-valued status counters (`readyReplicas` is absent while no pod is ready),
//! so a present `status` with a missing counter means 0, while a missing `status` means "not known yet".

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

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
