//! Parsing of the `--watch KIND/NAME` argument.
//!
//! Three kinds, each named as `kubectl get KIND/NAME` would:
//! - a Deployment (`deployment/NAME`): the HPA is found from the Deployment (its `scaleTargetRef`),
//!   so the user names the thing that scales;
//! - a Knative `Configuration` (`configuration/NAME`): every Deployment and PodAutoscaler labelled
//!   `serving.knative.dev/configuration=NAME`, so a new revision rolling out is still the same
//!   service;
//! - a Knative `Revision` (`revision/NAME`): the Deployment and PodAutoscaler labelled
//!   `serving.knative.dev/revision=NAME`.

use std::fmt;
use std::str::FromStr;

use super::WatchError;

/// What kind of object the watcher follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Deployment,
    /// A Knative Serving `Configuration` (`serving.knative.dev/v1`).
    Configuration,
    /// A Knative Serving `Revision` (`serving.knative.dev/v1`).
    Revision,
}

impl TargetKind {
    /// The canonical spelling, as in the report's `replicas.target`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Deployment => "deployment",
            TargetKind::Configuration => "configuration",
            TargetKind::Revision => "revision",
        }
    }

    /// The label Knative puts on the Deployments and PodAutoscalers of this kind of object;
    /// `None` for a plain Deployment (followed by name).
    pub fn knative_label(self) -> Option<&'static str> {
        match self {
            TargetKind::Deployment => None,
            TargetKind::Configuration => Some("serving.knative.dev/configuration"),
            TargetKind::Revision => Some("serving.knative.dev/revision"),
        }
    }

    /// Kind spellings kubectl accepts (`kubectl get deploy/x`, `configurations.serving.knative.dev/x`).
    fn spellings(self) -> &'static [&'static str] {
        match self {
            TargetKind::Deployment => &[
                "deployment",
                "deployments",
                "deploy",
                "deployment.apps",
                "deployments.apps",
                "deployment.v1.apps",
            ],
            TargetKind::Configuration => &[
                "configuration",
                "configurations",
                "config",
                "configuration.serving.knative.dev",
                "configurations.serving.knative.dev",
            ],
            TargetKind::Revision => &[
                "revision",
                "revisions",
                "rev",
                "revision.serving.knative.dev",
                "revisions.serving.knative.dev",
            ],
        }
    }

    fn parse(kind: &str) -> Option<Self> {
        let lc = kind.to_ascii_lowercase();
        [
            TargetKind::Deployment,
            TargetKind::Configuration,
            TargetKind::Revision,
        ]
        .into_iter()
        .find(|k| k.spellings().contains(&lc.as_str()))
    }
}

/// The workload the watcher follows: a Deployment, or a Knative Configuration or Revision, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchTarget {
    pub kind: TargetKind,
    /// The object's `metadata.name`.
    pub name: String,
}

impl WatchTarget {
    /// The label selector of a Knative target's Deployments and PodAutoscalers.
    pub fn label_selector(&self) -> Option<String> {
        self.kind
            .knative_label()
            .map(|label| format!("{label}={}", self.name))
    }
}

impl FromStr for WatchTarget {
    type Err = WatchError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: String| WatchError::InvalidTarget {
            input: input.to_string(),
            reason,
        };
        let trimmed = input.trim();
        let Some((kind, name)) = trimmed.split_once('/') else {
            return Err(invalid(
                "expected KIND/NAME, for example deployment/workload or configuration/workload"
                    .to_string(),
            ));
        };
        let Some(kind) = TargetKind::parse(kind) else {
            return Err(invalid(format!(
                "kind {kind:?} is not supported: watch a Deployment (deployment/NAME; its \
                 HorizontalPodAutoscaler is found from it) or a Knative Configuration or \
                 Revision (configuration/NAME, revision/NAME)"
            )));
        };
        validate_name(name).map_err(invalid)?;
        Ok(WatchTarget {
            kind,
            name: name.to_string(),
        })
    }
}

/// A name (Deployment, Configuration or Revision) must be a DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, at most 253
/// characters, starting and ending with an alphanumeric. Checking here turns a typo into a clear error
/// at start-up instead of a watch that silently never sees anything.
fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name after the '/' is empty".to_string());
    }
    if name.len() > 253 {
        return Err(format!(
            "name is {} characters long, at most 253 are allowed",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "name {name:?} contains {c:?}: only lower-case letters, digits, '-' and '.' are allowed"
        ));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(name.chars().next()) || !alnum(name.chars().last()) {
        return Err(format!(
            "name {name:?} must start and end with a letter or digit"
        ));
    }
    Ok(())
}

impl fmt::Display for WatchTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kubectl_spellings() {
        for s in [
            "deployment/workload",
            "deploy/workload",
            "Deployments/workload",
            "deployment.apps/workload",
            " deployment/workload ",
        ] {
            let t: WatchTarget = s.parse().unwrap();
            assert_eq!(t.name, "workload", "{s}");
            assert_eq!(t.to_string(), "deployment/workload");
        }
    }

    #[test]
    fn rejects_other_kinds_and_bad_names() {
        for s in [
            "statefulset/db",
            "hpa/workload",
            "workload",
            "deployment/",
            "deployment/Workload",
            "deployment/-x",
            "deployment/a/b",
            "",
        ] {
            assert!(
                s.parse::<WatchTarget>().is_err(),
                "{s:?} should be rejected"
            );
        }
        let err = "statefulset/db"
            .parse::<WatchTarget>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("watch a Deployment"), "{err}");
    }

    #[test]
    fn accepts_knative_configurations_and_revisions() {
        for (s, kind, shown, selector) in [
            (
                "configuration/workload",
                TargetKind::Configuration,
                "configuration/workload",
                "serving.knative.dev/configuration=workload",
            ),
            (
                "configurations/workload",
                TargetKind::Configuration,
                "configuration/workload",
                "serving.knative.dev/configuration=workload",
            ),
            (
                "config/workload",
                TargetKind::Configuration,
                "configuration/workload",
                "serving.knative.dev/configuration=workload",
            ),
            (
                "configurations.serving.knative.dev/workload",
                TargetKind::Configuration,
                "configuration/workload",
                "serving.knative.dev/configuration=workload",
            ),
            (
                "revision/workload-00001",
                TargetKind::Revision,
                "revision/workload-00001",
                "serving.knative.dev/revision=workload-00001",
            ),
            (
                "revisions/workload-00001",
                TargetKind::Revision,
                "revision/workload-00001",
                "serving.knative.dev/revision=workload-00001",
            ),
            (
                "rev/workload-00001",
                TargetKind::Revision,
                "revision/workload-00001",
                "serving.knative.dev/revision=workload-00001",
            ),
            (
                "Revisions.serving.knative.dev/workload-00001",
                TargetKind::Revision,
                "revision/workload-00001",
                "serving.knative.dev/revision=workload-00001",
            ),
        ] {
            let t: WatchTarget = s.parse().unwrap();
            assert_eq!(t.kind, kind, "{s}");
            assert_eq!(t.to_string(), shown, "{s}");
            assert_eq!(t.label_selector().as_deref(), Some(selector), "{s}");
        }
        let d: WatchTarget = "deploy/workload".parse().unwrap();
        assert_eq!(d.label_selector(), None, "a Deployment is followed by name");
        for s in [
            "configuration/",
            "revision/Workload",
            "service/workload",
            "ksvc/workload",
            "configurations.apps/workload",
        ] {
            assert!(
                s.parse::<WatchTarget>().is_err(),
                "{s:?} should be rejected"
            );
        }
    }
}
