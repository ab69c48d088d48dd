"""The shape of this test suite: helpers live in helper modules (procs.py starts, waits for and
stops every process; *_support.py hold what several test modules share), so a test module never
imports another (importing one runs its module-level setup and collects its tests twice) and no
test module starts a process its own way."""

from __future__ import annotations

import ast
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _modules() -> dict[str, ast.Module]:
    return {p.name: ast.parse(p.read_text()) for p in sorted(HERE.glob("*.py"))}


def test_no_test_module_imports_another() -> None:
    imports = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("test_"):
                imports.append(f"{name} imports {node.module}")
            if isinstance(node, ast.Import):
                imports += [f"{name} imports {a.name}" for a in node.names if a.name.startswith("test_")]
    assert imports == [], "move what they share into a helper module"


def test_processes_are_started_by_procs_only() -> None:
    popen = []
    for name, tree in _modules().items():
        for node in ast.walk(tree):
            called = isinstance(node, ast.Call) and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "Popen")
                or (isinstance(node.func, ast.Name) and node.func.id == "Popen")
            )
            imported = isinstance(node, ast.ImportFrom) and any(a.name == "Popen" for a in node.names)
            if called or imported:
                popen.append(f"{name}:{node.lineno}")
    assert popen and all(p.startswith("procs.py:") for p in popen), popen
