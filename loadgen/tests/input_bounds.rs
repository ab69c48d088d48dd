//! Untrusted reports cost bounded memory: crafted histograms, oversized files and endpoint floods
//! are refused with exit 2 by `merge`, `compare` and `report`, measured on the real binary.

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use common::{bin, out};
use serde_json::json;

/// The peak resident memory of the largest child this test process has waited for, in MiB.
/// Each nextest test is its own process, so these are the loadgen runs of this test only.
fn children_peak_rss_mib() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap();
    usage.max_rss() as f64 / 1024.0 // KiB on Linux
}

fn run(args: &[&str]) -> (i32, String) {
    let o = Command::new(bin()).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (o.status.code().unwrap_or(-1), stderr)
}

/// An HDR V2 header (40 bytes, no payload) that claims a payload of `payload_len` bytes, with the
/// bounds loadgen records.
fn v2_header_claiming(payload_len: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(0x1c84_9313u32.to_be_bytes()); // V2 cookie
    b.extend(payload_len.to_be_bytes());
    b.extend(0u32.to_be_bytes()); // normalizing offset
    b.extend(3u32.to_be_bytes()); // significant figures
    b.extend(1u64.to_be_bytes()); // lowest discernible value
    b.extend(3_600_000_000u64.to_be_bytes()); // highest trackable value
    b.extend(1.0f64.to_be_bytes()); // integer-to-double ratio
    b
}

/// The smallest report `from_json` accepts, with `latency` as its overall histogram.
fn minimal_report(latency: &str) -> serde_json::Value {
    let lat = json!({"min":0,"mean":0,"p50":0,"p90":0,"p95":0,"p99":0,"p999":0,"max":0,"stdev":0});
    json!({
        "schema_version": 1, "tool": "", "run": "crafted", "scenario": "", "target": "",
        "mode": "closed", "started_at": "", "started_at_unix_ms": 0,
        "plan": {"description": "", "duration_s": null, "requests": null, "concurrency": 0},
        "summary": {"requests": 0, "successes": 0, "failures": 0, "success_rate": 0,
            "duration_s": 0, "rps": 0, "latency_ms": lat, "service_time_ms": null,
            "status_codes": {}, "errors": {}, "backends": {}, "dropped": 0, "late": 0,
            "iterations": 0},
        "generator": {"threads": 0, "cpu_percent_mean": 0, "cpu_percent_max": 0,
            "schedule_lag_ms": {"mean": 0, "p99": 0, "max": 0},
            "limited_by_generator": false, "warnings": []},
        "histograms": {"encoding": "", "unit": "", "latency": latency, "service_time": ""},
    })
}

fn write(path: &Path, v: &serde_json::Value) -> String {
    std::fs::write(path, v.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

/// Every command that reads reports, on `file`.
fn every_reader(dir: &tempfile::TempDir, file: &str) -> Vec<Vec<String>> {
    let m = out(dir, "merged.json").to_str().unwrap().to_string();
    let h = out(dir, "r.html").to_str().unwrap().to_string();
    [
        vec!["merge", file, "-q", "--out", &m],
        vec!["compare", file, file],
        vec!["report", file, "--html", &h],
    ]
    .into_iter()
    .map(|a| a.into_iter().map(String::from).collect())
    .collect()
}

#[test]
fn a_histogram_header_claiming_4_gib_exits_2_in_well_under_200_mb() {
    let dir = tempfile::tempdir().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(v2_header_claiming(u32::MAX));
    let crafted = write(&out(&dir, "crafted.json"), &minimal_report(&b64));
    assert!(std::fs::metadata(&crafted).unwrap().len() < 1024);
    for args in every_reader(&dir, &crafted) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("histogram latency: header claims a 4294967295-byte payload"),
            "{args:?}: {stderr}"
        );
    }
    let peak = children_peak_rss_mib();
    // Before the fix: 4.2 GB. Now a few tens of MiB (the binary and its runtime).
    assert!(peak > 1.0 && peak < 200.0, "peak RSS {peak:.1} MiB");
}

#[test]
fn a_report_larger_than_64_mib_is_refused_without_being_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let big = out(&dir, "big.json");
    // Valid JSON start, then padding past the cap: the cap, not the parser, must refuse it.
    let mut text = minimal_report("").to_string();
    text.pop();
    text.push_str(",\"pad\":\"");
    text.push_str(&"x".repeat((64 << 20) + 16 - text.len()));
    text.push_str("\"}");
    std::fs::write(&big, text).unwrap();
    let (code, stderr) = run(&["compare", big.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("larger than 64 MiB"), "{stderr}");
    let peak = children_peak_rss_mib();
    assert!(peak < 200.0, "peak RSS {peak:.1} MiB");
}

#[test]
fn a_report_naming_more_endpoints_than_loadgen_handles_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = minimal_report("");
    let ep = |i: usize| {
        json!({"name": format!("e{i}"), "method": "GET", "path": "/", "requests": 0,
               "successes": 0, "failures": 0, "rps": 0, "latency_ms": r["summary"]["latency_ms"],
               "service_time_ms": null, "status_codes": {}, "errors": {}})
    };
    let eps: Vec<_> = (0..=loadgen::limits::MAX_ENDPOINTS).map(ep).collect();
    r["endpoints"] = eps.into();
    let file = write(&out(&dir, "many.json"), &r);
    for args in every_reader(&dir, &file) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains("has 201 endpoints; loadgen handles at most 200"),
            "{stderr}"
        );
    }
}

#[test]
fn merging_reports_whose_endpoints_add_up_past_the_cap_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let half = loadgen::limits::MAX_ENDPOINTS / 2 + 1;
    let files: Vec<String> = (0..2)
        .map(|k| {
            let mut r = minimal_report("");
            let lat = r["summary"]["latency_ms"].clone();
            let eps: Vec<_> = (0..half)
                .map(|i| {
                    json!({"name": format!("w{k}-e{i}"), "method": "GET", "path": "/",
                           "requests": 0, "successes": 0, "failures": 0, "rps": 0,
                           "latency_ms": lat, "service_time_ms": null, "status_codes": {},
                           "errors": {}})
                })
                .collect();
            r["endpoints"] = eps.into();
            write(&out(&dir, &format!("w{k}.json")), &r)
        })
        .collect();
    let m = out(&dir, "m.json");
    let (code, stderr) = run(&[
        "merge",
        &files[0],
        &files[1],
        "-q",
        "--out",
        m.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("more than 200 endpoints"), "{stderr}");
}
