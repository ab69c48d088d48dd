//! The reference for the arrival clock's benchmark: how late a bare `clock_nanosleep` to absolute
//! deadlines wakes on this machine, with 1 µs timer slack and nothing else running in the thread.
//!
//! Usage: `bare_clock RATE SECONDS` — sleeps to `start + k / RATE` for `RATE * SECONDS` deadlines
//! and prints `p50_us p99_us mean_us` of the lateness. `bench/arrival-clock.sh` runs it in the
//! same run as loadgen, so the generator's schedule lag is read against what the kernel allows.

use nix::sys::prctl::set_timerslack;
use nix::sys::time::TimeSpec;
use nix::time::{ClockId, ClockNanosleepFlags, clock_gettime, clock_nanosleep};

fn ns(t: TimeSpec) -> i128 {
    i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (rate, secs) = match args.as_slice() {
        [r, s] => (r.parse::<f64>()?, s.parse::<f64>()?),
        _ => {
            eprintln!("usage: bare_clock RATE SECONDS");
            std::process::exit(2);
        }
    };
    anyhow::ensure!(
        rate > 0.0 && secs > 0.0,
        "RATE and SECONDS must be positive"
    );
    set_timerslack(1)?;
    let clock = ClockId::CLOCK_MONOTONIC;
    let start = ns(clock_gettime(clock)?);
    let n = (rate * secs) as u64;
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for k in 1..=n {
        let due = start + (k as f64 * 1e9 / rate) as i128;
        let ts = TimeSpec::new((due / 1_000_000_000) as _, (due % 1_000_000_000) as _);
        // EINTR only shortens the sleep; the lateness below is measured either way.
        let _ = clock_nanosleep(clock, ClockNanosleepFlags::TIMER_ABSTIME, &ts);
        let late_ns = (ns(clock_gettime(clock)?) - due).max(0);
        h.saturating_record((late_ns / 1000).max(1) as u64);
    }
    println!(
        "{} {} {:.1}",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.mean()
    );
    Ok(())
}
