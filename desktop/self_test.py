"""``runbook-desk --self-test``: prove an installation works, frozen or from source, without a display.

Each check exercises what a broken bundle would lose first: bundled files (resources, migrations, the
ONNX model), dynamically imported modules (connectors, keyring backends, Qt platform plugins) and the
native libraries behind them (SQLite FTS5, FAISS, onnxruntime, tokenizers). Everything happens in a
temporary workspace that is deleted afterwards; nothing is written to the user's workspace, settings or
keychain, and nothing touches the network.

Output: one line per check (``ok`` or ``FAIL`` with the reason), then a summary; exit code 0 when every check
passed, 1 otherwise. "No keychain" is reported, not failed: a server has none, and the app says so too.
"""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TextIO

from core.matching.embedding import Embedder
from core.matching.embedding_onnx import default_embedder
from core.resources import default_calibration_path, resources_dir
from core.store.workspace import Workspace

EXIT_OK = 0
EXIT_FAILED = 1
PROBE_TEXT = "AnyConnect VPN will not connect from home after the password change"
# Three tiny runbooks: enough for the section index, FTS5 and the calibrated ranking to have a right answer.
PROBE_RUNBOOKS = (
    {
        "id": "self-test-vpn",
        "title": "VPN client cannot connect",
        "body": "## Symptoms\nAnyConnect VPN fails to connect from home.\n\n## Steps\n1. Re-enter it.",
    },
    {
        "id": "self-test-printer",
        "title": "Printer out of toner",
        "body": "## Symptoms\nThe printer shows a toner warning.\n\n## Steps\n1. Replace the cartridge.",
    },
    {
        "id": "self-test-outlook",
        "title": "Outlook cannot send mail",
        "body": "## Symptoms\nOutlook reports error 0x800CCC0E.\n\n## Steps\n1. Check the SMTP server.",
    },
)
# Qt platform plugins the windowed app needs per OS (offscreen: headless runs and this self-test's peers).
PLATFORM_PLUGINS = {"linux": ("xcb", "offscreen"), "win32": ("windows",), "darwin": ("cocoa",)}


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    seconds: float

    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAIL':<5} {self.name:<11} {self.detail} ({self.seconds:.2f} s)"


class _Checks:
    """Runs the checks in order; later ones use what earlier ones built (workspace, embedder)."""

    def __init__(self, root: Path, embedder_factory: Callable[[], Embedder]) -> None:
        self.root = root
        self.embedder_factory = embedder_factory
        self.workspace: Workspace | None = None
        self.embedder: Embedder | None = None

    def resources(self) -> str:
        folder = resources_dir()
        calibration = default_calibration_path()
        runbooks = list((folder / "demo" / "runbooks").glob("*.md"))
        missing = [str(p) for p in (calibration, folder / "demo" / "tickets.csv") if not p.is_file()]
        if missing or not runbooks:
            raise FileNotFoundError(f"missing from {folder}: {', '.join(missing) or 'demo runbooks'}")
        return f"{folder}: calibration, demo ({len(runbooks)} runbooks)"

    def workspace_check(self) -> str:
        from core.store.migrations import current_revision

        self.workspace = Workspace.open(self.root / "workspace")
        return f"created and migrated to revision {current_revision(self.workspace.engine)}"

    def embedding(self) -> str:
        import numpy as np

        self.embedder = self.embedder_factory()
        vectors = self.embedder.encode([PROBE_TEXT])
        norm = float(np.linalg.norm(vectors[0]))
        if vectors.shape != (1, self.embedder.dimension) or abs(norm - 1.0) > 1e-3:
            raise ValueError(f"bad vector: shape {vectors.shape}, norm {norm:.4f}")
        backend = getattr(self.embedder, "backend", type(self.embedder).__name__)
        return f"{self.embedder.model_id} on {backend}"

    def search(self) -> str:
        from core.importing import import_runbooks
        from core.matching.engine import open_engine

        if self.workspace is None or self.embedder is None:
            raise RuntimeError("skipped: needs the workspace and embedding checks")
        runbooks_file = self.root / "runbooks.json"
        runbooks_file.write_text(json.dumps(PROBE_RUNBOOKS), encoding="utf-8")
        import_runbooks(self.workspace.session_factory(), runbooks_file, actor="self-test")
        engine = open_engine(self.workspace, "default", self.embedder)
        engine.refresh()
        matches = engine.search(PROBE_TEXT, 3)
        if not matches or matches[0].title != PROBE_RUNBOOKS[0]["title"]:
            raise ValueError(
                f"expected {PROBE_RUNBOOKS[0]['title']!r} first, got {[m.title for m in matches]}"
            )
        return f"ranked {len(matches)} runbooks, best {matches[0].title!r} at {matches[0].confidence:.2f}"

    def connectors(self) -> str:
        from connectors.registry import BUILTIN_CONNECTORS, connector_types

        names = [spec.display_name for spec in connector_types()]
        if len(names) < len(BUILTIN_CONNECTORS):
            raise ValueError(f"{len(BUILTIN_CONNECTORS)} built-in connectors registered only {names}")
        return ", ".join(names)

    def keychain(self) -> str:
        import keyring
        from keyring.backends import fail

        from connectors.secrets import keychain_backend_name

        registered = list(entry_points(group="keyring.backends"))
        if not registered:
            raise ModuleNotFoundError("no keyring backends registered (keyring's metadata is not installed)")
        for entry_point in registered:
            importlib.import_module(entry_point.value)
        if isinstance(keyring.get_keyring(), fail.Keyring):
            return f"no keychain: connector secrets cannot be stored here ({len(registered)} backends known)"
        return f"{keychain_backend_name()} ({len(registered)} backends known)"

    def qt(self) -> str:
        from PySide6 import QtWidgets  # noqa: F401 -- the import is the check (bundled Qt libraries load)
        from PySide6.QtCore import QLibraryInfo, qVersion

        plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
        found = {path.name for path in plugins.glob("*") if path.is_file()}
        wanted = PLATFORM_PLUGINS.get(sys.platform, ())
        missing = [name for name in wanted if not any(name in file for file in found)]
        if missing:
            raise FileNotFoundError(f"Qt platform plugins {missing} not in {plugins}")
        return f"Qt {qVersion()}, platform plugins {', '.join(wanted)}"


def run_checks(embedder_factory: Callable[[], Embedder] = default_embedder) -> Iterator[CheckResult]:
    """Every check, in order, in a temporary workspace that is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="runbook-desk-self-test-") as temp:
        checks = _Checks(Path(temp), embedder_factory)
        try:
            for name, check in (
                ("resources", checks.resources),
                ("workspace", checks.workspace_check),
                ("embedding", checks.embedding),
                ("search", checks.search),
                ("connectors", checks.connectors),
                ("keychain", checks.keychain),
                ("qt", checks.qt),
            ):
                yield _run_one(name, check)
        finally:
            if checks.workspace is not None:
                checks.workspace.close()


def _run_one(name: str, check: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as exc:  # noqa: BLE001 -- a self-test turns any failure into its one-line reason
        reason = next(iter(str(exc).splitlines()), "")
        return CheckResult(name, False, f"{type(exc).__name__}: {reason}", time.perf_counter() - started)
    return CheckResult(name, True, detail, time.perf_counter() - started)


def run_self_test(
    out: TextIO | None = None, embedder_factory: Callable[[], Embedder] = default_embedder
) -> int:
    stream = out if out is not None else sys.stdout
    started = time.perf_counter()
    results = []
    for result in run_checks(embedder_factory):
        results.append(result)
        print(result.line(), file=stream, flush=True)
    failed = [r.name for r in results if not r.ok]
    elapsed = time.perf_counter() - started
    if failed:
        print(f"self-test FAILED in {elapsed:.1f} s: {', '.join(failed)}", file=stream)
        return EXIT_FAILED
    print(f"self-test passed in {elapsed:.1f} s", file=stream)
    return EXIT_OK
