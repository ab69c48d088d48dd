//! Property tests: parsers of scenarios, thresholds, durations and flags never panic on arbitrary
//! input, and their errors say something useful.

use clap::Parser;
use proptest::prelude::*;

use loadgen::scenario::{Scenario, Template};
use loadgen::threshold::Threshold;

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn scenario_yaml_never_panics(s in "\\PC{0,200}") {
        if let Err(e) = Scenario::from_str("s.yaml", &s, false) {
            prop_assert!(e.to_string().starts_with("s.yaml:"));
            prop_assert!(e.line >= 1 && !e.message.is_empty());
        }
    }

    #[test]
    fn scenario_structured_yaml_never_panics(
        path in "[/a-z{}0-9 .]{0,20}",
        method in "[A-Za-z]{0,8}",
        weight in any::<i64>(),
        rate in any::<f64>(),
        dur in "[0-9a-z.]{0,6}",
        cap in "[$.a-z\\[\\]0-9\"]{0,12}",
    ) {
        let text = format!(
            "requests:\n  - path: \"{path}\"\n    method: \"{method}\"\n    weight: {weight}\n    capture: {{ v: '{cap}' }}\nload:\n  phases:\n    - {{ duration: \"{dur}\", rate: {rate} }}\n"
        );
        if let Err(e) = Scenario::from_str("s.yaml", &text, false) {
            prop_assert!(!e.message.is_empty());
            prop_assert!(e.line >= 1);
        }
    }

    #[test]
    fn scenario_toml_never_panics(s in "\\PC{0,200}") {
        if let Err(e) = Scenario::from_str("s.toml", &s, true) {
            prop_assert!(e.to_string().starts_with("s.toml:"));
        }
    }

    #[test]
    fn thresholds_never_panic(s in "\\PC{0,40}") {
        if let Err(e) = Threshold::parse(&s) {
            prop_assert!(e.contains("invalid threshold"), "{}", e);
        }
    }

    #[test]
    fn threshold_shaped_input(m in "[a-z_0-9.]{0,12}", op in "(<|<=|>|>=|=|==)", v in "[0-9._a-z%/µ]{0,8}") {
        let _ = Threshold::parse(&format!("{m}{op}{v}"));
    }

    #[test]
    fn small_parsers_never_panic(s in "\\PC{0,30}") {
        let _ = loadgen::parse::duration(&s);
        let _ = loadgen::parse::rate(&s);
        let _ = loadgen::parse::count(&s);
        let _ = loadgen::parse::positive(&s);
        let _ = loadgen::parse::label(&s);
        let _ = loadgen::parse::header(&s);
        let _ = Template::parse(&s);
        let _ = loadgen::scenario::Capture::parse("v", &s);
        let _ = loadgen::client::Target::parse(&s);
        let _ = loadgen::metrics::remote_write::parse_exposition(&s, 0);
    }

    #[test]
    fn flags_never_panic(args in proptest::collection::vec("(-{0,2}[a-z-]{0,12}|[0-9a-z:/.%<>]{0,10})", 0..6)) {
        let mut all = vec!["loadgen".to_string()];
        all.extend(args);
        // Help and version requests are "errors" too; what matters is no panic.
        let _ = loadgen::cli::Cli::try_parse_from(all);
    }

    #[test]
    fn durations_round_trip(ms in 0u64..10_000_000) {
        let d = std::time::Duration::from_millis(ms);
        let text = humantime::format_duration(d).to_string();
        prop_assert_eq!(loadgen::parse::duration(&text).unwrap(), d);
    }
}
