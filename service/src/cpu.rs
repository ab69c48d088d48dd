//! How much CPU the process may use: the cgroup quota (v2 `cpu.max`, v1 CFS quota), else the
//! host's cores the process may run on. A container limited to 1 CPU on a 32-core node must not
//! start 32 runtime workers: they would contend for the quota and get throttled together.
//!
//! "The host's cores" means the online CPUs capped at the CPU affinity mask (`taskset`,
//! `docker --cpuset-cpus`, a Kubernetes static CPU-manager pinning): a process pinned to 2 of 32
//! cores runs at most 2 threads at a time, whatever the quota says.

use std::path::{Path, PathBuf};

/// Where the CPU figure came from.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum QuotaSource {
    CgroupV2,
    CgroupV1,
    /// No quota tighter than the online CPUs the affinity mask allows.
    Host,
}

/// CPUs the process is allowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuQuota {
    /// Fractional cores, e.g. 1.5 for `cpu.max = "150000 100000"`.
    pub cores: f64,
    pub source: QuotaSource,
}

impl CpuQuota {
    /// Whole worker threads for this quota: rounded up, at least 1.
    pub fn worker_threads(&self) -> usize {
        (self.cores.ceil() as usize).max(1)
    }
}

/// Detects the quota of the current process from the real `/sys/fs/cgroup` and `/proc/self/cgroup`.
pub fn detect() -> CpuQuota {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").ok();
    let status = std::fs::read_to_string("/proc/self/status").ok();
    // Not `available_parallelism` first: on Linux it already applies the cgroup quota (rounded
    // down), so a quota of 1.5 would read as a host of 1 core and never win against it.
    let host = host_cores(online.as_deref(), status.as_deref())
        .or_else(|| std::thread::available_parallelism().map(|n| n.get()).ok())
        .unwrap_or(1);
    let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    detect_in(Path::new("/sys/fs/cgroup"), &proc_cgroup, host)
}

/// Cores the process may run on, without cgroup quotas: the online CPUs (text of
/// `/sys/devices/system/cpu/online`) capped at the affinity mask (`Cpus_allowed_list` in the text
/// of `/proc/self/status`). Either figure alone when the other is unreadable; None when neither is.
pub fn host_cores(online: Option<&str>, proc_status: Option<&str>) -> Option<usize> {
    let online = online.and_then(parse_cpu_list);
    let allowed = proc_status.and_then(parse_cpus_allowed);
    match (online, allowed) {
        (Some(online), Some(allowed)) => Some(online.min(allowed)),
        (online, allowed) => online.or(allowed),
    }
}

/// CPUs in the affinity mask, from the `Cpus_allowed_list:` line of `/proc/<pid>/status`.
pub fn parse_cpus_allowed(proc_status: &str) -> Option<usize> {
    proc_status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .and_then(parse_cpu_list)
}

/// Detection against a given cgroup mount root, `/proc/self/cgroup` text and host core count, so
/// tests can point it at a fake hierarchy. The smaller of the quota and the host cores wins.
pub fn detect_in(root: &Path, proc_cgroup: &str, host_cores: usize) -> CpuQuota {
    let host = CpuQuota {
        cores: host_cores.max(1) as f64,
        source: QuotaSource::Host,
    };
    let found = v2_quota(root, proc_cgroup)
        .map(|c| (c, QuotaSource::CgroupV2))
        .or_else(|| v1_quota(root, proc_cgroup).map(|c| (c, QuotaSource::CgroupV1)));
    match found {
        Some((cores, source)) if cores < host.cores => CpuQuota { cores, source },
        _ => host,
    }
}

/// Counts the CPUs of a kernel CPU list such as `"0-3,8,10-11"` (`/sys/devices/system/cpu/online`).
pub fn parse_cpu_list(text: &str) -> Option<usize> {
    let mut count = 0usize;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        count += match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (lo.parse::<usize>().ok()?, hi.parse::<usize>().ok()?);
                hi.checked_sub(lo)? + 1
            }
            None => {
                part.parse::<usize>().ok()?;
                1
            }
        };
    }
    (count > 0).then_some(count)
}

/// Parses a v2 `cpu.max` line: `"max 100000"` (no limit) or `"<quota> <period>"`.
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut parts = text.split_whitespace();
    let quota = parts.next()?;
    let period: f64 = parts.next().map_or(Some(100_000.0), |p| p.parse().ok())?;
    if quota == "max" || period <= 0.0 {
        return None;
    }
    let quota: f64 = quota.parse().ok()?;
    (quota > 0.0).then_some(quota / period)
}

/// Cgroup v2: the smallest `cpu.max` on the path from the process's cgroup up to the root
/// (a parent's limit binds its children too).
fn v2_quota(root: &Path, proc_cgroup: &str) -> Option<f64> {
    let rel = proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/");
    let mut best: Option<f64> = None;
    for dir in ancestors(root, rel) {
        if let Some(cores) = std::fs::read_to_string(dir.join("cpu.max"))
            .ok()
            .and_then(|t| parse_cpu_max(&t))
        {
            best = Some(best.map_or(cores, |b| b.min(cores)));
        }
    }
    best
}

/// Cgroup v1: `cpu.cfs_quota_us / cpu.cfs_period_us` in the `cpu` controller (quota -1 = none).
fn v1_quota(root: &Path, proc_cgroup: &str) -> Option<f64> {
    let rel = proc_cgroup
        .lines()
        .find_map(|l| {
            let mut fields = l.splitn(3, ':');
            let _id = fields.next()?;
            let controllers = fields.next()?;
            let path = fields.next()?;
            controllers.split(',').any(|c| c == "cpu").then_some(path)
        })
        .unwrap_or("/");
    let mut best: Option<f64> = None;
    for mount in ["cpu,cpuacct", "cpu", "cpuacct,cpu"] {
        let base = root.join(mount);
        if !base.is_dir() {
            continue;
        }
        // In a container the controller is usually mounted at the container's own cgroup, so the
        // path from /proc/self/cgroup may not exist below it; the mount root is tried as well.
        for dir in ancestors(&base, rel) {
            let read = |name: &str| -> Option<f64> {
                std::fs::read_to_string(dir.join(name))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()
            };
            if let (Some(quota), Some(period)) =
                (read("cpu.cfs_quota_us"), read("cpu.cfs_period_us"))
                && quota > 0.0
                && period > 0.0
            {
                let cores = quota / period;
                best = Some(best.map_or(cores, |b| b.min(cores)));
            }
        }
        break;
    }
    best
}

/// `root/rel`, then each parent up to and including `root`.
fn ancestors(root: &Path, rel: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut current = root.to_path_buf();
    out.push(current.clone());
    for part in rel.split('/').filter(|p| !p.is_empty() && *p != "..") {
        current.push(part);
        out.push(current.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn cpu_lists_count_ranges_and_single_cpus() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(2));
        assert_eq!(parse_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    const STATUS: &str = "Name:\tworkload\nThreads:\t3\nCpus_allowed:\t0f\nCpus_allowed_list:\t0-1,6\nMems_allowed_list:\t0\n";

    #[test]
    fn affinity_is_read_from_the_cpus_allowed_list_line() {
        assert_eq!(parse_cpus_allowed(STATUS), Some(3));
        assert_eq!(parse_cpus_allowed("Cpus_allowed_list:\t5\n"), Some(1));
        // The hex mask line and the memory-node list are not the affinity list.
        assert_eq!(
            parse_cpus_allowed("Cpus_allowed:\tff\nMems_allowed_list:\t0-7\n"),
            None
        );
        assert_eq!(parse_cpus_allowed("Cpus_allowed_list:\t\n"), None);
        assert_eq!(parse_cpus_allowed(""), None);
    }

    #[test]
    fn host_cores_are_the_online_cpus_capped_at_the_affinity() {
        // taskset -c 0-1,6 on an 8-core host: 3 cores, not 8.
        assert_eq!(host_cores(Some("0-7\n"), Some(STATUS)), Some(3));
        // An affinity mask naming more CPUs than are online cannot add any.
        assert_eq!(
            host_cores(Some("0-1\n"), Some("Cpus_allowed_list:\t0-63\n")),
            Some(2)
        );
        assert_eq!(host_cores(None, Some(STATUS)), Some(3));
        assert_eq!(host_cores(Some("0-3"), None), Some(4));
        assert_eq!(host_cores(Some("0-3"), Some("no such line")), Some(4));
        assert_eq!(host_cores(None, None), None);
    }

    #[test]
    fn a_fractional_quota_still_wins_over_a_pinned_host() {
        // --cpuset-cpus 0-3 --cpus 1.5: the quota is the tighter figure.
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cpu.max"), "150000 100000\n").unwrap();
        let host = host_cores(Some("0-31"), Some("Cpus_allowed_list:\t0-3\n")).unwrap();
        let q = detect_in(dir.path(), "0::/\n", host);
        assert_eq!(q.cores, 1.5);
        assert_eq!(q.source, QuotaSource::CgroupV2);
        // --cpuset-cpus 0 --cpus 1.5: the pinning is.
        let host = host_cores(Some("0-31"), Some("Cpus_allowed_list:\t0\n")).unwrap();
        let q = detect_in(dir.path(), "0::/\n", host);
        assert_eq!(q.cores, 1.0);
        assert_eq!(q.source, QuotaSource::Host);
    }

    #[test]
    fn cpu_max_parsing() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_cpu_max("50000 100000"), Some(0.5));
        assert_eq!(parse_cpu_max("garbage"), None);
        assert_eq!(parse_cpu_max(""), None);
        assert_eq!(parse_cpu_max("100000 0"), None);
    }

    #[test]
    fn v2_quota_of_nested_cgroup_takes_the_tightest_limit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("kubepods/pod1")).unwrap();
        fs::write(root.join("cpu.max"), "max 100000\n").unwrap();
        fs::write(root.join("kubepods/cpu.max"), "300000 100000\n").unwrap();
        fs::write(root.join("kubepods/pod1/cpu.max"), "150000 100000\n").unwrap();
        let q = detect_in(root, "0::/kubepods/pod1\n", 8);
        assert_eq!(q.cores, 1.5);
        assert_eq!(q.source, QuotaSource::CgroupV2);
        assert_eq!(q.worker_threads(), 2);
    }

    #[test]
    fn v2_without_limit_falls_back_to_host() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cpu.max"), "max 100000\n").unwrap();
        let q = detect_in(dir.path(), "0::/\n", 4);
        assert_eq!(q.cores, 4.0);
        assert_eq!(q.source, QuotaSource::Host);
    }

    #[test]
    fn quota_above_host_cores_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cpu.max"), "800000 100000\n").unwrap();
        let q = detect_in(dir.path(), "0::/\n", 2);
        assert_eq!(q.cores, 2.0);
        assert_eq!(q.source, QuotaSource::Host);
    }

    #[test]
    fn v1_cfs_quota() {
        let dir = tempfile::tempdir().unwrap();
        let cpu = dir.path().join("cpu,cpuacct");
        fs::create_dir_all(&cpu).unwrap();
        fs::write(cpu.join("cpu.cfs_quota_us"), "50000\n").unwrap();
        fs::write(cpu.join("cpu.cfs_period_us"), "100000\n").unwrap();
        let q = detect_in(dir.path(), "4:cpu,cpuacct:/docker/abc\n", 16);
        assert_eq!(q.cores, 0.5);
        assert_eq!(q.source, QuotaSource::CgroupV1);
        assert_eq!(q.worker_threads(), 1);
    }

    #[test]
    fn v1_unlimited_quota() {
        let dir = tempfile::tempdir().unwrap();
        let cpu = dir.path().join("cpu");
        fs::create_dir_all(&cpu).unwrap();
        fs::write(cpu.join("cpu.cfs_quota_us"), "-1\n").unwrap();
        fs::write(cpu.join("cpu.cfs_period_us"), "100000\n").unwrap();
        let q = detect_in(dir.path(), "3:cpu:/\n", 3);
        assert_eq!(q.source, QuotaSource::Host);
        assert_eq!(q.cores, 3.0);
    }

    #[test]
    fn real_machine_gives_a_positive_figure() {
        let q = detect();
        assert!(q.cores > 0.0);
        assert!(q.worker_threads() >= 1);
    }
}
