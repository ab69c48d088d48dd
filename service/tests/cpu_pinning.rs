//! CPU accounting against the real binary pinned to one CPU with `taskset`: `/work/cpu` burns the
//! CPU time it was asked for even when it has to share the CPU, and the runtime sizes itself from
//! the affinity mask, not from the host's core count.

mod common;

use std::time::Duration;

use common::{Proc, start_wrapped};

/// The first CPU this process may run on (the test runner may itself be pinned).
fn first_allowed_cpu() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list in /proc/self/status")
        .trim();
    let first = list.split([',', '-']).next().unwrap();
    first.to_string()
}

/// The binary pinned to a single CPU, with `extra` flags.
fn start_on_one_cpu(extra: &[&str]) -> Proc {
    let cpu = first_allowed_cpu();
    start_wrapped(&["taskset", "-c", &cpu], extra, &[])
}

/// utime + stime of a process from `/proc/<pid>/stat`, in seconds.
fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name (which may contain spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line, 12 and 13 after the name.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let hz = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    ticks / hz
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_pinned_process_runs_one_worker_per_allowed_cpu() {
    let p = start_on_one_cpu(&[]);
    let info: serde_json::Value = client()
        .get(format!("http://{}/info", p.app))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["worker_threads"], 1, "{info}");
    assert_eq!(info["cpu_workers"], 1, "{info}");
    assert!(info["cpu_quota_cores"].as_f64().unwrap() <= 1.0, "{info}");
}

#[tokio::test]
async fn cpu_work_burns_the_requested_cpu_time_while_sharing_the_cpu() {
    // Three jobs at once on one CPU: each gets about a third of it, so a loop that counted wall
    // time would stop after about a third of the CPU time asked. Each job must use its full share
    // of CPU time, so the process's CPU time grows by at least jobs x ms (a lower bound: it holds
    // however slow or busy the machine is).
    const JOBS: u64 = 3;
    const MS: u64 = 300;
    let p = start_on_one_cpu(&["--cpu-workers", "3", "--cpu-queue", "0"]);
    let pid = p.child.id();
    let client = client();
    let before = process_cpu_seconds(pid);
    let jobs: Vec<_> = (0..JOBS)
        .map(|_| {
            let request = client
                .get(format!("http://{}/work/cpu?ms={MS}", p.app))
                .send();
            tokio::spawn(request)
        })
        .collect();
    for job in jobs {
        let response = job.await.unwrap().unwrap();
        assert_eq!(response.status(), 200);
    }
    let used = process_cpu_seconds(pid) - before;
    // Less one clock tick per job of /proc accounting granularity.
    let floor = (JOBS * MS) as f64 / 1e3 - JOBS as f64 * 0.01;
    assert!(
        used >= floor,
        "{JOBS} jobs of {MS} ms CPU used {used:.3} s CPU, expected at least {floor:.3} s"
    );
}
