//! The capacity section of a run page: the capacity line and a row per step the search tried.
//!
//! Why on the page at all: a capacity report is the run report of its highest passing step, so
//! without this section the page would show one step and hide the search that chose it.

use maud::{Markup, html};

use super::svg::num;
use super::table::head;
use crate::model::capacity::CapacitySection;
use crate::report::capacity::{capacity_line, rate};

pub(super) fn section(c: &CapacitySection) -> Markup {
    let watched = c.steps.iter().any(|s| s.settled.is_some());
    let mut columns = vec![
        "target", "achieved", "requests", "success", "mean ms", "p50 ms", "p99 ms", "503 shed",
    ];
    if watched {
        columns.extend(["replicas", "settled"]);
    }
    html! {
        section {
            h2 { "Capacity" }
            @for (i, line) in capacity_line(c).lines().enumerate() {
                @if i == 0 { p { (line) } } @else { p class="sub" { (line) } }
            }
            p class="sub" {
                "The rest of this page is the run of the highest passing step; every step tried:"
            }
            table id="capacity-steps" {
                (head(&["step", "verdict", "broken / why"], &columns))
                tbody {
                    @for s in &c.steps {
                        tr class=(s.verdict.label()) {
                            td class="l" { (s.step) }
                            td class="l" { (s.verdict.label()) }
                            td class="l" { (s.verdict.reason()) }
                            td { (rate(s.target_rps)) }
                            td { (format!("{:.1}/s", s.achieved_rps)) }
                            td { (s.requests) }
                            td { (format!("{:.2} %", s.success_rate)) }
                            td { (num(s.latency_ms.mean)) }
                            td { (num(s.latency_ms.p50)) }
                            td { (num(s.latency_ms.p99)) }
                            td { (s.shed_503) }
                            @if watched {
                                td { (s.replicas.map_or("-".into(), |r| r.to_string())) }
                                td {
                                    (match s.settled { Some(true) => "yes", Some(false) => "no", None => "-" })
                                    @if s.attempts > 1 { " (" (s.attempts) " runs)" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
