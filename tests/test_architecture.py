"""The rules of docs/architecture.rst, read from the source: trustregion never imports rl, and
no module imports an underscored name from another module of the project."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("trustregion", "rl")


def _modules(package):
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path):
    """``(module, name)`` for every ``from module import name`` and ``(module, None)`` for
    every ``import module`` in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                yield node.module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None


def test_trustregion_never_imports_rl():
    offenders = [f"{path.relative_to(ROOT)}: {module}" for path in _modules("trustregion")
                 for module, _ in _imports(path) if module == "rl" or module.startswith("rl.")]
    assert not offenders, offenders


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_imports_a_private_name(package):
    offenders = [
        f"{path.relative_to(ROOT)}: from {module} import {name}"
        for path in _modules(package) for module, name in _imports(path)
        if name is not None and name.startswith("_") and not name.startswith("__")
        and module.split(".")[0] in PACKAGES
    ]
    assert not offenders, offenders
