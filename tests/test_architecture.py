"""Imports run one way: desktop -> connectors -> core. core/ and connectors/ never import Qt."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

FORBIDDEN = {
    "core": ("PySide6", "qasync", "desktop", "connectors", "shiboken6"),
    "connectors": ("PySide6", "qasync", "desktop", "shiboken6"),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_does_not_import_upward_or_qt(package: str) -> None:
    violations = []
    for path in sorted((REPO_ROOT / package).rglob("*.py")):
        for line, module in imported_modules(path):
            if module.split(".")[0] in FORBIDDEN[package]:
                violations.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {module}")
    assert violations == []


def test_the_check_catches_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("import os\nfrom PySide6.QtCore import QObject\n", encoding="utf-8")
    assert (2, "PySide6.QtCore") in imported_modules(sample)


def test_importing_core_and_the_cli_loads_neither_qt_nor_torch() -> None:
    code = (
        "import sys, core.store.workspace, core.importing, desktop.cli.main;"
        "bad = [m for m in ('PySide6', 'torch', 'sentence_transformers') if m in sys.modules];"
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
