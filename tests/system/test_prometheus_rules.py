"""Static proof for prometheus/ and grafana/: promtool, rule coverage, dashboard and provisioning shape.

The live proof (every dashboard query returns data from a real run) is test_dashboards.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import IN_CI, ROOT, figure, prometheus_release, prometheus_tool, require_tool, seeded_images
from dashboard_queries import (
    DASHBOARD_PROVIDER_FILE,
    DATASOURCES_FILE,
    GRAFANA_DIR,
    PROMETHEUS_DIR,
    load_dashboards,
    metric_names,
    panels,
    parse_label_values,
    rule_files,
    rules,
)

PROMTOOL_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
# The unit tests of the rules' native-histogram arms (their input needs a Prometheus 3 promtool).
NATIVE_TESTS = "native_histograms_test.yml"


def promtool(*args: str, tool: str | None = None) -> subprocess.CompletedProcess:
    """promtool of the pinned Prometheus 3 release (scripts/build-prometheus.sh), or TOOL."""
    tool = tool or prometheus_tool("promtool")
    return subprocess.run([tool, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


# ----------------------------------------------------------------------------- promtool
def test_promtool_check_config():
    result = promtool("check", "config", "prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules():
    files = [str(p.relative_to(ROOT)) for p in rule_files()]
    assert len(files) >= 2, "prometheus.yml should load the recording and the alerting rules"
    result = promtool("check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules():
    assert PROMTOOL_TESTS, "no promtool unit tests under prometheus/tests"
    result = promtool("test", "rules", *[str(p.relative_to(ROOT)) for p in PROMTOOL_TESTS])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_is_the_pinned_release():
    """The rules are proven by the release compose and the cluster pin, not whatever is on PATH."""
    result = promtool("--version")
    assert f"version {prometheus_release()} " in result.stdout + result.stderr, result.stdout + result.stderr


def test_the_prometheus_build_and_seed_scripts_are_shellcheck_clean():
    shellcheck = require_tool("shellcheck")
    scripts = [ROOT / "scripts" / "build-prometheus.sh", ROOT / ".ci" / "seed-images.sh"]
    result = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_and_the_cluster_pin_the_release_ci_proves():
    """docker-compose.yml, deploy/monitoring and the seeded stand-in name the release that
    tools/prometheus/go.mod builds and every proof here runs against."""
    tag = f"prom/prometheus:v{prometheus_release()}"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["prometheus"]["image"]
    deployment = yaml.safe_load((ROOT / "deploy" / "monitoring" / "prometheus-deployment.yaml").read_text())
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "prometheus"]
    assert (compose, container["image"]) == (tag, tag)
    seeded = f"scalebench-seed/prometheus:v{prometheus_release()}"
    assert seeded_images()["PROMETHEUS_IMAGE"] == seeded
    # The own-service test's image takes its busybox from the seeded Prometheus image.
    own = (ROOT / "tests" / "system" / "own-service" / "Dockerfile").read_text()
    assert f"ARG BUSYBOX_IMAGE={seeded}\n" in own, "tests/system/own-service/Dockerfile"


def test_rules_and_alerts_pass_their_unit_tests_on_the_oldest_promised_release():
    """README promises the rules and dashboards on Prometheus 2.42 (Debian bookworm's, the promtool
    on PATH in CI) as well: the same rule files and unit tests pass there, but for the native
    histogram tests, whose input notation 2.42's promtool cannot read (the rules' native arms
    then find nothing and the classic arms answer, as the other tests show)."""
    tool = require_tool("promtool")
    version = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60)
    figure("oldest promised prometheus", promtool=(version.stdout + version.stderr).split("\n")[0].strip())
    files = [str(p.relative_to(ROOT)) for p in rule_files()]
    classic = [str(p.relative_to(ROOT)) for p in PROMTOOL_TESTS if p.name != NATIVE_TESTS]
    assert len(classic) == len(PROMTOOL_TESTS) - 1, "the native histogram tests moved"
    for args in (["check", "rules", *files], ["test", "rules", *classic]):
        result = promtool(*args, tool=tool)
        assert result.returncode == 0, f"{tool} {' '.join(args)}:\n{result.stdout}{result.stderr}"


def test_every_rule_has_a_unit_test():
    tested_records: set[str] = set()
    tested_alerts: set[str] = set()
    loaded: set[Path] = set()
    for path in PROMTOOL_TESTS:
        doc = yaml.safe_load(path.read_text())
        loaded.update((path.parent / f).resolve() for f in doc["rule_files"])
        for case in doc["tests"]:
            for expr_test in case.get("promql_expr_test", []):
                tested_records.update(metric_names(expr_test["expr"]))
            for alert_test in case.get("alert_rule_test", []):
                if alert_test.get("exp_alerts"):
                    tested_alerts.add(alert_test["alertname"])
    assert {p.resolve() for p in rule_files()} <= loaded, "a rule file is loaded by no promtool test"
    records = {r["record"] for r in rules() if "record" in r}
    alerts = {r["alert"] for r in rules() if "alert" in r}
    assert records - tested_records == set(), "recording rules without a promql_expr_test"
    assert alerts - tested_alerts == set(), "alerts never shown firing in an alert_rule_test"


def test_rules_follow_the_contract():
    """Raw workload series are read with job="workload"; every recorded series keeps `deployment`."""
    workload_raw = re.compile(r"(?<![\w:])(http_server_\w+|process_\w+|workload_\w+|up)\b(\{[^}]*\})?")
    for rule in rules():
        for match in workload_raw.finditer(rule["expr"]):
            assert 'job="workload"' in (match.group(2) or ""), f"{match.group(0)} in {rule}"
        if "record" in rule:
            level = rule["record"].split(":")[0]
            assert "deployment" in level.split("_"), f"{rule['record']} aggregates the deployment label away"


# ----------------------------------------------------------------------------- metric-name extractor
@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('sum by (deployment, le) (rate(x_bucket{job="a", route!~"/b|/c"}[30s]))', {"x_bucket"}),
        ("histogram_quantile(0.99, a:b_bucket:rate30s)", {"a:b_bucket:rate30s"}),
        ('(sum by (d) (a{s=~"5.."}) / sum by (d) (b)) or 0 * sum by (d) (b)', {"a", "b"}),
        ('label_replace(max by (d) (m{x="1"}), "kind", "scraped", "", "") or n', {"m", "n"}),
        ("1 - r:x:ratio{deployment=~\"$deployment\"}", {"r:x:ratio"}),
        ("a > bool 0.01 unless on (x) group_left (y) b offset 5m", {"a", "b"}),
        ('{__name__=~"loadgen_requests_total|http_x_count"}', {"loadgen_requests_total", "http_x_count"}),
        ("rate(x[$__rate_interval]) * 1e3", {"x"}),
    ],
)
def test_metric_names_extractor(expr, names):
    assert metric_names(expr) == names


# ----------------------------------------------------------------------------- dashboards
def test_dashboards_match_generator(tmp_path: Path):
    """The committed JSON is exactly what grafana/build_dashboards.py writes."""
    result = subprocess.run(
        [sys.executable, str(GRAFANA_DIR / "build_dashboards.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    generated = {p.name: p.read_text() for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_text() for p in (GRAFANA_DIR / "dashboards").glob("*.json")}
    assert generated.keys() == committed.keys()
    for name, text in generated.items():
        assert committed[name] == text, f"{name} is stale: run python3 grafana/build_dashboards.py"


def provisioned_datasources() -> dict[str, dict]:
    doc = yaml.safe_load(DATASOURCES_FILE.read_text())
    assert doc["apiVersion"] == 1
    return {ds["type"]: ds for ds in doc["datasources"]}


def test_datasource_provisioning():
    ds = provisioned_datasources()
    prom = ds["prometheus"]
    assert prom["uid"] == "prometheus"
    assert prom["url"] == "http://prometheus:9090"
    assert prom["access"] == "proxy"
    assert prom.get("isDefault") is True
    scrape = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())["global"]["scrape_interval"]
    assert prom["jsonData"]["timeInterval"] == scrape, "$__rate_interval must know the real scrape interval"
    tempo = ds["tempo"]
    assert tempo["uid"] == "tempo"
    assert tempo["url"] == "http://tempo:3200"
    assert sum(1 for d in ds.values() if d.get("isDefault")) == 1


def test_dashboard_provider():
    doc = yaml.safe_load(DASHBOARD_PROVIDER_FILE.read_text())
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert provider.get("folder")


def test_compose_mounts_match_provisioning():
    """Compose must mount grafana/provisioning and grafana/dashboards where the provider looks."""
    candidates = [ROOT / n for n in ("docker-compose.yml", "compose.yaml", "compose.yml")]
    compose_file = next((p for p in candidates if p.exists()), None)
    if compose_file is None:
        message = "no compose file yet"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    services = yaml.safe_load(compose_file.read_text())["services"]
    volumes = [
        v if isinstance(v, str) else f"{v.get('source')}:{v.get('target')}"
        for v in services["grafana"].get("volumes", [])
    ]
    provider_path = yaml.safe_load(DASHBOARD_PROVIDER_FILE.read_text())["providers"][0]["options"]["path"]

    def mounted(source: str, target: str) -> bool:
        return any(
            re.fullmatch(rf"\.?/?{re.escape(source)}/?:{re.escape(target)}/?(:ro)?", v) for v in volumes
        )

    assert mounted("grafana/provisioning", "/etc/grafana/provisioning"), volumes
    assert mounted("grafana/dashboards", provider_path), volumes
    prom_volumes = [str(v) for v in services["prometheus"].get("volumes", [])]
    assert any(v.split(":")[0].rstrip("/") in ("./prometheus", "prometheus") for v in prom_volumes), prom_volumes
    command = " ".join(services["prometheus"].get("command", []))
    assert "--web.enable-remote-write-receiver" in command


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict]:
    found = load_dashboards("all")
    assert set(found) == {"compare-deployments.json", "workload.json", "loadgen.json", "scale-to-zero.json"}
    return found


def test_dashboards_reference_the_datasource_by_uid_only(dashboards):
    uid = provisioned_datasources()["prometheus"]["uid"]
    for name, dash in dashboards.items():
        text = json.dumps(dash)
        assert "${DS_" not in text and "__inputs" not in dash, name
        for panel in panels(dash):
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": uid}, (name, panel["title"])
            for tgt in panel["targets"]:
                assert tgt["datasource"] == {"type": "prometheus", "uid": uid}, (name, panel["title"])
        for var in dash["templating"]["list"]:
            assert var["datasource"] == {"type": "prometheus", "uid": uid}


def test_dashboard_conventions(dashboards):
    uids = set()
    for name, dash in dashboards.items():
        assert dash["refresh"] == "5s", name
        assert dash["uid"] and dash["uid"] not in uids
        uids.add(dash["uid"])
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        assert {"deployment", "run"} <= variables.keys(), name
        for var in variables.values():
            parse_label_values(var["definition"])
            assert var["multi"] and var["includeAll"] and var["allValue"] == ".*"
        ids = [p["id"] for p in panels(dash)]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for panel in panels(dash):
            pos = panel["gridPos"]
            assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, (name, panel["title"])
            if panel["type"] == "row":
                continue
            where = f"{name}: {panel['title']}"
            assert len(panel.get("description", "")) >= 40, f"{where}: no real description"
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
            if panel["type"] == "heatmap":
                assert panel["options"]["yAxis"].get("unit"), f"{where}: no y unit"
            if panel["type"] == "timeseries":
                assert panel["options"]["legend"]["showLegend"], where
            assert panel["targets"], f"{where}: no query"
            for tgt in panel["targets"]:
                assert tgt.get("legendFormat"), f"{where} {tgt['refId']}: no legend"
                assert tgt["expr"].strip(), where
                if "increase(" in tgt["expr"] and "$__range" in tgt["expr"]:
                    assert tgt["instant"], f"{where}: a whole-range figure is an instant query"


def test_config_and_rules_load_in_the_compose_image():
    """The same files under the Prometheus image docker-compose.yml pins.

    Where no registry is reachable (CI), the tag is absent and .ci/seed-images.sh's stand-in,
    under its own name (scalebench-seed/prometheus:...) and labelled `io.scalebench.stand-in`, is
    used instead: the same release, built from its Go module (scripts/build-prometheus.sh), which
    its figure says."""
    compose_file = ROOT / "docker-compose.yml"
    if not compose_file.exists():
        pytest.skip("no docker-compose.yml")
    image = yaml.safe_load(compose_file.read_text())["services"]["prometheus"]["image"]
    docker = require_tool("docker")
    present = subprocess.run([docker, "image", "inspect", image], capture_output=True, timeout=60)
    if present.returncode != 0:
        image = seeded_images()["PROMETHEUS_IMAGE"]
        present = subprocess.run([docker, "image", "inspect", image], capture_output=True, timeout=60)
    if present.returncode != 0:
        # Never pulled here: the test must not need the network. `docker pull` it to run this.
        pytest.skip(f"image {image} is not available locally")
    base = [docker, "run", "--rm", "--network", "none", "-v", f"{PROMETHEUS_DIR}:/etc/prometheus:ro"]
    base += ["-w", "/etc/prometheus", "--entrypoint", "promtool", image]
    version = subprocess.run([*base, "--version"], capture_output=True, text=True, timeout=60)
    stand_in = subprocess.run(
        [docker, "image", "inspect", "-f", '{{index .Config.Labels "io.scalebench.stand-in"}}', image],
        capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    figure("compose prometheus image", image=image, promtool=version.stdout.split("\n")[0].strip(),
           stand_in=stand_in if stand_in and stand_in != "<no value>" else "no")
    assert f"version {prometheus_release()} " in version.stdout + version.stderr, version.stdout + version.stderr
    for args in (
        ["check", "config", "prometheus.yml"],
        ["test", "rules", *[str(p.relative_to(PROMETHEUS_DIR)) for p in PROMTOOL_TESTS]],
    ):
        result = subprocess.run([*base, *args], capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, f"{image} promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"
