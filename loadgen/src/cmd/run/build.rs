//! The JSON report of a finished run, from what the engine collected.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use crate::engine::RunData;
use crate::lifetime::ConnectionLifetime;
use crate::model::figures::{Figures, lag_stats};
use crate::model::replicas::ReplicaTimeline;
use crate::model::{
    EndpointHistograms, EndpointSummary, GeneratorStats, Histograms, LoadMode, PlanInfo, RunReport,
    SCHEMA_VERSION, Summary, hist,
};
use crate::stats::EndpointAcc;

use super::Prepared;

/// Builds the JSON report of a run.
pub fn build_report(
    p: &Prepared,
    run: &str,
    labels: BTreeMap<String, String>,
    d: &RunData,
    replicas: Option<ReplicaTimeline>,
) -> RunReport {
    let open = p.plan.is_open();
    let overall = d.totals.overall();
    let (endpoints, ep_hists) = endpoints(p, d, open);
    let (phases, phase_hists) =
        crate::report::phases::build(p.plan.phases(), &d.totals.phases, d.duration, open);
    let started_ms = d
        .started_at
        .duration_since(UNIX_EPOCH)
        .map(|x| x.as_millis() as u64)
        .unwrap_or(0);
    let mut report = RunReport {
        schema_version: SCHEMA_VERSION,
        tool: format!("loadgen {}", env!("CARGO_PKG_VERSION")),
        run: run.to_string(),
        scenario: p.scenario.name.clone(),
        target: p.target.url.clone(),
        mode: if open {
            LoadMode::Open
        } else {
            LoadMode::Closed
        },
        labels,
        started_at: humantime::format_rfc3339_millis(d.started_at).to_string(),
        started_at_unix_ms: started_ms,
        interrupted: d.interrupted,
        workers: 1,
        plan: plan_info(p),
        summary: summary(d, &overall, open),
        endpoints,
        phases,
        timeseries: d.series.points.clone(),
        timeseries_resolution_s: d.series.resolution as f64,
        generator: generator(p, d, open),
        thresholds: Vec::new(),
        slowest_traces: d.slowest_traces.clone(),
        histograms: Histograms {
            encoding: hist::ENCODING.into(),
            unit: hist::UNIT.into(),
            latency: hist::encode(&overall.latency),
            service_time: hist::encode(&overall.service),
            schedule_lag: hist::encode(&d.totals.lag),
            connect: hist::encode(&d.totals.connect),
            endpoints: ep_hists,
            phases: phase_hists,
        },
        connections: connection_stats(p.lifetime, d),
        start_spread_s: None,
        capacity: None,
        replicas: replicas.map(|mut r| {
            let throughput: Vec<(f64, f64)> =
                d.series.points.iter().map(|p| (p.t_s, p.rps)).collect();
            r.record_throughput(&throughput);
            r
        }),
        scale_events: Vec::new(),
        warnings: Vec::new(),
        error_messages: d.error_samples.clone(),
    };
    crate::analysis::analyse(
        &mut report,
        &crate::analysis::ScaleCostConfig {
            recovery_p99_ms: p.opts.recovery_p99.map(|d| d.as_secs_f64() * 1000.0),
        },
    );
    report
}

/// The run's summary: its counts, and its figures over the measured duration.
fn summary(d: &RunData, overall: &EndpointAcc, open: bool) -> Summary {
    let secs = d.duration.as_secs_f64();
    let requests = overall.successes + overall.failures;
    let mut s = Summary {
        requests,
        successes: overall.successes,
        failures: overall.failures,
        duration_s: (secs * 1000.0).round() / 1000.0,
        status_codes: overall.status_map(),
        errors: overall.error_map(),
        backends: d.totals.backends.clone(),
        dropped: d.dropped,
        retries: d.retries,
        late: d.totals.late,
        iterations: d.totals.iterations,
        ..Summary::default()
    };
    s.set_figures(Figures::of(
        requests,
        overall.successes,
        secs,
        &overall.latency,
        &overall.service,
        open,
    ));
    s
}

/// A row per endpoint of the scenario, and its histograms by endpoint name.
fn endpoints(
    p: &Prepared,
    d: &RunData,
    open: bool,
) -> (Vec<EndpointSummary>, BTreeMap<String, EndpointHistograms>) {
    let secs = d.duration.as_secs_f64();
    let mut rows = Vec::new();
    let mut hists = BTreeMap::new();
    for (e, acc) in p.scenario.endpoints.iter().zip(&d.totals.endpoints) {
        let requests = acc.successes + acc.failures;
        let mut row = EndpointSummary {
            name: e.name.clone(),
            method: e.method.clone(),
            path: e.path.clone(),
            requests,
            successes: acc.successes,
            failures: acc.failures,
            status_codes: acc.status_map(),
            errors: acc.error_map(),
            ..EndpointSummary::default()
        };
        row.set_figures(Figures::of(
            requests,
            acc.successes,
            secs,
            &acc.latency,
            &acc.service,
            open,
        ));
        rows.push(row);
        hists.insert(
            e.name.clone(),
            EndpointHistograms::encode(&acc.latency, &acc.service),
        );
    }
    (rows, hists)
}

/// What the run was asked to do.
fn plan_info(p: &Prepared) -> PlanInfo {
    PlanInfo {
        description: match p.overrides.as_slice() {
            [] => p.plan.describe(),
            flags => format!(
                "{}; from the command line: {}",
                p.plan.describe(),
                flags.join(", ")
            ),
        },
        duration_s: p
            .plan
            .duration()
            .filter(|d| d.as_secs() < 10 * 365 * 86400)
            .map(|d| d.as_secs_f64()),
        requests: p.plan.requests(),
        concurrency: p.plan.concurrency(),
    }
}

/// How the generator fared, judged by [`crate::selfmon`].
fn generator(p: &Prepared, d: &RunData, open: bool) -> GeneratorStats {
    crate::selfmon::judge(&crate::selfmon::Judge {
        threads: p.threads,
        cpu_mean: d.cpu_mean,
        cpu_max: d.cpu_max,
        cpu_saturated_share: d.cpu_saturated_share,
        cpu_throttled_percent: d.cpu_throttled_percent,
        lag: lag_stats(&d.totals.lag),
        open,
        iterations: d.totals.iterations,
        late: d.totals.late,
        dropped: d.dropped,
        concurrency: p.plan.concurrency(),
        late_tolerance_ms: p.opts.late_tolerance.as_secs_f64() * 1000.0,
    })
}
/// The report's `connections` block.
fn connection_stats(l: ConnectionLifetime, d: &RunData) -> crate::model::ConnectionStats {
    crate::model::ConnectionStats {
        max_age_s: l.max_age.map(|a| a.as_secs_f64()),
        max_age_jitter: if l.max_age.is_some() {
            crate::lifetime::JITTER
        } else {
            0.0
        },
        max_requests: l.max_requests,
        keepalive: l.keepalive,
        lifetime: l.describe(),
        opened: d.connections_opened,
        reconnects: d.reconnects,
        closed: crate::lifetime::CloseReason::ALL
            .iter()
            .filter(|r| d.closed[r.index()] > 0)
            .map(|r| (r.as_str().to_string(), d.closed[r.index()]))
            .collect(),
        connect_ms: hist::stats(&d.totals.connect),
    }
}
