//! Largest prime factor by trial division: the CPU-bound job of the classic tutorials, kept
//! deliberately naive so its cost grows with sqrt(n) and a request burns predictable CPU.

/// Smallest n accepted by /api/v1/hello.
pub const MIN_N: u64 = 2;
/// Largest n accepted (exclusive): caps the cost at about sqrt(1e13) ≈ 3.2 million divisions.
pub const MAX_N_EXCLUSIVE: u64 = 10_000_000_000_000;
/// Range the random n is drawn from when none is given.
pub const RANDOM_RANGE: std::ops::Range<u64> = 1_000_000_000..MAX_N_EXCLUSIVE;

/// Largest prime factor of `n` (n >= 2); `None` for n < 2, which has none.
pub fn largest_prime_factor(mut n: u64) -> Option<u64> {
    if n < 2 {
        return None;
    }
    let mut largest = 1;
    while n.is_multiple_of(2) {
        largest = 2;
        n /= 2;
    }
    let mut f: u64 = 3;
    // f <= n / f instead of f * f <= n: no overflow near u64::MAX.
    while f <= n / f {
        while n.is_multiple_of(f) {
            largest = f;
            n /= f;
        }
        f += 2;
    }
    if n > 1 {
        largest = n;
    }
    Some(largest)
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
