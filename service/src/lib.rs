//! The workload under test: the classic tutorial endpoints, knobs for CPU- and I/O-bound load,
//! and the operational behaviour (probes, drain, shedding, metrics) that decides how it fares in
//! a container and under an autoscaler. `main.rs` only parses flags and calls into this crate.
//!
//! # Layout
//!
//! In the order a process and then a request pass through them:
//!
//! - [`config`]: every setting, a flag with an env twin; [`cpu`] reads the cgroup CPU quota that
//!   sizes the runtime and the CPU pool.
//! - [`telemetry`]: logs and OTLP traces; [`metrics`]: the metric contract's recorder and the
//!   per-request layer (names in `docs/metrics.md`).
//! - [`startup`]: binds both listeners ([`listener`]) and builds the router over [`state`]; the
//!   app runs until [`shutdown`] (readiness off, drain, close, wait) says it is done.
//! - [`serve`]: the accept loop (the connection limit, the TLS handshake of [`tls`]'s server
//!   configuration), one task per connection; [`connection`]: one connection from its first byte
//!   to its close (header-read and idle timeouts, the maximum connection age).
//! - [`middleware`]: per request, in front of the handlers: load shedding, the request timeout,
//!   fault injection, the `x-served-by` header.
//! - [`routes`]: one file per route group; CPU-bound handlers hand their work ([`prime`]) to
//!   [`pool`], off the async runtime, past [`admission`] (a job is queued while its expected wait
//!   is within budget, shed at once otherwise); tasks live in the bounded [`store`].
//! - [`error`]: the one JSON error shape every failure ends in; [`openapi`]: the document
//!   generated from the handlers.
//! - [`healthcheck`]: the `workload healthcheck` subcommand, a client of `/healthz` (over
//!   [`probe_tls`] when the server serves HTTPS); [`check_config`]: `workload check-config`, the
//!   step that runs before the server serves.

pub mod admission;
pub mod check_config;
pub mod config;
pub mod connection;
pub mod cpu;
pub mod error;
pub mod healthcheck;
pub mod listener;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod pool;
pub mod prime;
pub mod probe_tls;
pub mod routes;
pub mod serve;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tls;

pub use config::{Cli, Command, Config};
pub use startup::Application;
