//! Thresholds: pass/fail criteria evaluated on the final summary (`p99<250ms`, `success_rate>99.5%`,
//! `rps>1000`). A failed threshold makes the run exit with [`crate::exit::THRESHOLD_FAILED`].

use crate::model::{LatencyStats, Summary, ThresholdOutcome};

/// A metric a threshold can test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A latency statistic in ms; `service` selects the service time (open loop).
    Latency {
        stat: Stat,
        service: bool,
    },
    SuccessRate,
    ErrorRate,
    Rps,
    Requests,
    Failures,
    Dropped,
    Late,
}

/// A latency statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Min,
    Mean,
    P50,
    P90,
    P95,
    P99,
    P999,
    Max,
}

impl Stat {
    fn of(self, s: &LatencyStats) -> f64 {
        match self {
            Stat::Min => s.min,
            Stat::Mean => s.mean,
            Stat::P50 => s.p50,
            Stat::P90 => s.p90,
            Stat::P95 => s.p95,
            Stat::P99 => s.p99,
            Stat::P999 => s.p999,
            Stat::Max => s.max,
        }
    }
}

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub expr: String,
    pub metric: Metric,
    pub op: Op,
    /// In ms for latencies, percent for rates, req/s for rps, a count otherwise.
    pub value: f64,
}

const HELP: &str = "write METRIC OP VALUE, e.g. p99<250ms, p95<=0.1s, mean<50ms, success_rate>99.5%, \
error_rate<1%, rps>1000, failures==0 is written failures<1; metrics: min mean p50 p90 p95 p99 p999 max \
(service_ prefix for service time), success_rate, error_rate, rps, requests, failures, dropped, late";

impl Threshold {
    /// Parses `p99<250ms` and friends.
    pub fn parse(s: &str) -> Result<Self, String> {
        let expr: String = s.split_whitespace().collect();
        let bad = |why: &str| format!("invalid threshold {s:?}: {why}; {HELP}");
        let idx = expr
            .find(['<', '>'])
            .ok_or_else(|| bad("no comparison (< <= > >=)"))?;
        let (name, rest) = expr.split_at(idx);
        let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Op::Lt, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (Op::Gt, v)
        } else {
            return Err(bad("no comparison"));
        };
        let lname = name.to_ascii_lowercase();
        let (service, stat_name) = match lname.strip_prefix("service_") {
            Some(r) => (true, r),
            None => (false, lname.as_str()),
        };
        let stat = match stat_name {
            "min" => Some(Stat::Min),
            "mean" | "avg" => Some(Stat::Mean),
            "p50" | "median" => Some(Stat::P50),
            "p90" => Some(Stat::P90),
            "p95" => Some(Stat::P95),
            "p99" => Some(Stat::P99),
            "p999" | "p99.9" => Some(Stat::P999),
            "max" => Some(Stat::Max),
            _ => None,
        };
        let metric = match (stat, lname.as_str()) {
            (Some(stat), _) => Metric::Latency { stat, service },
            (None, "success_rate") => Metric::SuccessRate,
            (None, "error_rate") => Metric::ErrorRate,
            (None, "rps" | "throughput") => Metric::Rps,
            (None, "requests") => Metric::Requests,
            (None, "failures" | "errors") => Metric::Failures,
            (None, "dropped") => Metric::Dropped,
            (None, "late") => Metric::Late,
            _ => return Err(bad(&format!("unknown metric {name:?}"))),
        };
        let num_end = value
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
            .unwrap_or(value.len());
        let (num, unit) = value.split_at(num_end);
        let num: f64 = num
            .replace('_', "")
            .parse()
            .map_err(|_| bad(&format!("{value:?} is not a number")))?;
        if !num.is_finite() {
            return Err(bad("value must be finite"));
        }
        let value = match metric {
            Metric::Latency { .. } => match unit {
                "" | "ms" => num,
                "us" | "µs" => num / 1000.0,
                "s" => num * 1000.0,
                "m" | "min" => num * 60_000.0,
                u => return Err(bad(&format!("unknown latency unit {u:?} (us, ms, s)"))),
            },
            Metric::SuccessRate | Metric::ErrorRate => match unit {
                "%" | "" => {
                    if num > 100.0 {
                        return Err(bad("a rate is a percentage between 0 and 100"));
                    }
                    num
                }
                u => return Err(bad(&format!("unknown rate unit {u:?} (use %)"))),
            },
            Metric::Rps => match unit {
                "" | "/s" | "rps" => num,
                u => return Err(bad(&format!("unknown throughput unit {u:?} (use /s)"))),
            },
            _ => match unit {
                "" => num,
                u => return Err(bad(&format!("counts take no unit, got {u:?}"))),
            },
        };
        Ok(Self {
            expr,
            metric,
            op,
            value,
        })
    }

    /// The measured value, in the threshold's unit.
    pub fn actual(&self, s: &Summary) -> f64 {
        match self.metric {
            Metric::Latency { stat, service } => {
                let stats = if service {
                    s.service_time_ms.as_ref().unwrap_or(&s.latency_ms)
                } else {
                    &s.latency_ms
                };
                stat.of(stats)
            }
            Metric::SuccessRate => s.success_rate,
            Metric::ErrorRate => 100.0 - s.success_rate,
            Metric::Rps => s.rps,
            Metric::Requests => s.requests as f64,
            Metric::Failures => s.failures as f64,
            Metric::Dropped => s.dropped as f64,
            Metric::Late => s.late as f64,
        }
    }

    /// Evaluates against a summary. A run without requests fails every latency, rate and
    /// throughput threshold (no data is not a pass).
    pub fn evaluate(&self, s: &Summary) -> ThresholdOutcome {
        let actual = self.actual(s);
        let no_data = s.requests == 0
            && matches!(
                self.metric,
                Metric::Latency { .. } | Metric::SuccessRate | Metric::ErrorRate | Metric::Rps
            );
        let passed = !no_data
            && match self.op {
                Op::Lt => actual < self.value,
                Op::Le => actual <= self.value,
                Op::Gt => actual > self.value,
                Op::Ge => actual >= self.value,
            };
        ThresholdOutcome {
            expr: self.expr.clone(),
            passed,
            actual,
        }
    }
}

/// Parses a list, failing on the first bad one.
pub fn parse_all(list: &[String]) -> Result<Vec<Threshold>, String> {
    list.iter().map(|s| Threshold::parse(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(Threshold::parse("p99<250ms").unwrap().value, 250.0);
        assert_eq!(Threshold::parse("p95 <= 0.1s").unwrap().value, 100.0);
        assert_eq!(Threshold::parse("success_rate>99.5%").unwrap().value, 99.5);
        assert_eq!(Threshold::parse("rps>1_000").unwrap().value, 1000.0);
        assert!(
            Threshold::parse("p98<1ms")
                .unwrap_err()
                .contains("unknown metric")
        );
        assert!(Threshold::parse("p99=1ms").is_err());
        assert!(Threshold::parse("p99<1h").is_err());
        assert!(Threshold::parse("success_rate>120%").is_err());
        assert!(Threshold::parse("").is_err());
    }

    #[test]
    fn evaluates() {
        let s = Summary {
            requests: 100,
            successes: 99,
            failures: 1,
            success_rate: 99.0,
            rps: 500.0,
            latency_ms: LatencyStats {
                p99: 300.0,
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(!Threshold::parse("p99<250ms").unwrap().evaluate(&s).passed);
        assert!(Threshold::parse("p99<0.5s").unwrap().evaluate(&s).passed);
        assert!(
            Threshold::parse("success_rate>=99%")
                .unwrap()
                .evaluate(&s)
                .passed
        );
        assert!(
            !Threshold::parse("error_rate<1%")
                .unwrap()
                .evaluate(&s)
                .passed
        );
        assert!(Threshold::parse("rps>100").unwrap().evaluate(&s).passed);
        let empty = Summary::default();
        assert!(!Threshold::parse("p99<1s").unwrap().evaluate(&empty).passed);
        assert!(
            !Threshold::parse("success_rate>1%")
                .unwrap()
                .evaluate(&empty)
                .passed
        );
        assert!(
            Threshold::parse("failures<1")
                .unwrap()
                .evaluate(&empty)
                .passed
        );
    }
}
