//! One module per route group.

pub mod hello;
pub mod ops;
pub mod ping;
pub mod tasks;
pub mod work;
