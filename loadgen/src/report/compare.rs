//! `loadgen compare A.json B.json ...`: one row per run, changes relative to the first.

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};

use super::RunReport;
use super::summary::ms;

/// Relative change of `v` against `base`, as `+12.3%` (or `n/a`).
pub fn change(base: f64, v: f64) -> String {
    if base == 0.0 {
        return if v == 0.0 { "=".into() } else { "n/a".into() };
    }
    let d = (v - base) / base * 100.0;
    if d.abs() < 0.05 {
        "=".into()
    } else {
        format!("{d:+.1}%")
    }
}

/// Ratio `v / base` as `x1.23` (or `n/a`).
pub fn ratio(base: f64, v: f64) -> String {
    if base == 0.0 {
        "n/a".into()
    } else {
        format!("x{:.2}", v / base)
    }
}

/// Builds the comparison table. `names` label the rows (file names).
pub fn table(names: &[String], runs: &[RunReport]) -> String {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "run",
        "deployment",
        "requests",
        "duration",
        "rps",
        "vs first",
        "p50",
        "vs first",
        "p99",
        "vs first",
        "success",
        "vs first",
        "max replicas",
    ]);
    let Some(base) = runs.first() else {
        return String::new();
    };
    let b = &base.summary;
    for (name, r) in names.iter().zip(runs) {
        let s = &r.summary;
        let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
        t.add_row(vec![
            Cell::new(name),
            Cell::new(r.deployment().unwrap_or("-")),
            right(s.requests.to_string()),
            right(format!("{:.1}s", s.duration_s)),
            right(format!("{:.1}", s.rps)),
            right(format!(
                "{} ({})",
                ratio(b.rps, s.rps),
                change(b.rps, s.rps)
            )),
            right(ms(s.latency_ms.p50)),
            right(format!(
                "{} ({})",
                ratio(b.latency_ms.p50, s.latency_ms.p50),
                change(b.latency_ms.p50, s.latency_ms.p50)
            )),
            right(ms(s.latency_ms.p99)),
            right(format!(
                "{} ({})",
                ratio(b.latency_ms.p99, s.latency_ms.p99),
                change(b.latency_ms.p99, s.latency_ms.p99)
            )),
            right(format!("{:.2}%", s.success_rate)),
            right(format!("{:+.2} pt", s.success_rate - b.success_rate)),
            right(
                r.replicas
                    .as_ref()
                    .and_then(|x| x.summary.max_replicas)
                    .map_or("-".into(), |m| m.to_string()),
            ),
        ]);
    }
    t.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_and_ratios() {
        assert_eq!(change(100.0, 150.0), "+50.0%");
        assert_eq!(change(100.0, 100.0), "=");
        assert_eq!(change(0.0, 1.0), "n/a");
        assert_eq!(ratio(100.0, 250.0), "x2.50");
    }
}
