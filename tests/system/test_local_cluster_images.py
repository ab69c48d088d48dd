"""How the local cluster's script puts images into its containerd (deploy/local-cluster/lib/images.sh),
against a stand-in `ctr` on PATH: CI twice saw a real import exit 0, print nothing and name
nothing right after containerd started, and the cluster session failed on it. An import is
checked by the name the image must have, tried again, and a last failure says what containerd
holds. The real containerd path is exercised by every cluster test (tests/cluster)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import ROOT

LIB = ROOT / "deploy" / "local-cluster" / "lib"
REF = "docker.io/scalebench/cluster-pause:v1.34.4"

# A stand-in for `ctr --address SOCK --namespace NS images import|ls -q`: an import appends the
# names the archive's index.json annotates to the store, unless NAMELESS_IMPORTS says how many
# imports in a row should name nothing (the failure CI saw); `ls -q` prints the store.
FAKE_CTR = r"""#!/usr/bin/env bash
set -euo pipefail
while [[ "$1" == --* ]]; do shift 2; done
case "$1 $2" in
  "images import")
    echo "import $3" >>"$CALLS"
    skipped=$(grep -c '^skipped' "$CALLS" || true)
    if (( skipped < ${NAMELESS_IMPORTS:-0} )); then echo skipped >>"$CALLS"; exit 0; fi
    tar -xOf "$3" index.json | python3 -c 'import json,sys
for m in json.load(sys.stdin)["manifests"]: print(m["annotations"]["io.containerd.image.name"])' >>"$STORE"
    ;;
  "images ls") cat "$STORE" 2>/dev/null || true ;;
  *) echo "fake ctr: unexpected $*" >&2; exit 2 ;;
esac
"""


def import_binary(tmp_path: Path, nameless_imports: int) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`import_binary_image` of a small binary as REF with the stand-in ctr: the run and the ctr
    calls it made."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ctr").write_text(FAKE_CTR)
    (bin_dir / "ctr").chmod(0o755)
    binary = tmp_path / "pause"
    binary.write_bytes(b"\x7fELF not really")
    calls = tmp_path / "calls"
    script = f'source "{LIB}/settings.sh"; source "{LIB}/images.sh"; import_binary_image "{binary}" "{REF}" 65535:65535'
    run = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "CALLS": str(calls),
             "STORE": str(tmp_path / "store"), "NAMELESS_IMPORTS": str(nameless_imports),
             "SCALEBENCH_CLUSTER_STATE": str(tmp_path / "state")},
    )
    return run, [c for c in calls.read_text().splitlines() if c.startswith("import")] if calls.exists() else []


def test_a_packed_binary_imports_under_its_name_at_once(tmp_path):
    run, imports = import_binary(tmp_path, nameless_imports=0)
    assert run.returncode == 0, run.stderr
    assert len(imports) == 1 and "named no" not in run.stderr, run.stderr


def test_an_import_that_names_nothing_is_tried_again_and_says_so(tmp_path):
    run, imports = import_binary(tmp_path, nameless_imports=2)
    assert run.returncode == 0, run.stderr
    assert len(imports) == 3, imports
    assert f"import 1 of {REF} named no {REF} (ctr printed: nothing)" in run.stderr, run.stderr
    assert f"import 2 of {REF} named no" in run.stderr, run.stderr


def test_an_import_that_never_names_the_image_fails_with_what_containerd_holds(tmp_path):
    run, imports = import_binary(tmp_path, nameless_imports=3)
    assert run.returncode != 0
    assert len(imports) == 3, imports
    assert "containerd has: " in run.stderr and f"did not import as {REF}" in run.stderr, run.stderr
