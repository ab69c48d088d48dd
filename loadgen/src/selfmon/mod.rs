//! Generator self-monitoring: its own CPU time (from /proc/self/stat, through `procfs`), how often
//! its CPU quota throttled it ([`throttle`]), and the judgement whether the numbers were limited
//! by the generator rather than the target.

pub mod throttle;

use std::time::Instant;

use crate::model::{GeneratorStats, LagStats};
use throttle::ThrottleClock;

/// Own user+system CPU time in seconds (the kernel's clock tick, `sysconf(_SC_CLK_TCK)`, not an
/// assumed 100), if /proc is readable.
#[cfg(target_os = "linux")]
pub fn cpu_seconds() -> Option<f64> {
    let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
    Some(stat_cpu_seconds(&stat, procfs::ticks_per_second()))
}

#[cfg(not(target_os = "linux"))]
pub fn cpu_seconds() -> Option<f64> {
    None
}

/// utime + stime of a /proc/PID/stat record, in seconds at `ticks_per_second`.
#[cfg(target_os = "linux")]
fn stat_cpu_seconds(stat: &procfs::process::Stat, ticks_per_second: u64) -> f64 {
    (stat.utime + stat.stime) as f64 / ticks_per_second.max(1) as f64
}

/// Peak resident set size of this process (VmHWM) in MiB, if /proc is readable.
#[cfg(target_os = "linux")]
pub fn peak_rss_mb() -> Option<f64> {
    let kb = procfs::process::Process::myself()
        .ok()?
        .status()
        .ok()?
        .vmhwm? as f64;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

#[cfg(not(target_os = "linux"))]
pub fn peak_rss_mb() -> Option<f64> {
    None
}

/// Samples CPU once per tick.
#[derive(Debug)]
pub struct CpuMonitor {
    start: Option<(Instant, f64)>,
    last: Option<(Instant, f64)>,
    pub max_percent: f64,
    /// What all the generator's threads can use, percent of one core (100 per thread).
    capacity_percent: f64,
    samples: u64,
    saturated: u64,
    /// The CPU quota's throttling, where the process's cgroups have throttle counters.
    throttle: Option<ThrottleClock>,
}

impl CpuMonitor {
    /// `threads`: the runtime's worker threads (its CPU capacity).
    pub fn new(threads: usize) -> Self {
        let now = cpu_seconds().map(|c| (Instant::now(), c));
        Self {
            start: now,
            last: now,
            max_percent: 0.0,
            capacity_percent: threads.max(1) as f64 * 100.0,
            samples: 0,
            saturated: 0,
            throttle: ThrottleClock::of_this_process(),
        }
    }

    /// Folds one sample (percent of one core over about a second, and the share of the CPU
    /// quota's periods in it that throttled the generator) into max and saturation share: a
    /// second is saturated when the threads were nearly all busy, or when the quota stopped them
    /// in [`THROTTLED_LIMIT`] of its periods or more.
    pub fn record(&mut self, percent: f64, throttled_share: f64) {
        self.max_percent = self.max_percent.max(percent);
        self.samples += 1;
        if percent >= CPU_LIMIT * self.capacity_percent || throttled_share >= THROTTLED_LIMIT {
            self.saturated += 1;
        }
    }

    /// Share (0..1) of the saturated samples (see [`record`](Self::record)).
    pub fn saturated_share(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.saturated as f64 / self.samples as f64
        }
    }

    /// Percent of one core used since the previous sample.
    pub fn sample(&mut self) -> Option<f64> {
        let now = (Instant::now(), cpu_seconds()?);
        let (t0, c0) = self.last?;
        self.last = Some(now);
        let wall = now.0.duration_since(t0).as_secs_f64();
        if wall < 0.2 {
            return None;
        }
        let p = (now.1 - c0) / wall * 100.0;
        let throttled = self.throttle.as_mut().map_or(0.0, ThrottleClock::advance);
        self.record(p, throttled);
        Some(p)
    }

    /// Percent of the CPU quota's periods since creation in which it throttled the generator;
    /// None where no throttle counters are readable (no cgroup CPU controller).
    pub fn throttled_percent(&mut self) -> Option<f64> {
        let clock = self.throttle.as_mut()?;
        clock.advance();
        Some(clock.since_start() * 100.0)
    }

    /// Mean percent of one core since creation.
    pub fn mean_percent(&self) -> f64 {
        match (self.start, cpu_seconds()) {
            (Some((t0, c0)), Some(c)) => {
                let wall = t0.elapsed().as_secs_f64();
                if wall > 0.0 {
                    (c - c0) / wall * 100.0
                } else {
                    0.0
                }
            }
            _ => 0.0,
        }
    }
}

/// Inputs of the end-of-run judgement.
#[derive(Debug, Clone)]
pub struct Judge {
    pub threads: usize,
    pub cpu_mean: f64,
    pub cpu_max: f64,
    /// Share (0..1) of the one-second CPU samples at or above [`CPU_LIMIT`] of capacity.
    pub cpu_saturated_share: f64,
    /// Percent of the CPU quota's periods that throttled the generator (None: not measurable).
    pub cpu_throttled_percent: Option<f64>,
    pub lag: LagStats,
    pub open: bool,
    pub iterations: u64,
    pub late: u64,
    pub dropped: u64,
    pub concurrency: u64,
    pub late_tolerance_ms: f64,
}

/// CPU share (of all generator threads) above which the generator is called the bottleneck.
pub const CPU_LIMIT: f64 = 0.9;
/// Share of seconds at or above [`CPU_LIMIT`] of capacity from which the generator is called the
/// bottleneck even when its mean CPU is lower (a ramp saturates it at the peak only, and the peak
/// is the figure a comparison reads).
pub const SATURATED_SHARE_LIMIT: f64 = 0.1;
/// Schedule lag p99 above which the generator is called the bottleneck (ms).
pub const LAG_LIMIT_MS: f64 = 10.0;
/// Share of the CPU quota's periods that throttled the generator from which it is called the
/// bottleneck: a generator with work it may not run delays its sends and its reads alike.
pub const THROTTLED_LIMIT: f64 = 0.1;

/// Whether a run's generator was held back by its own CPU (as opposed to its schedule lag, the
/// other reason [`judge`] sets `limited_by_generator`): limited, and its busiest second at
/// [`CPU_LIMIT`] of what its threads can use or more, or its CPU quota throttling it in
/// [`THROTTLED_LIMIT`] of the periods or more.
pub fn cpu_bound(g: &GeneratorStats) -> bool {
    g.limited_by_generator
        && (g.cpu_percent_max >= CPU_LIMIT * g.threads.max(1) as f64 * 100.0 || throttled(g))
}

/// Whether the CPU quota throttled the generator in [`THROTTLED_LIMIT`] of its periods or more.
pub fn throttled(g: &GeneratorStats) -> bool {
    over_throttle_limit(g.cpu_throttled_percent)
}

/// Whether a throttled percent (None: no counters) is at [`THROTTLED_LIMIT`] or more.
fn over_throttle_limit(percent: Option<f64>) -> bool {
    percent.is_some_and(|p| p >= THROTTLED_LIMIT * 100.0)
}

/// Decides whether the generator limited the run and says why.
pub fn judge(j: &Judge) -> GeneratorStats {
    let mut warnings = Vec::new();
    let mut limited = false;
    let cap = j.threads as f64 * 100.0;
    // Throttled, the CPU it used is its quota's, not its threads': the figures against the
    // threads would say nothing.
    if over_throttle_limit(j.cpu_throttled_percent) {
        limited = true;
        warnings.push(format!(
            "the generator's CPU quota throttled it in {:.0}% of its periods (its {} thread(s) \
             had work and were not allowed to run; {:.0}% CPU mean): throughput and latency may \
             be limited by the generator, not the target; give it more CPU (docker --cpus, the \
             pod's CPU limit) or run more generators and merge",
            j.cpu_throttled_percent.unwrap_or(0.0),
            j.threads,
            j.cpu_mean
        ));
    } else if j.cpu_mean >= CPU_LIMIT * cap {
        limited = true;
        warnings.push(format!(
            "the generator used {:.0}% CPU on average of the {cap:.0}% its {} thread(s) can use \
             ({:.0}% max): throughput and latency may be limited by the generator, not the target; \
             run more generators and merge",
            j.cpu_mean, j.threads, j.cpu_max
        ));
    } else if j.cpu_max >= CPU_LIMIT * cap || j.cpu_saturated_share > 0.0 {
        // The mean hides saturation at the busiest moments (a ramp's peak, a burst).
        let share = j.cpu_saturated_share * 100.0;
        limited |= j.cpu_saturated_share >= SATURATED_SHARE_LIMIT;
        warnings.push(format!(
            "the generator's CPU peaked at {:.0}% of the {cap:.0}% its {} thread(s) can use and was \
             at {:.0}% or more of capacity in {share:.0}% of the seconds (mean {:.0}%): throughput \
             and latency at the busiest moments may be limited by the generator, not the target; \
             run more generators and merge",
            j.cpu_max,
            j.threads,
            CPU_LIMIT * 100.0,
            j.cpu_mean
        ));
    }
    if j.open && j.lag.p99 > LAG_LIMIT_MS {
        limited = true;
        warnings.push(format!(
            "free workers woke up {:.1} ms late (p99, max {:.1} ms): the generator could not keep \
             its schedule",
            j.lag.p99, j.lag.max
        ));
    }
    if j.open && j.late > 0 {
        let pct = j.late as f64 / (j.iterations.max(1)) as f64 * 100.0;
        warnings.push(format!(
            "{} iterations ({pct:.2}%) started more than {} ms after their scheduled time because all \
             {} in-flight slots were busy: the target slowed down (the wait is in the latency) or \
             --max-in-flight is too low",
            j.late, j.late_tolerance_ms, j.concurrency
        ));
    }
    if j.dropped > 0 {
        warnings.push(format!(
            "{} scheduled iterations were never sent (still queued when the plan ended)",
            j.dropped
        ));
    }
    GeneratorStats {
        threads: j.threads,
        cpu_percent_mean: (j.cpu_mean * 10.0).round() / 10.0,
        cpu_percent_max: (j.cpu_max * 10.0).round() / 10.0,
        cpu_throttled_percent: j.cpu_throttled_percent.map(|t| (t * 10.0).round() / 10.0),
        peak_rss_mb: peak_rss_mb().unwrap_or(0.0),
        schedule_lag_ms: j.lag,
        limited_by_generator: limited,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn cpu_time_is_utime_plus_stime_at_the_kernels_clock_tick() {
        use procfs::FromRead;
        // A command name with spaces and parentheses, as /proc writes it.
        let line = "123 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 4096 10 \
                    18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let stat = procfs::process::Stat::from_read(line.as_bytes()).unwrap();
        assert_eq!(stat.comm, "my (odd) name");
        assert_eq!(stat_cpu_seconds(&stat, 100), 3.0);
        assert_eq!(
            stat_cpu_seconds(&stat, 250),
            1.2,
            "the tick is not assumed to be 100"
        );
        assert!(procfs::process::Stat::from_read("garbage".as_bytes()).is_err());
        // This process, for real: CPU time moves when we burn CPU, and the peak RSS is there.
        let before = cpu_seconds().unwrap();
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 300 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(cpu_seconds().unwrap() > before);
        assert!(peak_rss_mb().unwrap() > 0.0);
    }

    /// A quiet open-loop run on two threads, its quota never in the way.
    fn quiet() -> Judge {
        Judge {
            threads: 2,
            cpu_mean: 50.0,
            cpu_max: 60.0,
            cpu_saturated_share: 0.0,
            cpu_throttled_percent: Some(0.0),
            lag: LagStats::default(),
            open: true,
            iterations: 100,
            late: 0,
            dropped: 0,
            concurrency: 10,
            late_tolerance_ms: 10.0,
        }
    }

    #[test]
    fn judges_cpu_and_lag() {
        let base = quiet();
        assert!(!judge(&base).limited_by_generator);
        assert!(
            judge(&Judge {
                cpu_mean: 195.0,
                ..base.clone()
            })
            .limited_by_generator
        );
        let lagged = Judge {
            lag: LagStats {
                mean: 5.0,
                p99: 30.0,
                max: 40.0,
            },
            ..base.clone()
        };
        assert!(judge(&lagged).limited_by_generator);
        let late = judge(&Judge {
            late: 5,
            ..base.clone()
        });
        assert!(!late.limited_by_generator);
        assert_eq!(late.warnings.len(), 1);

        // Mean saturation names the capacity as capacity, and the real max as max.
        let busy = judge(&Judge {
            cpu_mean: 190.0,
            cpu_max: 198.0,
            cpu_saturated_share: 0.9,
            ..base.clone()
        });
        assert!(busy.limited_by_generator);
        assert_eq!(busy.warnings.len(), 1, "{:?}", busy.warnings);
        assert!(
            busy.warnings[0].contains("190% CPU on average of the 200%"),
            "{:?}",
            busy.warnings
        );
        assert!(
            busy.warnings[0].contains("(198% max)"),
            "{:?}",
            busy.warnings
        );

        // A ramp that saturates the generator for the last third only: the mean looks fine.
        let peak = judge(&Judge {
            cpu_mean: 110.0,
            cpu_max: 196.0,
            cpu_saturated_share: 0.3,
            ..base.clone()
        });
        assert!(peak.limited_by_generator);
        assert!(
            peak.warnings[0].contains("peaked at 196% of the 200%"),
            "{:?}",
            peak.warnings
        );
        assert!(
            peak.warnings[0].contains("in 30% of the seconds"),
            "{:?}",
            peak.warnings
        );

        // One saturated second in a long run: a warning, not a verdict.
        let blip = judge(&Judge {
            cpu_max: 185.0,
            cpu_saturated_share: 0.02,
            ..base
        });
        assert!(!blip.limited_by_generator);
        assert_eq!(blip.warnings.len(), 1, "{:?}", blip.warnings);
    }

    #[test]
    fn a_generator_its_cpu_quota_held_back_is_cpu_bound_at_any_share_of_its_threads() {
        // Half a core of quota under one thread: 50% of a core looks idle against the thread,
        // the throttling says otherwise.
        let base = Judge {
            threads: 1,
            cpu_mean: 49.0,
            cpu_max: 51.0,
            cpu_saturated_share: 0.8,
            cpu_throttled_percent: Some(45.0),
            ..quiet()
        };
        let g = judge(&base);
        assert!(g.limited_by_generator && cpu_bound(&g), "{g:?}");
        assert_eq!(g.cpu_throttled_percent, Some(45.0));
        // One warning: its 51% against the thread's 100% is the quota's figure, not the threads'.
        assert_eq!(g.warnings.len(), 1, "{:?}", g.warnings);
        let said = &g.warnings[0];
        assert!(
            said.contains("CPU quota throttled it in 45% of its periods"),
            "{said}"
        );
        assert!(said.contains("--cpus"), "{said}");
        // A moment's throttling, and no counters at all, are not a verdict.
        for t in [Some(3.0), None] {
            let g = judge(&Judge {
                cpu_throttled_percent: t,
                cpu_saturated_share: 0.0,
                ..base.clone()
            });
            assert!(!g.limited_by_generator && !cpu_bound(&g), "{t:?}: {g:?}");
        }
    }

    #[test]
    fn monitor_counts_saturated_seconds_against_capacity() {
        let mut m = CpuMonitor::new(2);
        for p in [50.0, 185.0, 120.0, 199.0] {
            m.record(p, 0.0);
        }
        // 90% of 200% is 180%: two of four seconds.
        assert_eq!(m.saturated_share(), 0.5);
        // A second the quota stopped the threads for a tenth of it or more is saturated too.
        m.record(60.0, 0.3);
        m.record(60.0, 0.05);
        assert_eq!(m.saturated_share(), 0.5);
        assert_eq!(m.max_percent, 199.0);
        assert_eq!(CpuMonitor::new(1).saturated_share(), 0.0);
    }
}
