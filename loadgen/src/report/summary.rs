//! The end-of-run summary for humans (what a reader of a comparison study expects to see).

use std::fmt::Write as _;

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};

use crate::humanize::{ms, num};
use crate::model::figures::success_rate;
use crate::model::{LatencyStats, LoadMode, RunReport, Summary};

fn latency_row(name: &str, s: &LatencyStats) -> Vec<Cell> {
    let mut row = vec![Cell::new(name)];
    for v in [s.min, s.mean, s.p50, s.p90, s.p95, s.p99, s.p999, s.max] {
        row.push(Cell::new(ms(v)).set_alignment(CellAlignment::Right));
    }
    row
}

/// One row per phase: the shape of the classic write-ups (load level, requests per second, mean
/// response time, success rate), with the percentiles and what failed beside them.
pub fn phase_table(r: &RunReport) -> Table {
    let open = r.mode == LoadMode::Open;
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    let mut header = vec![
        "phase", "start", "duration", "target", "requests", "rps", "mean", "success", "p50", "p95",
        "p99",
    ];
    if open {
        header.push("service p99");
    }
    header.extend(["503 shed", "errors"]);
    t.set_header(header);
    let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
    for p in &r.phases {
        let mut row = vec![
            Cell::new(&p.name),
            right(format!("{:.0}s", p.start_s)),
            right(format!("{:.0}s", p.duration_s)),
            right(p.target(open)),
            right(num(p.requests)),
            right(format!("{:.1}", p.rps)),
            right(ms(p.latency_ms.mean)),
            right(format!("{:.2}%", p.success_rate)),
            right(ms(p.latency_ms.p50)),
            right(ms(p.latency_ms.p95)),
            right(ms(p.latency_ms.p99)),
        ];
        if let Some(st) = &p.service_time_ms {
            row.push(right(ms(st.p99)));
        } else if open {
            row.push(right("-".into()));
        }
        row.push(right(num(p.shed_503)));
        row.push(Cell::new(or_none(kv(&p.errors))));
        t.add_row(row);
    }
    t
}

/// Renders the summary as text.
pub fn render(r: &RunReport) -> String {
    let mut out = String::new();
    headline(&mut out, r);
    let _ = writeln!(out, "{}", latency_table(r));
    if r.endpoints.len() > 1 {
        let _ = writeln!(out, "{}", endpoint_table(r));
    }
    if r.phases.len() > 1 {
        let _ = writeln!(out, "{}", phase_table(r));
    }
    counts(&mut out, &r.summary, &r.error_messages);
    let _ = write!(out, "{}", connections(r));
    if let Some(spread) = r.start_spread_s {
        let _ = writeln!(
            out,
            "workers: {} started within {spread:.2}s of each other",
            r.workers
        );
    }
    scaling(&mut out, r);
    generator(&mut out, r);
    for th in &r.thresholds {
        let _ = writeln!(
            out,
            "threshold {:<24} {} (actual {:.3})",
            th.expr,
            if th.passed { "passed" } else { "FAILED" },
            th.actual
        );
    }
    out
}

/// What ran, and its requests, throughput and success rate (and, open loop, late and dropped).
fn headline(out: &mut String, r: &RunReport) {
    let s = &r.summary;
    let _ = writeln!(
        out,
        "\n{} {} — {}{}",
        r.scenario,
        r.target,
        r.plan.description,
        if r.interrupted {
            " (INTERRUPTED: partial results)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "requests {}  duration {:.2}s  throughput {:.1}/s  success {:.2}% ({} ok, {} failed)",
        num(s.requests),
        s.duration_s,
        s.rps,
        s.success_rate,
        num(s.successes),
        num(s.failures)
    );
    if r.mode == LoadMode::Open {
        let _ = writeln!(
            out,
            "open loop: late {}  dropped {}  (latency measured from the intended start; service time from the send)",
            num(s.late),
            num(s.dropped)
        );
    }
}

/// Latency of the run (and its service time in open loop), and of each endpoint when there are
/// several.
fn latency_table(r: &RunReport) -> Table {
    let s = &r.summary;
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "latency", "min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max",
    ]);
    let label = if r.mode == LoadMode::Open {
        "corrected"
    } else {
        "all"
    };
    t.add_row(latency_row(label, &s.latency_ms));
    if let Some(st) = &s.service_time_ms {
        t.add_row(latency_row("service", st));
    }
    if r.endpoints.len() > 1 {
        for e in &r.endpoints {
            t.add_row(latency_row(&e.name, &e.latency_ms));
        }
    }
    t
}

/// A row per endpoint: requests, rate, success rate, statuses and errors.
fn endpoint_table(r: &RunReport) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "endpoint", "requests", "rps", "success", "statuses", "errors",
    ]);
    for e in &r.endpoints {
        let rate = success_rate(e.successes, e.requests);
        t.add_row(vec![
            Cell::new(&e.name),
            Cell::new(num(e.requests)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.1}", e.rps)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{rate:.2}%")).set_alignment(CellAlignment::Right),
            Cell::new(kv(&e.status_codes)),
            Cell::new(kv(&e.errors)),
        ]);
    }
    t
}

/// Status codes, errors (with the first distinct messages in words), requests not sent, retries
/// and the spread over backends.
fn counts(out: &mut String, s: &Summary, error_messages: &[String]) {
    let _ = writeln!(out, "status codes: {}", or_none(kv(&s.status_codes)));
    if !s.errors.is_empty() {
        let _ = writeln!(out, "errors: {}", kv(&s.errors));
    }
    for m in error_messages {
        let _ = writeln!(out, "  error: {m}");
    }
    if let Some(n) = s.errors.get("template") {
        let _ = writeln!(
            out,
            "not sent: {} request(s) could not be built (template error), not counted as requests",
            num(*n)
        );
    }
    if s.retries > 0 {
        let _ = writeln!(
            out,
            "retries: {} (resent on a fresh connection: the kept-alive one was closed before the request was written)",
            num(s.retries)
        );
    }
    if !s.backends.is_empty() {
        // In u128: the counts may come from a report file, and their sum must not wrap.
        let total: u128 = s.backends.values().map(|v| u128::from(*v)).sum();
        let parts: Vec<String> = s
            .backends
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={} ({:.1}%)",
                    num(*v),
                    *v as f64 / total.max(1) as f64 * 100.0
                )
            })
            .collect();
        let _ = writeln!(out, "backends ({}): {}", s.backends.len(), parts.join(", "));
    }
}

/// With `--watch`: the scale-out summary, each scale event, and the warnings about the target.
fn scaling(out: &mut String, r: &RunReport) {
    if let Some(rep) = &r.replicas
        && rep.summary.max_replicas.is_some()
    {
        let _ = write!(out, "{}", scale_out(&rep.summary));
    }
    if !r.scale_events.is_empty() {
        let _ = write!(out, "{}", scale_events(&r.scale_events));
    }
    if let Some(rep) = &r.replicas {
        cold_starts(out, rep);
    }
    for w in &r.warnings {
        let _ = writeln!(out, "WARNING: {w}");
    }
    if let Some(rep) = &r.replicas {
        for w in &rep.warnings {
            let _ = writeln!(out, "WARNING (--watch {}): {w}", rep.target);
        }
    }
}

/// How the generator fared, and its warnings.
fn generator(out: &mut String, r: &RunReport) {
    let g = &r.generator;
    let _ = writeln!(
        out,
        "generator: CPU {:.0}% mean / {:.0}% max of {} thread(s), peak RSS {:.1} MiB{}",
        g.cpu_percent_mean,
        g.cpu_percent_max,
        g.threads,
        g.peak_rss_mb,
        if r.mode == LoadMode::Open {
            format!(
                ", schedule lag p99 {} max {}",
                ms(g.schedule_lag_ms.p99),
                ms(g.schedule_lag_ms.max)
            )
        } else {
            String::new()
        }
    );
    for w in &g.warnings {
        let _ = writeln!(out, "WARNING: {w}");
    }
}

/// The `connections:` line: the lifetime in force, what was opened and why connections closed.
fn connections(r: &RunReport) -> String {
    let c = &r.connections;
    if c.lifetime.is_empty() && c.opened == 0 {
        // A report from before connections were recorded.
        return String::new();
    }
    let closed = if c.closed.is_empty() {
        String::new()
    } else {
        format!("; closed: {}", kv(&c.closed))
    };
    format!(
        "connections: {}; opened {}, reconnects {} (not errors){closed}; connect p50 {} p99 {} max {}\n",
        c.lifetime,
        num(c.opened),
        num(c.reconnects),
        ms(c.connect_ms.p50),
        ms(c.connect_ms.p99),
        ms(c.connect_ms.max)
    )
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "never".into(), |t| format!("{t:.1}s"))
}

/// The scale-out timeline of a watched run: replica counts, when it scaled, what each replica
/// carried.
fn scale_out(s: &crate::model::replicas::ScaleOutSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "replicas: initial {}, max {}, final {}",
        opt(s.initial_replicas),
        opt(s.max_replicas),
        opt(s.final_replicas)
    );
    let _ = writeln!(
        out,
        "scale-out: first scale-up {} (spec.replicas raised), first ready scale-up {}, highest replica count at {}",
        secs(s.time_to_first_scale_up_s),
        secs(s.time_to_first_ready_scale_up_s),
        secs(s.time_to_max_replicas_s),
    );
    if let Some(per) = s.throughput_per_replica {
        let _ = writeln!(
            out,
            "throughput per ready replica: {per:.1}/s (per-second average)"
        );
    }
    out
}

/// Up to this many cold starts get a line each; more are summarized.
const COLD_START_LINES: usize = 10;

/// Cold starts the clients measured: one line each, or a count with the median and maximum time
/// to first response when there are many (definitions in docs/autoscaling-cost.md).
fn cold_starts(out: &mut String, rep: &crate::model::replicas::ReplicaTimeline) {
    let list = &rep.cold_starts;
    if rep.cold_starts_total == 0 {
        return;
    }
    // In u128: at most MAX_COLD_STARTS u64 counts, which may come from a report file.
    let held: u128 = list.iter().map(|c| u128::from(c.held)).sum();
    let failed: u128 = list.iter().map(|c| u128::from(c.failed)).sum();
    let unanswered = list
        .iter()
        .filter(|c| c.to_first_response_s.is_none())
        .count();
    if list.len() > COLD_START_LINES || rep.cold_starts_total > list.len() as u64 {
        let times = crate::model::cold_starts::time_to_first_response_stats(list).map_or_else(
            || "never answered".to_string(),
            |(median, max)| format!("to first response median {median:.2}s, max {max:.2}s"),
        );
        let _ = writeln!(
            out,
            "cold starts: {} ({} listed): {times}; {} never answered; held {held}, failed {failed}",
            rep.cold_starts_total,
            list.len(),
            unanswered
        );
        return;
    }
    for c in list {
        let worker = c.worker.map_or(String::new(), |w| format!(" (worker {w})"));
        let p99 = c.p99_first_second_ms.map_or_else(|| "-".to_string(), ms);
        let ready = c
            .ready_at_s
            .map_or_else(|| "not seen".to_string(), |t| format!("at {t:.2}s"));
        let _ = writeln!(
            out,
            "cold start at {:.2}s{worker}: first response {}, held {}, failed {}, p99 first second {p99}, ready replica {ready}",
            c.t_s,
            c.to_first_response_s
                .map_or_else(|| "never".to_string(), |t| format!("after {t:.2}s")),
            c.held,
            c.failed,
        );
    }
}

/// `p50/p99` of a window around a scale event.
fn window(w: Option<&crate::model::scale_events::WindowStats>) -> String {
    w.map_or_else(
        || "-".into(),
        |w| format!("{}/{}", ms(w.p50_ms), ms(w.p99_ms)),
    )
}

/// What each scale-out cost: one row per event (definitions in docs/autoscaling-cost.md).
fn scale_events(events: &[crate::model::scale_events::ScaleEvent]) -> String {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "scale event",
        "replicas",
        "to ready",
        "to new backend",
        "p99 recovered",
        "failed (shed)",
        "p50/p99 before",
        "during",
        "after",
    ]);
    for e in events {
        let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
        let recovered = match (e.recovery_s, e.recovery_threshold_ms) {
            (Some(r), Some(th)) => format!("{r:.1}s (<= {})", ms(th)),
            (None, Some(th)) => format!("never (<= {})", ms(th)),
            _ => "-".into(),
        };
        t.add_row(vec![
            Cell::new(format!("at {:.1}s", e.t_s)),
            Cell::new(format!("{} -> {}", opt(e.from_replicas), e.to_replicas)),
            right(secs(e.time_to_ready_s)),
            right(secs(e.time_to_first_new_backend_s)),
            right(recovered),
            right(format!("{} ({})", num(e.failed_during), num(e.shed_during))),
            right(window(e.before.as_ref())),
            right(window(e.during.as_ref())),
            right(window(e.after.as_ref())),
        ]);
    }
    format!("{t}\n")
}

fn kv(m: &std::collections::BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={}", num(*v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn or_none(s: String) -> String {
    if s.is_empty() { "none".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::phases::PhaseSummary;

    /// The classic write-ups' table (Artillery's): a row per rate step with the requests per
    /// second asked for and carried, the mean response time and the success rate, in that order.
    #[test]
    fn rate_steps_print_a_row_per_step_in_the_write_ups_shape() {
        let step = |name: &str, rate: f64, rps: f64, mean: f64, ok: f64| PhaseSummary {
            name: name.into(),
            target_from: rate,
            target_to: rate,
            duration_s: 30.0,
            requests: (rps * 30.0) as u64,
            rps,
            success_rate: ok,
            latency_ms: LatencyStats {
                mean,
                ..Default::default()
            },
            ..Default::default()
        };
        let r = RunReport {
            mode: LoadMode::Open,
            phases: vec![
                step("step-10", 10.0, 10.0, 4.2, 100.0),
                step("step-500", 500.0, 497.5, 812.0, 93.25),
            ],
            ..Default::default()
        };
        let text = phase_table(&r).to_string();
        let cells = |line: &str| -> Vec<String> {
            line.split(['│', '┆'])
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect()
        };
        let lines: Vec<&str> = text.lines().filter(|l| l.contains('│')).collect();
        let header = cells(lines[0]);
        let at = |name: &str| header.iter().position(|h| h == name).unwrap();
        assert!(at("target") < at("rps") && at("rps") < at("mean") && at("mean") < at("success"));
        let row = cells(lines[2]);
        assert_eq!(row[0], "step-500");
        assert_eq!(
            [
                &row[at("target")],
                &row[at("rps")],
                &row[at("mean")],
                &row[at("success")]
            ],
            ["500/s", "497.5", "812ms", "93.25%"]
        );
        assert_eq!(cells(lines[1])[0], "step-10");
        // The whole summary prints it when there are steps.
        assert!(render(&r).contains(&text));
    }
}
