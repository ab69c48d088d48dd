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
//!   [`app`] dispatches the subcommands and runs the pipeline below.
//! - [`scenario`]: the file (YAML or TOML) compiled into a request mix, templates and captures
//!   (format in `docs/scenarios.md`); [`plan`]: the load model, when each arrival is due.
//! - [`engine`]: workers that follow the plan and send through [`client`] (one keep-alive
//!   connection per worker, hyper), recording each outcome.
//! - [`stats`]: HDR histograms and the per-second series, in constant memory; [`metrics`]: the
//!   same outcomes as Prometheus series, scraped or pushed by remote write (`docs/metrics.md`);
//!   [`watch`]: Deployment and HPA replicas over time, beside them.
//! - [`selfmon`]: the generator's own CPU and schedule lag, and whether it was the bottleneck.
//! - [`report`]: the JSON report, `merge`, `compare` and the HTML pages; [`threshold`]: pass or
//!   fail on the summary, which [`exit`] turns into the exit code.
//! - [`console`] and [`progress`]: the terminal output while and after the run.

pub mod analysis;
pub mod app;
pub mod cli;
pub mod client;
pub mod cmd;
pub mod console;
pub mod engine;
pub mod exit;
pub mod lifetime;
pub mod limits;
pub mod metrics;
pub mod parse;
pub mod plan;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod selfmon;
pub mod stats;
pub mod threshold;
pub mod watch;
