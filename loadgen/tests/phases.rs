//! Per-phase results of a real run whose phases have known rates.

mod common;

use common::{out, report, run_scenario, scenario_file, start};

#[test]
fn each_phase_gets_its_row_with_counts_that_add_up_to_the_run() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario_file(
        &dir,
        "s.yaml",
        "name: steps\nload:\n  phases:\n    - { name: step-20, duration: 2s, rate: 20 }\n    \
         - { name: step-60, duration: 2s, rate: 60 }\n    - { duration: 1s, rate: 10 }\n\
         requests:\n  - { path: /ping }\n",
    );
    let o = out(&dir, "r.json");
    assert_eq!(run_scenario(&sc, &srv.url(), &[], &o), 0);
    let r = report(&o);
    let names: Vec<&str> = r.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["step-20", "step-60", "phase 3"]);
    // Arrivals k/rate: exactly 40, 120 and 10, each counted in the phase that scheduled it.
    let counts: Vec<u64> = r.phases.iter().map(|p| p.requests).collect();
    assert_eq!(counts, [40, 120, 10]);
    assert_eq!(counts.iter().sum::<u64>(), r.summary.requests);
    let p = &r.phases[1];
    assert_eq!((p.start_s, p.duration_s, p.rps), (2.0, 2.0, 60.0));
    assert_eq!(
        (p.target_from, p.success_rate, p.shed_503),
        (60.0, 100.0, 0)
    );
    assert!(p.latency_ms.p99 >= p.latency_ms.p50 && p.latency_ms.p50 > 0.0);
    assert!(p.service_time_ms.unwrap().p50 <= p.latency_ms.p50 + 0.01);

    // The terminal summary prints the table; the HTML report has it and shades the phases.
    let text = loadgen::report::summary::render(&r);
    let row = text.lines().find(|l| l.contains("step-60")).unwrap();
    for cell in ["60/s", "120", "60.0", "100.00%"] {
        assert!(row.contains(cell), "{cell} missing in {row}");
    }
    let html = loadgen::report::html::render_run(&r);
    assert!(html.contains("<table id=\"phases\">"));
    let chart = &html[html.find("id=\"chart-throughput\"").unwrap()..];
    let chart = &chart[..chart.find("</figure>").unwrap()];
    assert_eq!(chart.matches("class=\"phase\"").count(), 3, "{chart}");
    assert!(chart.contains("data-phase=\"step-60\""));
}

#[test]
fn a_merge_of_two_runs_adds_their_phases() {
    let srv = start();
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario_file(
        &dir,
        "s.yaml",
        "name: steps\nload:\n  phases:\n    - { name: a, duration: 1s, rate: 20 }\n    \
         - { name: b, duration: 1s, rate: 40 }\nrequests:\n  - { path: /ping }\n",
    );
    let (o1, o2) = (out(&dir, "1.json"), out(&dir, "2.json"));
    assert_eq!(run_scenario(&sc, &srv.url(), &[], &o1), 0);
    assert_eq!(run_scenario(&sc, &srv.url(), &[], &o2), 0);
    let m = loadgen::report::merge::merge(&[report(&o1), report(&o2)]).unwrap();
    let counts: Vec<u64> = m.phases.iter().map(|p| p.requests).collect();
    assert_eq!(counts, [40, 80]);
    assert_eq!(m.phases[1].rps, 80.0);
    // Exact: the merged percentiles come from the added histograms.
    let back =
        loadgen::model::RunReport::from_json("m", &serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(back.histograms.phases.len(), 2);
}
