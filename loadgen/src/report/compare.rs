//! `loadgen compare A.json B.json ...`: the figures of each run, changes relative to the first,
//! laid out to fit the terminal by [`super::fit`].

use super::fit::{self, Figure, Sheet};
use crate::humanize::ms;
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

/// Builds the comparison table, no wider than `width` where it can be (see [`super::fit`]).
/// `names` label the runs (file names). Capacity reports (two or more) get their headline above
/// it: capacity and capacity per replica against the first.
pub fn table(names: &[String], runs: &[RunReport], width: Option<usize>) -> String {
    if runs.is_empty() {
        return String::new();
    }
    let table = fit::render(&runs_sheet(names, runs), width);
    match super::capacity::headline(names, runs) {
        Some(h) => format!("{h}\n\n{table}"),
        None => table,
    }
}

/// A value and its ratio and change against the first run's.
fn against(base: f64, v: f64, value: String) -> Figure {
    Figure::compared(value, format!("{} ({})", ratio(base, v), change(base, v)))
}

/// The figures of each run.
fn runs_sheet(names: &[String], runs: &[RunReport]) -> Sheet {
    let b = &runs[0].summary;
    Sheet {
        keys: vec!["run"],
        metrics: vec![
            ("deployment", false),
            ("requests", false),
            ("duration", true),
            ("rps", true),
            ("p50", true),
            ("p99", true),
            ("success", true),
            ("max replicas", false),
            ("to ready", false),
            ("to new backend", false),
            ("p99 recovery", false),
        ],
        rows: names
            .iter()
            .zip(runs)
            .map(|(name, r)| {
                let s = &r.summary;
                let figures = vec![
                    Figure::plain(r.deployment().unwrap_or("-")),
                    Figure::plain(s.requests.to_string()),
                    against(b.duration_s, s.duration_s, format!("{:.1}s", s.duration_s)),
                    against(b.rps, s.rps, format!("{:.1}", s.rps)),
                    against(b.latency_ms.p50, s.latency_ms.p50, ms(s.latency_ms.p50)),
                    against(b.latency_ms.p99, s.latency_ms.p99, ms(s.latency_ms.p99)),
                    Figure::compared(
                        format!("{:.2}%", s.success_rate),
                        format!("{:+.2} pt", s.success_rate - b.success_rate),
                    ),
                    Figure::plain(
                        r.replicas
                            .as_ref()
                            .and_then(|x| x.summary.max_replicas)
                            .map_or("-".into(), |m| m.to_string()),
                    ),
                    Figure::plain(first_event(r, |e| e.time_to_ready_s)),
                    Figure::plain(first_event(r, |e| e.time_to_first_new_backend_s)),
                    Figure::plain(first_event(r, |e| e.recovery_s)),
                ];
                (vec![name.clone()], figures)
            })
            .collect(),
    }
}

/// Phase by phase: for each phase name of the first run that other runs have too, a row per run
/// with its throughput, mean, p99 and success rate against the first run's same phase, no wider
/// than `width` where it can be. None when no phase name is shared (or the runs have no phases).
pub fn phase_table(names: &[String], runs: &[RunReport], width: Option<usize>) -> Option<String> {
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
    let mut sheet = Sheet {
        keys: vec!["phase", "run"],
        metrics: vec![
            ("target", false),
            ("rps", true),
            ("mean", true),
            ("p99", true),
            ("success", true),
        ],
        rows: Vec::new(),
    };
    for phase in shared {
        let b = find(base, phase).expect("from the first run");
        for (name, r) in names.iter().zip(runs) {
            let Some(p) = find(r, phase) else { continue };
            let open = r.mode == crate::model::LoadMode::Open;
            sheet.rows.push((
                vec![phase.to_string(), name.clone()],
                vec![
                    Figure::plain(p.target(open)),
                    Figure::compared(format!("{:.1}", p.rps), ratio(b.rps, p.rps)),
                    Figure::compared(
                        ms(p.latency_ms.mean),
                        ratio(b.latency_ms.mean, p.latency_ms.mean),
                    ),
                    Figure::compared(
                        ms(p.latency_ms.p99),
                        ratio(b.latency_ms.p99, p.latency_ms.p99),
                    ),
                    Figure::compared(
                        format!("{:.2}%", p.success_rate),
                        format!("{:+.2} pt", p.success_rate - b.success_rate),
                    ),
                ],
            ));
        }
    }
    Some(fit::render(&sheet, width))
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
        let t = phase_table(&names, &[a.clone(), b], None).unwrap();
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
        assert!(phase_table(&names, &[a.clone(), run(1.0, 1.0)], None).is_none());
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
        let t = table(&names, &[run(600.0, 500.0), run(240.0, 1250.0)], None);
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
        let t = table(&names, &[run(600.0, 500.0), hpa], None);
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
