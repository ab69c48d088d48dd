//! What handlers share.

use std::sync::Arc;

use crate::cpu::CpuQuota;
use crate::metrics::Metrics;
use crate::pool::CpuPool;
use crate::shutdown::Lifecycle;
use crate::store::TaskStore;

/// Facts about this instance, fixed at startup.
#[derive(Debug, Clone)]
pub struct Instance {
    pub version: &'static str,
    pub hostname: String,
    pub cpu_quota: CpuQuota,
    pub max_in_flight: usize,
    pub max_work_ms: u64,
    /// `--request-timeout`: bounds CPU burns (see [`crate::pool::burn_wall_cap`]).
    pub request_timeout: std::time::Duration,
}

/// Handler state: cheap to clone (all shared pointers).
#[derive(Debug, Clone)]
pub struct AppState {
    pub instance: Arc<Instance>,
    pub store: Arc<TaskStore>,
    pub pool: CpuPool,
    pub lifecycle: Lifecycle,
    pub metrics: Arc<Metrics>,
}

/// The kernel's hostname (the pod name on Kubernetes, the container id on Docker).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}
