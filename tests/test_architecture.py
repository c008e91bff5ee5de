"""The architecture's rules hold: layers, Qt only in desktop/, a Qt-free CLI, independent pages, lazy imports.

The rules themselves are import-linter contracts in ``pyproject.toml`` (``[tool.importlinter]``), which
``make lint`` also runs; these tests make the suite fail on a broken contract and prove the contracts would
notice one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def run_lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_the_import_contracts_hold() -> None:
    result = run_lint_imports(REPO_ROOT, REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def write_package(root: Path, dotted: str, source: str = "") -> None:
    path = root.joinpath(*dotted.split("."))
    path.mkdir(parents=True, exist_ok=True)
    (path / "__init__.py").write_text(source, encoding="utf-8")


def test_the_contracts_catch_each_kind_of_violation(tmp_path: Path) -> None:
    """Our own contracts, run on a tiny tree that breaks each of them once."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    write_package(tmp_path, "core", "import connectors\n")  # a lower layer importing a higher one
    write_package(tmp_path, "connectors", "import PySide6\n")  # Qt outside desktop/
    write_package(tmp_path, "desktop", "")
    write_package(tmp_path, "desktop.cli", "import desktop.app\n")  # the CLI reaching for the GUI
    write_package(tmp_path, "desktop.app", "")
    pages = next(c for c in config["contracts"] if c["type"] == "independence")["modules"]
    for page in pages:
        write_package(tmp_path, page, "")
    write_package(tmp_path, pages[0], f"import {pages[1]}\n")  # one page importing another
    # Every module a contract names must exist, or import-linter refuses the configuration itself.
    for contract in config["contracts"]:
        for name in contract.get("forbidden_modules", []):
            if not name.startswith(("PySide6", "shiboken6", "qasync")):
                write_package(tmp_path, name, "")
    write_package(tmp_path, "PySide6", "")
    write_package(tmp_path, "shiboken6", "")
    write_package(tmp_path, "qasync", "")

    result = run_lint_imports(tmp_path, tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "core is not allowed to import connectors" in result.stdout
    assert "connectors is not allowed to import PySide6" in result.stdout
    assert "desktop.cli is not allowed to import desktop.app" in result.stdout
    assert f"{pages[0]} is not allowed to import {pages[1]}" in result.stdout


def test_importing_core_and_the_cli_loads_neither_qt_nor_torch_nor_faiss() -> None:
    code = (
        "import sys, core.store.workspace, core.importing, desktop.cli.main;"
        "bad = [m for m in ('PySide6', 'torch', 'sentence_transformers', 'faiss') if m in sys.modules];"
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
