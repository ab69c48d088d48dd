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
//! In the order a run's data flows through them. No two modules import each other, directly or
//! round a circle, and [`model`] (the run's data) imports none of the modules that fill or read it:
//!
//! - [`cli`]: the command line, every clap struct of every subcommand ([`parse`] holds the value
//!   parsers it shares with scenario files); [`app`] dispatches each subcommand to its file under
//!   [`cmd`] (`run`, `capacity`, `merge`, `compare`, `report`), and [`cmd::finish()`] turns every
//!   finished report into its outputs and exit code.
//! - [`scenario`]: the file (YAML or TOML) parsed once into its [`scenario::spec`] types and
//!   compiled into a request mix, templates, captures, thresholds and a typed [`plan`] (format in
//!   `docs/scenarios.md`); [`plan`]: the load model, when each arrival is due; [`overrides`]: the
//!   command line's load flags over a scenario's `load:` block, key by key; [`lifetime`]: how
//!   long a connection lives; [`limits`]: bounds on untrusted input.
//! - [`engine`]: workers that follow the plan and send through [`client`] (one connection per
//!   worker: HTTP/1.1 by its own wire client, HTTP/2 by hyper, TLS by rustls), recording each
//!   outcome once into one sink ([`engine::sink`]) that fans out to the stats, the metrics and the
//!   progress counters.
//! - [`stats`]: HDR histograms and the per-second series, in constant memory; [`metrics`]: the
//!   same outcomes as Prometheus series, scraped or pushed by remote write (`docs/metrics.md`);
//!   [`progress`]: the live line on the terminal; [`watch`]: Deployment and HPA (or Knative
//!   Configuration/Revision and PodAutoscaler) replicas over time, beside them; [`coldstart`]:
//!   requests sent while the watched target had no ready replica, measured by the client (the
//!   watcher writes its zero signal, the workers read it); [`selfmon`]: the generator's own CPU,
//!   its CPU quota's throttling and schedule lag, and whether it was the bottleneck.
//! - [`model`]: the run's data as the JSON report holds it: the report and its summary, time
//!   points, histograms, per-phase rows, the replica timeline and scale events, a capacity
//!   search's section, one request's outcome, and the arithmetic from counts to figures
//!   ([`model::figures`]).
//! - [`analysis`]: what each scale-out cost and whether load reached the ready pods, from the
//!   model; [`threshold`] judges the model, pass or fail, and [`exit`] turns that into the exit code.
//! - [`capacity`]: the capacity search (which rate next, the verdict of a step) with no I/O;
//!   `cmd::capacity` runs its steps through the pipeline above, one open-loop run per step.
//! - [`report`]: merges reports and renders the model, each section's terminal renderer beside its
//!   HTML one (`report/capacity.rs` and `report/html/capacity.rs`); only `cmd` imports it. The
//!   layers before it write for a reader through two leaves: [`console`] (the terminal, a closed
//!   pipe ignored) and [`humanize`] (durations and counts as the summary prints them).

pub mod analysis;
pub mod app;
pub mod capacity;
pub mod cli;
pub mod client;
pub mod cmd;
pub mod coldstart;
pub mod console;
pub mod engine;
pub mod exit;
pub mod humanize;
pub mod lifetime;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod overrides;
pub mod parse;
pub mod plan;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod selfmon;
pub mod stats;
pub mod threshold;
pub mod watch;
