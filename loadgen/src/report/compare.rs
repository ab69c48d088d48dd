//! `loadgen compare A.json B.json ...`: one row per run, changes relative to the first.

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};

use super::summary::ms;
use crate::model::RunReport;

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

/// Builds the comparison table. `names` label the rows (file names). Capacity reports (two or
/// more) get their headline above it: capacity and capacity per replica against the first.
pub fn table(names: &[String], runs: &[RunReport]) -> String {
    let table = runs_table(names, runs);
    match super::capacity::headline(names, runs) {
        Some(h) => format!("{h}\n\n{table}"),
        None => table,
    }
}

/// The row per run.
fn runs_table(names: &[String], runs: &[RunReport]) -> String {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "run",
        "deployment",
        "requests",
        "duration",
        "vs first",
        "rps",
        "vs first",
        "p50",
        "vs first",
        "p99",
        "vs first",
        "success",
        "vs first",
        "max replicas",
        "to ready",
        "to new backend",
        "p99 recovery",
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
            right(format!(
                "{} ({})",
                ratio(b.duration_s, s.duration_s),
                change(b.duration_s, s.duration_s)
            )),
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
            right(first_event(r, |e| e.time_to_ready_s)),
            right(first_event(r, |e| e.time_to_first_new_backend_s)),
            right(first_event(r, |e| e.recovery_s)),
        ]);
    }
    t.to_string()
}

/// Phase by phase: for each phase name of the first run that other runs have too, a row per run
/// with its throughput, mean, p99 and success rate against the first run's same phase. None when
/// no phase name is shared (or the runs have no phases).
pub fn phase_table(names: &[String], runs: &[RunReport]) -> Option<String> {
    let base = runs.first()?;
    let find = |r: &RunReport, name: &str| r.phases.iter().find(|p| p.name == name).cloned();
    let shared: Vec<&str> = base
        .phases
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| runs[1..].iter().any(|r| find(r, n).is_some()))
        .collect();
    if shared.is_empty() {
        return None;
    }
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "phase", "run", "target", "rps", "vs first", "mean", "vs first", "p99", "vs first",
        "success", "vs first",
    ]);
    let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
    for phase in shared {
        let b = find(base, phase).expect("from the first run");
        for (name, r) in names.iter().zip(runs) {
            let Some(p) = find(r, phase) else { continue };
            let open = r.mode == crate::model::LoadMode::Open;
            t.add_row(vec![
                Cell::new(phase),
                Cell::new(name),
                right(p.target(open)),
                right(format!("{:.1}", p.rps)),
                right(ratio(b.rps, p.rps)),
                right(ms(p.latency_ms.mean)),
                right(ratio(b.latency_ms.mean, p.latency_ms.mean)),
                right(ms(p.latency_ms.p99)),
                right(ratio(b.latency_ms.p99, p.latency_ms.p99)),
                right(format!("{:.2}%", p.success_rate)),
                right(format!("{:+.2} pt", p.success_rate - b.success_rate)),
            ]);
        }
    }
    Some(t.to_string())
}

/// A figure of a run's first scale event: `4.5s`, `never` (the event happened, the figure did
/// not), or `-` (no scale event).
fn first_event(
    r: &RunReport,
    f: impl Fn(&crate::model::scale_events::ScaleEvent) -> Option<f64>,
) -> String {
    match r.scale_events.first() {
        None => "-".into(),
        Some(e) => f(e).map_or_else(|| "never".into(), |v| format!("{v:.1}s")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_compared_by_name_where_the_runs_share_them() {
        let phase = |name: &str, rps: f64, p99: f64| crate::model::phases::PhaseSummary {
            name: name.into(),
            rps,
            target_from: rps,
            target_to: rps,
            latency_ms: crate::model::LatencyStats {
                p99,
                mean: p99 / 2.0,
                ..Default::default()
            },
            success_rate: 100.0,
            ..Default::default()
        };
        let mut a = run(10.0, 100.0);
        a.mode = crate::model::LoadMode::Open;
        a.phases = vec![
            phase("step-10", 10.0, 20.0),
            phase("step-500", 400.0, 800.0),
        ];
        let mut b = a.clone();
        b.phases = vec![phase("step-500", 500.0, 200.0), phase("extra", 1.0, 1.0)];
        let names = ["docker.json".to_string(), "k8s-hpa.json".to_string()];
        let t = phase_table(&names, &[a.clone(), b]).unwrap();
        assert!(!t.contains("step-10") && !t.contains("extra"), "{t}");
        let row = t
            .lines()
            .find(|l| l.contains("k8s-hpa.json"))
            .unwrap_or_else(|| panic!("{t}"));
        let cells: Vec<&str> = row
            .split('┆')
            .map(|c| c.trim_matches(|ch: char| ch == '│' || ch.is_whitespace()))
            .collect();
        assert_eq!(
            cells[..5],
            ["step-500", "k8s-hpa.json", "500/s", "500.0", "x1.25"],
            "{t}"
        );
        assert_eq!(cells[8], "x0.25", "{t}");
        assert!(phase_table(&names, &[a.clone(), run(1.0, 1.0)]).is_none());
    }

    #[test]
    fn changes_and_ratios() {
        assert_eq!(change(100.0, 150.0), "+50.0%");
        assert_eq!(change(100.0, 100.0), "=");
        assert_eq!(change(0.0, 1.0), "n/a");
        assert_eq!(ratio(100.0, 250.0), "x2.50");
    }

    fn run(duration_s: f64, rps: f64) -> RunReport {
        let mut r = RunReport::default();
        r.summary.duration_s = duration_s;
        r.summary.rps = rps;
        r.summary.success_rate = 100.0;
        r
    }

    #[test]
    fn duration_has_its_change_against_the_first_run() {
        // The same 300,000 requests: 600 s on one container, 240 s with the autoscaler.
        let names = ["docker.json".to_string(), "k8s-hpa.json".to_string()];
        let t = table(&names, &[run(600.0, 500.0), run(240.0, 1250.0)]);
        let header = t.lines().nth(1).unwrap();
        let cols: Vec<&str> = header.split('┆').map(str::trim).collect();
        let at = |name: &str| cols.iter().position(|c| c.contains(name)).unwrap();
        assert_eq!(cols[at("duration") + 1], "vs first", "{t}");
        let row = t.lines().find(|l| l.contains("k8s-hpa.json")).unwrap();
        let cells: Vec<&str> = row.split('┆').map(str::trim).collect();
        assert_eq!(cells[at("duration")], "240.0s", "{t}");
        assert_eq!(cells[at("duration") + 1], "x0.40 (-60.0%)", "{t}");
        assert_eq!(cells[at("rps") + 1], "x2.50 (+150.0%)", "{t}");
        let first = t.lines().find(|l| l.contains("docker.json")).unwrap();
        let cells: Vec<&str> = first.split('┆').map(str::trim).collect();
        assert_eq!(cells[at("duration") + 1], "x1.00 (=)", "{t}");
    }

    #[test]
    fn scale_costs_of_the_first_event_are_columns_per_run() {
        let names = ["docker.json".to_string(), "k8s-hpa.json".to_string()];
        let mut hpa = run(240.0, 1250.0);
        hpa.scale_events
            .push(crate::model::scale_events::ScaleEvent {
                t_s: 10.0,
                to_replicas: 3,
                time_to_ready_s: Some(4.5),
                time_to_first_new_backend_s: Some(5.0),
                recovery_s: None,
                ..Default::default()
            });
        let t = table(&names, &[run(600.0, 500.0), hpa]);
        let header: Vec<&str> = t
            .lines()
            .nth(1)
            .unwrap()
            .split(['┆', '│'])
            .map(str::trim)
            .collect();
        let at = |name: &str| header.iter().position(|c| c.contains(name)).unwrap();
        let cells = |run: &str| -> Vec<String> {
            let row = t.lines().find(|l| l.contains(run)).unwrap();
            row.split(['┆', '│'])
                .map(|c| c.trim().to_string())
                .collect()
        };
        let hpa = cells("k8s-hpa.json");
        assert_eq!(hpa[at("to ready")], "4.5s", "{t}");
        assert_eq!(hpa[at("to new backend")], "5.0s", "{t}");
        assert_eq!(hpa[at("p99 recovery")], "never", "{t}");
        let docker = cells("docker.json");
        assert_eq!(docker[at("to ready")], "-", "{t}");
    }
}
