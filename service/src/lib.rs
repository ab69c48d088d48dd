//! The workload under test: the classic tutorial endpoints, knobs for CPU- and I/O-bound load,
//! and the operational behaviour (probes, drain, shedding, metrics) that decides how it fares in
//! a container and under an autoscaler. `main.rs` only parses flags and calls into this crate.

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
