//! `loadgen run SCENARIO` and the quick `loadgen --target URL`: one run, end to end.
//!
//! The steps, each public so other commands (a capacity search) can run steps of their own:
//! [`runtime`] starts the async runtime, [`prepare`] validates everything before a request is
//! sent, [`run_to_report`] runs the plan with its metrics, watch and Ctrl-C handling and builds
//! the report ([`build_report`]), and [`super::finish`] writes it and picks the exit code.

mod build;
mod ctrl_c;
mod exposure;
mod prepare;
mod session;

pub use build::build_report;
pub use exposure::remote_write_pusher;
pub use prepare::{
    DEFAULT_TIMEOUT, Job, Prepared, START_AT_MAX_AHEAD, START_AT_MAX_PAST, prepare, start_wait,
};
pub use session::run_to_report;

use anyhow::Context;

use crate::cli::RunOpts;

use super::{Outputs, finish};

/// Runs a job on its own runtime and returns the exit code.
pub fn run(job: Job) -> anyhow::Result<u8> {
    let (rt, threads) = runtime(job.opts())?;
    rt.block_on(async move {
        let prepared = prepare(job, threads).await?;
        execute(prepared).await
    })
}

/// The async runtime of a run (`--threads`, default the cores available) and its thread count.
pub fn runtime(opts: &RunOpts) -> anyhow::Result<(tokio::runtime::Runtime, usize)> {
    let threads = opts.threads.map(|t| t as usize).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    // One thread: the current-thread scheduler, whose tasks wake each other without the atomics
    // and cross-thread hand-offs of the work-stealing one (wrk -t1 is one thread too).
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let rt = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok((rt, threads))
}

/// Runs a prepared plan end to end and returns the exit code.
pub async fn execute(p: Prepared) -> anyhow::Result<u8> {
    let (report, interrupted) = run_to_report(&p).await?;
    finish(&report, &Outputs::of(&p.opts), interrupted)
}
