"""A workspace: one folder holding the SQLite store (and, later, the search indexes).

Opening a workspace takes an exclusive lock on it (two running instances writing one SQLite file and one FAISS
index would corrupt each other's view), migrates the schema to head and makes sure the default tenant exists.
The workspace object is created once at start-up and passed down; nothing here is a module singleton.

Tenant slugs name folders (``indexes/<slug>/``), so a slug is checked against :data:`TENANT_SLUG_PATTERN`
when a tenant is created and again whenever one is looked up, and :meth:`Workspace.tenant_folder` is the one
place a path is built from a slug: it also refuses a folder that resolves outside the workspace (a symlink).
Lower case only: on a case-insensitive file system "Acme" and "acme" would share one index folder.

Which workspace is which must be visible: a user once imported into a workspace the app never showed. So
whoever holds the lock writes who it is next to the lock file (:class:`LockHolder`), and the desktop app
remembers the workspace it last opened (:func:`remember_app_workspace`): a locked-out command can name the
holder, and a command on an empty workspace that is not the app's can say so.

Team mode (issue 17): a workspace may point at a shared PostgreSQL database instead of its SQLite file
(``team.json`` in the folder, or ``--database URL``). The folder then still holds this desktop's own
things (the FAISS indexes, the lock, settings); the rows are the team's, behind row-level security, and the
tenants are the ones this login is a member of.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import platformdirs
from filelock import FileLock, Timeout
from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker

from core.errors import TenantError, WorkspaceError, WorkspaceLockedError
from core.store.db import (
    BUSY_TIMEOUT_MS,
    create_postgres_engine,
    create_sqlite_engine,
    parse_database_url,
)
from core.store.migrations import upgrade_to_head
from core.store.models import Tenant
from core.store.tenancy import TenantSession

APP_NAME = "RunbookDesk"
WORKSPACE_ENV = "RUNBOOK_DESK_WORKSPACE"
DB_FILENAME = "runbook-desk.sqlite3"
LOCK_FILENAME = ".runbook-desk.lock"
LOCK_HOLDER_FILENAME = ".runbook-desk.lock-holder.json"
APP_WORKSPACE_FILENAME = "app-workspace.txt"
TEAM_SETTINGS_FILENAME = "team.json"  # {"database_url": "postgresql://login@host/db"}: team mode
_SUBCOMMAND_WORD = re.compile(r"[a-z][a-z-]{0,30}")
_SHOWN_FLAGS = ("--demo", "--self-test")
DEFAULT_TENANT = "default"
TENANT_SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
TENANT_SLUG_RULE = "1 to 63 lower-case letters, digits, '-' or '_', starting with a letter or digit"


def validate_tenant_slug(slug: str) -> str:
    """``slug`` when it is safe as a folder name (:data:`TENANT_SLUG_PATTERN`); else :class:`TenantError`."""
    if not isinstance(slug, str) or TENANT_SLUG_PATTERN.fullmatch(slug) is None:
        raise TenantError(f"{slug!r} is not a valid tenant slug: use {TENANT_SLUG_RULE}")
    return slug


def default_workspace_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "workspace"


def demo_workspace_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "demo"


def is_demo_workspace(root: Path) -> bool:
    return root.resolve() == demo_workspace_dir().resolve()


def describe_workspace(root: Path) -> str:
    """What the window's title and status bar call a workspace: which kind, and where (home as ``~``).

    The folder name alone is not enough: the default and the demo folders are both under the same data
    folder, and ``$RUNBOOK_DESK_WORKSPACE`` may name any ``workspace`` folder.
    """
    kind = "Demo workspace" if is_demo_workspace(root) else "Workspace"
    shown = root.resolve()
    home = Path.home().resolve()
    if shown.is_relative_to(home) and shown != home:
        shown_text = str(Path("~") / shown.relative_to(home))
    else:
        shown_text = str(shown)
    return f"{kind}: {shown_text}"


def _app_workspace_file() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / APP_WORKSPACE_FILENAME


def remember_app_workspace(root: Path) -> None:
    """Record the workspace the desktop app opened, so a command run on another one can say so."""
    marker = _app_workspace_file()
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(root.resolve()) + "\n", encoding="utf-8")


def last_app_workspace() -> Path | None:
    """The workspace the desktop app opened last; None before the app was first started."""
    try:
        recorded = _app_workspace_file().read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return Path(recorded) if recorded else None


@dataclass(frozen=True)
class LockHolder:
    """Who holds a workspace's lock: written when the lock is taken, removed when it is released."""

    pid: int
    host: str
    command: str
    started_at: str  # ISO 8601, UTC

    @classmethod
    def of_this_process(cls) -> LockHolder:
        return cls(
            os.getpid(),
            socket.gethostname(),
            _command_name(),
            datetime.now(UTC).isoformat(timespec="seconds"),
        )

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} ({self.command}), since {self.started_at}"


def _command_name() -> str:
    """The program and its subcommand words (``runbook-desk import tickets``), never option values: the
    record is a plain file anyone can read, and a value such as a URL may carry credentials."""
    if not sys.argv or not sys.argv[0]:
        return "python"
    words = [Path(sys.argv[0]).name]
    for arg in sys.argv[1:]:
        if not _SUBCOMMAND_WORD.fullmatch(arg):
            break
        words.append(arg)
    words += [arg for arg in sys.argv[1:] if arg in _SHOWN_FLAGS]
    return " ".join(words)


def read_lock_holder(root: Path) -> LockHolder | None:
    """The holder recorded in ``root``; None when there is no record or it cannot be read (a holder that
    crashed leaves its record behind: check :func:`is_locked` before trusting it)."""
    try:
        fields = json.loads((root / LOCK_HOLDER_FILENAME).read_text(encoding="utf-8"))
        return LockHolder(
            pid=int(fields["pid"]),
            host=str(fields["host"]),
            command=str(fields["command"]),
            started_at=str(fields["started_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_locked(root: Path) -> bool:
    """Whether another process holds the workspace now (the lock, not the record, is the truth)."""
    if not (root / LOCK_FILENAME).exists():
        return False
    probe = FileLock(root / LOCK_FILENAME, is_singleton=False)
    try:
        probe.acquire(timeout=0)
    except Timeout:
        return True
    probe.release()
    return False


def resolve_workspace_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--workspace`` wins, then ``$RUNBOOK_DESK_WORKSPACE``, then the platform's user data dir."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    from_env = os.environ.get(WORKSPACE_ENV)
    if from_env:
        return Path(from_env).expanduser().resolve()
    return default_workspace_dir()


def workspace_database_url(root: Path) -> str | None:
    """The team database this workspace points at (``team.json``); None for its own SQLite file."""
    try:
        fields = json.loads((root / TEAM_SETTINGS_FILENAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"cannot read {root / TEAM_SETTINGS_FILENAME}: {exc}") from exc
    url = fields.get("database_url") if isinstance(fields, dict) else None
    return str(url) if url else None


def set_workspace_database_url(root: Path, url: str | None) -> None:
    """Point the workspace at a team database (checked: PostgreSQL, no password in it), or back at its
    SQLite file (None)."""
    target = root / TEAM_SETTINGS_FILENAME
    if url is None:
        target.unlink(missing_ok=True)
        return
    parse_database_url(url)
    root.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"database_url": url}, indent=2) + "\n", encoding="utf-8")


def _check_team_connection(engine: Engine) -> None:
    """Connect once, so a wrong server, login or password is one clear line (no password in it)."""
    from sqlalchemy.exc import OperationalError

    shown = engine.url.set(drivername="postgresql").render_as_string(hide_password=True)
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        hint = (
            ": store the password with `runbook-desk team password` or in ~/.pgpass"
            if "password" in reason
            else ""
        )
        raise WorkspaceError(f"cannot connect to the team database {shown}: {reason}{hint}") from None


def _write_lock_holder(root: Path) -> None:
    (root / LOCK_HOLDER_FILENAME).write_text(
        json.dumps(asdict(LockHolder.of_this_process())), encoding="utf-8"
    )


def _remove_lock_holder(root: Path) -> None:
    (root / LOCK_HOLDER_FILENAME).unlink(missing_ok=True)


def _on_read_only_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # the holder may be mid-write
    cursor.close()


@dataclass(frozen=True)
class TenantRow:
    id: int
    slug: str
    name: str


class Workspace:
    def __init__(self, root: Path, engine: Engine, lock: FileLock | None) -> None:
        self.root = root
        self.engine = engine
        self._lock = lock  # None: opened read-only, beside the process that holds it
        self._admin_sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def db_path(self) -> Path:
        return self.root / DB_FILENAME

    @property
    def is_team(self) -> bool:
        """True on a team's PostgreSQL database (team mode), False on the workspace's SQLite file."""
        return self.engine.dialect.name == "postgresql"

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None = None, database_url: str | None = None) -> Workspace:
        """Open (and lock) the workspace folder; its store is ``database_url`` when given, else the team
        database its ``team.json`` names, else its own SQLite file."""
        path = resolve_workspace_dir(root)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(f"cannot create workspace folder {path}: {exc.strerror}") from exc
        if not os.access(path, os.W_OK):
            raise WorkspaceError(f"workspace folder {path} is not writable")
        lock = FileLock(path / LOCK_FILENAME, is_singleton=False)
        try:
            lock.acquire(timeout=0)
        except Timeout as exc:
            holder = read_lock_holder(path)
            by = f" (held by {holder.describe()})" if holder is not None else ""
            raise WorkspaceLockedError(
                f"workspace {path} is open in another Runbook Desk window or command{by}; close it and retry"
            ) from exc
        try:
            url = database_url or workspace_database_url(path)
            engine = create_postgres_engine(url) if url else create_sqlite_engine(path / DB_FILENAME)
        except Exception:
            lock.release()
            raise
        try:
            _write_lock_holder(path)
            if url:
                _check_team_connection(engine)
            upgrade_to_head(engine)
            workspace = cls(path, engine, lock)
            if url:
                workspace._check_team_membership()
            else:
                workspace.ensure_tenant(DEFAULT_TENANT, "Default")
        except Exception:
            engine.dispose()
            _remove_lock_holder(path)
            lock.release()
            raise
        return workspace

    @classmethod
    def open_read_only(cls, root: str | os.PathLike[str] | None = None) -> Workspace:
        """Read a workspace another process holds (``workspace info`` while the app is open): no lock, no
        migration, SQLite's read-only mode (a team database: read-only transactions), so nothing the holder
        relies on can change."""
        path = resolve_workspace_dir(root)
        url = workspace_database_url(path)
        if url:
            return cls(path, create_postgres_engine(url, read_only=True), None)
        db_path = path / DB_FILENAME
        if not db_path.is_file():
            raise WorkspaceError(f"workspace {path} has no database yet")
        engine = create_engine(
            f"sqlite:///file:{db_path}?mode=ro&uri=true", connect_args={"check_same_thread": False}
        )
        event.listen(engine, "connect", _on_read_only_connect)
        return cls(path, engine, None)

    def close(self) -> None:
        self.engine.dispose()
        if self._lock is not None:
            _remove_lock_holder(self.root)
            self._lock.release()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def _check_team_membership(self) -> None:
        """On a team database: a new database gets the default tenant (its administrator creates it), and a
        login that is a member of no tenant is told so now, not by an empty window."""
        if self.tenants():
            return
        from core.store.team_schema import OWNER_ROLE

        with self._admin_sessions() as session:
            login, is_owner = session.execute(
                text("SELECT session_user, pg_has_role(session_user, :owner, 'MEMBER')"),
                {"owner": OWNER_ROLE},
            ).one()
        if is_owner:
            self.ensure_tenant(DEFAULT_TENANT, "Default")
            return
        raise WorkspaceError(
            f"database login {login!r} is a member of no tenant yet: a team admin adds it on the Members "
            f"page or with `runbook-desk team members add {login} --role analyst`"
        )

    # Tenants are the one table outside tenant scoping: they are listed and created here only.
    def ensure_tenant(self, slug: str, name: str | None = None) -> TenantRow:
        validate_tenant_slug(slug)
        with self._admin_sessions.begin() as session:
            tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
            if tenant is None:
                tenant = Tenant(slug=slug, name=name or slug)
                session.add(tenant)
                session.flush()
            return TenantRow(tenant.id, tenant.slug, tenant.name)

    def tenants(self) -> list[TenantRow]:
        with self._admin_sessions() as session:
            return [
                TenantRow(t.id, t.slug, t.name) for t in session.scalars(select(Tenant).order_by(Tenant.id))
            ]

    def tenant(self, slug: str) -> TenantRow:
        validate_tenant_slug(slug)
        for row in self.tenants():
            if row.slug == slug:
                return row
        known = ", ".join(t.slug for t in self.tenants())
        raise TenantError(f"no tenant '{slug}' in workspace {self.root} (known: {known})")

    def tenant_folder(self, kind: str, slug: str) -> Path:
        """``<workspace>/<kind>/<slug>``: the only way to build a path from a tenant slug.

        ``kind`` is one plain folder name of ours ("indexes"). The slug is validated and the folder must
        resolve to itself, so neither a slug nor a symlink (of the folder or of ``<kind>``) can point it
        elsewhere.
        """
        if not kind or kind in (".", "..") or Path(kind).name != kind or "\\" in kind:
            raise ValueError(f"tenant folder kind {kind!r} must be one plain folder name")
        validate_tenant_slug(slug)
        expected = self.root.resolve() / kind / slug
        folder = expected.resolve()
        if folder != expected:
            raise TenantError(
                f"the {kind} folder of tenant {slug!r} resolves to {folder}, "
                f"outside the workspace {self.root}"
            )
        return folder

    def session_factory(self, tenant_slug: str = DEFAULT_TENANT) -> sessionmaker[TenantSession]:
        """Sessions bound to one tenant. One session per thread and unit of work, never shared."""
        tenant = self.tenant(tenant_slug)
        return sessionmaker(
            self.engine,
            class_=TenantSession,
            expire_on_commit=False,
            tenant_id=tenant.id,
            tenant_slug=tenant.slug,
        )

    @contextmanager
    def admin_session(self) -> Iterator[Session]:
        with self._admin_sessions() as session:
            yield session
