//! How often the kernel held the generator back for its CPU quota: the `cpu.stat` counters of
//! the cgroups it runs in, `nr_periods` (the quota's enforcement periods in which the group ran)
//! and `nr_throttled` (those in which it used up its quota and had to stop), the same names on
//! cgroup v1 and v2 and the ratio cAdvisor's `container_cpu_cfs_throttled_periods_total` gives.
//!
//! Why not only the generator's CPU time: in a container with `--cpus 0.5` or a pod with a CPU
//! limit, a generator that wants more than its quota uses exactly its quota, half a core, which
//! looks like a quiet generator against the threads it runs. Throttling is the kernel saying, in
//! so many words, that it had work and was not allowed to run it. (Not the throttled *time*: the
//! kernel adds it up over the CPUs, so it is no share of the wall clock.)
//!
//! Every group from the process's own up to the hierarchy's root is read, since a parent's quota
//! (a pod's, above its containers') holds back the processes of all its children; in a container
//! whose cgroup namespace shows its own group as the root, the mount root is that group.

use std::path::{Path, PathBuf};

/// A quota's enforcement periods in which the group ran, and those it was throttled in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Periods {
    pub total: u64,
    pub throttled: u64,
}

impl Periods {
    /// The counters of a `cpu.stat` text; None when it has none (a group without a CPU
    /// controller, the root group of v2).
    pub fn parse(cpu_stat: &str) -> Option<Self> {
        let field = |name: &str| {
            cpu_stat.lines().find_map(|l| {
                let (key, value) = l.split_once(' ')?;
                (key == name).then(|| value.trim().parse::<u64>().ok())?
            })
        };
        Some(Self {
            total: field("nr_periods")?,
            throttled: field("nr_throttled")?,
        })
    }

    /// The periods from `earlier` to `self` (counters only grow; a reset reads as none).
    fn since(self, earlier: Self) -> Self {
        Self {
            total: self.total.saturating_sub(earlier.total),
            throttled: self.throttled.saturating_sub(earlier.throttled),
        }
    }

    /// Share (0..1) of the periods throttled; 0 when the group ran no period under a quota.
    pub fn share(self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.throttled as f64 / self.total as f64).min(1.0)
        }
    }
}

/// The `cpu.stat` files that may throttle this process, from `/proc/self/cgroup`'s text and the
/// cgroup mount `root`: on v2 (`0::PATH`) its unified group and their ancestors; on v1 the `cpu`
/// controller's hierarchy (mounted as `cpu`, `cpu,cpuacct` or `cpuacct,cpu`). Only files that
/// exist are returned.
pub fn cpu_stat_files(root: &Path, proc_cgroup: &str) -> Vec<PathBuf> {
    let v1 = proc_cgroup.lines().find_map(|l| {
        let mut fields = l.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        controllers.split(',').any(|c| c == "cpu").then_some(path)
    });
    let mounts: Vec<(PathBuf, &str)> = match v1 {
        Some(path) => ["cpu", "cpu,cpuacct", "cpuacct,cpu"]
            .iter()
            .map(|m| (root.join(m), path))
            .collect(),
        None => proc_cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .map(|path| vec![(root.to_path_buf(), path)])
            .unwrap_or_default(),
    };
    let mut files = Vec::new();
    for (mount, path) in mounts {
        let mut dir = mount.clone();
        let mut dirs = vec![dir.clone()];
        for part in path.split('/').filter(|p| !p.is_empty() && *p != "..") {
            dir.push(part);
            dirs.push(dir.clone());
        }
        files.extend(
            dirs.into_iter()
                .map(|d| d.join("cpu.stat"))
                .filter(|f| f.is_file()),
        );
    }
    files
}

/// The throttle counters of this process's groups, read again at every tick.
#[derive(Debug)]
pub struct ThrottleClock {
    files: Vec<PathBuf>,
    /// Each file's counters when the clock started, and at the previous reading.
    first: Vec<Option<Periods>>,
    last: Vec<Option<Periods>>,
}

impl ThrottleClock {
    /// This process's groups; None where no group with throttle counters is readable (not Linux,
    /// no cgroup CPU controller mounted).
    pub fn of_this_process() -> Option<Self> {
        let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        Self::over(cpu_stat_files(Path::new("/sys/fs/cgroup"), &proc_cgroup))
    }

    /// A clock over the given `cpu.stat` files, started now; None when none has throttle counters.
    pub fn over(files: Vec<PathBuf>) -> Option<Self> {
        let now = read(&files);
        now.iter().any(Option::is_some).then(|| Self {
            first: now.clone(),
            last: now,
            files,
        })
    }

    /// The share of throttled periods since the previous call, in the most throttled group: the
    /// groups nest, so one held back holds the generator back.
    pub fn advance(&mut self) -> f64 {
        let now = read(&self.files);
        let share = most_throttled(&now, &self.last);
        for (last, now) in self.last.iter_mut().zip(now) {
            if now.is_some() {
                *last = now;
            }
        }
        share
    }

    /// The share of throttled periods from the start to the latest [`advance`](Self::advance),
    /// in the most throttled group.
    pub fn since_start(&self) -> f64 {
        most_throttled(&self.last, &self.first)
    }
}

fn read(files: &[PathBuf]) -> Vec<Option<Periods>> {
    files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .ok()
                .and_then(|t| Periods::parse(&t))
        })
        .collect()
}

/// The highest throttled share between two readings of the same files.
fn most_throttled(now: &[Option<Periods>], before: &[Option<Periods>]) -> f64 {
    now.iter()
        .zip(before)
        .filter_map(|(n, b)| Some(n.as_ref()?.since(*b.as_ref()?).share()))
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_periods_are_read_with_the_same_names_on_either_cgroup_version() {
        let v2 = "usage_usec 8000\nuser_usec 6000\nsystem_usec 2000\nnr_periods 50\n\
                  nr_throttled 40\nthrottled_usec 1500000\n";
        let v1 = "nr_periods 50\nnr_throttled 40\nthrottled_time 2500000000\nnr_bursts 0\n";
        let expected = Periods {
            total: 50,
            throttled: 40,
        };
        assert_eq!(Periods::parse(v2), Some(expected));
        assert_eq!(Periods::parse(v1), Some(expected));
        assert_eq!(expected.share(), 0.8);
        // The root group of v2 has no quota and no counters; garbage is not a zero.
        assert_eq!(Periods::parse("usage_usec 10\nuser_usec 5\n"), None);
        assert_eq!(Periods::parse("nr_periods lots\nnr_throttled 1\n"), None);
        assert_eq!(Periods::parse(""), None);
        assert_eq!(
            Periods::default().share(),
            0.0,
            "no period ran: nothing throttled"
        );
    }

    fn group(root: &Path, rel: &str, throttled: &str) -> PathBuf {
        let dir = root.join(rel);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cpu.stat");
        std::fs::write(&file, throttled).unwrap();
        file
    }

    #[test]
    fn the_files_are_the_process_group_and_its_ancestors_in_the_cpu_hierarchy() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        // v1, the cpu controller mounted with cpuacct; memory's path is not the CPU's.
        let top = group(r, "cpu,cpuacct", "nr_periods 0\n");
        let pod = group(r, "cpu,cpuacct/kubepods/pod1", "throttled_time 0\n");
        let own = group(r, "cpu,cpuacct/kubepods/pod1/c1", "throttled_time 0\n");
        let v1 = "4:memory:/elsewhere\n3:cpu,cpuacct:/kubepods/pod1/c1\n0::/\n";
        assert_eq!(cpu_stat_files(r, v1), vec![top, pod, own]);
        // v2: the unified hierarchy at the root.
        let u_top = group(r, "", "usage_usec 1\n");
        let u_own = group(r, "app.slice/run", "throttled_usec 0\n");
        std::fs::create_dir_all(r.join("app.slice")).unwrap();
        assert_eq!(cpu_stat_files(r, "0::/app.slice/run\n"), vec![u_top, u_own]);
        // No CPU controller anywhere: nothing to read.
        assert!(cpu_stat_files(r, "4:memory:/x\n").is_empty());
    }

    #[test]
    fn the_clock_reports_the_most_throttled_group_since_its_last_reading() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let stat =
            |total: u64, throttled: u64| format!("nr_periods {total}\nnr_throttled {throttled}\n");
        let pod = group(r, "pod", &stat(100, 90));
        let own = group(r, "pod/c", &stat(0, 0));
        let mut clock = ThrottleClock::over(vec![pod.clone(), own.clone()]).unwrap();
        assert_eq!(
            clock.advance(),
            0.0,
            "periods from before the clock started are not the run's"
        );
        // The pod's quota throttled 5 of its 10 periods, the container's none of its 20.
        std::fs::write(&pod, stat(110, 95)).unwrap();
        std::fs::write(&own, stat(20, 0)).unwrap();
        assert_eq!(clock.advance(), 0.5);
        std::fs::write(&own, stat(30, 9)).unwrap();
        assert_eq!(clock.advance(), 0.9);
        // Since the start: the container's 9 of 30 against the pod's 5 of 10.
        assert_eq!(clock.since_start(), 0.5);
        // A group whose counters cannot be read makes no clock.
        let bare = group(r, "bare", "usage_usec 5\n");
        assert!(ThrottleClock::over(vec![bare]).is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_clock_where_a_cpu_controller_is_mounted() {
        let proc_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let files = cpu_stat_files(Path::new("/sys/fs/cgroup"), &proc_cgroup);
        assert_eq!(
            ThrottleClock::of_this_process().is_some(),
            !files.is_empty()
        );
    }
}
