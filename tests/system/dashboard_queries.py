"""Helpers shared by test_dashboards.py and test_prometheus_rules.py.

- walk the Grafana dashboards' panel targets and template variables,
- substitute Grafana's variables ($deployment, $run, $__rate_interval, ...) the way Grafana does,
- pull the metric names out of a PromQL expression (for "does any binary export this name?"),
- parse the Prometheus text exposition format for the names a binary exports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "prometheus"
GRAFANA_DIR = ROOT / "grafana"
DASHBOARD_DIR = GRAFANA_DIR / "dashboards"
DATASOURCES_FILE = GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yml"
DASHBOARD_PROVIDER_FILE = GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml"

# Series Prometheus makes up itself rather than scraping them.
SYNTHETIC_NAMES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)


# ----------------------------------------------------------------------------- dashboards
@dataclass(frozen=True)
class PanelTarget:
    dashboard: str  # file name
    panel: str  # panel title
    ref_id: str
    expr: str
    legend: str
    instant: bool

    @property
    def id(self) -> str:
        return f"{self.dashboard}:{self.panel}:{self.ref_id}"


# Dashboards of Knative's series (deploy/overlays/knative): proven against the cluster's Prometheus
# after a scale-to-zero run (tests/cluster/test_knative.py), not against the compose stack or the
# HPA run, where those series cannot exist.
KNATIVE_DASHBOARDS = frozenset({"scale-to-zero.json"})


def load_dashboards(which: str = "stack") -> dict[str, dict]:
    """The dashboards by file name: `stack` (those of the workload and loadgen series), `knative`
    (KNATIVE_DASHBOARDS) or `all`."""
    assert which in ("stack", "knative", "all"), which
    found = {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARD_DIR.glob("*.json"))}
    return {name: d for name, d in found.items()
            if which == "all" or (name in KNATIVE_DASHBOARDS) == (which == "knative")}


def panels(dashboard: dict) -> list[dict]:
    """Every panel, including those nested in collapsed rows."""
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def panel_targets(which: str = "stack") -> list[PanelTarget]:
    found = []
    for name, dash in load_dashboards(which).items():
        for panel in panels(dash):
            for tgt in panel.get("targets", []):
                found.append(
                    PanelTarget(
                        dashboard=name,
                        panel=panel["title"],
                        ref_id=tgt["refId"],
                        expr=tgt["expr"],
                        legend=tgt.get("legendFormat", ""),
                        instant=bool(tgt.get("instant")),
                    )
                )
    return found


def variable_queries(which: str = "stack") -> list[tuple[str, str, str]]:
    """(dashboard, variable name, query) for every query variable."""
    out = []
    for name, dash in load_dashboards(which).items():
        for var in dash.get("templating", {}).get("list", []):
            if var.get("type") == "query":
                query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
                out.append((name, var["name"], query))
    return out


LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.*),\s*)?(?P<label>[a-zA-Z_]\w*)\)$", re.S)


def parse_label_values(query: str) -> tuple[str | None, str]:
    """`label_values(selector, label)` -> (selector, label), as Grafana's variable editor reads it."""
    match = LABEL_VALUES.match(query.strip())
    if not match:
        raise ValueError(f"not a label_values() query: {query!r}")
    return match.group("selector"), match.group("label")


# ----------------------------------------------------------------------------- Grafana variables
def grafana_duration(seconds: float) -> str:
    """Seconds as a Prometheus duration literal, as Grafana renders interval variables."""
    seconds = int(round(seconds))
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def parse_duration(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text.strip())
    if not match:
        raise ValueError(f"bad duration {text!r}")
    return float(match.group(1)) * units[match.group(2)]


def regex_escape(value: str) -> str:
    """Grafana's prometheusSpecialRegexEscape, applied to each value of a multi-value variable."""
    return re.sub(r"([\\^$*+?.()|{}\[\]])", r"\\\\\1", value)


def format_multi(values: list[str]) -> str:
    """How Grafana interpolates a multi-value / include-All variable into a Prometheus regex."""
    escaped = [regex_escape(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def substitute(expr: str, variables: dict[str, str], *, interval_s: float, scrape_s: float, range_s: float) -> str:
    """Replace template and global variables the way Grafana does before it sends a query.

    $__rate_interval = max($__interval + scrape interval, 4 * scrape interval), the scrape
    interval being the datasource's `timeInterval`.
    """
    rate_interval = max(interval_s + scrape_s, 4 * scrape_s)
    builtins = {
        "__rate_interval": grafana_duration(rate_interval),
        "__interval_ms": str(int(interval_s * 1000)),
        "__interval": grafana_duration(interval_s),
        "__range_s": str(int(range_s)),
        "__range_ms": str(int(range_s * 1000)),
        "__range": f"{int(range_s)}s",
    }
    values = {**builtins, **variables}

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    # ${name} or $name (longest name first so $__interval_ms is not read as $__interval + "_ms")
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


def provisioned_scrape_interval() -> float:
    """The Prometheus datasource's timeInterval (Grafana's idea of the scrape interval)."""
    doc = yaml.safe_load(DATASOURCES_FILE.read_text())
    for ds in doc["datasources"]:
        if ds["type"] == "prometheus":
            return parse_duration(ds.get("jsonData", {}).get("timeInterval", "15s"))
    raise AssertionError("no Prometheus datasource provisioned")


# ----------------------------------------------------------------------------- PromQL metric names
_KEYWORDS = frozenset(
    {
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
        "offset", "bool", "inf", "nan", "atan2", "start", "end",
    }
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_TOKEN = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[a-zA-Z]*|0x[0-9a-fA-F]+|[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: bare selectors and `__name__` matchers.

    Not a full PromQL parser; enough for the dashboards and rules here, and covered by its own
    tests (test_prometheus_rules.py) so it does not silently find nothing.
    """
    names: set[str] = set()
    expr = re.sub(r"\$\{?\w+\}?", "x", expr)  # template variables only ever sit in strings or ranges
    for _op, value in _NAME_MATCHER.findall(expr):
        names.update(alt for alt in value.split("|") if re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", alt))
    expr = _STRING.sub('""', expr)
    expr = re.sub(r"\{[^{}]*\}", "{}", expr)  # label matchers
    expr = re.sub(r"\[[^\[\]]*\]", "", expr)  # ranges and subqueries
    expr = _GROUPING.sub(" ", expr)
    for match in _TOKEN.finditer(expr):
        token = match.group(0)
        if token[0].isdigit() or token.lower() in _KEYWORDS:
            continue
        rest = expr[match.end() :].lstrip()
        if rest.startswith("("):  # a function or aggregation call
            continue
        names.add(token)
    return names


# ----------------------------------------------------------------------------- exposition format
def exposition_names(text: str) -> set[str]:
    """Sample and family names in a Prometheus text exposition (so `x_bucket` and `x` both count)."""
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 3 and parts[1] in ("TYPE", "HELP"):
                names.add(parts[2])
            continue
        names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


# ----------------------------------------------------------------------------- rules
def rule_files() -> list[Path]:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    files: list[Path] = []
    for pattern in config.get("rule_files", []):
        files.extend(sorted(PROMETHEUS_DIR.glob(pattern)))
    return files


def rules() -> list[dict]:
    out = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            out.extend(group["rules"])
    return out


def recorded_names() -> set[str]:
    return {r["record"] for r in rules() if "record" in r}
