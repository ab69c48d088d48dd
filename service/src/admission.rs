//! Admission of CPU jobs by expected queueing delay rather than by a fixed queue length.
//!
//! A fixed queue of 8 sheds a burst of 32 jobs of 0.2 ms each, although the last of them would
//! have waited about 6 ms; and a queue of 8 jobs of 2 s each is 16 s of latency. What a client
//! cares about is the wait, so that is what is bounded (the idea of CoDel's controlled delay,
//! Envoy's adaptive concurrency filter and Netflix's concurrency-limits): a job that finds every
//! slot busy is queued when its estimated wait is within the budget, and shed at once otherwise.
//!
//! The estimate is `(jobs running + jobs queued) × mean service time / slots`, with the mean an
//! exponentially weighted moving average of how long recent jobs held their slot. It is only as
//! good as the recent past; a queued job is not dropped once it has waited the budget (CoDel's
//! sojourn check), since that turns the fast 503 of a shed job into a slow one: what bounds a
//! backlog built on a wrong estimate is the queue's hard cap, the in-flight limit and the timeout.
//!
//! Everything here is arithmetic on constructed inputs; [`crate::pool::CpuPool`] feeds it the
//! live counts and enforces the queue's hard length cap (the memory safety net).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The request timeout is divided by this for the default `--queue-delay-budget` (30 s -> 3 s).
///
/// A tenth leaves nine tenths of the timeout for the job itself and for the estimate's error (a
/// burst of jobs dearer than the recent mean waits longer than estimated), so an admitted job
/// practically never times out after queueing, which would waste both its slot and the client's
/// wait. And it ties the two knobs together: an operator who shortens the timeout for an
/// impatient client shortens the queue with it.
pub const DEFAULT_BUDGET_DIVISOR: u32 = 10;

/// The default budget for a request timeout: see [`DEFAULT_BUDGET_DIVISOR`].
pub fn default_budget(request_timeout: Duration) -> Duration {
    request_timeout / DEFAULT_BUDGET_DIVISOR
}

/// Weight of a new sample in the service-time average: 1/8, as TCP's smoothed round-trip time.
/// About the last 8 to 16 jobs count, so the estimate follows a change of job mix within a
/// fraction of a second at the rates where admission matters, yet one odd job barely moves it.
const EWMA_SHIFT: u32 = 3;

/// Exponentially weighted moving average of job service times (lock-free; nanoseconds).
#[derive(Debug, Default)]
pub struct ServiceTime {
    /// 0 until the first sample.
    mean_ns: AtomicU64,
}

impl ServiceTime {
    /// Folds one job's service time into the average. The first sample is taken as it is.
    pub fn record(&self, took: Duration) {
        // At least 1 ns, so a recorded average is never mistaken for "no sample yet".
        let sample = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
        let _ = self
            .mean_ns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |mean| {
                Some(if mean == 0 {
                    sample
                } else {
                    // mean + (sample - mean) / 8, in signed arithmetic without overflow.
                    let mean = i128::from(mean);
                    let next = mean + ((i128::from(sample) - mean) >> EWMA_SHIFT);
                    u64::try_from(next).unwrap_or(u64::MAX).max(1)
                })
            });
    }

    /// The current average; zero before the first job finished.
    pub fn mean(&self) -> Duration {
        Duration::from_nanos(self.mean_ns.load(Ordering::Acquire))
    }
}

/// Expected wait of a job that finds `ahead` jobs (running and queued) in front of it on `slots`
/// slots whose jobs take `mean` each: `ahead × mean / slots`. Saturates instead of overflowing.
pub fn estimated_wait(ahead: usize, slots: usize, mean: Duration) -> Duration {
    let ahead = u32::try_from(ahead).unwrap_or(u32::MAX);
    let slots = u32::try_from(slots.max(1)).unwrap_or(u32::MAX);
    mean.saturating_mul(ahead) / slots
}

/// What to do with a job that found every slot busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Queue it: its estimated wait is within the budget.
    Queue { estimate: Duration },
    /// Shed it now: waiting would take longer than the budget allows.
    Shed { estimate: Duration },
}

/// The admission rule for jobs that find every slot busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDelayPolicy {
    /// Longest a job may be expected to wait for a slot.
    pub budget: Duration,
    /// Slots jobs run on at once.
    pub slots: usize,
}

impl QueueDelayPolicy {
    /// The decision for a job arriving with `running` jobs on the slots and `queued` waiting.
    /// Before any job has finished the mean is zero and every job is queued (up to the hard cap
    /// the pool enforces): a cold instance has no evidence that its jobs are slow.
    pub fn decide(&self, running: usize, queued: usize, mean: Duration) -> Decision {
        let estimate = estimated_wait(running.saturating_add(queued), self.slots, mean);
        if estimate > self.budget {
            Decision::Shed { estimate }
        } else {
            Decision::Queue { estimate }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn one_core(budget: Duration) -> QueueDelayPolicy {
        QueueDelayPolicy { budget, slots: 1 }
    }

    #[test]
    fn a_burst_of_32_cheap_jobs_is_admitted_when_their_estimated_wait_is_under_budget() {
        // The classic tutorial's hello on one core: about 0.2 ms a job. A fixed queue of 8 shed
        // 24 of these; by delay, the 32nd waits about 6.4 ms, far inside a 3 s budget.
        let policy = one_core(Duration::from_secs(3));
        let mean = Duration::from_micros(200);
        for queued in 0..32 {
            assert!(
                matches!(policy.decide(1, queued, mean), Decision::Queue { .. }),
                "job {queued} shed"
            );
        }
        assert_eq!(
            policy.decide(1, 31, mean),
            Decision::Queue {
                estimate: Duration::from_micros(6_400)
            }
        );
    }

    #[test]
    fn a_job_whose_estimated_wait_exceeds_the_budget_is_shed() {
        let policy = one_core(100 * MS);
        // Two-second jobs: even the first one queued behind a running job would wait too long.
        assert_eq!(
            policy.decide(1, 0, 2000 * MS),
            Decision::Shed {
                estimate: 2000 * MS
            }
        );
        // 10 ms jobs: ten ahead is exactly the budget (admitted), eleven is over it.
        assert!(matches!(
            policy.decide(1, 9, 10 * MS),
            Decision::Queue { .. }
        ));
        assert!(matches!(
            policy.decide(1, 10, 10 * MS),
            Decision::Shed { .. }
        ));
    }

    #[test]
    fn more_slots_divide_the_wait() {
        let policy = QueueDelayPolicy {
            budget: 50 * MS,
            slots: 4,
        };
        // 4 running + 16 queued jobs of 10 ms on 4 slots: 50 ms.
        assert_eq!(
            policy.decide(4, 16, 10 * MS),
            Decision::Queue { estimate: 50 * MS }
        );
        assert!(matches!(
            policy.decide(4, 17, 10 * MS),
            Decision::Shed { .. }
        ));
    }

    #[test]
    fn a_cold_pool_without_history_queues() {
        assert!(matches!(
            one_core(MS).decide(1, 100, Duration::ZERO),
            Decision::Queue { .. }
        ));
    }

    #[test]
    fn a_zero_budget_queues_nothing_once_jobs_have_a_cost() {
        assert!(matches!(
            one_core(Duration::ZERO).decide(1, 0, Duration::from_nanos(1)),
            Decision::Shed { .. }
        ));
    }

    #[test]
    fn the_estimate_saturates_instead_of_overflowing() {
        assert_eq!(
            estimated_wait(usize::MAX, 1, Duration::MAX),
            Duration::MAX / 1
        );
        assert_eq!(
            estimated_wait(3, 0, 10 * MS),
            30 * MS,
            "0 slots counts as 1"
        );
    }

    #[test]
    fn the_service_time_average_starts_at_the_first_sample_and_moves_an_eighth_per_job() {
        let mean = ServiceTime::default();
        assert_eq!(mean.mean(), Duration::ZERO);
        mean.record(80 * MS);
        assert_eq!(mean.mean(), 80 * MS);
        mean.record(160 * MS);
        assert_eq!(mean.mean(), 90 * MS);
        mean.record(10 * MS);
        assert_eq!(mean.mean(), 80 * MS);
    }

    #[test]
    fn the_service_time_average_follows_a_change_of_job_mix_within_a_few_dozen_jobs() {
        let mean = ServiceTime::default();
        for _ in 0..100 {
            mean.record(Duration::from_micros(200));
        }
        for _ in 0..40 {
            mean.record(100 * MS);
        }
        // 1 - (7/8)^40 = 99.5% of the way.
        assert!(mean.mean() > 99 * MS, "{:?}", mean.mean());
        // And a zero-length job does not reset it to "no sample".
        let tiny = ServiceTime::default();
        tiny.record(Duration::ZERO);
        assert!(tiny.mean() > Duration::ZERO);
    }

    #[test]
    fn the_default_budget_is_a_tenth_of_the_request_timeout() {
        assert_eq!(
            default_budget(Duration::from_secs(30)),
            Duration::from_secs(3)
        );
        assert_eq!(
            default_budget(Duration::from_secs(10)),
            Duration::from_secs(1)
        );
    }
}
