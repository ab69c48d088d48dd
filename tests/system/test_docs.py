"""The documentation, held to the code it describes.

- Links: every relative link in README.md, docs/*.md and the other pages named in DOC_PAGES points
  at an existing file (and, for a `#fragment` into a Markdown page, at an existing heading); every
  page of docs/ is listed in docs/README.md.
- The metric contract (docs/metrics.md): the names the code defines, the names a real workload and
  a real loadgen export, the names the rules and dashboards query, and the "used by" column.
- The scenario format (docs/scenarios.md): every key the parser accepts is documented, every key
  documented exists, and every example on the page loads in the real loadgen.
- The flags (docs/loadgen.md, docs/workload.md) against the binaries' --help, the compose knobs
  (docs/docker.md) against docker-compose.yml, the dashboard guide (docs/dashboards.md) against the
  generated dashboards.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, prometheus_tool
from procs import free_port, spawn, terminate, wait_until_ready
from dashboard_queries import (
    DASHBOARD_DIR,
    SYNTHETIC_NAMES,
    exposition_names,
    metric_names,
    panels,
    parse_label_values,
    recorded_names,
    rule_files,
)

DOCS = ROOT / "docs"
DOC_PAGES = sorted(
    [ROOT / "README.md", ROOT / "deploy" / "README.md", ROOT / "loadgen" / "README.md", ROOT / "bench" / "RESULTS.md"]
    + list(DOCS.glob("*.md"))
)

README_MAX_LINES = 300


# ----------------------------------------------------------------------------- Markdown helpers
_FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.S | re.M)
_LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(text: str) -> str:
    """The text outside fenced code blocks and inline code spans."""
    text = _FENCE.sub("", text)
    return re.sub(r"`[^`\n]*`", "", text)


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in _FENCE.sub("", page.read_text()).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = github_anchor(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(page: Path) -> list[str]:
    return [
        target
        for target in _LINK.findall(prose(page.read_text()))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto:
    ]


def section(text: str, heading: str) -> str:
    """The body of the section whose heading line is `heading`, up to the next heading of the same
    or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    try:
        start = lines.index(heading)
    except ValueError:
        raise AssertionError(f"heading {heading!r} not found") from None
    body = []
    for line in lines[start + 1 :]:
        match = re.match(r"^(#+)\s", line)
        if match and len(match.group(1)) <= level:
            break
        body.append(line)
    return "\n".join(body)


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in `text` (header and separator rows left out)."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|") or re.fullmatch(r"\|[\s:|-]+\|", line):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))]
        rows.append(cells)
    return rows


def first_cell_names(text: str) -> list[tuple[str, list[str]]]:
    """Rows whose first cell is exactly one backticked identifier: (identifier, cells)."""
    out = []
    for cells in table_rows(text):
        match = re.fullmatch(r"`([A-Za-z_][\w:.]*)`", cells[0])
        if match:
            out.append((match.group(1), cells))
    return out


def backticked(cell: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", cell))


# ----------------------------------------------------------------------------- links
@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path):
    broken = []
    for target in relative_links(page):
        path_part, _, fragment = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        rel = dest.relative_to(ROOT).as_posix() if dest.is_relative_to(ROOT) else str(dest)
        if not dest.exists():
            broken.append(f"{target} (no file {rel})")
            continue
        if fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target} (no heading #{fragment} in {rel})")
    assert broken == [], f"{page.relative_to(ROOT)}: broken links"


def test_the_link_checker_finds_links_and_anchors():
    """The checker itself: links outside code are found, code is skipped, anchors follow GitHub."""
    assert github_anchor("Quick start, cargo only") == "quick-start-cargo-only"
    assert github_anchor("Compare deployments (`scalebench-compare`)") == "compare-deployments-scalebench-compare"
    assert github_anchor("The loadgen's metrics") == "the-loadgens-metrics"
    text = "see [a](docs/a.md#x) and `[b](b.md)`\n```\n[c](c.md)\n```\n[d](https://e.org) ![img](i.png)"
    assert _LINK.findall(prose(text)) == ["docs/a.md#x", "https://e.org"]
    readme_links = relative_links(ROOT / "README.md")
    assert "docs/metrics.md" in readme_links and len(readme_links) > 15


def test_every_docs_page_is_listed_in_the_index():
    index = DOCS / "README.md"
    listed = {(DOCS / t.partition("#")[0]).resolve() for t in relative_links(index)}
    pages = {p.resolve() for p in DOCS.glob("*.md")} - {index.resolve()}
    missing = sorted(p.name for p in pages - listed)
    assert missing == [], "docs pages not linked from docs/README.md"


def test_the_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    # The two commands, spelled exactly as CI and users type them.
    assert "make up" in text and "make test" in text
    # The cargo-only quick start.
    assert "cargo run -p workload" in text
    assert "cargo run -p loadgen -- --target http://127.0.0.1:8080/ping" in text
    # Dated measurements live in bench/RESULTS.md, not here.
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), "move dated measurements to bench/RESULTS.md"


def test_measurements_are_dated_with_their_commands():
    text = (ROOT / "bench" / "RESULTS.md").read_text()
    for script in ("bench/workload-overhead.sh", "bench/loadgen-vs-wrk.sh"):
        assert script in text
    tables = section(text, "## The classic experiments on one container")
    dates = [cells[1] for cells in table_rows(tables)[1:]]
    assert dates and all(re.fullmatch(r"20\d\d-\d\d-\d\d", d) for d in dates), dates
    for scenario in ("classic-3x100k", "rate-steps", "ramp-250-users"):
        assert f"`{scenario}`" in tables
        assert (ROOT / "loadgen" / "scenarios" / f"{scenario}.yaml").exists()


# ----------------------------------------------------------------------------- the metric contract
METRICS_DOC = DOCS / "metrics.md"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def documented_metrics(heading: str) -> dict[str, list[str]]:
    """name -> [metric, type, labels, unit, meaning, used by] for one table of docs/metrics.md."""
    rows = first_cell_names(section(METRICS_DOC.read_text(), heading))
    assert rows, f"no metric rows under {heading!r}"
    return dict(rows)


def workload_doc() -> dict[str, list[str]]:
    return documented_metrics("## The workload's metrics")


def loadgen_doc() -> dict[str, list[str]]:
    return documented_metrics("## The loadgen's metrics")


def kubelet_doc() -> dict[str, list[str]]:
    """The kubelet's cAdvisor families the cluster's Prometheus keeps: not ours, but queried."""
    return documented_metrics("## The kubelet's cAdvisor metrics (cluster only)")


def knative_doc() -> dict[str, list[str]]:
    """Knative's data-plane families the scale-to-zero dashboard queries: not ours either."""
    return documented_metrics("## Knative's metrics (cluster only)")


def rules_doc() -> dict[str, list[str]]:
    return documented_metrics("## Recording rules")


def source_metric_names_in(path: Path, prefixes: tuple[str, ...]) -> set[str]:
    """Metric names written as string literals in one source file; names start with `prefixes`."""
    pattern = re.compile(r'"((?:' + "|".join(prefixes) + r')[a-z0-9_]+)"')
    return set(pattern.findall(path.read_text()))


def source_metric_names(src: Path, prefixes: tuple[str, ...]) -> set[str]:
    """Metric names written as string literals in a crate's sources (its constants)."""
    return set().union(*(source_metric_names_in(path, prefixes) for path in src.rglob("*.rs")))


def family(name: str, histograms: set[str]) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in histograms:
            return name[: -len(suffix)]
    return name


def histograms_documented() -> set[str]:
    return {n for n, cells in {**workload_doc(), **loadgen_doc()}.items() if cells[1] == "histogram"}


def users_of_each_name() -> dict[str, set[str]]:
    """Metric or rule name -> the rule files (by stem) and dashboards (by uid without the
    `scalebench-` prefix) whose expressions select it."""
    hist = histograms_documented()
    uses: dict[str, set[str]] = {}

    def add(expr: str, user: str) -> None:
        for name in metric_names(expr):
            uses.setdefault(family(name, hist), set()).add(user)

    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        dash = json.loads(path.read_text())
        user = dash["uid"].removeprefix("scalebench-")
        for panel in panels(dash):
            for tgt in panel.get("targets", []):
                add(tgt["expr"], user)
        for var in dash.get("templating", {}).get("list", []):
            if var.get("type") == "query":
                query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
                add(parse_label_values(query)[0] or "", user)
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                add(rule["expr"], path.stem)
    return uses


def used_by_cell(cell: str) -> set[str]:
    return set() if cell.strip() in ("—", "-", "") else {u.strip() for u in cell.split(",")}


LOADGEN_NAMES = ROOT / "loadgen" / "src" / "metrics" / "names.rs"


def loadgen_defined() -> dict[str, str]:
    """name -> type of every `MetricDef` in loadgen/src/metrics/names.rs."""
    text = LOADGEN_NAMES.read_text()
    found = re.findall(r'def\(\s*"(loadgen_[a-z0-9_]+)",\s*Kind::(\w+)', text)
    return {name: kind.lower() for name, kind in found}


def test_the_loadgen_names_its_metrics_only_in_its_constants_module():
    elsewhere = {
        path.relative_to(ROOT).as_posix(): names
        for path in (ROOT / "loadgen" / "src").rglob("*.rs")
        if path != LOADGEN_NAMES and (names := source_metric_names_in(path, ("loadgen_",)))
    }
    assert elsewhere == {}, "metric names written outside loadgen/src/metrics/names.rs"
    defined = loadgen_defined()
    assert set(defined) == source_metric_names_in(LOADGEN_NAMES, ("loadgen_",)), "a name the table parser missed"
    wrong = {n: (k, loadgen_doc()[n][1]) for n, k in defined.items() if n in loadgen_doc() and loadgen_doc()[n][1] != k}
    assert wrong == {}, "names.rs type vs docs/metrics.md type"


def test_every_metric_the_code_names_is_documented_and_every_documented_one_exists():
    code = source_metric_names(ROOT / "service" / "src", ("http_server_", "workload_")) | set(loadgen_defined())
    assert len(code) >= 15, f"the source scan found suspiciously little: {sorted(code)}"
    # process_* come from the metrics-process crate, not from our sources: the live test covers them.
    documented = {n for n in {**workload_doc(), **loadgen_doc()} if not n.startswith("process_")}
    assert sorted(code - documented) == [], "defined in the code, missing from docs/metrics.md"
    assert sorted(documented - code) == [], "in docs/metrics.md, defined nowhere in the code"


def test_every_documented_type_is_a_prometheus_type_and_every_row_is_complete():
    for name, cells in {**workload_doc(), **loadgen_doc()}.items():
        assert len(cells) == 6, f"{name}: expected metric | type | labels | unit | meaning | used by"
        assert cells[1] in ("counter", "gauge", "histogram"), f"{name}: type {cells[1]!r}"
        assert cells[3] and cells[4], f"{name}: unit and meaning are required"
        assert name.endswith("_total") == (cells[1] == "counter"), f"{name}: counters end in _total"


def test_every_name_the_rules_and_dashboards_query_is_documented():
    metrics = set(workload_doc()) | set(loadgen_doc()) | set(kubelet_doc()) | set(knative_doc())
    rules = set(rules_doc())
    referenced = set(users_of_each_name())
    assert len(referenced) > 20, "the metric-name extractor found suspiciously little"
    unknown = sorted(referenced - metrics - rules - SYNTHETIC_NAMES)
    assert unknown == [], "queried by rules or dashboards, missing from docs/metrics.md"
    assert rules == recorded_names(), "the recording-rules table must list exactly prometheus/rules' records"


def test_used_by_lists_exactly_the_rules_and_dashboards_that_query_each_name():
    uses = users_of_each_name()
    wrong = {}
    for name, cells in {**workload_doc(), **loadgen_doc(), **kubelet_doc(), **knative_doc(), **rules_doc()}.items():
        actual = uses.get(name, set())
        if used_by_cell(cells[-1]) != actual:
            wrong[name] = ", ".join(sorted(actual)) or "—"
    assert wrong == {}, "docs/metrics.md 'used by' cells should read (name: cell)"


def families_with_labels(text: str) -> dict[str, tuple[str, set[str]]]:
    """family -> (type, label names seen) from a Prometheus text exposition."""
    types: dict[str, str] = {}
    labels: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            types[name] = kind.strip()
            labels.setdefault(name, set())
        elif line and not line.startswith("#"):
            sample = re.split(r"[{\s]", line, maxsplit=1)[0]
            fam = next((f for f in types if sample == f or sample in (f + s for s in HISTOGRAM_SUFFIXES)), sample)
            labels.setdefault(fam, set()).update(re.findall(r'([a-zA-Z_]\w*)="', line.partition("{")[2].rpartition("}")[0]))
    return {name: (types.get(name, "untyped"), labels.get(name, set())) for name in types}


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


@pytest.fixture(scope="module")
def live_expositions(binaries) -> dict[str, str]:
    """/metrics of a real workload after some traffic, and of a real loadgen during a run."""
    app, metrics, lg_metrics = free_port(), free_port(), free_port()
    workload = spawn(
        [str(binaries["workload"]), "--addr", f"127.0.0.1:{app}", "--metrics-addr", f"127.0.0.1:{metrics}",
         "--drain-delay", "0s", "--log-format", "text"],
    )  # fmt: skip
    loadgen = None
    try:
        wait_until_ready(f"http://127.0.0.1:{app}/readyz", 30, workload)
        loadgen = spawn(
            [str(binaries["loadgen"]), "--target", f"http://127.0.0.1:{app}/ping", "--rate", "20", "--duration", "2s",
             "--metrics-addr", f"127.0.0.1:{lg_metrics}", "--metrics-linger", "60s", "--deployment", "docs", "-q"],
        )  # fmt: skip
        # Families register at the start of the run, the per-status and per-backend counters with
        # the first answer: once the backend counter is there, every family of this run is.
        lg_text = wait_until_ready(
            f"http://127.0.0.1:{lg_metrics}/metrics", 30, loadgen, contains="loadgen_backend_requests_total"
        )
        wl_text = fetch(f"http://127.0.0.1:{metrics}/metrics")
        return {"workload": wl_text, "loadgen": lg_text}
    finally:
        if loadgen is not None:
            terminate(loadgen)
        terminate(workload)


# Labels that come from outside a binary's code: Prometheus, the loadgen's global labels, histograms.
OUTSIDE_LABELS = {"le", "quantile", "run", "deployment"}


@pytest.mark.parametrize("binary", ["workload", "loadgen"])
def test_a_real_binary_exports_exactly_the_documented_metrics(live_expositions, binary: str):
    doc = workload_doc() if binary == "workload" else loadgen_doc()
    exported = families_with_labels(live_expositions[binary])
    assert set(exported) == exposition_names(live_expositions[binary]) - {
        f + s for f in exported for s in HISTOGRAM_SUFFIXES
    }, "the exposition parser missed a family"
    assert sorted(set(exported) - set(doc)) == [], f"{binary} exports names docs/metrics.md does not list"
    # Series that exist only with --watch (no Kubernetes here) are the only ones allowed to be absent.
    absent = sorted(n for n, cells in doc.items() if n not in exported and "--watch" not in cells[4])
    assert absent == [], f"documented for {binary}, not exported by a real run"
    for name, (kind, labels) in exported.items():
        assert doc[name][1] == kind, f"{name}: documented as {doc[name][1]}, exported as {kind}"
        undocumented = labels - OUTSIDE_LABELS - backticked(doc[name][2])
        assert undocumented == set(), f"{name}: labels missing from docs/metrics.md"


@pytest.mark.parametrize("binary", ["workload", "loadgen"])
def test_promtool_finds_nothing_to_lint_in_a_real_exposition(live_expositions, binary: str, tmp_path):
    """`promtool check metrics`: HELP text on every family, counters in _total, base units."""
    promtool = prometheus_tool("promtool")
    text = live_expositions[binary]
    assert "# HELP " in text and "# TYPE " in text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout + result.stderr == "", (
        f"promtool check metrics on the {binary}'s /metrics:\n{result.stdout}{result.stderr}"
    )


def test_promtool_lint_fails_on_a_family_without_help():
    """The check above can fail: an undescribed family is what the loadgen used to export."""
    promtool = prometheus_tool("promtool")
    text = "# TYPE loadgen_in_flight gauge\nloadgen_in_flight 0\n"
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "no help text" in result.stdout + result.stderr


# ----------------------------------------------------------------------------- the scenario format
SCENARIOS_DOC = DOCS / "scenarios.md"
SCENARIO_SOURCE = ROOT / "loadgen" / "src" / "scenario" / "spec.rs"


def serde_fields(struct: str) -> set[str]:
    """Field names of a `pub struct NAME { pub field: T, ... }` in the scenario parser."""
    text = SCENARIO_SOURCE.read_text()
    match = re.search(r"pub struct " + struct + r"\s*\{(.*?)\n\}", text, re.S)
    assert match, f"struct {struct} not found in {SCENARIO_SOURCE}"
    return set(re.findall(r"^\s*pub (\w+):", match.group(1), re.M))


@pytest.mark.parametrize(
    ("structs", "heading"),
    [
        (["ScenarioSpec"], "### Top level"),
        (["RequestSpec"], "### A request (an entry of `requests`, or a step of a flow)"),
        (["LoadSpec", "PhaseSpec"], "### The load block"),
    ],
)
def test_every_scenario_key_is_documented_and_every_documented_key_exists(structs: list[str], heading: str):
    fields = set().union(*(serde_fields(s) for s in structs))
    assert fields, structs
    documented = {name for name, _ in first_cell_names(section(SCENARIOS_DOC.read_text(), heading))}
    assert sorted(fields - documented) == [], f"keys of {structs} missing under {heading!r}"
    assert sorted(documented - fields) == [], f"keys documented under {heading!r} that the parser rejects"


def test_the_expect_keys_are_documented():
    request = section(SCENARIOS_DOC.read_text(), "### A request (an entry of `requests`, or a step of a flow)")
    for field in serde_fields("ExpectSpec"):
        assert f"expect.{field}" in request


def example_blocks() -> list[tuple[str, str]]:
    """(extension, text) of every YAML and TOML block in docs/scenarios.md that is a scenario."""
    text = SCENARIOS_DOC.read_text()
    blocks = re.findall(r"^```(yaml|toml)\n(.*?)^```", text, re.S | re.M)
    out = [(ext, body) for ext, body in blocks if re.search(r"^(requests:|\[\[requests\]\])", body, re.M)]
    assert len(out) >= 2, "docs/scenarios.md should show a YAML and a TOML scenario"
    return out


@pytest.mark.parametrize("index", range(len(example_blocks())))
def test_every_scenario_example_in_the_docs_loads(binaries, tmp_path, index: int):
    ext, body = example_blocks()[index]
    path = tmp_path / f"example.{ext}"
    path.write_text(body)
    # Port 9 (discard) refuses at once: the file is compiled, one request fails, nothing waits.
    result = subprocess.run(
        [str(binaries["loadgen"]), "run", str(path), "--target", "http://127.0.0.1:9", "-c", "1", "-n", "1",
         "-d", "1s", "--timeout", "2s", "-q"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 2, f"the example does not load:\n{result.stderr}"
    assert str(path) not in result.stderr, result.stderr


# ----------------------------------------------------------------------------- flags, knobs, panels
def help_flags(*cmd: str) -> set[str]:
    out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60, check=True).stdout
    return set(re.findall(r"^\s+(?:-\w, )?(--[\w-]+)", out, re.M)) - {"--help", "--version"}


def documented_flags(page: Path) -> set[str]:
    flags = set()
    for cells in table_rows(page.read_text()):
        flags.update(re.findall(r"`(?:-\w`, `)?(--[\w-]+)[^`]*`", cells[0]))
    return flags


def test_the_loadgen_page_names_every_flag_and_no_other(binaries):
    loadgen = str(binaries["loadgen"])
    accepted = help_flags(loadgen, "--help") | help_flags(loadgen, "run", "--help")
    documented = documented_flags(DOCS / "loadgen.md")
    assert sorted(accepted - documented) == [], "loadgen flags missing from docs/loadgen.md"
    assert sorted(documented - accepted) == [], "docs/loadgen.md names flags loadgen does not accept"


def test_the_capacity_page_names_every_search_flag_and_no_other(binaries):
    loadgen = str(binaries["loadgen"])
    # The request and run flags are the quick form's (docs/loadgen.md); the search's are its own.
    search = help_flags(loadgen, "capacity", "--help") - help_flags(loadgen, "--help")
    assert "--start-rate" in search and "--precision" in search
    documented = documented_flags(DOCS / "capacity.md")
    assert sorted(search - documented) == [], "capacity flags missing from docs/capacity.md"
    assert sorted(documented - search) == [], "docs/capacity.md names flags capacity does not accept"


def test_the_workload_page_names_every_flag_and_no_other(binaries):
    accepted = help_flags(str(binaries["workload"]), "--help")
    documented = documented_flags(DOCS / "workload.md")
    assert sorted(accepted - documented) == [], "workload flags missing from docs/workload.md"
    assert sorted(documented - accepted) == [], "docs/workload.md names flags workload does not accept"


def test_every_compose_knob_is_documented():
    knobs = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))
    assert "WORKLOAD_CPUS" in knobs
    documented = set()
    for cells in table_rows((DOCS / "docker.md").read_text()):
        documented |= backticked(cells[0])
    assert sorted(knobs - documented) == [], "docker-compose.yml variables missing from docs/docker.md"


def test_every_dashboard_panel_is_described():
    text = " ".join((DOCS / "dashboards.md").read_text().split())  # titles may wrap across lines
    missing = []
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        dash = json.loads(path.read_text())
        if f"`{dash['uid']}`" not in text:
            missing.append(dash["uid"])
        for panel in panels(dash):
            if panel["type"] != "row" and f"**{panel['title']}**" not in text:
                missing.append(f"{dash['uid']}: {panel['title']}")
    assert missing == [], "panels docs/dashboards.md does not describe (as **Title**)"
