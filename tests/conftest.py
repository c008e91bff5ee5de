"""Shared fixtures: real SQLite workspaces in tmp_path, headless Qt; team mode's real PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
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
from tests.helpers.postgres import SKIP_REASON, PgServer, server_url

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


# --- Team mode: a real PostgreSQL server (tests/helpers/postgres.py) ---------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The throwaway server of `make test-team` / CI, set up once; skipped with the reason without one."""
    url = server_url()
    if url is None:
        pytest.skip(SKIP_REASON)
    server = PgServer(url)
    server.set_up()
    yield server
    server.tear_down()


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """A fresh database migrated to head (a copy of the session's template), dropped after the test."""
    name = pg_server.new_database()
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def team_workspace(
    tmp_path: Path, pg_server: PgServer, pg_database: str, memory_keyring: MemoryKeyring
) -> Iterator[Workspace]:
    """A workspace on a team database, opened as the team's admin login, with its password in the keychain
    (the way an analyst's desktop finds it)."""
    from sqlalchemy import make_url

    from core.store.db import POSTGRES_KEYRING_SERVICE, postgres_keyring_account

    url = pg_server.url(pg_database)
    memory_keyring.set_password(
        POSTGRES_KEYRING_SERVICE, postgres_keyring_account(make_url(url)), pg_server.admin_password
    )
    ws = Workspace.open(tmp_path / "team-workspace", database_url=url)
    yield ws
    ws.close()


# --- The whole suite on PostgreSQL: `pytest --store=postgresql` --------------------------------------------
#
# Every workspace a test opens without naming a database gets a fresh team database (a copy of the migrated
# template) before it opens: ``team.json`` in the workspace folder names it, so a reopen, an in-process CLI
# call and a CLI subprocess all land on it, and a pgpass file (``$PGPASSFILE``, read by libpq in this process
# and in every child) holds the session admin's password, so the per-test keychain reset does not matter.
# A folder that already has its SQLite file (a test that ships an old workspace) stays on SQLite; a folder
# copied from another one (``analysed_demo``) gets a copy of that one's database. What stays SQLite-only: a
# CLI subprocess that creates a workspace in a folder no in-process ``Workspace.open`` saw first.


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the store every test workspace opens: its SQLite file (default) or a fresh PostgreSQL database "
        "on $RUNBOOK_DESK_TEST_PG (the team-mode test server)",
    )


# Tests of SQLite itself or of the single-user workspace: nothing to port; skipped, with the reason, on PG.
_SQLITE_ONLY_REASON = "--store=postgresql: this test is about SQLite or the single-user workspace"
SQLITE_ONLY_TESTS = frozenset(
    {
        "tests/core/test_store.py::test_sqlite_runs_in_wal_with_foreign_keys",
        "tests/core/test_workspace.py::test_open_creates_database_and_default_tenant",
        "tests/core/test_team_members.py::test_status_of_a_single_user_workspace",
        "tests/cli/test_team_cli.py::test_status_of_a_single_user_workspace",
        "tests/cli/test_team_cli.py::test_bad_logins_and_sqlite_only_limits_are_one_line_errors",
        # SQLite's own statements and triggers (REPLACE INTO, FTS5 MATCH); tests/team has PostgreSQL's.
        "tests/core/test_audit_trail.py::test_raw_sql_cannot_replace_an_audit_row",
        "tests/core/test_audit_trail.py::test_a_new_row_still_goes_in",
        "tests/core/test_matching.py::test_fts_triggers_follow_inserts_updates_and_deletes",
    }
)


# Whole files that are the SQLite side of a pair: their PostgreSQL side is in tests/team, with what SQLite
# cannot show (one database login per analyst, tampering past PostgreSQL's triggers as the superuser).
SQLITE_SIDE_OF_TEAM_TESTS = {
    "tests/core/test_audit_chain.py": "tampers through SQLite's file; see tests/team/test_audit_chain_pg.py",
    "tests/core/test_concurrency.py": "needs a login per analyst; see tests/team/test_concurrency_pg.py",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--store") != "postgresql":
        return
    for item in items:
        if item.nodeid.split("[")[0] in SQLITE_ONLY_TESTS:
            item.add_marker(pytest.mark.skip(reason=_SQLITE_ONLY_REASON))
        elif (why := SQLITE_SIDE_OF_TEAM_TESTS.get(item.nodeid.split("::")[0])) is not None:
            item.add_marker(pytest.mark.skip(reason=f"--store=postgresql: {why}"))


@dataclass
class _StoreDatabases:
    """The databases ``--store=postgresql`` made: which workspace folder each belongs to."""

    server: PgServer
    folder_of: dict[str, Path] = field(default_factory=dict)

    def database_of(self, root: Path) -> str | None:
        from sqlalchemy import make_url

        from core.store.workspace import workspace_database_url

        url = workspace_database_url(root)
        return make_url(url).database if url else None

    def give_database(self, root: Path) -> None:
        """Before ``root`` opens: a new database, or a copy of the one its folder was copied from."""
        from core.store.workspace import DB_FILENAME, set_workspace_database_url

        named = self.database_of(root)
        if named is not None and self.folder_of.get(named, root) == root:
            return  # its own (or a database the test chose itself)
        if named is None and (root / DB_FILENAME).exists():
            return  # a SQLite workspace the test built on purpose
        if named is None:
            name = self.server.new_database()
        else:
            name = f"{named[:40]}_c{secrets.token_hex(3)}"
            with self.server.superuser() as conn:
                conn.execute(f"CREATE DATABASE {name} TEMPLATE {named} OWNER {self.server.admin_login}")
        self.folder_of[name] = root
        set_workspace_database_url(root, self.server.url(name))

    def drop_under(self, folder: Path | None) -> None:
        """Drop the databases of workspaces under ``folder`` (all of them with None)."""
        for name, root in list(self.folder_of.items()):
            if folder is None or root.is_relative_to(folder):
                self.server.drop_database(name)
                del self.folder_of[name]


@pytest.fixture(scope="session", autouse=True)
def _store_databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_StoreDatabases | None]:
    if request.config.getoption("--store") != "postgresql":
        yield None
        return
    url = server_url()
    if url is None:
        raise pytest.UsageError(f"--store=postgresql: {SKIP_REASON}")
    import psycopg

    from core.store import workspace as workspace_module

    # A login and template of this run's own: the team tests' server (`pg_server`) resets `rd_admin`'s
    # password and recreates its template, which would break a run beside it.
    server = PgServer(url, admin_login=f"rd_store_{os.getpid()}", template=f"rd_store_template_{os.getpid()}")
    pgpass = tmp_path_factory.mktemp("store-pgpass") / "pgpass"
    host, port = make_url_host_port(url)
    earlier = Path(os.environ["PGPASSFILE"]).read_text() if os.environ.get("PGPASSFILE") else ""
    pgpass.write_text(f"{earlier.rstrip()}\n{host}:{port}:*:{server.admin_login}:{server.admin_password}\n")
    pgpass.chmod(0o600)
    databases = _StoreDatabases(server)
    opened_by_test = workspace_module.Workspace.open.__func__  # type: ignore[attr-defined]

    def open_on_postgres(
        cls: type[Workspace], root: str | os.PathLike[str] | None = None, database_url: str | None = None
    ) -> Workspace:
        path = workspace_module.resolve_workspace_dir(root)
        if database_url is None and (path.is_dir() or _creatable(path)):
            databases.give_database(path)  # a folder that cannot be made: Workspace.open says why
        return opened_by_test(cls, root, database_url)  # type: ignore[no-any-return]

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PGPASSFILE", str(pgpass))
        # Session fixtures (the analysed demo) open workspaces before the per-test memory keychain exists, and
        # a team engine asks the keychain first: never the developer's real one.
        patch.setenv("PYTHON_KEYRING_BACKEND", MEMORY_BACKEND)
        keyring.set_keyring(MemoryKeyring())
        server.set_up()
        patch.setattr(workspace_module.Workspace, "open", classmethod(open_on_postgres))
        try:
            yield databases
        finally:
            databases.drop_under(None)
            server.drop_database(server.template)
            # A database a test made itself may still name the login: the throwaway server keeps it then.
            with server.superuser() as conn, contextlib.suppress(psycopg.errors.DependentObjectsStillExist):
                conn.execute(f"DROP ROLE IF EXISTS {server.admin_login}")


def _creatable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return True


def make_url_host_port(url: str) -> tuple[str, int]:
    from sqlalchemy import make_url

    parsed = make_url(url)
    return parsed.host or "localhost", parsed.port or 5432


@pytest.fixture(autouse=True)
def _drop_store_databases_of_this_test(
    _store_databases: _StoreDatabases | None, tmp_path: Path
) -> Iterator[None]:
    yield
    if _store_databases is not None:
        _store_databases.drop_under(tmp_path)
