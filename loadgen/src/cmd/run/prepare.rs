//! A run validated before anything is sent: the scenario compiled, the target, the plan with the
//! command line's load flags, thresholds, connection lifetime, and every flag that could fail
//! later (watch, remote write, `--out`, `--start-at`) checked now.

use std::sync::Arc;
use std::time::Duration;

use crate::cli::{QuickArgs, RunCmd, RunOpts};
use crate::client::Target;
use crate::cmd::bad;
use crate::lifetime::ConnectionLifetime;
use crate::plan::LoadPlan;
use crate::scenario::Scenario;
use crate::threshold::Threshold;

use super::remote_write_pusher;

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What to run: the quick form or a scenario file.
pub enum Job {
    Quick(QuickArgs),
    Scenario(RunCmd),
}

impl Job {
    /// The run flags the two forms share.
    pub fn opts(&self) -> &RunOpts {
        match self {
            Job::Quick(q) => &q.run,
            Job::Scenario(r) => &r.run,
        }
    }
}

/// Everything a run needs, validated.
pub struct Prepared {
    pub scenario: Arc<Scenario>,
    pub target: Target,
    pub plan: LoadPlan,
    pub thresholds: Vec<Threshold>,
    pub opts: RunOpts,
    pub threads: usize,
    pub timeout: Duration,
    pub lifetime: ConnectionLifetime,
    /// The load flags that replaced keys of the scenario's `load:` block (`--duration 2m 30s`),
    /// for the summary's first line; empty without a scenario file.
    pub overrides: Vec<String>,
}

/// How far in the past `--start-at` may be: a worker that starts a little late (a slow image
/// pull) starts at once and says so; one much later was given a wrong time.
pub const START_AT_MAX_PAST: Duration = Duration::from_secs(60);
/// How far ahead `--start-at` may be: more than a day is a typo (a wrong year or unit).
pub const START_AT_MAX_AHEAD: Duration = Duration::from_secs(86_400);

/// Checks `--start-at` against the clock: how long to wait (zero when it is a little past).
pub fn start_wait(
    at: std::time::SystemTime,
    now: std::time::SystemTime,
) -> Result<Duration, String> {
    let when = humantime::format_rfc3339_millis(at);
    match at.duration_since(now) {
        Ok(ahead) if ahead > START_AT_MAX_AHEAD => Err(format!(
            "--start-at {when} is {} ahead: more than {} (a wrong date or unit?)",
            humantime::format_duration(Duration::from_secs(ahead.as_secs())),
            humantime::format_duration(START_AT_MAX_AHEAD)
        )),
        Ok(ahead) => Ok(ahead),
        Err(e) if e.duration() > START_AT_MAX_PAST => Err(format!(
            "--start-at {when} is {} in the past: more than {} (workers meant to start together would not)",
            humantime::format_duration(Duration::from_secs(e.duration().as_secs())),
            humantime::format_duration(START_AT_MAX_PAST)
        )),
        Err(_) => Ok(Duration::ZERO),
    }
}

/// Validates a job into everything its run needs (nothing is sent yet).
pub async fn prepare(job: Job, threads: usize) -> anyhow::Result<Prepared> {
    let from_file_job = matches!(job, Job::Scenario(_));
    let (scenario, target, opts) = match job {
        Job::Quick(q) => quick(q)?,
        Job::Scenario(r) => from_file(r)?,
    };
    let plan = crate::overrides::apply(&scenario.load, &opts.load_flags()).map_err(bad)?;
    let overrides = if from_file_job {
        opts.load_flags_given()
    } else {
        Vec::new()
    };
    let lifetime = ConnectionLifetime::resolve(&opts.lifetime(), &scenario.lifetime, opts.http2)
        .map_err(bad)?;
    if let Some(at) = opts.start_at {
        start_wait(at, std::time::SystemTime::now()).map_err(bad)?;
    }
    let mut thresholds = scenario.thresholds.clone();
    thresholds.extend(crate::threshold::parse_all(&opts.thresholds).map_err(bad)?);
    check_outputs(&opts)?;
    let timeout = opts.timeout.or(scenario.timeout).unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        return Err(bad("--timeout must be above 0"));
    }
    Ok(Prepared {
        scenario: Arc::new(scenario),
        target,
        plan,
        thresholds,
        opts,
        threads,
        timeout,
        lifetime,
        overrides,
    })
}

/// The quick form: a one-request scenario for the URL's path (a body from `@FILE` is read now).
fn quick(q: QuickArgs) -> anyhow::Result<(Scenario, Target, RunOpts)> {
    let url = q.target.as_deref().ok_or_else(|| {
        bad("missing --target URL (or use a subcommand: run, compare, merge); see --help")
    })?;
    let mut target = Target::parse(url).map_err(bad)?;
    let path = std::mem::take(&mut target.path_and_query);
    target.base_path.clear();
    let body = match q.body {
        Some(b) if b.starts_with('@') => Some(
            std::fs::read_to_string(&b[1..])
                .map_err(|e| bad(format!("cannot read body file {}: {e}", &b[1..])))?,
        ),
        other => other,
    };
    let scenario = Scenario::single(&q.method, &path, &q.headers, body).map_err(bad)?;
    target.path_and_query = path;
    Ok((scenario, target, q.run))
}

/// A scenario file, and its target: `--target`, else the file's `target:`.
fn from_file(r: RunCmd) -> anyhow::Result<(Scenario, Target, RunOpts)> {
    let scenario = Scenario::load(&r.scenario).map_err(|e| bad(e.to_string()))?;
    let target = match (&r.target, &scenario.target) {
        (Some(url), _) => Target::parse(url).map_err(bad)?,
        (None, Some(target)) => target.clone(),
        (None, None) => {
            return Err(bad(format!(
                "no target: pass --target URL or set `target:` in {}",
                r.scenario.display()
            )));
        }
    };
    Ok((scenario, target, r.run))
}

/// The flags whose mistakes would otherwise surface only once the run is over or under way:
/// `--watch`, `--remote-write` and the directory of `--out`.
fn check_outputs(opts: &RunOpts) -> anyhow::Result<()> {
    if let Some(w) = &opts.watch {
        crate::watch::WatchConfig::new(w, opts.namespace.clone(), opts.watch_interval)
            .map_err(|e| bad(e.to_string()))?;
    }
    remote_write_pusher(opts)?;
    if let Some(out) = &opts.out
        && out != "-"
        && let Some(dir) = std::path::Path::new(out).parent()
        && !dir.as_os_str().is_empty()
        && !dir.is_dir()
    {
        return Err(bad(format!(
            "--out {out}: directory {} does not exist",
            dir.display()
        )));
    }
    Ok(())
}
