//! `loadgen merge A.json B.json ... --out ALL.json`: combines runs of several workers exactly.
//!
//! Counts add up; histograms are decoded, added and re-encoded, so every percentile of the merged
//! report equals the percentile of all requests together. The duration is the wall-clock span from
//! the earliest start to the latest end; the time series are aligned on wall-clock seconds.
//!
//! The reports are untrusted: their counts are added by the checked rule of [`crate::model::figures`]
//! and their times bounded ([`check_times`]) before any sum.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::model::figures::{Distributions, add, add_map, lag_stats, sum};
use crate::model::{
    ConnectionStats, EndpointHistograms, EndpointSummary, GeneratorStats, Histograms, LoadMode,
    PlanInfo, ReportError, RunReport, SCHEMA_VERSION, Summary, TimePoint, hist,
};

/// Workers that started further apart than this get a warning in the merged report.
pub const START_SPREAD_WARN_S: f64 = 1.0;

/// Latest wall-clock start a report may claim: the last millisecond of year 9999 (what RFC 3339
/// can write).
const MAX_UNIX_MS: u64 = 253_402_300_799_999;
/// Longest duration a report may claim: ten years, like the longest plan.
const MAX_DURATION_S: f64 = 10.0 * 365.0 * 86400.0;

/// Rejects reports whose times cannot come from a run (they would overflow the merge's sums).
fn check_times(r: &RunReport) -> Result<u64, ReportError> {
    if r.started_at_unix_ms > MAX_UNIX_MS {
        return Err(ReportError::Invalid(format!(
            "run {}: started_at_unix_ms {} is after the year 9999",
            r.run, r.started_at_unix_ms
        )));
    }
    let d = r.summary.duration_s;
    if !d.is_finite() || !(0.0..=MAX_DURATION_S).contains(&d) {
        return Err(ReportError::Invalid(format!(
            "run {}: summary.duration_s {d} is not a duration between 0 and 10 years",
            r.run
        )));
    }
    let res = r.timeseries_resolution_s;
    if !res.is_finite() || !(0.0..=MAX_DURATION_S).contains(&res) {
        return Err(ReportError::Invalid(format!(
            "run {}: timeseries_resolution_s {res} is not a bucket width",
            r.run
        )));
    }
    if let Some(p) = r
        .timeseries
        .iter()
        .find(|p| !p.t_s.is_finite() || !(0.0..=MAX_DURATION_S).contains(&p.t_s))
    {
        return Err(ReportError::Invalid(format!(
            "run {}: timeseries point at t_s {} is outside the run",
            r.run, p.t_s
        )));
    }
    // Both bounded above: no overflow.
    Ok(r.started_at_unix_ms + (d * 1000.0).round() as u64)
}

/// Merges reports (at least one). Thresholds are not carried over: evaluate them on the result.
pub fn merge(reports: &[RunReport]) -> Result<RunReport, ReportError> {
    let first = same_mode(reports)?;
    let mut sums = Sums::new(first);
    for r in reports {
        sums.add(r, first)?;
    }
    let mut merged = sums.finish(reports, first)?;
    // Scale events and spread warnings are recomputed from the merged series (all workers'
    // traffic) and the first watched timeline, with the recovery threshold the runs were given.
    let cfg = crate::analysis::ScaleCostConfig {
        recovery_p99_ms: reports
            .iter()
            .flat_map(|r| &r.scale_events)
            .find(|e| e.recovery_threshold_given)
            .and_then(|e| e.recovery_threshold_ms),
    };
    crate::analysis::analyse(&mut merged, &cfg);
    Ok(merged)
}

/// The first report, when all of them ran the same load model.
fn same_mode(reports: &[RunReport]) -> Result<&RunReport, ReportError> {
    let first = reports
        .first()
        .ok_or_else(|| ReportError::Invalid("merge needs at least one report".into()))?;
    if let Some(r) = reports.iter().find(|r| r.mode != first.mode) {
        return Err(ReportError::Invalid(format!(
            "cannot merge an open-loop and a closed-loop run ({} and {})",
            first.run, r.run
        )));
    }
    Ok(first)
}

/// What the reports add up to, one report at a time.
struct Sums {
    overall: Distributions,
    lag: Histogram<u64>,
    connect: Histogram<u64>,
    connections: ConnectionStats,
    endpoints: Vec<(EndpointSummary, Distributions)>,
    summary: Summary,
    /// Earliest start, latest end, and latest start of a worker (a merged report's own spread
    /// extends its start), in Unix milliseconds.
    start_ms: u64,
    end_ms: u64,
    last_start_ms: u64,
    generator: GeneratorStats,
    workers: u32,
    interrupted: bool,
    plan: PlanInfo,
}

impl Sums {
    fn new(first: &RunReport) -> Self {
        Self {
            overall: Distributions::default(),
            lag: hist::new_hist(),
            connect: hist::new_hist(),
            connections: ConnectionStats {
                closed: BTreeMap::new(),
                opened: 0,
                reconnects: 0,
                ..first.connections.clone()
            },
            endpoints: Vec::new(),
            summary: Summary::default(),
            start_ms: u64::MAX,
            end_ms: 0,
            last_start_ms: 0,
            generator: GeneratorStats::default(),
            workers: 0,
            interrupted: false,
            plan: PlanInfo {
                description: String::new(),
                duration_s: None,
                requests: Some(0),
                concurrency: 0,
            },
        }
    }

    /// Adds one report.
    fn add(&mut self, r: &RunReport, first: &RunReport) -> Result<(), ReportError> {
        self.add_histograms(r)?;
        self.add_connections(&r.connections, &first.connections)?;
        self.add_endpoints(r)?;
        self.add_summary(&r.summary)?;
        self.add_times(r)?;
        self.add_generator(r)?;
        self.workers = r.workers.checked_add(self.workers).ok_or_else(|| {
            ReportError::Invalid("the reports' worker counts overflow: not real runs".into())
        })?;
        self.interrupted |= r.interrupted;
        self.add_plan(&r.plan)
    }

    fn add_histograms(&mut self, r: &RunReport) -> Result<(), ReportError> {
        let what = |h: &str| format!("{} {h}", r.run);
        let h = &r.histograms;
        self.overall.add(
            &what("latency"),
            hist::decode(&what("latency"), &h.latency)?,
            hist::decode(&what("service_time"), &h.service_time)?,
        )?;
        let lag = hist::decode(&what("schedule_lag"), &h.schedule_lag)?;
        self.lag
            .add(lag)
            .map_err(|e| hist_err(&what("schedule_lag"), e))?;
        let connect = hist::decode(&what("connect"), &h.connect)?;
        self.connect
            .add(connect)
            .map_err(|e| hist_err(&what("connect"), e))
    }

    fn add_connections(
        &mut self,
        c: &ConnectionStats,
        first: &ConnectionStats,
    ) -> Result<(), ReportError> {
        let conns = &mut self.connections;
        add(&mut conns.opened, c.opened, "connections opened")?;
        add(&mut conns.reconnects, c.reconnects, "reconnects")?;
        add_map(&mut conns.closed, &c.closed, "connection closes")?;
        let same_lifetime = (c.max_age_s, c.max_requests, c.keepalive, &c.lifetime)
            == (
                first.max_age_s,
                first.max_requests,
                first.keepalive,
                &first.lifetime,
            );
        if !same_lifetime && conns.lifetime != "mixed" {
            conns.lifetime = "mixed".into();
            self.generator.warnings.push(format!(
                "the runs had different connection lifetimes ({} and {}): the merged max_age_s, max_requests and keepalive are the first run's",
                first.lifetime, c.lifetime
            ));
        }
        Ok(())
    }

    fn add_endpoints(&mut self, r: &RunReport) -> Result<(), ReportError> {
        for e in &r.endpoints {
            let h = r
                .histograms
                .endpoints
                .get(&e.name)
                .cloned()
                .unwrap_or_default();
            let what = format!("{} {}", r.run, e.name);
            let latency = hist::decode(&what, &h.latency)?;
            let service = hist::decode(&what, &h.service_time)?;
            let known = self.endpoints.iter().position(|x| x.0.name == e.name);
            // Each endpoint holds two full histograms: the cap bounds the merge's memory.
            if known.is_none() && self.endpoints.len() >= crate::limits::MAX_ENDPOINTS {
                return Err(ReportError::Invalid(format!(
                    "the merged reports name more than {} endpoints",
                    crate::limits::MAX_ENDPOINTS
                )));
            }
            let Some(i) = known else {
                let mut d = Distributions::default();
                d.add(&what, latency, service)?;
                self.endpoints.push((e.clone(), d));
                continue;
            };
            let (acc, d) = &mut self.endpoints[i];
            add(&mut acc.requests, e.requests, "endpoint requests")?;
            add(&mut acc.successes, e.successes, "endpoint successes")?;
            add(&mut acc.failures, e.failures, "endpoint failures")?;
            add_map(&mut acc.status_codes, &e.status_codes, "status codes")?;
            add_map(&mut acc.errors, &e.errors, "errors")?;
            d.add(&what, latency, service)?;
        }
        Ok(())
    }

    fn add_summary(&mut self, rs: &Summary) -> Result<(), ReportError> {
        let s = &mut self.summary;
        add(&mut s.requests, rs.requests, "requests")?;
        add(&mut s.successes, rs.successes, "successes")?;
        add(&mut s.failures, rs.failures, "failures")?;
        add(&mut s.dropped, rs.dropped, "dropped iterations")?;
        add(&mut s.retries, rs.retries, "retries")?;
        add(&mut s.late, rs.late, "late iterations")?;
        add(&mut s.iterations, rs.iterations, "iterations")?;
        add_map(&mut s.status_codes, &rs.status_codes, "status codes")?;
        add_map(&mut s.errors, &rs.errors, "errors")?;
        add_map(&mut s.backends, &rs.backends, "backends")
    }

    fn add_times(&mut self, r: &RunReport) -> Result<(), ReportError> {
        self.end_ms = self.end_ms.max(check_times(r)?);
        self.start_ms = self.start_ms.min(r.started_at_unix_ms);
        let spread_ms = r
            .start_spread_s
            .filter(|s| s.is_finite() && (0.0..=MAX_DURATION_S).contains(s))
            .map_or(0, |s| (s * 1000.0).round() as u64);
        self.last_start_ms = self.last_start_ms.max(r.started_at_unix_ms + spread_ms);
        Ok(())
    }

    /// The generator's figures: CPU adds up (the workers ran on their own cores), one limited
    /// worker limits the merge, and each worker's warnings are kept under its run's name.
    fn add_generator(&mut self, r: &RunReport) -> Result<(), ReportError> {
        let g = &mut self.generator;
        g.cpu_percent_mean += r.generator.cpu_percent_mean;
        g.cpu_percent_max = g.cpu_percent_max.max(r.generator.cpu_percent_max);
        // The most throttled worker, as the busiest limits the merge.
        g.cpu_throttled_percent = match (g.cpu_throttled_percent, r.generator.cpu_throttled_percent)
        {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        g.threads = g
            .threads
            .checked_add(r.generator.threads)
            .ok_or_else(|| ReportError::Invalid("the reports' threads do not add up".into()))?;
        g.peak_rss_mb = g.peak_rss_mb.max(r.generator.peak_rss_mb);
        g.limited_by_generator |= r.generator.limited_by_generator;
        for w in &r.generator.warnings {
            g.warnings.push(format!("{}: {w}", r.run));
        }
        Ok(())
    }

    fn add_plan(&mut self, p: &PlanInfo) -> Result<(), ReportError> {
        let plan = &mut self.plan;
        add(&mut plan.concurrency, p.concurrency, "planned concurrency")?;
        plan.requests = match (plan.requests, p.requests) {
            (Some(a), Some(b)) => Some(sum(a, b, "planned requests")?),
            _ => None,
        };
        plan.duration_s = match (plan.duration_s, p.duration_s) {
            (Some(a), Some(b)) => Some(f64::max(a, b)),
            (None, b) => b,
            (a, None) => a,
        };
        Ok(())
    }

    /// The merged report: figures recomputed from the sums over the merged duration.
    fn finish(
        mut self,
        reports: &[RunReport],
        first: &RunReport,
    ) -> Result<RunReport, ReportError> {
        let open = first.mode == LoadMode::Open;
        let duration_s = (self.end_ms.saturating_sub(self.start_ms)) as f64 / 1000.0;
        let start_spread_s = self.last_start_ms.saturating_sub(self.start_ms) as f64 / 1000.0;
        if start_spread_s > START_SPREAD_WARN_S {
            self.generator.warnings.push(format!(
                "the workers started {start_spread_s:.1}s apart: the merged duration spans all of them and its throughput is lower than while they all ran (use --start-at)"
            ));
        }
        self.plan.description = format!(
            "merge of {} runs: {}",
            reports.len(),
            first.plan.description
        );
        self.connections.connect_ms = hist::stats(&self.connect);
        let mut summary = self.summary;
        summary.duration_s = duration_s;
        summary.set_figures(self.overall.figures(
            summary.requests,
            summary.successes,
            duration_s,
            open,
        ));
        let mut endpoints = Vec::new();
        let mut ep_hists = BTreeMap::new();
        for (mut e, d) in self.endpoints {
            e.set_figures(d.figures(e.requests, e.successes, duration_s, open));
            ep_hists.insert(e.name.clone(), d.encode());
            endpoints.push(e);
        }
        let (phases, phase_hists, phase_warning) = super::phases::merge(
            &reports
                .iter()
                .map(|r| (&r.phases[..], &r.histograms.phases[..], r.run.as_str()))
                .collect::<Vec<_>>(),
            open,
        )?;
        self.generator.warnings.extend(phase_warning);
        let timeseries = merge_series(reports, self.start_ms)?;
        let throughput: Vec<(f64, f64)> = timeseries.iter().map(|p| (p.t_s, p.rps)).collect();
        let cold_starts = merge_cold_starts(reports, self.start_ms)?;
        let EndpointHistograms {
            latency,
            service_time,
        } = self.overall.encode();
        Ok(RunReport {
            schema_version: SCHEMA_VERSION,
            tool: first.tool.clone(),
            run: reports
                .iter()
                .map(|r| r.run.as_str())
                .collect::<Vec<_>>()
                .join("+"),
            scenario: same(reports, |r| r.scenario.as_str()),
            target: same(reports, |r| r.target.as_str()),
            mode: first.mode,
            labels: common_labels(reports),
            started_at: humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.start_ms),
            )
            .to_string(),
            started_at_unix_ms: self.start_ms,
            interrupted: self.interrupted,
            workers: self.workers,
            plan: self.plan,
            summary,
            endpoints,
            phases,
            timeseries,
            timeseries_resolution_s: reports
                .iter()
                .map(|r| r.timeseries_resolution_s)
                .fold(1.0, f64::max),
            generator: GeneratorStats {
                schedule_lag_ms: lag_stats(&self.lag),
                ..self.generator
            },
            thresholds: Vec::new(),
            histograms: Histograms {
                encoding: hist::ENCODING.into(),
                unit: hist::UNIT.into(),
                latency,
                service_time,
                schedule_lag: hist::encode(&self.lag),
                connect: hist::encode(&self.connect),
                endpoints: ep_hists,
                phases: phase_hists,
            },
            slowest_traces: slowest_traces(reports),
            // One watched Deployment serves every worker: its per-replica throughput is that of
            // the merged traffic.
            replicas: reports
                .iter()
                .find_map(|r| r.replicas.clone())
                .map(|mut x| {
                    x.record_throughput(&throughput);
                    x.set_cold_starts(cold_starts.0, cold_starts.1);
                    x
                }),
            scale_events: Vec::new(),
            warnings: Vec::new(),
            error_messages: error_messages(reports),
            connections: self.connections,
            start_spread_s: Some(start_spread_s),
            capacity: None,
        })
    }
}

/// The workers' distinct error messages, in report order, as many as one report keeps.
fn error_messages(reports: &[RunReport]) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for m in reports.iter().flat_map(|r| &r.error_messages) {
        if all.len() < crate::model::MAX_ERROR_MESSAGES && !all.contains(m) {
            all.push(m.clone());
        }
    }
    all
}

/// A text field of the reports: its value when they all agree, else `mixed`.
fn same(reports: &[RunReport], f: fn(&RunReport) -> &str) -> String {
    let v = f(&reports[0]);
    if reports.iter().all(|r| f(r) == v) {
        v.to_string()
    } else {
        "mixed".to_string()
    }
}

/// The labels every report has with the same value.
fn common_labels(reports: &[RunReport]) -> BTreeMap<String, String> {
    reports[0]
        .labels
        .iter()
        .filter(|(k, v)| reports.iter().all(|r| r.labels.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The slowest traced requests of all the reports, slowest first.
fn slowest_traces(reports: &[RunReport]) -> Vec<crate::model::TracedRequest> {
    let mut all: Vec<_> = reports
        .iter()
        .flat_map(|r| r.slowest_traces.clone())
        .collect();
    all.sort_by(|a, b| b.latency_ms.total_cmp(&a.latency_ms));
    all.truncate(crate::model::MAX_TRACES);
    all
}

fn hist_err(what: &str, e: hdrhistogram::errors::AdditionError) -> ReportError {
    ReportError::Histogram {
        what: what.into(),
        reason: e.to_string(),
    }
}

/// Every worker's cold starts, kept apart (each client waited through its own): tagged with the
/// worker's index in merge order, their times moved onto the merged clock (seconds from
/// `start_ms`, the earliest start), in time order, at most `MAX_COLD_STARTS` of them; the total
/// adds up every worker's count.
fn merge_cold_starts(
    reports: &[RunReport],
    start_ms: u64,
) -> Result<(Vec<crate::model::cold_starts::ColdStart>, u64), ReportError> {
    let mut list = Vec::new();
    let mut total: u64 = 0;
    for (worker, r) in reports.iter().enumerate() {
        let Some(rep) = &r.replicas else { continue };
        let counted = rep.cold_starts_total.max(rep.cold_starts.len() as u64);
        add(&mut total, counted, "cold starts")?;
        let offset = r.started_at_unix_ms.saturating_sub(start_ms) as f64 / 1000.0;
        list.extend(
            rep.cold_starts
                .iter()
                .map(|c| crate::model::cold_starts::ColdStart {
                    t_s: c.t_s + offset,
                    ready_at_s: c.ready_at_s.map(|t| t + offset),
                    worker: Some(c.worker.unwrap_or(worker)),
                    ..c.clone()
                }),
        );
    }
    list.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    list.truncate(crate::model::cold_starts::MAX_COLD_STARTS);
    Ok((list, total))
}

/// Aligns each run's series on wall-clock seconds from `start_ms` and adds them up, counts by the
/// checked rule of [`add`]. The series' totals are checked too, so no bucket can overflow when
/// `end_series` folds a short last bucket into the one before it.
fn merge_series(reports: &[RunReport], start_ms: u64) -> Result<Vec<TimePoint>, ReportError> {
    let width = reports
        .iter()
        .map(|r| r.timeseries_resolution_s)
        .fold(1.0, f64::max)
        .max(1.0);
    let mut buckets: BTreeMap<u64, TimePoint> = BTreeMap::new();
    let mut totals = TimePoint::default();
    for r in reports {
        let offset = (r.started_at_unix_ms - start_ms) as f64 / 1000.0;
        for p in &r.timeseries {
            add(&mut totals.requests, p.requests, "time series requests")?;
            add(&mut totals.failures, p.failures, "time series failures")?;
            add(&mut totals.shed, p.shed, "time series shed responses")?;
            add_map(&mut totals.backends, &p.backends, "time series backends")?;
            let t = ((p.t_s + offset) / width).floor() as u64;
            let t_s = t as f64 * width;
            match buckets.get_mut(&t) {
                Some(b) => add_point(b, p, width)?,
                None => {
                    let mut q = p.clone();
                    q.t_s = t_s;
                    q.rps = q.requests as f64 / width;
                    q.width_s = 0.0;
                    buckets.insert(t, q);
                }
            }
        }
    }
    let mut points: Vec<TimePoint> = buckets.into_values().collect();
    let end_s = reports
        .iter()
        .map(|r| (r.started_at_unix_ms - start_ms) as f64 / 1000.0 + r.summary.duration_s)
        .fold(0.0, f64::max);
    crate::model::end_series(&mut points, end_s, width);
    Ok(points)
}

/// Adds another worker's point `p` to the bucket `b` of the same second: counts and gauges add up
/// (every worker sent its own), the target rates too; percentiles are approximations
/// (request-weighted p50, highest p99), the exact figures live in the histograms.
fn add_point(b: &mut TimePoint, p: &TimePoint, width: f64) -> Result<(), ReportError> {
    let (r0, r1) = (b.requests, p.requests);
    let n = r0 as f64 + r1 as f64;
    if n > 0.0 {
        b.p50_ms = (b.p50_ms * r0 as f64 + p.p50_ms * r1 as f64) / n;
    }
    b.p99_ms = b.p99_ms.max(p.p99_ms);
    b.max_ms = b.max_ms.max(p.max_ms);
    add(&mut b.requests, p.requests, "time series requests")?;
    add(&mut b.failures, p.failures, "time series failures")?;
    b.rps = b.requests as f64 / width;
    b.target_rate += p.target_rate;
    add(&mut b.active_users, p.active_users, "active users")?;
    add(&mut b.in_flight, p.in_flight, "requests in flight")?;
    add(&mut b.shed, p.shed, "time series shed responses")?;
    add_map(&mut b.backends, &p.backends, "time series backends")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(run: &str, requests: u64) -> RunReport {
        let mut r = RunReport {
            schema_version: SCHEMA_VERSION,
            run: run.into(),
            started_at_unix_ms: 1_700_000_000_000,
            workers: 1,
            ..Default::default()
        };
        r.summary.requests = requests;
        r.summary.successes = requests;
        r.summary.duration_s = 10.0;
        r.timeseries_resolution_s = 1.0;
        r
    }

    fn invalid(reports: &[RunReport]) -> String {
        match merge(reports) {
            Err(e @ ReportError::Invalid(_)) => e.to_string(),
            other => panic!("expected an invalid-input error, got {other:?}"),
        }
    }

    #[test]
    fn sane_reports_merge() {
        let m = merge(&[report("a", 10), report("b", 20)]).unwrap();
        assert_eq!(m.summary.requests, 30);
        assert_eq!(m.workers, 2);
        assert_eq!(m.summary.duration_s, 10.0);
    }

    #[test]
    fn counts_that_overflow_are_an_error_not_a_panic() {
        let e = invalid(&[report("a", u64::MAX), report("b", 1)]);
        assert!(e.contains("requests"), "{e}");
        let mut a = report("a", 1);
        a.summary.status_codes.insert("200".into(), u64::MAX);
        let mut b = report("b", 1);
        b.summary.status_codes.insert("200".into(), 1);
        assert!(invalid(&[a, b]).contains("status codes"));
        let (mut a, mut b) = (report("a", 1), report("b", 1));
        a.plan.requests = Some(u64::MAX);
        b.plan.requests = Some(2);
        assert!(invalid(&[a, b]).contains("planned requests"));
        let (mut a, b) = (report("a", 1), report("b", 1));
        a.workers = u32::MAX;
        assert!(invalid(&[a, b]).contains("worker"));
        let (mut a, mut b) = (report("a", 1), report("b", 1));
        a.generator.threads = usize::MAX;
        b.generator.threads = 1;
        assert!(invalid(&[a, b]).contains("threads"));
    }

    #[test]
    fn time_series_counts_that_overflow_are_an_error_not_a_capped_figure() {
        let point = |t_s: f64, requests: u64| TimePoint {
            t_s,
            requests,
            ..Default::default()
        };
        // The same second of two workers: the bucket's sum overflows.
        let (mut a, mut b) = (report("a", 1), report("b", 1));
        a.timeseries.push(point(0.0, u64::MAX));
        b.timeseries.push(point(0.0, 1));
        assert!(invalid(&[a, b]).contains("time series requests"));
        // Two seconds of one worker, each below the cap, whose sum is not: a merged short last
        // second folded into the one before would overflow, so the totals are refused up front.
        let mut a = report("a", 1);
        a.summary.duration_s = 1.1;
        a.timeseries.push(point(0.0, u64::MAX - 1));
        a.timeseries.push(point(1.0, 2));
        assert!(invalid(&[a]).contains("time series requests"));
        let (mut a, mut b) = (report("a", 1), report("b", 1));
        a.timeseries.push(point(0.0, 1));
        a.timeseries[0].backends.insert("pod-a".into(), u64::MAX);
        b.timeseries.push(point(0.0, 1));
        b.timeseries[0].backends.insert("pod-a".into(), 1);
        assert!(invalid(&[a, b]).contains("backends"));
    }

    #[test]
    fn cold_start_counts_that_overflow_are_an_error() {
        use crate::model::replicas::ReplicaTimeline;
        let (mut a, mut b) = (report("a", 1), report("b", 1));
        for (r, n) in [(&mut a, u64::MAX), (&mut b, 1)] {
            r.replicas = Some(ReplicaTimeline {
                cold_starts_total: n,
                ..Default::default()
            });
        }
        assert!(invalid(&[a, b]).contains("cold starts"));
    }

    #[test]
    fn times_no_run_can_have_are_an_error_not_a_panic() {
        let mut a = report("a", 1);
        a.started_at_unix_ms = u64::MAX;
        assert!(invalid(&[a, report("b", 1)]).contains("started_at_unix_ms"));
        for d in [f64::NAN, -1.0, 1e300] {
            let mut a = report("a", 1);
            a.summary.duration_s = d;
            assert!(invalid(&[a]).contains("duration_s"));
        }
        let mut a = report("a", 1);
        a.timeseries.push(TimePoint {
            t_s: f64::INFINITY,
            ..Default::default()
        });
        assert!(invalid(&[a]).contains("t_s"));
    }

    #[test]
    fn connections_add_exactly_and_the_start_spread_is_reported() {
        let mut h1 = hist::new_hist();
        let mut h2 = hist::new_hist();
        for us in [100, 200, 300] {
            hist::record(&mut h1, us);
        }
        hist::record(&mut h2, 9_000);
        let mut a = report("a", 10);
        a.connections.opened = 3;
        a.connections.reconnects = 2;
        a.connections.closed.insert("max_age".into(), 2);
        a.histograms.connect = hist::encode(&h1);
        let mut b = report("b", 10);
        b.started_at_unix_ms += 2_500;
        b.connections.opened = 1;
        b.connections.closed.insert("server".into(), 1);
        b.histograms.connect = hist::encode(&h2);
        let m = merge(&[a.clone(), b]).unwrap();
        let c = &m.connections;
        assert_eq!((c.opened, c.reconnects), (4, 2));
        assert_eq!(c.closed["max_age"], 2);
        assert_eq!(c.closed["server"], 1);
        let all = hist::decode("merged", &m.histograms.connect).unwrap();
        assert_eq!(all.len(), 4, "the connect histograms were added");
        assert_eq!(c.connect_ms.max, hist::stats(&all).max);
        assert_eq!(m.start_spread_s, Some(2.5));
        assert!(
            m.generator
                .warnings
                .iter()
                .any(|w| w.contains("2.5s apart")),
            "{:?}",
            m.generator.warnings
        );
        let text = super::super::summary::render(&m);
        assert!(text.contains("2 started within 2.50s"), "{text}");
        // A merge of a merge keeps the spread of its parts.
        let mut c2 = report("c", 1);
        c2.started_at_unix_ms += 1_000;
        let mm = merge(&[m, c2]).unwrap();
        assert_eq!(mm.start_spread_s, Some(2.5));
        // Workers that started together: no warning.
        let together = merge(&[a.clone(), a]).unwrap();
        assert_eq!(together.start_spread_s, Some(0.0));
        assert!(together.generator.warnings.is_empty());
    }

    #[test]
    fn old_reports_without_connections_still_load_and_merge() {
        let mut json: serde_json::Value = serde_json::to_value(report("old", 5)).unwrap();
        let o = json.as_object_mut().unwrap();
        o.remove("connections");
        o["histograms"].as_object_mut().unwrap().remove("connect");
        let old = RunReport::from_json("old.json", &json.to_string()).unwrap();
        assert!(old.connections.keepalive);
        assert_eq!(old.connections.max_age_s, None);
        let m = merge(&[old.clone(), old]).unwrap();
        assert_eq!(m.connections.opened, 0);
    }

    fn point(t_s: f64, backends: &[(&str, u64)]) -> TimePoint {
        let backends: BTreeMap<String, u64> =
            backends.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        TimePoint {
            t_s,
            requests: backends.values().sum(),
            backends,
            ..Default::default()
        }
    }

    #[test]
    fn merged_series_adds_per_backend_counts_per_bucket() {
        let mut a = report("a", 9);
        a.timeseries = vec![point(0.0, &[("pod-1", 4)]), point(1.0, &[("pod-1", 5)])];
        // b started one second after a: its t_s 0 lands in a's second 1.
        let mut b = report("b", 6);
        b.started_at_unix_ms += 1000;
        b.timeseries = vec![
            point(0.0, &[("pod-1", 1), ("pod-2", 2)]),
            point(1.0, &[("pod-3", 3)]),
        ];
        let m = merge(&[a, b]).unwrap();
        let got: Vec<(f64, BTreeMap<String, u64>)> = m
            .timeseries
            .iter()
            .map(|p| (p.t_s, p.backends.clone()))
            .collect();
        let want = |v: &[(&str, u64)]| point(0.0, v).backends;
        assert_eq!(
            got,
            vec![
                (0.0, want(&[("pod-1", 4)])),
                (1.0, want(&[("pod-1", 6), ("pod-2", 2)])),
                (2.0, want(&[("pod-3", 3)])),
            ]
        );
        for p in &m.timeseries {
            assert_eq!(p.backends.values().sum::<u64>(), p.requests);
        }
    }

    /// Two workers of one watched run: the merged report's scale events come from the added
    /// series (the new backend only one worker saw counts) and the first worker's timeline, with
    /// the recovery threshold the workers were given.
    #[test]
    fn merge_recomputes_scale_events_from_the_merged_series() {
        use crate::model::replicas::{ReplicaSample, ReplicaTimeline};
        let ready = |t_s: f64, desired: i32, ready: i32| ReplicaSample {
            t_s,
            desired: Some(desired),
            ready: Some(ready),
            ..Default::default()
        };
        let timeline = ReplicaTimeline {
            samples: vec![ready(0.0, 1, 1), ready(5.0, 3, 1), ready(7.0, 3, 3)],
            ..Default::default()
        };
        let worker = |run: &str, new_backend: &str| {
            let mut r = report(run, 0);
            r.timeseries = (0..10)
                .map(|t| {
                    let b = if t < 8 { "pod-a" } else { new_backend };
                    let mut p = point(f64::from(t), &[(b, 20)]);
                    p.requests = 20;
                    p.p50_ms = 5.0;
                    p.p99_ms = if (5..8).contains(&t) { 300.0 } else { 10.0 };
                    p
                })
                .collect();
            r.replicas = Some(timeline.clone());
            r.scale_events = vec![crate::model::scale_events::ScaleEvent {
                recovery_threshold_ms: Some(50.0),
                recovery_threshold_given: true,
                ..Default::default()
            }];
            r
        };
        let m = merge(&[worker("a", "pod-b"), worker("b", "pod-c")]).unwrap();
        let [e] = m.scale_events.as_slice() else {
            panic!("{:#?}", m.scale_events)
        };
        assert_eq!((e.t_s, e.time_to_ready_s), (5.0, Some(2.0)));
        assert_eq!(e.time_to_first_new_backend_s, Some(4.0));
        assert_eq!(
            (e.recovery_threshold_ms, e.recovery_s),
            (Some(50.0), Some(3.0))
        );
        assert_eq!(
            e.during.as_ref().unwrap().requests,
            120,
            "both workers' requests"
        );
    }

    /// Each worker's cold starts are kept, tagged with the worker and moved onto the merged
    /// clock; the totals add up.
    #[test]
    fn merge_keeps_each_workers_cold_starts() {
        use crate::model::cold_starts::ColdStart;
        use crate::model::replicas::ReplicaTimeline;
        let worker = |run: &str, started_ms: u64, t_s: f64, total: u64| {
            let mut r = report(run, 0);
            r.started_at_unix_ms = started_ms;
            let mut tl = ReplicaTimeline::default();
            tl.set_cold_starts(
                vec![ColdStart {
                    t_s,
                    to_first_response_s: Some(2.0),
                    held: 3,
                    ready_at_s: Some(t_s + 1.5),
                    ..Default::default()
                }],
                total,
            );
            r.replicas = Some(tl);
            r
        };
        let m = merge(&[
            worker("a", 1_700_000_001_000, 4.0, 1),
            worker("b", 1_700_000_000_000, 0.5, 3),
        ])
        .unwrap();
        let rep = m.replicas.unwrap();
        let got: Vec<(f64, Option<usize>, Option<f64>)> = rep
            .cold_starts
            .iter()
            .map(|c| (c.t_s, c.worker, c.ready_at_s))
            .collect();
        assert_eq!(
            got,
            vec![(0.5, Some(1), Some(2.0)), (5.0, Some(0), Some(6.5))]
        );
        assert_eq!(rep.cold_starts_total, 4);
    }
}
