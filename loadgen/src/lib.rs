//! loadgen: an honest HTTP load generator.
//!
//! Open loop (arrival rate) and closed loop (users), latency from the intended start in open loop
//! (no coordinated omission), HDR histograms in constant memory, mergeable JSON reports,
//! thresholds, Prometheus metrics and remote write, and a Kubernetes replica watcher.
//!
//! `main.rs` only calls [`app::main`]; everything else is here so tests drive the real code.
//!
//! # Layout
//!
//! In the order a run's data flows through them:
//!
//! - [`cli`]: the command line ([`parse`] holds the value parsers it shares with scenario files);
//!   [`app`] dispatches each subcommand to its file under [`cmd`] (`run`, `capacity`, `merge`,
//!   `compare`, `report`), and [`cmd::finish()`] turns every finished report into its outputs and exit code.
//! - [`scenario`]: the file (YAML or TOML) parsed once into its [`scenario::spec`] types and
//!   compiled into a request mix, templates, captures, thresholds and a typed [`plan`] (format in
//!   `docs/scenarios.md`); [`plan`]: the load model, when each arrival is due; [`lifetime`]: how
//!   long a connection lives; [`limits`]: bounds on untrusted input.
//! - [`engine`]: workers that follow the plan and send through [`client`] (one keep-alive
//!   connection per worker, hyper), recording each outcome once into one sink
//!   ([`engine::sink`]) that fans out to the stats, the metrics and the progress counters.
//! - [`stats`]: HDR histograms and the per-second series, in constant memory; [`metrics`]: the
//!   same outcomes as Prometheus series, scraped or pushed by remote write (`docs/metrics.md`);
//!   [`progress`]: the live line on the terminal; [`watch`]: Deployment and HPA replicas over
//!   time, beside them.
//! - [`selfmon`]: the generator's own CPU and schedule lag, and whether it was the bottleneck.
//! - [`model`]: the run's data (the report, summary, time points, histograms, one request's
//!   outcome), which [`analysis`] reads for scale-out costs and [`threshold`] judges, pass or fail,
//!   and which [`exit`] turns into the exit code.
//! - [`report`]: renders the model (terminal summary, `compare` table, HTML pages) and merges
//!   reports; [`console`] writes to the terminal.
//! - [`capacity`]: the capacity search (which rate next, the verdict of a step, the step table)
//!   with no I/O; `cmd::capacity` runs its steps through the pipeline above, one open-loop run
//!   per step.

pub mod analysis;
pub mod app;
pub mod capacity;
pub mod cli;
pub mod client;
pub mod cmd;
pub mod console;
pub mod engine;
pub mod exit;
pub mod lifetime;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod parse;
pub mod plan;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod selfmon;
pub mod stats;
pub mod threshold;
pub mod watch;
