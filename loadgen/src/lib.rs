//! The load generator.
pub mod watch;
