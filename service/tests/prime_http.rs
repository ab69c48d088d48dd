//! /api/v1/hello against a naive reference, property-based, through the real HTTP stack.

mod common;

use proptest::prelude::*;

fn naive_largest_prime_factor(mut n: u64) -> u64 {
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

#[test]
fn hello_matches_naive_reference() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(common::spawn_default());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    runner
        .run(&(2u64..3_000_000), |n| {
            let body: serde_json::Value = rt.block_on(async {
                let r = app
                    .post_json("/api/v1/hello", &format!(r#"{{"n": {n}}}"#))
                    .await;
                assert_eq!(r.status(), 200);
                r.json().await.unwrap()
            });
            prop_assert_eq!(body["n"].as_u64(), Some(n));
            prop_assert_eq!(
                body["largest_prime_factor"].as_u64(),
                Some(naive_largest_prime_factor(n))
            );
            Ok(())
        })
        .unwrap();
}
