//! Per-phase results: a row per phase of the plan (the rate steps of `rate-steps`, the warm-up,
//! ramp, plateau and cool-down of `docker-ramp`, closed-loop user phases), as the classic
//! comparisons report a row per load level.
//!
//! A request belongs to the phase that scheduled it (its intended start in open loop, its send
//! in closed loop), so a slow response to a step's load counts against that step. The rows' counts
//! add up to the run's; their histograms are kept so `merge` recomputes every percentile exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::figures::{Distributions, Figures, add, add_map};
use crate::model::phases::PhaseSummary;
use crate::model::{EndpointHistograms, ReportError};
use crate::plan::Phase;
use crate::stats::EndpointAcc;

/// The rows and histograms of a run's phases. `ran` is the run's measured duration.
pub fn build(
    phases: &[Phase],
    accs: &[EndpointAcc],
    ran: Duration,
    open: bool,
) -> (Vec<PhaseSummary>, Vec<EndpointHistograms>) {
    let mut start = Duration::ZERO;
    let mut rows = Vec::new();
    let mut hists = Vec::new();
    for (p, acc) in phases.iter().zip(accs) {
        let duration = p.duration.min(ran.saturating_sub(start));
        let row = PhaseSummary {
            name: p.name.clone(),
            start_s: start.as_secs_f64(),
            duration_s: duration.as_secs_f64(),
            target_from: p.from,
            target_to: p.to,
            ..PhaseSummary::default()
        };
        rows.push(fill(row, acc, open));
        hists.push(EndpointHistograms::encode(&acc.latency, &acc.service));
        start = start.saturating_add(p.duration);
    }
    (rows, hists)
}

/// Fills the counts and figures of `row` from its accumulator.
fn fill(mut row: PhaseSummary, acc: &EndpointAcc, open: bool) -> PhaseSummary {
    row.requests = acc.successes + acc.failures;
    row.successes = acc.successes;
    row.failures = acc.failures;
    row.status_codes = acc.status_map();
    row.errors = acc.error_map();
    row.shed_503 = acc.statuses.get(&503).copied().unwrap_or(0);
    row.set_figures(Figures::of(
        row.requests,
        row.successes,
        row.duration_s,
        &acc.latency,
        &acc.service,
        open,
    ));
    row
}

/// Merged rows, their histograms, and a warning when the runs' phases differ.
pub type Merged = (Vec<PhaseSummary>, Vec<EndpointHistograms>, Option<String>);

/// Merges the phases of worker reports that ran the same phases (same names in the same order):
/// counts (checked: they come from reports) and histograms added, figures recomputed. Reports whose phases differ give no rows and
/// a warning; reports without phases (older ones) are skipped by returning none.
pub fn merge(
    runs: &[(&[PhaseSummary], &[EndpointHistograms], &str)],
    open: bool,
) -> Result<Merged, ReportError> {
    let Some((first, _, _)) = runs.first() else {
        return Ok(Default::default());
    };
    let names = |p: &[PhaseSummary]| p.iter().map(|x| x.name.clone()).collect::<Vec<_>>();
    if let Some((_, _, run)) = runs.iter().find(|(p, _, _)| names(p) != names(first)) {
        return Ok((
            Vec::new(),
            Vec::new(),
            Some(format!(
                "run {run} has other phases than the first: the merge has no per-phase rows"
            )),
        ));
    }
    let mut out = Vec::new();
    let mut hists = Vec::new();
    for (i, base) in first.iter().enumerate() {
        let mut row = PhaseSummary {
            requests: 0,
            successes: 0,
            failures: 0,
            shed_503: 0,
            status_codes: BTreeMap::new(),
            errors: BTreeMap::new(),
            ..base.clone()
        };
        let mut d = Distributions::default();
        for (phases, h, run) in runs {
            let p = &phases[i];
            let what = format!("{run} phase {}", p.name);
            let h = h.get(i).ok_or_else(|| {
                ReportError::Invalid(format!("{what}: no histograms for the phase"))
            })?;
            d.add_encoded(&what, h)?;
            add(&mut row.requests, p.requests, "phase requests")?;
            add(&mut row.successes, p.successes, "phase successes")?;
            add(&mut row.failures, p.failures, "phase failures")?;
            add(&mut row.shed_503, p.shed_503, "phase 503s")?;
            add_map(&mut row.status_codes, &p.status_codes, "phase status codes")?;
            add_map(&mut row.errors, &p.errors, "phase errors")?;
            // Workers run the same plan side by side: the phase lasted as long as the longest.
            if p.duration_s.is_finite() {
                row.duration_s = row.duration_s.max(p.duration_s);
            }
        }
        row.set_figures(d.figures(row.requests, row.successes, row.duration_s, open));
        out.push(row);
        hists.push(d.encode());
    }
    Ok((out, hists, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::outcome::Outcome;
    use crate::stats::Stats;
    use std::time::Instant;

    fn plan() -> Vec<Phase> {
        ["slow", "fast"]
            .iter()
            .zip([10.0, 100.0])
            .map(|(n, r)| Phase {
                name: n.to_string(),
                duration: Duration::from_secs(10),
                from: r,
                to: r,
            })
            .collect()
    }

    /// Requests at known rates: 10/s for 10 s taking 2 ms, then 100/s for 10 s taking 20 ms, the
    /// last 50 of them shed with a 503. `keep(k)` picks which of them this "worker" sent.
    fn run(keep: impl Fn(u64) -> bool) -> Stats {
        let start = Instant::now();
        let durations: Vec<Duration> = plan().iter().map(|p| p.duration).collect();
        let s = Stats::with_phases(1, 2, start, &durations);
        let mut k = 0u64;
        let mut send = |at_ms: u64, us: u64, status: u16| {
            if keep(k) {
                let o = Outcome {
                    endpoint: 0,
                    latency_us: us,
                    service_us: us / 2,
                    status: Some(status),
                    failure: None,
                    success: status < 400,
                    backend: None,
                };
                s.record(
                    k as usize,
                    &o,
                    start + Duration::from_millis(at_ms) + Duration::from_micros(us),
                );
            }
            k += 1;
        };
        for i in 0..100 {
            send(i * 100, 2_000, 200);
        }
        for i in 0..1000 {
            send(
                10_000 + i * 10,
                20_000 + i,
                if i >= 950 { 503 } else { 200 },
            );
        }
        s
    }

    fn rows(s: &Stats) -> (Vec<PhaseSummary>, Vec<EndpointHistograms>) {
        build(&plan(), &s.totals().phases, Duration::from_secs(20), true)
    }

    #[test]
    fn phase_rows_count_each_phase_at_its_rate() {
        let (r, _) = rows(&run(|_| true));
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].name.as_str(), r[0].start_s, r[0].duration_s),
            ("slow", 0.0, 10.0)
        );
        assert_eq!(
            (r[0].requests, r[0].rps, r[0].success_rate),
            (100, 10.0, 100.0)
        );
        assert!(
            (r[0].latency_ms.p50 - 2.0).abs() < 0.01,
            "{:?}",
            r[0].latency_ms
        );
        assert!((r[0].service_time_ms.unwrap().p99 - 1.0).abs() < 0.01);
        assert_eq!((r[1].requests, r[1].rps), (1000, 100.0));
        assert_eq!((r[1].shed_503, r[1].failures), (50, 50));
        assert_eq!(r[1].success_rate, 95.0);
        assert!(
            (r[1].latency_ms.p50 - 20.5).abs() < 0.1,
            "{:?}",
            r[1].latency_ms
        );
        assert!(
            (r[1].latency_ms.p99 - 20.99).abs() < 0.1,
            "{:?}",
            r[1].latency_ms
        );
        assert_eq!(r[1].status_codes["503"], 50);
        assert_eq!(r[1].target(true), "100/s");
    }

    #[test]
    fn a_merge_of_workers_has_the_phase_rows_of_one_run_of_the_union() {
        let (union, _) = rows(&run(|_| true));
        let (a, ha) = rows(&run(|k| k % 3 == 0));
        let (b, hb) = rows(&run(|k| k % 3 != 0));
        let (merged, _, warning) = merge(&[(&a, &ha, "a"), (&b, &hb, "b")], true).unwrap();
        assert_eq!(warning, None);
        assert_eq!(merged, union);
    }

    #[test]
    fn phase_counts_that_overflow_are_an_error_not_a_capped_figure() {
        let (a, ha) = rows(&run(|_| true));
        let mut b = a.clone();
        b[1].requests = u64::MAX;
        let e = merge(&[(&a, &ha, "a"), (&b, &ha, "b")], true).unwrap_err();
        assert!(
            matches!(&e, ReportError::Invalid(m) if m.contains("phase requests")),
            "{e}"
        );
    }

    #[test]
    fn runs_with_other_phases_merge_without_phase_rows() {
        let (a, ha) = rows(&run(|_| true));
        let mut b = a.clone();
        b[1].name = "other".into();
        let (merged, _, warning) = merge(&[(&a, &ha, "a"), (&b, &ha, "b")], true).unwrap();
        assert!(merged.is_empty());
        assert!(warning.unwrap().contains("run b has other phases"));
    }
}
