//! `loadgen merge A.json B.json ... --out ALL.json`: combines runs of several workers exactly.
//!
//! Counts add up; histograms are decoded, added and re-encoded, so every percentile of the merged
//! report equals the percentile of all requests together. The duration is the wall-clock span from
//! the earliest start to the latest end; the time series are aligned on wall-clock seconds.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::hist;
use super::{
    EndpointHistograms, EndpointSummary, GeneratorStats, Histograms, LagStats, LoadMode, PlanInfo,
    ReportError, RunReport, SCHEMA_VERSION, Summary, TimePoint,
};

fn add_map(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// Success rate in percent (100 with no requests).
pub fn success_rate(successes: u64, requests: u64) -> f64 {
    if requests == 0 {
        100.0
    } else {
        successes as f64 / requests as f64 * 100.0
    }
}

fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// Merges reports (at least one). Thresholds are not carried over: evaluate them on the result.
pub fn merge(reports: &[RunReport]) -> Result<RunReport, ReportError> {
    let first = reports
        .first()
        .ok_or_else(|| ReportError::Invalid("merge needs at least one report".into()))?;
    if let Some(r) = reports.iter().find(|r| r.mode != first.mode) {
        return Err(ReportError::Invalid(format!(
            "cannot merge an open-loop and a closed-loop run ({} and {})",
            first.run, r.run
        )));
    }
    let open = first.mode == LoadMode::Open;
    let mut lat = hist::new_hist();
    let mut svc = hist::new_hist();
    let mut lag = hist::new_hist();
    let mut eps: Vec<(EndpointSummary, Histogram<u64>, Histogram<u64>)> = Vec::new();
    let mut s = Summary::default();
    let mut start_ms = u64::MAX;
    let mut end_ms = 0u64;
    let mut cpu_mean = 0.0;
    let mut cpu_max: f64 = 0.0;
    let mut threads = 0;
    let mut warnings = Vec::new();
    let mut limited = false;
    let mut workers = 0;
    let mut interrupted = false;
    let mut plan = PlanInfo {
        description: String::new(),
        duration_s: None,
        requests: Some(0),
        concurrency: 0,
    };
    for r in reports {
        let what = |h: &str| format!("{} {h}", r.run);
        lat.add(hist::decode(&what("latency"), &r.histograms.latency)?)
            .map_err(hist_err)?;
        svc.add(hist::decode(
            &what("service_time"),
            &r.histograms.service_time,
        )?)
        .map_err(hist_err)?;
        lag.add(hist::decode(
            &what("schedule_lag"),
            &r.histograms.schedule_lag,
        )?)
        .map_err(hist_err)?;
        for e in &r.endpoints {
            let h = r
                .histograms
                .endpoints
                .get(&e.name)
                .cloned()
                .unwrap_or_default();
            let el = hist::decode(&what(&e.name), &h.latency)?;
            let es = hist::decode(&what(&e.name), &h.service_time)?;
            match eps.iter_mut().find(|(x, _, _)| x.name == e.name) {
                Some((acc, l, sv)) => {
                    acc.requests += e.requests;
                    acc.successes += e.successes;
                    acc.failures += e.failures;
                    add_map(&mut acc.status_codes, &e.status_codes);
                    add_map(&mut acc.errors, &e.errors);
                    l.add(el).map_err(hist_err)?;
                    sv.add(es).map_err(hist_err)?;
                }
                None => eps.push((e.clone(), el, es)),
            }
        }
        s.requests += r.summary.requests;
        s.successes += r.summary.successes;
        s.failures += r.summary.failures;
        s.dropped += r.summary.dropped;
        s.retries += r.summary.retries;
        s.late += r.summary.late;
        s.iterations += r.summary.iterations;
        add_map(&mut s.status_codes, &r.summary.status_codes);
        add_map(&mut s.errors, &r.summary.errors);
        add_map(&mut s.backends, &r.summary.backends);
        start_ms = start_ms.min(r.started_at_unix_ms);
        end_ms = end_ms.max(r.started_at_unix_ms + (r.summary.duration_s * 1000.0).round() as u64);
        cpu_mean += r.generator.cpu_percent_mean;
        cpu_max = cpu_max.max(r.generator.cpu_percent_max);
        threads += r.generator.threads;
        limited |= r.generator.limited_by_generator;
        for w in &r.generator.warnings {
            warnings.push(format!("{}: {w}", r.run));
        }
        workers += r.workers;
        interrupted |= r.interrupted;
        plan.concurrency += r.plan.concurrency;
        plan.requests = match (plan.requests, r.plan.requests) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        plan.duration_s = match (plan.duration_s, r.plan.duration_s) {
            (Some(a), Some(b)) => Some(f64::max(a, b)),
            (None, b) => b,
            (a, None) => a,
        };
    }
    plan.description = format!(
        "merge of {} runs: {}",
        reports.len(),
        first.plan.description
    );
    let duration_s = (end_ms.saturating_sub(start_ms)) as f64 / 1000.0;
    s.duration_s = duration_s;
    s.rps = per_sec(s.requests, duration_s);
    s.success_rate = success_rate(s.successes, s.requests);
    s.latency_ms = hist::stats(&lat);
    s.service_time_ms = open.then(|| hist::stats(&svc));
    let mut endpoints = Vec::new();
    let mut ep_hists = BTreeMap::new();
    for (mut e, l, sv) in eps {
        e.rps = per_sec(e.requests, duration_s);
        e.latency_ms = hist::stats(&l);
        e.service_time_ms = open.then(|| hist::stats(&sv));
        ep_hists.insert(
            e.name.clone(),
            EndpointHistograms {
                latency: hist::encode(&l),
                service_time: hist::encode(&sv),
            },
        );
        endpoints.push(e);
    }
    let timeseries = merge_series(reports, start_ms);
    let lag_stats = lag_stats(&lag);
    let same = |f: fn(&RunReport) -> &str| {
        let v = f(first);
        if reports.iter().all(|r| f(r) == v) {
            v.to_string()
        } else {
            "mixed".to_string()
        }
    };
    let labels: BTreeMap<String, String> = first
        .labels
        .iter()
        .filter(|(k, v)| reports.iter().all(|r| r.labels.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(RunReport {
        schema_version: SCHEMA_VERSION,
        tool: first.tool.clone(),
        run: reports
            .iter()
            .map(|r| r.run.as_str())
            .collect::<Vec<_>>()
            .join("+"),
        scenario: same(|r| r.scenario.as_str()),
        target: same(|r| r.target.as_str()),
        mode: first.mode,
        labels,
        started_at: humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(start_ms),
        )
        .to_string(),
        started_at_unix_ms: start_ms,
        interrupted,
        workers,
        plan,
        summary: s,
        endpoints,
        timeseries,
        timeseries_resolution_s: reports
            .iter()
            .map(|r| r.timeseries_resolution_s)
            .fold(1.0, f64::max),
        generator: GeneratorStats {
            threads,
            cpu_percent_mean: cpu_mean,
            cpu_percent_max: cpu_max,
            peak_rss_mb: reports
                .iter()
                .map(|r| r.generator.peak_rss_mb)
                .fold(0.0, f64::max),
            schedule_lag_ms: lag_stats,
            limited_by_generator: limited,
            warnings,
        },
        thresholds: Vec::new(),
        histograms: Histograms {
            encoding: hist::ENCODING.into(),
            unit: hist::UNIT.into(),
            latency: hist::encode(&lat),
            service_time: hist::encode(&svc),
            schedule_lag: hist::encode(&lag),
            endpoints: ep_hists,
        },
        slowest_traces: {
            let mut all: Vec<_> = reports
                .iter()
                .flat_map(|r| r.slowest_traces.clone())
                .collect();
            all.sort_by(|a, b| b.latency_ms.total_cmp(&a.latency_ms));
            all.truncate(super::MAX_TRACES);
            all
        },
        replicas: reports.iter().find_map(|r| r.replicas.clone()),
    })
}

fn hist_err(e: hdrhistogram::errors::AdditionError) -> ReportError {
    ReportError::Histogram {
        what: "merge".into(),
        reason: format!("{e:?}"),
    }
}

/// Schedule-lag statistics from its histogram.
pub fn lag_stats(h: &Histogram<u64>) -> LagStats {
    let st = hist::stats(h);
    LagStats {
        mean: st.mean,
        p99: st.p99,
        max: st.max,
    }
}

/// Aligns each run's series on wall-clock seconds from `start_ms` and adds them up.
fn merge_series(reports: &[RunReport], start_ms: u64) -> Vec<TimePoint> {
    let width = reports
        .iter()
        .map(|r| r.timeseries_resolution_s)
        .fold(1.0, f64::max)
        .max(1.0);
    let mut buckets: BTreeMap<u64, TimePoint> = BTreeMap::new();
    for r in reports {
        let offset = (r.started_at_unix_ms - start_ms) as f64 / 1000.0;
        for p in &r.timeseries {
            let t = ((p.t_s + offset) / width).floor() as u64;
            let t_s = t as f64 * width;
            match buckets.get_mut(&t) {
                Some(b) => {
                    let (r0, r1) = (b.requests, p.requests);
                    if r0 + r1 > 0 {
                        b.p50_ms = (b.p50_ms * r0 as f64 + p.p50_ms * r1 as f64) / (r0 + r1) as f64;
                    }
                    b.p99_ms = b.p99_ms.max(p.p99_ms);
                    b.max_ms = b.max_ms.max(p.max_ms);
                    b.requests += p.requests;
                    b.failures += p.failures;
                    b.rps = b.requests as f64 / width;
                    b.target_rate += p.target_rate;
                    b.active_users += p.active_users;
                    b.in_flight += p.in_flight;
                }
                None => {
                    let mut q = p.clone();
                    q.t_s = t_s;
                    q.rps = q.requests as f64 / width;
                    buckets.insert(t, q);
                }
            }
        }
    }
    buckets.into_values().collect()
}
