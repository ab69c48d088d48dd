//! `loadgen capacity`: runs the steps the search asks for and writes the capacity report.
//!
//! Each step is an ordinary open-loop run through the same pipeline as `loadgen run` (so every
//! request flag, connection lifetime, metrics and progress work as there), with two phases:
//! `settle` (excluded from the judgment) and `measure` (judged). With `--watch`, one watcher
//! follows the Deployment for the whole search rather than one per step, so the replica timeline
//! is continuous and a step can be judged against the state the HPA was in during its window.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::capacity::{
    CapacitySection, Next, Search, SearchSettings, Settle, StepRecord, StopReason, Verdict, judge,
};
use crate::cli::{CapacityCmd, RunCmd, SearchArgs};
use crate::cmd::run::{Job, Prepared, prepare, run_to_report, runtime};
use crate::cmd::{Outputs, finish};
use crate::errln;
use crate::exit::BadInput;
use crate::model::RunReport;
use crate::plan::{DEFAULT_MAX_IN_FLIGHT, LoadPlan, Phase};
use crate::watch::{WatchConfig, WatchHandle};

fn bad(msg: impl Into<String>) -> anyhow::Error {
    BadInput(msg.into()).into()
}

/// Checks what can be checked before anything runs, and returns the job the steps are made from.
fn job(c: CapacityCmd) -> anyhow::Result<(Job, SearchArgs)> {
    c.search.settings().validate().map_err(bad)?;
    let o = &c.request.run;
    let owned = [
        ("--rate", o.rate.is_some()),
        ("--ramp-to", o.ramp_to.is_some()),
        ("--duration", o.duration.is_some()),
        ("--requests", o.requests.is_some()),
        ("--concurrency", o.concurrency.is_some()),
    ];
    if let Some((flag, _)) = owned.iter().find(|(_, set)| *set) {
        return Err(bad(format!(
            "capacity sets the load itself (open-loop steps from --start-rate; docs/capacity.md): \
             drop {flag} (cap connections with --max-in-flight)"
        )));
    }
    let job = match c.scenario {
        Some(scenario) => {
            let r = &c.request;
            if r.body.is_some() || !r.headers.is_empty() || r.method != "GET" {
                return Err(bad(
                    "--method, --header and --body describe the one request of --target; \
                     a scenario has its own requests",
                ));
            }
            Job::Scenario(RunCmd {
                scenario,
                target: c.request.target,
                run: c.request.run,
            })
        }
        None => Job::Quick(c.request),
    };
    Ok((job, c.search))
}

/// Runs `loadgen capacity` and returns the exit code: 0 with a capacity, 99 when no step met the
/// objectives, 130 on Ctrl-C, 2 on bad input.
pub fn run(c: CapacityCmd) -> anyhow::Result<u8> {
    let (job, search) = job(c)?;
    let opts = match &job {
        Job::Quick(q) => &q.run,
        Job::Scenario(r) => &r.run,
    };
    let (rt, threads) = runtime(opts)?;
    rt.block_on(async move {
        let base = prepare(job, threads).await?;
        if base.thresholds.is_empty() {
            return Err(bad(
                "capacity needs at least one objective: pass --threshold, e.g. \
                 --threshold 'p99<100ms' --threshold 'success_rate>99%' (or `thresholds:` in the \
                 scenario)",
            ));
        }
        let outputs = Outputs::of(&base.opts);
        let (report, interrupted) = Driver::new(base, search).search().await?;
        finish(&report, &outputs, interrupted)
    })
}

/// Runs the steps.
struct Driver {
    base: Prepared,
    search: SearchArgs,
    settings: SearchSettings,
    max_in_flight: u64,
}

/// The watcher of the whole search and the wall-clock time its timeline counts from.
struct SearchWatch {
    handle: WatchHandle,
    epoch_ms: f64,
}

impl Driver {
    fn new(mut base: Prepared, search: SearchArgs) -> Self {
        let max_in_flight = base
            .opts
            .max_in_flight
            .or(base.scenario.load.keys.max_in_flight)
            .unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        // Steps are runs of their own: one report each (the command writes its own), metrics
        // served without lingering between steps, one run id across them, the search-wide watcher.
        let o = &mut base.opts;
        o.run_id = Some(o.run_id.clone().unwrap_or_else(|| {
            let ts = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
            format!(
                "{}-capacity-{}",
                base.scenario.name,
                ts.replace([':', '-'], "").trim_end_matches('Z')
            )
        }));
        o.metrics_linger = Duration::ZERO;
        Self {
            settings: search.settings(),
            base,
            search,
            max_in_flight,
        }
    }

    /// The run of one step at `rate`: `settle` then `measure`, open loop.
    fn step(&self, rate: f64, first: bool) -> Prepared {
        let s = &self.settings;
        let mut phases = Vec::new();
        if !s.step_warmup.is_zero() {
            phases.push(Phase {
                name: "settle".into(),
                duration: s.step_warmup,
                from: rate,
                to: rate,
            });
        }
        phases.push(Phase {
            name: "measure".into(),
            duration: s.step_duration - s.step_warmup,
            from: rate,
            to: rate,
        });
        let mut opts = self.base.opts.clone();
        opts.watch = None;
        opts.out = None;
        opts.html = None;
        if !first {
            opts.start_at = None;
        }
        Prepared {
            scenario: Arc::clone(&self.base.scenario),
            target: self.base.target.clone(),
            plan: LoadPlan::Open {
                phases,
                requests: None,
                max_in_flight: self.max_in_flight,
            },
            thresholds: self.base.thresholds.clone(),
            opts,
            threads: self.base.threads,
            timeout: self.base.timeout,
            lifetime: self.base.lifetime,
            overrides: Vec::new(),
        }
    }

    async fn watch(&self) -> anyhow::Result<Option<SearchWatch>> {
        let o = &self.base.opts;
        let Some(w) = &o.watch else {
            return Ok(None);
        };
        let cfg = WatchConfig::new(w, o.namespace.clone(), o.watch_interval)
            .map_err(|e| bad(e.to_string()))?;
        let epoch_ms = unix_ms(SystemTime::now());
        let handle = crate::watch::spawn(cfg, crate::metrics::WatchGauges::noop()).await;
        Ok(Some(SearchWatch { handle, epoch_ms }))
    }

    /// The judged window of a step's report on the watcher's clock, and the HPA's state in it.
    fn settle(w: &SearchWatch, r: &RunReport) -> (Settle, (f64, f64)) {
        let start = (r.started_at_unix_ms as f64 - w.epoch_ms) / 1000.0;
        let p = r.phases.last().cloned().unwrap_or_default();
        let window = (start + p.start_s, start + p.start_s + p.duration_s);
        (
            judge::settle(&w.handle.snapshot(), window.0, window.1),
            window,
        )
    }

    /// Runs the search; returns the report to write and whether it was interrupted.
    async fn search(self) -> anyhow::Result<(RunReport, bool)> {
        let quiet = self.base.opts.quiet;
        let watch = self.watch().await?;
        let started = Instant::now();
        let objectives: Vec<String> = self
            .base
            .thresholds
            .iter()
            .map(|t| t.expr.clone())
            .collect();
        let mut search = Search::new(self.settings.clone());
        let mut steps: Vec<StepRecord> = Vec::new();
        // The reports kept: the highest pass (the capacity report), else the first step's.
        let mut best: Option<RunReport> = None;
        let mut first: Option<RunReport> = None;
        let mut interrupted = false;
        let conclusion = loop {
            let rate = match search.next(started.elapsed()) {
                Next::Done(c) => break c,
                Next::Step(rate) => rate,
            };
            let n = search.steps() + 1;
            if !quiet {
                errln!(
                    "capacity step {n}: {} for {} (judging the last {})",
                    crate::report::capacity::rate(rate),
                    humantime::format_duration(self.settings.step_duration),
                    humantime::format_duration(
                        self.settings.step_duration - self.settings.step_warmup
                    )
                );
            }
            let mut attempts = 0;
            let (record, report) = loop {
                attempts += 1;
                let (mut report, stopped) = run_to_report(&self.step(rate, n == 1)).await?;
                interrupted = stopped;
                let settle = watch.as_ref().map(|w| Self::settle(w, &report));
                let mut record = judge::judge(
                    n,
                    rate,
                    &report,
                    &self.base.thresholds,
                    settle.as_ref().map(|(s, _)| s),
                );
                record.attempts = attempts;
                if let (Some(w), Some((_, window))) = (&watch, &settle) {
                    report.replicas = Some(judge::window_timeline(
                        &w.handle.snapshot(),
                        window.0 - report.phases.last().map_or(0.0, |p| p.start_s),
                        window.1,
                    ));
                }
                let waited = self.settings.step_duration * (attempts - 1);
                let room = self
                    .settings
                    .max_duration
                    .is_none_or(|max| started.elapsed() + self.settings.step_duration <= max);
                let unsettled = matches!(record.verdict, Verdict::Unsettled { .. })
                    && waited + self.settings.step_duration <= self.search.settle_timeout;
                if (unsettled || record.verdict.run_again(attempts)) && !interrupted && room {
                    if !quiet {
                        errln!("  {}: repeating the step", record.verdict.reason());
                    }
                    continue;
                }
                break (record, report);
            };
            if !quiet {
                errln!(
                    "  {} (achieved {:.1}/s, p99 {}, success {:.2}%){}",
                    record.verdict.label(),
                    record.achieved_rps,
                    crate::humanize::ms(record.latency_ms.p99),
                    record.success_rate,
                    match record.verdict.reason() {
                        r if r.is_empty() => String::new(),
                        r => format!(": {r}"),
                    }
                );
            }
            search.record(rate, record.verdict.clone());
            if record.verdict.passed() {
                best = Some(keep(report, &record));
            } else if first.is_none() && best.is_none() {
                first = Some(keep(report, &record));
            }
            steps.push(record);
            if interrupted {
                break search.conclude(StopReason::Interrupted);
            }
        };
        if let Some(w) = watch {
            w.handle.finish().await;
        }
        let mut report = best
            .or(first)
            .ok_or_else(|| anyhow::anyhow!("the search ran no step"))?;
        report.capacity = Some(CapacitySection::new(
            &conclusion,
            self.settings,
            objectives,
            steps,
            started.elapsed().as_secs_f64(),
        ));
        Ok((report, interrupted))
    }
}

/// A step's report as the capacity report: its thresholds are the objectives on the judged window.
fn keep(mut report: RunReport, record: &StepRecord) -> RunReport {
    report.thresholds = record.objectives.clone();
    report
}

fn unix_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}
