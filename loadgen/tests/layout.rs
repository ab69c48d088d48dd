//! The shape of `loadgen/src`, as `lib.rs`'s Layout section describes it: no two modules import
//! each other, directly or round a circle, and the run's data (`model`) imports none of the
//! modules that fill or read it.
//!
//! Why a test: an import circle creeps in one convenient `use` at a time (the report's data
//! pointing at the watcher that fills it, two report files borrowing a helper from each other),
//! and each one makes a reader go back and forth. Read from the source text, as a reader would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, with its text up to its `#[cfg(test)] mod tests` (the code a
/// reader of the library reads; tests may import anything).
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
                out.push((path, code.to_string()));
            }
        }
    }
    out
}

/// Module path (`report::html::run`) -> its code outside tests, comments removed.
fn modules() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    for (path, code) in sources(&root) {
        let rel = path
            .strip_prefix(&root)
            .expect("under src")
            .with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        let code: String = code
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        out.insert(parts.join("::"), code);
    }
    out
}

/// The paths named after each `crate::` or `super::` in `code`, with a `{...}` group expanded
/// one level (`crate::model::{hist, RunReport}` names `model::hist` and `model::RunReport`).
fn named_paths(code: &str, module: &str) -> Vec<Vec<String>> {
    let parent: Vec<String> = module
        .split("::")
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let parent = &parent[..parent.len().saturating_sub(1)];
    let mut found = Vec::new();
    for (kw, base) in [("crate::", &[][..]), ("super::", parent)] {
        for (at, _) in code.match_indices(kw) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &code[at + kw.len()..];
            let (prefix, group) = path_and_group(rest);
            let mut head: Vec<String> = base.to_vec();
            head.extend(prefix);
            match group {
                None => found.push(head),
                Some(items) => {
                    for item in items.split(',') {
                        let mut p = head.clone();
                        p.extend(path_and_group(item.trim()).0);
                        found.push(p);
                    }
                }
            }
        }
    }
    found
}

/// `a::b::C...` -> (["a", "b", "C"], None); `a::{x, y}` -> (["a"], Some("x, y")).
fn path_and_group(s: &str) -> (Vec<String>, Option<&str>) {
    let mut parts = Vec::new();
    let mut rest = s;
    loop {
        if let Some(inner) = rest.strip_prefix('{') {
            let end = inner.find('}').unwrap_or(inner.len());
            return (parts, Some(&inner[..end]));
        }
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if len == 0 {
            return (parts, None);
        }
        parts.push(rest[..len].to_string());
        match rest[len..].strip_prefix("::") {
            Some(next) => rest = next,
            None => return (parts, None),
        }
    }
}

/// Module -> the modules it imports from (neither its ancestors nor its descendants).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, code) in &mods {
        for path in named_paths(code, module) {
            // The longest prefix of the path that is a module.
            let target = (1..=path.len())
                .rev()
                .map(|n| path[..n].join("::"))
                .find(|p| mods.contains_key(p));
            let Some(target) = target else { continue };
            let related = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}::"));
            if related(module, &target) || related(&target, module) || module.is_empty() {
                continue;
            }
            graph.entry(module.clone()).or_default().insert(target);
        }
    }
    graph
}

/// A circle through `from` back to itself, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("never empty");
        for next in graph.get(last).into_iter().flatten() {
            if next == from {
                let mut c = path.clone();
                c.push(next.clone());
                return Some(c);
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push(p);
            }
        }
    }
    None
}

#[test]
fn no_module_of_loadgen_imports_from_a_module_that_imports_it_back() {
    let graph = imports();
    assert!(
        graph.contains_key("cmd::run::build") && graph["report::merge"].contains("model"),
        "the import graph was read: {graph:#?}"
    );
    // Between the files, and between the top-level modules (where `model::figures` importing
    // from `report` is a circle with `report` importing `model`).
    let top = |m: &str| m.split("::").next().unwrap_or(m).to_string();
    let mut tops: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, ts) in &graph {
        for t in ts.iter().filter(|t| top(t) != top(m)) {
            tops.entry(top(m)).or_default().insert(top(t));
        }
    }
    let circles: Vec<String> = [&graph, &tops]
        .into_iter()
        .flat_map(|g| g.keys().filter_map(|m| circle(g, m)))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_run_data_imports_none_of_the_modules_that_fill_or_read_it() {
    let graph = imports();
    // Leaf helpers the model may use: bounds on untrusted input and the terminal's pipe check.
    let allowed = ["limits", "console"];
    let reaching: Vec<(&String, &String)> = graph
        .iter()
        .filter(|(m, _)| *m == "model" || m.starts_with("model::"))
        .flat_map(|(m, ts)| ts.iter().map(move |t| (m, t)))
        .filter(|(_, t)| !t.starts_with("model") && !allowed.contains(&t.as_str()))
        .collect();
    assert!(reaching.is_empty(), "model imports {reaching:?}");
}

#[test]
fn only_the_commands_reach_up_into_the_renderers() {
    let graph = imports();
    assert!(
        graph["cmd::compare"].contains("report::compare"),
        "the import graph was read: {graph:#?}"
    );
    // The report renders the finished run; the layers that produce the run (the engine, the
    // watcher, the capacity search, the progress line) write for a reader through the leaves
    // `console` and `humanize`, so a renderer can change without them.
    let top = |m: &str| m.split("::").next().unwrap_or(m).to_string();
    let reaching: Vec<(&String, &String)> = graph
        .iter()
        .filter(|(m, _)| !["report", "cmd", "app"].contains(&top(m).as_str()))
        .flat_map(|(m, ts)| ts.iter().map(move |t| (m, t)))
        .filter(|(_, t)| top(t) == "report")
        .collect();
    assert!(
        reaching.is_empty(),
        "modules below report import it: {reaching:?}"
    );
}

/// Longest function, in lines, in the workspace's library and binary code (tests aside): a longer
/// one does several jobs, and is split into named steps that read like the process it carries out.
const MAX_FN_LINES: usize = 120;

/// (file:line name, lines) of every function in `dir`'s `.rs` files outside their test module,
/// as rustfmt lays them out (the body ends at the first `}` at the `fn`'s indentation).
fn function_lengths(dir: &Path) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (path, code) in sources(dir) {
        let lines: Vec<&str> = code.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let body = line.trim_start();
            let indent = &line[..line.len() - body.len()];
            let words: Vec<&str> = body.split_whitespace().collect();
            let Some(at) = words.iter().position(|w| *w == "fn") else {
                continue;
            };
            let qualifiers = [
                "pub",
                "pub(crate)",
                "pub(super)",
                "async",
                "const",
                "unsafe",
            ];
            if !words[..at].iter().all(|w| qualifiers.contains(w)) || body.ends_with(';') {
                continue;
            }
            let close = format!("{indent}}}");
            let Some(end) = lines[i..].iter().position(|l| *l == close) else {
                continue;
            };
            let name = words
                .get(at + 1)
                .map_or("", |w| w.split(['(', '<']).next().unwrap_or(w));
            found.push((format!("{}:{} {name}", path.display(), i + 1), end + 1));
        }
    }
    found
}

#[test]
fn no_function_of_the_loadgen_or_the_workload_is_longer_than_120_lines() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = function_lengths(&manifest.join("src"));
    all.extend(function_lengths(&manifest.join("../service/src")));
    assert!(
        all.iter().any(|(f, n)| f.contains("merge") && *n > 10),
        "functions were found: {all:?}"
    );
    let long: Vec<String> = all
        .iter()
        .filter(|(_, n)| *n > MAX_FN_LINES)
        .map(|(f, n)| format!("{f}: {n} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "split these into named steps:\n{}",
        long.join("\n")
    );
}
