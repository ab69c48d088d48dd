//! loadgen: an honest HTTP load generator.
//!
//! Open loop (arrival rate) and closed loop (users), latency from the intended start in open loop
//! (no coordinated omission), HDR histograms in constant memory, mergeable JSON reports,
//! thresholds, Prometheus metrics and remote write, and a Kubernetes replica watcher.
//!
//! `main.rs` only calls [`app::main`]; everything else is here so tests drive the real code.

pub mod app;
pub mod cli;
pub mod client;
pub mod console;
pub mod engine;
pub mod exit;
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
