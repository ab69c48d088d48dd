//! `workload check-config`: the preparatory step that runs before the server takes traffic (a
//! Kubernetes initContainer, a compose one-shot service the workload waits for).
//!
//! It runs the checks the server would otherwise fail on only after it was scheduled, started
//! and probed: the typed settings ([`Config::validate`]), the log filter, the OTLP endpoint, the
//! TLS certificate and key (readable by this user, PEM, and one the key of the other: the very
//! loading the server does at start, [`tls::server_config`]), and that both listeners can be
//! bound in this environment (a port below 1024 without `CAP_NET_BIND_SERVICE`, an address the
//! pod does not own). Every problem is reported, not only the first, each on its own line, so
//! one look at the step's log says what to fix.

use std::net::{SocketAddr, TcpListener};

use tracing_subscriber::EnvFilter;

use crate::config::{Config, ConfigError};
use crate::tls;

/// One setting or environment property that would keep the server from serving.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Problem {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("--log / WORKLOAD_LOG {filter:?} is not a valid filter: {reason}")]
    LogFilter { filter: String, reason: String },
    #[error("{flag} {addr} cannot be bound here: {reason}")]
    Bind {
        flag: &'static str,
        addr: SocketAddr,
        reason: String,
    },
    #[error("--addr and --metrics-addr are the same address ({0}): metrics need their own port")]
    SameAddress(SocketAddr),
    #[error("--tls-cert / WORKLOAD_TLS_CERT, --tls-key / WORKLOAD_TLS_KEY: {0}")]
    Tls(String),
}

/// Every problem found in `config` and the environment; empty when the server can start.
pub fn problems(config: &Config) -> Vec<Problem> {
    let mut found = Vec::new();
    // `validate` stops at its first error. An endpoint error takes the endpoint's place in the
    // list whether `validate` found it or another error came first: one problem, one line.
    let (config_error, endpoint_error) = match config.validate() {
        Err(e @ (ConfigError::OtlpScheme(_) | ConfigError::OtlpUrl(_))) => (None, Some(e)),
        Err(e) => (Some(e), config.otlp_endpoint_error()),
        Ok(()) => (None, None),
    };
    found.extend(config_error.map(Problem::from));
    if let Err(e) = EnvFilter::try_new(&config.log_filter) {
        found.push(Problem::LogFilter {
            filter: config.log_filter.clone(),
            reason: e.to_string(),
        });
    }
    found.extend(endpoint_error.map(Problem::from));
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        // The server's own loading, so a file the server would refuse is refused here first.
        if let Err(e) = tls::server_config(cert, key) {
            found.push(Problem::Tls(e.to_string()));
        }
    }
    if config.addr == config.metrics_addr && config.addr.port() != 0 {
        found.push(Problem::SameAddress(config.addr));
        return found;
    }
    for (flag, addr) in [
        ("--addr / WORKLOAD_ADDR", config.addr),
        (
            "--metrics-addr / WORKLOAD_METRICS_ADDR",
            config.metrics_addr,
        ),
    ] {
        // Bound and released at once: in a pod the initContainer shares the network namespace
        // the server will use, in compose the one-shot container has the same user, capabilities
        // and network as the server's.
        if let Err(e) = TcpListener::bind(addr) {
            found.push(Problem::Bind {
                flag,
                addr,
                reason: e.to_string(),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_test_configuration_has_no_problems() {
        assert_eq!(problems(&Config::local_test()), vec![]);
    }

    #[test]
    fn every_problem_is_reported_not_only_the_first() {
        let mut config = Config::local_test();
        config.request_timeout = Duration::ZERO;
        config.log_filter = "workload=[".into();
        config.otlp_endpoint = Some("tempo:4318".into());
        let found = problems(&config);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(matches!(found[0], Problem::Config(_)));
        assert!(matches!(found[1], Problem::LogFilter { .. }));
        assert_eq!(
            found[2],
            Problem::Config(ConfigError::OtlpUrl("tempo:4318".into()))
        );
    }

    #[test]
    fn an_address_in_use_is_a_problem_naming_the_flag() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut config = Config::local_test();
        config.metrics_addr = taken.local_addr().unwrap();
        let found = problems(&config);
        assert_eq!(found.len(), 1, "{found:?}");
        let text = found[0].to_string();
        assert!(
            text.starts_with("--metrics-addr / WORKLOAD_METRICS_ADDR"),
            "{text}"
        );
    }

    #[test]
    fn one_address_for_both_listeners_is_a_problem() {
        let mut config = Config::local_test();
        config.addr = "127.0.0.1:18080".parse().unwrap();
        config.metrics_addr = config.addr;
        assert_eq!(problems(&config), vec![Problem::SameAddress(config.addr)]);
    }
}
