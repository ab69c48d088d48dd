"""deploy/scripts, run for real with a recording stand-in for the cluster's kubectl: apply.sh,
run-loadgen.sh (collecting, merging and pushing the clients' reports), the monitoring secrets,
and the scripts' help, argument checks, shellcheck and versions."""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, require_tool
from manifests_support import (  # noqa: F401 (job_run_log is a fixture)
    DEPLOY,
    KUSTOMIZATIONS,
    K8S_VERSIONS,
    run,
    render,
    of_kind,
    find,
    pod_templates,
    containers,
    image_repo,
    arg_after,
    job_run_log,
    extract_report,
)


FAKE_KUBECTL = """#!{python}
# kubectl for the script tests: `kustomize` is the real one; cluster verbs answer like a cluster
# whose loadgen Job completed, and every call is recorded.
import os, sys
calls = os.environ["FAKE_CALLS"]
argv = sys.argv[1:]
with open(os.path.join(calls, "calls.log"), "a") as f:
    f.write(" ".join(argv) + "\\n")
if argv[0] == "kustomize" or ("create" in argv and "--dry-run=client" in argv):
    os.execv({real!r}, [{real!r}, *argv])
words = [a for a in argv if not a.startswith("-")]
if "get" in argv and "secret" in argv and os.environ.get("FAKE_NO_SECRETS"):
    sys.exit('Error from server (NotFound): secrets "' + argv[argv.index("secret") + 1] + '" not found')
if "apply" in argv:
    n = len([p for p in os.listdir(calls) if p.startswith("applied")])
    with open(os.path.join(calls, f"applied-{{n}}.yaml"), "w") as f:
        f.write(sys.stdin.read())
    print("applied")
elif "configmap" in argv and "scalebench-deployment" in argv:
    print("k8s-hpa", end="")
elif "get" in argv and "job" in argv and "jsonpath={{.metadata.uid}}" in argv:
    print("0f1e2d3c-uid", end="")
elif "get" in argv and "job" in argv:
    print("SuccessCriteriaMet Complete ", end="")
elif "get" in argv and "pods" in argv:
    print("loadgen-0-aaaaa 0\\nloadgen-1-bbbbb 1\\nloadgen-2-ccccc 2")
elif "logs" in argv:
    sys.stdout.write(open(os.environ["FAKE_LOG"]).read())
elif any(w in argv for w in ("delete", "rollout", "get", "create")):
    print("ok")
else:
    sys.exit(f"fake kubectl: unexpected {{argv}}")
"""


def _fake_path(tmp_path: Path, binaries: dict[str, Path] | None = None) -> tuple[dict[str, str], Path]:
    real = require_tool("kubectl")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "kubectl"
    fake.write_text(FAKE_KUBECTL.format(python=sys.executable, real=real))
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    calls.mkdir()
    path = [str(bin_dir)]
    if binaries:
        path.append(str(binaries["loadgen"].parent))
    # No compose secrets unless a test makes some: a developer's .secrets/ must not leak in.
    env = {"PATH": ":".join([*path, "/usr/bin", "/bin"]), "FAKE_CALLS": str(calls), "HOME": str(tmp_path),
           "SCALEBENCH_SECRETS_DIR": str(tmp_path / "no-secrets")}
    return env, calls


def _applied(calls: Path) -> list[list[dict]]:
    """The documents of every `kubectl apply`, in the order they were applied."""
    files = sorted(calls.glob("applied-*.yaml"), key=lambda p: int(p.stem.split("-")[1]))
    return [[d for d in yaml.safe_load_all(f.read_text()) if d] for f in files]


def test_run_loadgen_script_collects_and_merges_reports(
    job_run_log: tuple[str, list[str]], binaries: dict[str, Path], tmp_path: Path
) -> None:
    """run-loadgen.sh against a recorded cluster: it replaces the Job, applies the scenario it was
    given, waits, pulls the three reports out of the pod logs and merges them with the real loadgen."""
    env, calls = _fake_path(tmp_path, binaries)
    log = tmp_path / "pod.log"
    log.write_text(job_run_log[0])
    out_dir = tmp_path / "reports"
    started = int(time.time())
    proc = run(
        ["bash", str(DEPLOY / "scripts" / "run-loadgen.sh"), "--scenario", "crud.yaml", "--timeout", "30",
         "--out-dir", str(out_dir)],
        env={**env, "FAKE_LOG": str(log)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    verbs = [line.split() for line in (calls / "calls.log").read_text().splitlines()]
    order = [next(w for w in v if w in ("get", "delete", "kustomize", "apply", "logs")) for v in verbs]
    # kustomize | apply is a pipeline: those two run side by side and log in either order.
    assert order[:2] == ["get", "delete"] and sorted(order[2:4]) == ["apply", "kustomize"], verbs
    assert order[4:] == ["get", "get", "get", "logs", "logs", "logs"], verbs
    assert "batch.kubernetes.io/controller-uid=0f1e2d3c-uid" in verbs[6], "pods of another run could be collected"
    assert "--server-side" in next(v for v in verbs if "apply" in v)
    applied = [d for d in yaml.safe_load_all((calls / "applied-0.yaml").read_text()) if d]
    assert find(applied, "Job", "loadgen") is not None
    run_cm = next(c for c in of_kind(applied, "ConfigMap") if c["metadata"]["name"].startswith("loadgen-run"))
    assert run_cm["data"]["scenario"] == "crud.yaml"
    # The start barrier: every client waits for the same moment, the default 30 s after the apply.
    start_at = int(run_cm["data"]["start_at"])
    assert started + 30 <= start_at <= time.time() + 30, (started, start_at)
    job = find(applied, "Job", "loadgen")
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    ref = env["LOADGEN_START_AT"]["valueFrom"]["configMapKeyRef"]
    assert ref["name"] == run_cm["metadata"]["name"] and ref["key"] == "start_at" and ref["optional"] is True
    (run_dir,) = list(out_dir.iterdir())
    assert run_dir.name.startswith("k8s-hpa-"), run_dir.name
    for i in range(3):
        assert json.loads((run_dir / f"client-{i}.json").read_text())["run"] == "job-uid-1234"
        assert (run_dir / f"client-{i}.log").read_text() == job_run_log[0]
    merged = json.loads((run_dir / "merged.json").read_text())
    single = json.loads((run_dir / "client-0.json").read_text())
    assert merged["workers"] == 3
    assert merged["summary"]["requests"] == 3 * single["summary"]["requests"]


def _run_loadgen_pushing_to(
    url: str, job_run_log: tuple[str, list[str]], binaries: dict[str, Path], tmp_path: Path, password: str | None = None
) -> Path:
    """run-loadgen.sh --remote-write URL against the recorded cluster; with PASSWORD, the compose
    stack's password file (SCALEBENCH_SECRETS_DIR) holds it. Returns the fake kubectl's call dir."""
    env, calls = _fake_path(tmp_path, binaries)
    if password is not None:
        Path(env["SCALEBENCH_SECRETS_DIR"]).mkdir()
        (Path(env["SCALEBENCH_SECRETS_DIR"]) / "prometheus-password").write_text(password)
    log = tmp_path / "pod.log"
    log.write_text(job_run_log[0])
    proc = run(
        ["bash", str(DEPLOY / "scripts" / "run-loadgen.sh"), "--remote-write", url, "--timeout", "30",
         "--out-dir", str(tmp_path / "reports")],
        env={**env, "FAKE_LOG": str(log)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return calls


def test_run_loadgen_script_can_push_the_clients_metrics(
    job_run_log: tuple[str, list[str]], binaries: dict[str, Path], tmp_path: Path
) -> None:
    """--remote-write URL reaches every client as LOADGEN_REMOTE_WRITE (loadgen's env twin of
    --remote-write), so cluster runs can land in the compose Prometheus beside the docker runs."""
    url = "http://host.minikube.internal:9090/api/v1/write"
    calls = _run_loadgen_pushing_to(url, job_run_log, binaries, tmp_path)
    applied = [d for d in yaml.safe_load_all((calls / "applied-0.yaml").read_text()) if d]
    container = find(applied, "Job", "loadgen")["spec"]["template"]["spec"]["containers"][0]
    env_vars = {e["name"]: e.get("value") for e in container["env"]}
    assert env_vars["LOADGEN_REMOTE_WRITE"] == url, env_vars
    assert "POD_NAMESPACE" in env_vars, "the patch must add to the env, not replace it"
    help_text = run([str(binaries["loadgen"]), "run", "--help"]).stdout
    assert "env: LOADGEN_REMOTE_WRITE" in help_text


@pytest.mark.parametrize("exists", [False, True], ids=["missing", "present"])
def test_apply_monitoring_creates_the_grafana_secret_only_when_missing(exists: bool, tmp_path: Path) -> None:
    """apply.sh monitoring makes Secret grafana-admin with a random password when there is none
    (before Grafana's rollout, which needs it), and never replaces one that exists."""
    import base64

    env, calls = _fake_path(tmp_path)
    if not exists:
        env["FAKE_NO_SECRETS"] = "1"
    proc = run(["bash", str(DEPLOY / "scripts" / "apply.sh"), "monitoring"], env=env)
    assert proc.returncode == 0, proc.stderr
    secrets = [d for docs in _applied(calls) for d in docs if d.get("kind") == "Secret"]
    log = (calls / "calls.log").read_text()
    assert "get secret grafana-admin" in log, log
    assert "get secret grafana-admin -o jsonpath" in proc.stderr, "the script says where the password is"
    if exists:
        assert secrets == [], "an existing password was replaced"
        return
    (secret,) = secrets
    assert secret["metadata"]["name"] == "grafana-admin" and secret["metadata"]["namespace"] == "scalebench"
    password = base64.b64decode(secret["data"]["admin-password"]).decode()
    assert re.fullmatch(r"[0-9a-f]{48}", password), "not 192 random bits"
    assert password not in log and password not in proc.stderr, "the password appeared on a command line or log"
    applies = [i for i, docs in enumerate(_applied(calls)) if any(d.get("kind") == "Secret" for d in docs)]
    rollout = [i for i, docs in enumerate(_applied(calls)) if find(docs, "Deployment", "grafana")]
    assert applies[0] < rollout[0], "the Secret must exist before Grafana starts"
    (tmp_path / "again").mkdir()
    second = _fake_path(tmp_path / "again")
    again = run(["bash", str(DEPLOY / "scripts" / "apply.sh"), "monitoring"], env={**second[0], "FAKE_NO_SECRETS": "1"})
    other = [d for docs in _applied(second[1]) for d in docs if d.get("kind") == "Secret"]
    assert again.returncode == 0 and base64.b64decode(other[0]["data"]["admin-password"]).decode() != password


def test_run_loadgen_script_pushes_with_basic_auth(
    job_run_log: tuple[str, list[str]], binaries: dict[str, Path], tmp_path: Path
) -> None:
    """--remote-write with a password file (default: the compose stack's .secrets/prometheus-password):
    the password goes into Secret loadgen-remote-write, mounted into every client, which pushes as
    user scalebench with --remote-write-user/--remote-write-password-file."""
    import base64

    url = "http://host.minikube.internal:9090/api/v1/write"
    calls = _run_loadgen_pushing_to(url, job_run_log, binaries, tmp_path, password="0123abcd" * 6)
    applied = _applied(calls)
    (secret,) = [d for docs in applied for d in docs if d.get("kind") == "Secret"]
    assert secret["metadata"]["name"] == "loadgen-remote-write"
    assert base64.b64decode(secret["data"]["password"]).decode() == "0123abcd" * 6
    assert "0123abcd" * 6 not in (calls / "calls.log").read_text()
    job = next(find(docs, "Job", "loadgen") for docs in applied if find(docs, "Job", "loadgen"))
    spec = job["spec"]["template"]["spec"]
    c = spec["containers"][0]
    path = arg_after(c["args"], "--remote-write-password-file")
    assert arg_after(c["args"], "--remote-write-user") == "scalebench", c["args"]
    mount = next(m for m in c["volumeMounts"] if path and path.startswith(m["mountPath"] + "/"))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "loadgen-remote-write" and path.endswith("/password")
    assert volume["secret"]["defaultMode"] & 0o004, "the clients run as 65532 without fsGroup: must be world-readable"
    assert {e["name"]: e.get("value") for e in c["env"]}["LOADGEN_REMOTE_WRITE"] == url
    validator = require_tool("kubernetes-validate")
    rendered = tmp_path / "job.yaml"
    rendered.write_text(yaml.safe_dump(job))
    check = run([validator, "--strict", "--quiet", "--kubernetes-version", K8S_VERSIONS[-1], str(rendered)])
    assert check.returncode == 0, check.stdout + check.stderr


def test_run_loadgen_script_without_a_start_delay_lets_each_client_start_at_once(
    job_run_log: tuple[str, list[str]], binaries: dict[str, Path], tmp_path: Path
) -> None:
    """--start-delay 0: no start_at key, so the Job's optional LOADGEN_START_AT stays unset."""
    env, calls = _fake_path(tmp_path, binaries)
    log = tmp_path / "pod.log"
    log.write_text(job_run_log[0])
    proc = run(
        ["bash", str(DEPLOY / "scripts" / "run-loadgen.sh"), "--start-delay", "0", "--timeout", "30",
         "--out-dir", str(tmp_path / "reports")],
        env={**env, "FAKE_LOG": str(log)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (applied,) = _applied(calls)
    run_cm = next(c for c in of_kind(applied, "ConfigMap") if c["metadata"]["name"].startswith("loadgen-run"))
    assert "start_at" not in run_cm["data"] and run_cm["data"]["scenario"] == "k8s-ramp.yaml"


def test_run_loadgen_script_fails_when_a_report_is_missing(tmp_path: Path) -> None:
    env, _ = _fake_path(tmp_path)
    log = tmp_path / "pod.log"
    log.write_text("connect refused\n")
    proc = run(
        ["bash", str(DEPLOY / "scripts" / "run-loadgen.sh"), "--timeout", "30", "--out-dir", str(tmp_path / "r")],
        env={**env, "FAKE_LOG": str(log)},
    )
    assert proc.returncode != 0
    assert "no JSON report in loadgen-0-aaaaa's log" in proc.stderr, proc.stderr


@pytest.mark.parametrize(("overlay", "deletes_hpa"), [("single", True), ("minikube-hpa", False)])
def test_apply_script(overlay: str, deletes_hpa: bool, tmp_path: Path) -> None:
    """apply.sh applies the rendered overlay server-side, removes a leftover HPA only for a
    single-replica overlay, and waits for the workload's rollout."""
    env, calls = _fake_path(tmp_path)
    proc = run(["bash", str(DEPLOY / "scripts" / "apply.sh"), overlay], env=env)
    assert proc.returncode == 0, proc.stderr
    log = (calls / "calls.log").read_text()
    assert ("delete horizontalpodautoscaler workload" in log) == deletes_hpa, log
    assert "rollout status deployment/workload" in log, log
    applied = sorted(calls.glob("applied-*.yaml"))
    workload = [d for d in yaml.safe_load_all(applied[-1].read_text()) if d]
    assert workload == render(f"overlays/{overlay}")


# ------------------------------------------------------------------------------------ scripts
SCRIPTS = sorted(p.name for p in (DEPLOY / "scripts").glob("*.sh") if p.name != "lib.sh")


def test_scripts_are_shellcheck_clean() -> None:
    shellcheck = require_tool("shellcheck")
    proc = run([shellcheck, "-x", *sorted(str(p) for p in (DEPLOY / "scripts").glob("*.sh"))], cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scripts_are_complete() -> None:
    assert SCRIPTS == ["apply.sh", "build-load.sh", "local-cluster.sh", "minikube-up.sh", "run-loadgen.sh", "teardown.sh", "tls-secret.sh"]
    for name in SCRIPTS:
        text = (DEPLOY / "scripts" / name).read_text()
        assert text.startswith("#!/usr/bin/env bash\n"), name
        assert "set -euo pipefail" in text, name


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_help(script: str) -> None:
    proc = run(["bash", str(DEPLOY / "scripts" / script), "--help"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Usage: deploy/scripts/{script}"), proc.stdout


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("apply.sh", [], "OVERLAY is required"),
        ("apply.sh", ["production"], "unknown OVERLAY 'production'"),
        ("apply.sh", ["single", "hpa"], "one OVERLAY only"),
        ("apply.sh", ["--force", "single"], "unknown option: --force"),
        ("run-loadgen.sh", ["--timeout", "ten"], "--timeout is a number of seconds"),
        ("run-loadgen.sh", ["--start-delay", "soon"], "--start-delay is a number of seconds"),
        ("run-loadgen.sh", ["--start-delay", "7200"], "--start-delay is a number of seconds up to 3600"),
        ("run-loadgen.sh", ["--scenario", "../../etc/passwd"], "--scenario is a file name"),
        ("run-loadgen.sh", ["--remote-write", "prom:9090"], "--remote-write is an http:// or https:// URL"),
        ("run-loadgen.sh", ["--remote-write-password-file", "/etc/hostname"], "--remote-write-password-file needs --remote-write"),
        ("run-loadgen.sh", ["--remote-write", "http://p:9090/api/v1/write", "--remote-write-password-file", "/nonexistent"],
         "no password in '/nonexistent'"),
        ("run-loadgen.sh", ["--scenario", "no-such-scenario.yaml"], "no scenario no-such-scenario.yaml"),
        ("minikube-up.sh", ["--cpus"], "--cpus needs a value"),
        ("build-load.sh", ["--push"], "unknown argument: --push"),
        ("teardown.sh", ["--all"], "unknown argument: --all"),
    ],
)
def test_script_rejects_bad_arguments(script: str, args: list[str], message: str) -> None:
    """Bad input stops a script before it touches a cluster, with a message saying why."""
    proc = run(["bash", str(DEPLOY / "scripts" / script), *args], env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_apply_script_gives_the_remote_writing_prometheus_the_compose_password(tmp_path: Path) -> None:
    """monitoring-remote-write: the compose stack's password becomes Secret prometheus-remote-write
    before the Prometheus that reads it is applied; without `make secrets` it stops, saying so."""
    env, calls = _fake_path(tmp_path)
    proc = run(["bash", str(DEPLOY / "scripts" / "apply.sh"), "monitoring-remote-write"], env=env)
    assert proc.returncode != 0 and "run 'make secrets'" in proc.stderr, proc.stderr
    assert not list(calls.glob("applied-*.yaml")), "nothing is applied without the password"

    secrets = Path(env["SCALEBENCH_SECRETS_DIR"])
    secrets.mkdir()
    (secrets / "prometheus-password").write_text("0123abcd" * 6)
    proc = run(["bash", str(DEPLOY / "scripts" / "apply.sh"), "monitoring-remote-write"], env=env)
    assert proc.returncode == 0, proc.stderr
    applied = _applied(calls)
    (secret,) = [d for docs in applied for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "prometheus-remote-write"]
    assert base64.b64decode(secret["data"]["password"]).decode() == "0123abcd" * 6
    first_prometheus = next(i for i, docs in enumerate(applied) if find(docs, "Deployment", "prometheus"))
    first_secret = next(i for i, docs in enumerate(applied) if secret in docs)
    assert first_secret < first_prometheus


def test_apply_script_knows_every_overlay() -> None:
    text = (DEPLOY / "scripts" / "apply.sh").read_text()
    listed = re.search(r"^OVERLAYS=\(([^)]*)\)", text, re.M).group(1).split()
    on_disk = sorted(p.name for p in (DEPLOY / "overlays").iterdir() if (p / "kustomization.yaml").exists())
    assert sorted(listed) == sorted([*on_disk, "monitoring"])


def test_scripts_version_matches_manifests() -> None:
    """build-load.sh loads the very tags the manifests run (a mismatch means ErrImagePull)."""
    version = re.search(r"^SCALEBENCH_VERSION=(\S+)$", (DEPLOY / "scripts" / "lib.sh").read_text(), re.M).group(1)
    for name in KUSTOMIZATIONS:
        for owner, template in pod_templates(render(name)):
            for c in containers(template["spec"]):
                if image_repo(c["image"]).startswith("scalebench/"):
                    assert c["image"].endswith(f":{version}"), f"{name} {owner} runs {c['image']}, scripts load {version}"


@pytest.mark.parametrize(
    "log",
    [
        'starting {x}\n{"level":"info"}\n{\n  "schema_version": 1,\n  "run": "r",\n  "summary": {\n    "p99": 2\n  }\n}\nsummary {done}\n',
        '{\nnot json\n{"schema_version": 1, "run": "r", "summary": {"p99": 2}}\nsummary: p99 2ms }\n',
        # What `kubectl logs` of a real Job gave: a stderr line logged inside the pretty report.
        '{\n  "schema_version": 1,\n  "run": "r",\nk8s-scale-out http://workload:8080 \u2014 closed loop\n  "summary": {\n    "p99": 2\n  }\n}\n',
    ],
    ids=["pretty", "compact", "stderr-line-inside"],
)
def test_report_extraction_from_interleaved_logs(log: str) -> None:
    proc = extract_report(log)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["schema_version"] == 1 and report["summary"]["p99"] == 2


@pytest.mark.parametrize("log", ["", "no report\n", '{\n  "schema_version": 1,\n  "run": "cut short"\n'])
def test_report_extraction_fails_without_a_complete_report(log: str) -> None:
    assert extract_report(log).returncode != 0
