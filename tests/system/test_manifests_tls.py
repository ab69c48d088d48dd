"""HTTPS into the cluster: deploy/components/ingress-tls, deploy/overlays/minikube-hpa-tls and
deploy/scripts/tls-secret.sh, proven without a cluster.

The overlay renders and validates strictly; its Ingress terminates TLS for the host and Secret
the script makes, routes to the workload Service's port, and the NetworkPolicy admits the ingress
controller (and nothing new besides). The script's certificate really serves TLS for that host
to a client that trusts only it (a handshake on 127.0.0.1).
"""

from __future__ import annotations

import base64
import re
import socket
import ssl
import subprocess
import threading

import pytest
import yaml

from conftest import ROOT, require_tool
from manifests_support import (
    DEPLOY,
    Endpoint,
    find,
    may_connect,
    of_kind,
    pod_endpoints,
    render,
)

OVERLAY = "overlays/minikube-hpa-tls"
SCRIPT = DEPLOY / "scripts" / "tls-secret.sh"
CONTROLLER = Endpoint("ingress-nginx-controller", {"app.kubernetes.io/name": "ingress-nginx"}, namespace="ingress-nginx")


def _script_default(name: str) -> str:
    m = re.search(rf"^{name}=(\S+)$", SCRIPT.read_text(), re.M)
    assert m, f"{name} not set in {SCRIPT}"
    return m.group(1)


def _workload_pod(docs) -> Endpoint:
    return next(e for e in pod_endpoints(docs) if e.labels and e.labels.get("app.kubernetes.io/name") == "workload")



def test_ingress_terminates_tls_for_the_scripts_host_and_secret() -> None:
    docs = render(OVERLAY)
    [ingress] = of_kind(docs, "Ingress")
    spec = ingress["spec"]
    host, secret = _script_default("TLS_HOST"), _script_default("TLS_SECRET")
    assert spec["ingressClassName"] == "nginx"  # Minikube's ingress addon
    assert spec["tls"] == [{"hosts": [host], "secretName": secret}], spec["tls"]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/ssl-redirect"] == "true"
    [rule] = spec["rules"]
    assert rule["host"] == host
    backend = rule["http"]["paths"][0]["backend"]["service"]
    service = find(docs, "Service", backend["name"])
    assert service is not None, backend
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}, (backend, service["spec"]["ports"])


def test_network_policy_admits_the_ingress_controller_to_the_api_port_only() -> None:
    docs = render(OVERLAY)
    pod = _workload_pod(docs)
    assert may_connect(docs, CONTROLLER, pod, pod.ports.get("http", 8080))
    assert not may_connect(docs, CONTROLLER, pod, pod.ports.get("metrics", 9000))
    # The Minikube component opens the API port to the NodePort path anyway; the component's own
    # rule admits the controller's namespace where no such opening exists (overlays/hpa refuses it).
    hpa = render("overlays/hpa")
    assert not may_connect(hpa, CONTROLLER, _workload_pod(hpa), pod.ports.get("http", 8080))
    rules = find(docs, "NetworkPolicy", "workload")["spec"]["ingress"]
    assert {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
            "ports": [{"port": "http", "protocol": "TCP"}]} in rules, rules


@pytest.fixture(scope="module")
def secret(tmp_path_factory) -> dict:
    require_tool("openssl")
    require_tool("kubectl")
    out = tmp_path_factory.mktemp("tls")
    proc = subprocess.run(["bash", str(SCRIPT), "--out-dir", str(out), "--print"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load(proc.stdout)
    return {"doc": doc, "dir": out}


def test_script_prints_a_tls_secret_of_the_name_the_ingress_uses(secret) -> None:
    doc = secret["doc"]
    assert (doc["kind"], doc["type"]) == ("Secret", "kubernetes.io/tls")
    assert doc["metadata"] == {**doc["metadata"], "name": "workload-tls", "namespace": "scalebench"}
    assert base64.b64decode(doc["data"]["tls.crt"]) == (secret["dir"] / "tls.crt").read_bytes()
    assert (secret["dir"] / "tls.key").stat().st_mode & 0o077 == 0, "the key is readable by others"


def test_scripts_certificate_serves_tls_for_the_host_to_a_client_trusting_only_it(secret) -> None:
    crt, key = secret["dir"] / "tls.crt", secret["dir"] / "tls.key"
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(crt, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(tls.recv(64))
            except (ssl.SSLError, OSError):
                conn.close()  # the second client hangs up on the name

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(crt))  # trusts the self-signed cert only
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with client_ctx.wrap_socket(raw, server_hostname=_script_default("TLS_HOST")) as tls:
            tls.sendall(b"ping")
            assert tls.recv(64) == b"ping"
    # Another host name is refused: the certificate names exactly the Ingress host.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            client_ctx.wrap_socket(raw, server_hostname="other.local")
    thread.join(timeout=10)
    listener.close()



def test_script_rejects_bad_arguments() -> None:
    for args in (["--host", "bad host"], ["--days", "0"], ["--nope"]):
        proc = subprocess.run(["bash", str(SCRIPT), *args, "--print"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, (args, proc.stderr)


def test_script_is_shellcheck_clean() -> None:
    shellcheck = require_tool("shellcheck")
    proc = subprocess.run([shellcheck, "-x", str(SCRIPT)], capture_output=True, text=True, timeout=60, cwd=SCRIPT.parent)
    assert proc.returncode == 0, proc.stdout
