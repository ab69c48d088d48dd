//! Every metric the loadgen exports, defined once: its name, type, unit and HELP text.
//!
//! The rest of the crate names metrics only through these constants, [`describe`] gives each one
//! its HELP text when a run's recorder is built (so `promtool check metrics` is clean), and
//! `docs/metrics.md` documents the same table; `tests/system/test_docs.py` reads this file and
//! holds the document to it.

use metrics::{Recorder, SharedString, Unit};

/// The Prometheus type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: Kind,
    /// `None` for plain counts (requests, iterations, users, replicas).
    pub unit: Option<Unit>,
    pub help: &'static str,
}

const fn def(name: &'static str, kind: Kind, unit: Option<Unit>, help: &'static str) -> MetricDef {
    MetricDef {
        name,
        kind,
        unit,
        help,
    }
}

pub const REQUEST_DURATION: MetricDef = def(
    "loadgen_request_duration_seconds",
    Kind::Histogram,
    Some(Unit::Seconds),
    "Latency of each request: from the intended start in open loop (no coordinated omission), \
     from the send in closed loop.",
);
pub const REQUESTS: MetricDef = def(
    "loadgen_requests_total",
    Kind::Counter,
    None,
    "Requests completed, by endpoint and status (HTTP status, or the error kind without a response).",
);
pub const ERRORS: MetricDef = def(
    "loadgen_errors_total",
    Kind::Counter,
    None,
    "Requests that got no HTTP response, by kind of transport failure.",
);
pub const BACKEND_REQUESTS: MetricDef = def(
    "loadgen_backend_requests_total",
    Kind::Counter,
    None,
    "Answers per backend (the x-served-by header): how a Service spreads load over pods.",
);
pub const TARGET_RATE: MetricDef = def(
    "loadgen_target_rate",
    Kind::Gauge,
    None,
    "The open-loop schedule's arrival rate now, per second (0 in closed loop).",
);
pub const ACTIVE_USERS: MetricDef = def(
    "loadgen_active_users",
    Kind::Gauge,
    None,
    "Closed-loop users running now.",
);
pub const IN_FLIGHT: MetricDef = def(
    "loadgen_in_flight",
    Kind::Gauge,
    None,
    "Iterations in flight now.",
);
pub const DROPPED_ITERATIONS: MetricDef = def(
    "loadgen_dropped_iterations_total",
    Kind::Counter,
    None,
    "Open-loop arrivals still waiting for a free slot when the plan ended: never sent.",
);
pub const LATE_ITERATIONS: MetricDef = def(
    "loadgen_late_iterations_total",
    Kind::Counter,
    None,
    "Open-loop arrivals started more than --late-tolerance after their scheduled time.",
);
pub const SCHEDULE_LAG: MetricDef = def(
    "loadgen_schedule_lag_seconds",
    Kind::Gauge,
    Some(Unit::Seconds),
    "Worst delay of an open-loop start behind its schedule over the last second.",
);
/// With `rate()`, how often workers recycle connections.
pub const CONNECTIONS_OPENED: MetricDef = def(
    "loadgen_connections_opened_total",
    Kind::Counter,
    None,
    "Connections opened (first ones and reconnects).",
);
pub const CONNECTION_CLOSES: MetricDef = def(
    "loadgen_connection_closes_total",
    Kind::Counter,
    None,
    "Connections closed, by reason (max_age, max_requests, no_keepalive, server, error).",
);
pub const OBSERVED_REPLICAS: MetricDef = def(
    "loadgen_observed_replicas",
    Kind::Gauge,
    None,
    "With --watch: the Deployment's desired, current and ready replica counts.",
);
pub const OBSERVED_CPU_UTILIZATION: MetricDef = def(
    "loadgen_observed_cpu_utilization_percent",
    Kind::Gauge,
    Some(Unit::Percent),
    "With --watch: the average CPU utilization (percent of the CPU request) the HPA acts on.",
);
/// Scale-event figures are set when the run ends, NaN when the last event never reached them
/// (see [`crate::analysis::scale_events`]).
pub const SCALE_EVENTS: MetricDef = def(
    "loadgen_scale_events",
    Kind::Gauge,
    None,
    "With --watch: how many scale events the run saw.",
);
pub const SCALE_EVENT_TIME_TO_READY: MetricDef = def(
    "loadgen_scale_event_time_to_ready_seconds",
    Kind::Gauge,
    Some(Unit::Seconds),
    "With --watch: the last scale event's time from the desired count rising to the new pods \
     ready (NaN if never).",
);
pub const SCALE_EVENT_TIME_TO_FIRST_RESPONSE: MetricDef = def(
    "loadgen_scale_event_time_to_first_response_seconds",
    Kind::Gauge,
    Some(Unit::Seconds),
    "With --watch: the last scale event's time from the desired count rising to the first \
     response from a new backend (NaN if never).",
);
pub const SCALE_EVENT_RECOVERY: MetricDef = def(
    "loadgen_scale_event_recovery_seconds",
    Kind::Gauge,
    Some(Unit::Seconds),
    "With --watch: the last scale event's time until p99 was back under its threshold (NaN if \
     never).",
);
/// Cold starts are counted when they open and timed when they are answered (see
/// [`crate::coldstart`]).
pub const COLD_STARTS: MetricDef = def(
    "loadgen_cold_starts_total",
    Kind::Counter,
    None,
    "With --watch: cold starts, i.e. requests sent while the watched target had no ready replica \
     that opened one.",
);
pub const COLD_START_DURATION: MetricDef = def(
    "loadgen_cold_start_seconds",
    Kind::Histogram,
    Some(Unit::Seconds),
    "With --watch: each answered cold start's time from its first request to the first answered \
     response.",
);

/// Every metric above, in the order of docs/metrics.md.
pub const ALL: &[MetricDef] = &[
    REQUEST_DURATION,
    REQUESTS,
    ERRORS,
    BACKEND_REQUESTS,
    TARGET_RATE,
    ACTIVE_USERS,
    IN_FLIGHT,
    DROPPED_ITERATIONS,
    LATE_ITERATIONS,
    SCHEDULE_LAG,
    CONNECTIONS_OPENED,
    CONNECTION_CLOSES,
    OBSERVED_REPLICAS,
    OBSERVED_CPU_UTILIZATION,
    SCALE_EVENTS,
    SCALE_EVENT_TIME_TO_READY,
    SCALE_EVENT_TIME_TO_FIRST_RESPONSE,
    SCALE_EVENT_RECOVERY,
    COLD_STARTS,
    COLD_START_DURATION,
];

/// Gives every metric its HELP text and unit on `recorder`.
pub fn describe(recorder: &impl Recorder) {
    for m in ALL {
        let help = SharedString::const_str(m.help);
        match m.kind {
            Kind::Counter => recorder.describe_counter(m.name.into(), m.unit, help),
            Kind::Gauge => recorder.describe_gauge(m.name.into(), m.unit, help),
            Kind::Histogram => recorder.describe_histogram(m.name.into(), m.unit, help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prefixed_and_counters_end_in_total() {
        let mut names: Vec<&str> = ALL.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "a metric is listed twice");
        for m in ALL {
            assert!(m.name.starts_with("loadgen_"), "{}", m.name);
            assert_eq!(
                m.name.ends_with("_total"),
                m.kind == Kind::Counter,
                "{}",
                m.name
            );
            assert_eq!(
                m.name.ends_with("_seconds"),
                m.unit == Some(Unit::Seconds),
                "{}: the unit and the name's suffix disagree",
                m.name
            );
            assert!(!m.help.is_empty(), "{}", m.name);
        }
    }
}
