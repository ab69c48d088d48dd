//! The capacity search for a terminal (its HTML twin is [`super::html::capacity`]): a row per step tried, the capacity line, and the headline
//! `compare` prints for capacity reports.

use std::fmt::Write as _;

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};

use crate::humanize::ms;
use crate::model::RunReport;
use crate::model::capacity::CapacitySection;

/// `1234.5` as `1,234.5/s` style figures without noise: whole numbers stay whole.
pub fn rate(v: f64) -> String {
    if (v - v.round()).abs() < 0.05 {
        format!("{v:.0}/s")
    } else {
        format!("{v:.1}/s")
    }
}

/// A row per step: target and achieved rate, requests, success rate, mean/p50/p99 (corrected),
/// the verdict and what broke.
pub fn steps_table(c: &CapacitySection) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    let watched = c.steps.iter().any(|s| s.settled.is_some());
    let mut header = vec![
        "step", "target", "achieved", "requests", "success", "mean", "p50", "p99", "verdict",
    ];
    if watched {
        header.extend(["replicas", "settled"]);
    }
    header.push("broken / why");
    t.set_header(header);
    let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
    for s in &c.steps {
        let mut row = vec![
            right(s.step.to_string()),
            right(rate(s.target_rps)),
            right(format!("{:.1}/s", s.achieved_rps)),
            right(s.requests.to_string()),
            right(format!("{:.2}%", s.success_rate)),
            right(ms(s.latency_ms.mean)),
            right(ms(s.latency_ms.p50)),
            right(ms(s.latency_ms.p99)),
            Cell::new(s.verdict.label()),
        ];
        if watched {
            row.push(right(s.replicas.map_or("-".into(), |r| r.to_string())));
            let attempts = if s.attempts > 1 {
                format!(" ({} runs)", s.attempts)
            } else {
                String::new()
            };
            row.push(Cell::new(format!(
                "{}{attempts}",
                match s.settled {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "-",
                }
            )));
        }
        row.push(Cell::new(s.verdict.reason()));
        t.add_row(row);
    }
    t
}

/// The capacity line (and its notes), e.g. `capacity: 425/s (p99<100ms, success_rate>99%), ...`.
pub fn capacity_line(c: &CapacitySection) -> String {
    let mut out = String::new();
    let objectives = c.objectives.join(", ");
    let per_replica = if c.replicas_observed {
        format!(
            "; {} ready replica(s), {} per replica",
            c.replicas,
            c.capacity_per_replica_rps.map_or("-".into(), rate)
        )
    } else {
        String::new()
    };
    match c.capacity_rps {
        Some(cap) => {
            let bracket = match c.upper_rps {
                Some(up) => format!(
                    " (passes at {}, not at {}: within {:.1}%)",
                    rate(cap),
                    rate(up),
                    (up - cap) / cap * 100.0
                ),
                None => String::new(),
            };
            let _ = write!(
                out,
                "capacity: {}{}{bracket} for {objectives}{per_replica}",
                if c.bounded { "at least " } else { "" },
                rate(cap)
            );
        }
        None => {
            let why = match c.steps.first().map(|s| &s.verdict) {
                Some(v @ crate::model::capacity::Verdict::Fail { .. }) => {
                    format!("the first step already broke {}", v.reason())
                }
                Some(v) => format!("the first step was {}", v.label()),
                None => "no step ran".into(),
            };
            let _ = write!(
                out,
                "capacity: below {} ({why})",
                rate(c.settings.start_rate)
            );
        }
    }
    let _ = write!(
        out,
        "\nsearch: {} step(s) in {:.0}s, stopped: {:?}",
        c.steps.len(),
        c.duration_s,
        c.stop
    );
    for n in &c.notes {
        let _ = write!(out, "\nnote: {n}");
    }
    out
}

/// Everything the command prints at the end.
pub fn render(c: &CapacitySection) -> String {
    format!("{}\n{}", steps_table(c), capacity_line(c))
}

/// The headline of `compare` on capacity reports: each run's capacity and capacity per replica
/// against the first's, e.g. `k8s-hpa.json over docker.json: capacity x4.80, per replica x0.96`.
/// None unless at least two of the runs are capacity reports.
pub fn headline(names: &[String], runs: &[RunReport]) -> Option<String> {
    let caps: Vec<(&String, &CapacitySection)> = names
        .iter()
        .zip(runs)
        .filter_map(|(n, r)| r.capacity.as_ref().map(|c| (n, c)))
        .collect();
    let (base_name, base) = caps.first()?;
    if caps.len() < 2 {
        return None;
    }
    let figure = |c: &CapacitySection| match c.capacity_rps {
        Some(cap) => format!(
            "{}{} on {} replica(s){} = {} per replica",
            if c.bounded { "≥" } else { "" },
            rate(cap),
            c.replicas,
            if c.replicas_observed {
                ""
            } else {
                " (assumed: no --watch)"
            },
            rate(cap / f64::from(c.replicas.max(1)))
        ),
        None => format!("below {}", rate(c.settings.start_rate)),
    };
    let mut out = String::from("capacity (the highest rate meeting the objectives):");
    for (name, c) in &caps {
        let _ = write!(out, "\n  {name}: {}", figure(c));
    }
    for (name, c) in &caps[1..] {
        let x = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if a > 0.0 => format!("x{:.2}", b / a),
            _ => "n/a".into(),
        };
        let _ = write!(
            out,
            "\n  {name} over {base_name}: capacity {}, per replica {}",
            x(base.capacity_rps, c.capacity_rps),
            x(base.capacity_per_replica_rps, c.capacity_per_replica_rps)
        );
        if base.objectives != c.objectives {
            let _ = write!(
                out,
                " (other objectives: {} vs {})",
                c.objectives.join(", "),
                base.objectives.join(", ")
            );
        }
    }
    Some(out)
}
