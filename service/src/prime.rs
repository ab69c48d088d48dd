//! Largest prime factor by trial division: the CPU-bound job of the classic tutorials, kept
//! deliberately naive so its cost grows with sqrt(n) and a request burns predictable CPU.

/// Smallest n accepted by /api/v1/hello.
pub const MIN_N: u64 = 2;
/// Largest n accepted (exclusive): caps the cost at about sqrt(1e13) ≈ 3.2 million divisions.
pub const MAX_N_EXCLUSIVE: u64 = 10_000_000_000_000;
/// Range the random n is drawn from when none is given.
pub const RANDOM_RANGE: std::ops::Range<u64> = 1_000_000_000..MAX_N_EXCLUSIVE;

/// Trial divisors tried between two looks at the stop flag in
/// [`largest_prime_factor_until`]: frequent enough that a cancelled job stops within tens of
/// microseconds, rare enough that the check costs nothing measurable.
pub const STOP_CHECK_EVERY: u64 = 4096;

/// The job was told to stop before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Largest prime factor of `n` (n >= 2); `None` for n < 2, which has none.
pub fn largest_prime_factor(n: u64) -> Option<u64> {
    match largest_prime_factor_until(n, || false) {
        Ok(factor) => factor,
        Err(Stopped) => unreachable!("never asked to stop"),
    }
}

/// [`largest_prime_factor`] that calls `stop` before the first trial divisor and then every
/// [`STOP_CHECK_EVERY`] divisors, and gives up with [`Stopped`] once it returns true. A request
/// that timed out or whose client left thus frees its CPU slot instead of finishing unseen work.
pub fn largest_prime_factor_until(
    mut n: u64,
    mut stop: impl FnMut() -> bool,
) -> Result<Option<u64>, Stopped> {
    if n < 2 {
        return Ok(None);
    }
    let mut largest = 1;
    while n.is_multiple_of(2) {
        largest = 2;
        n /= 2;
    }
    let mut f: u64 = 3;
    let mut until_check: u64 = 0;
    // f <= n / f instead of f * f <= n: no overflow near u64::MAX.
    while f <= n / f {
        if until_check == 0 {
            if stop() {
                return Err(Stopped);
            }
            until_check = STOP_CHECK_EVERY;
        }
        until_check -= 1;
        while n.is_multiple_of(f) {
            largest = f;
            n /= f;
        }
        f += 2;
    }
    if n > 1 {
        largest = n;
    }
    Ok(Some(largest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference: every factor found by the dumbest possible loop.
    fn naive(mut n: u64) -> u64 {
        let mut largest = 1;
        let mut f = 2;
        while n > 1 {
            if n.is_multiple_of(f) {
                largest = f;
                n /= f;
            } else {
                f += 1;
            }
        }
        largest
    }

    fn small_primes() -> Vec<u64> {
        (2..5_000).filter(|&n| is_prime(n)).collect()
    }

    fn is_prime(n: u64) -> bool {
        n >= 2
            && (2..)
                .take_while(|d| d * d <= n)
                .all(|d| !n.is_multiple_of(d))
    }

    #[test]
    fn known_values() {
        assert_eq!(largest_prime_factor(0), None);
        assert_eq!(largest_prime_factor(1), None);
        assert_eq!(largest_prime_factor(2), Some(2));
        assert_eq!(largest_prime_factor(13195), Some(29));
        assert_eq!(largest_prime_factor(600_851_475_143), Some(6857));
        assert_eq!(largest_prime_factor(1 << 40), Some(2));
        // A prime just below the cap: the worst case.
        assert_eq!(
            largest_prime_factor(9_999_999_999_971),
            Some(9_999_999_999_971)
        );
        assert_eq!(largest_prime_factor(u64::MAX), Some(6_700_417));
    }

    /// The worst case below the cap: a prime, so every odd divisor up to its root is tried.
    const WORST_N: u64 = 9_999_999_999_971;

    #[test]
    fn a_stop_requested_up_front_stops_before_any_division() {
        assert_eq!(largest_prime_factor_until(WORST_N, || true), Err(Stopped));
    }

    #[test]
    fn the_stop_flag_is_consulted_every_few_thousand_divisors() {
        // Say "go on" 3 times, then "stop": the job must give up after at most 3 rounds of
        // STOP_CHECK_EVERY divisors, long before the ~1.6 million the answer needs.
        let mut checks = 0u64;
        let result = largest_prime_factor_until(WORST_N, || {
            checks += 1;
            checks > 3
        });
        assert_eq!(result, Err(Stopped));
        assert_eq!(checks, 4);
        // And when never stopped, it is consulted about sqrt(n) / 2 / STOP_CHECK_EVERY times.
        let mut checks = 0u64;
        let result = largest_prime_factor_until(WORST_N, || {
            checks += 1;
            false
        });
        assert_eq!(result, Ok(Some(WORST_N)));
        let divisors: u64 = 3_162_277 / 2;
        assert_eq!(checks, divisors.div_ceil(STOP_CHECK_EVERY));
    }

    proptest! {
        #[test]
        fn matches_naive_reference(n in 2u64..2_000_000) {
            prop_assert_eq!(largest_prime_factor(n), Some(naive(n)));
        }

        #[test]
        fn product_of_primes(
            factors in proptest::collection::vec(proptest::sample::select(small_primes()), 1..6)
        ) {
            let n: u64 = factors.iter().product();
            prop_assert_eq!(largest_prime_factor(n), factors.iter().copied().max());
        }

    }

    proptest! {
        // Each case costs up to ~3 million divisions twice in a debug build: keep it few.
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn result_is_a_prime_divisor_in_the_random_range(n in RANDOM_RANGE) {
            let f = largest_prime_factor(n).unwrap();
            prop_assert_eq!(n % f, 0);
            prop_assert!(is_prime(f));
            // Nothing larger divides what is left once f's multiplicity is removed.
            let mut rest = n;
            while rest.is_multiple_of(f) { rest /= f; }
            prop_assert!(rest == 1 || largest_prime_factor(rest).unwrap() < f);
        }
    }
}
