"""Shared fixtures: real SQLite workspaces in tmp_path, headless Qt."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

# Before any QApplication exists: without a display pytest-qt would abort.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import logging

import keyring
import pytest
from sqlalchemy.orm import sessionmaker

from connectors.secrets import REDACTOR, install_secret_redaction
from core.matching.embedding import SentenceTransformerEmbedder
from core.store.tenancy import TenantSession
from core.store.workspace import WORKSPACE_ENV, Workspace
from tests.helpers.memory_keyring import MemoryKeyring

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / "resources" / "demo"
MEMORY_BACKEND = "tests.helpers.memory_keyring.MemoryKeyring"


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def _fail_on_unexpected_warning_log(request: pytest.FixtureRequest) -> Iterator[None]:
    """A WARNING (or worse) logged during a test fails it, unless the test asked for ``caplog``: a test that
    expects a warning says so by capturing and asserting it (qutebrowser's ``logfail`` does the same)."""
    collector = _WarningCollector()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield
    finally:
        root.removeHandler(collector)
    if collector.records and "caplog" not in request.fixturenames:
        logged = "\n".join(f"{r.levelname} {r.name}: {r.getMessage()}" for r in collector.records[:10])
        pytest.fail(f"unexpected warning logged (capture it with caplog if the test expects it):\n{logged}")


@pytest.fixture(autouse=True)
def _no_user_workspace(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may touch the developer's real workspace or settings."""
    monkeypatch.setenv(WORKSPACE_ENV, str(tmp_path / "env-workspace"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))


@pytest.fixture(autouse=True)
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    """Every test gets an empty in-memory keychain, selected both ways keyring allows: no test may read or
    write the developer's real keychain (connector tests and the desktop's wizard store secrets).

    ``PYTHON_KEYRING_BACKEND`` is read only when keyring first picks a backend (``get_keyring()`` caches
    it), so the environment variable covers a fresh process (a CLI subprocess) and ``set_keyring`` this one.
    """
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", MEMORY_BACKEND)
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    install_secret_redaction()
    yield ring
    keyring.set_keyring(MemoryKeyring())  # never leave a test's secrets (or a failing backend) behind
    REDACTOR.forget_all()


@pytest.fixture(scope="session")
def embedder() -> SentenceTransformerEmbedder:
    """The real model, loaded once per test session (about 10 s)."""
    return SentenceTransformerEmbedder()


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace.open(tmp_path / "workspace")
    yield ws
    ws.close()


@pytest.fixture
def sessions(workspace: Workspace) -> sessionmaker[TenantSession]:
    return workspace.session_factory("default")


@pytest.fixture(scope="session")
def analysed_demo_template(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> Path:
    """A demo workspace folder imported, indexed and analysed once per test session (about 20 s).

    Never open it directly: :func:`analysed_demo` hands each test its own copy. The copy carries the
    embedding cache and the FAISS files, so tests that search it encode only their own new text.
    """
    from core.importing import import_runbooks, import_tickets
    from core.matching.analysis import analyze_pending
    from core.matching.engine import open_engine

    root = tmp_path_factory.mktemp("analysed-demo") / "workspace"
    workspace = Workspace.open(root)
    try:
        sessions = workspace.session_factory()
        import_runbooks(sessions, DEMO_DIR / "runbooks", actor="demo-setup")
        import_tickets(sessions, DEMO_DIR / "tickets.csv", actor="demo-setup")
        engine = open_engine(workspace, "default", embedder)
        engine.refresh()
        analyze_pending(engine, sessions)
        engine.save()
    finally:
        workspace.close()
    return root


@pytest.fixture
def analysed_demo(analysed_demo_template: Path, tmp_path: Path) -> Iterator[Workspace]:
    """A private, writable copy of the analysed demo workspace (default tenant)."""
    root = tmp_path / "analysed-demo"
    shutil.copytree(analysed_demo_template, root, ignore=shutil.ignore_patterns("*.lock"))
    workspace = Workspace.open(root)
    yield workspace
    workspace.close()
