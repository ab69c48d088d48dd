//! Parsing of the `--watch KIND/NAME` argument.
//!
//! Only Deployments are supported: the HPA is found from the Deployment (its `scaleTargetRef`), so the
//! user names the thing that scales, as `kubectl get deployment/NAME` would.

use std::fmt;
use std::str::FromStr;

use super::WatchError;

/// The workload the watcher follows: a Deployment by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchTarget {
    /// The Deployment's `metadata.name`.
    pub name: String,
}

/// Kind spellings kubectl accepts for Deployments (`kubectl get deploy/x`, `deployments.apps/x`, ...).
const DEPLOYMENT_KINDS: &[&str] = &[
    "deployment",
    "deployments",
    "deploy",
    "deployment.apps",
    "deployments.apps",
    "deployment.v1.apps",
];

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
                "expected KIND/NAME, for example deployment/workload".to_string(),
            ));
        };
        let kind_lc = kind.to_ascii_lowercase();
        if !DEPLOYMENT_KINDS.contains(&kind_lc.as_str()) {
            return Err(invalid(format!(
                "kind {kind:?} is not supported: only Deployments can be watched (deployment/NAME); \
                 the HorizontalPodAutoscaler is found from the Deployment"
            )));
        }
        validate_name(name).map_err(invalid)?;
        Ok(WatchTarget {
            name: name.to_string(),
        })
    }
}

/// A Deployment name must be a DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, at most 253
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
        write!(f, "deployment/{}", self.name)
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
        assert!(err.contains("only Deployments"), "{err}");
    }
}
