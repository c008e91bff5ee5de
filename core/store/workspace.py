"""A workspace: one folder holding the SQLite store (and, later, the search indexes).

Opening a workspace takes an exclusive lock on it (two running instances writing one SQLite file and one FAISS
index would corrupt each other's view), migrates the schema to head and makes sure the default tenant exists.
The workspace object is created once at start-up and passed down; nothing here is a module singleton.

Tenant slugs name folders (``indexes/<slug>/``), so a slug is checked against :data:`TENANT_SLUG_PATTERN`
when a tenant is created and again whenever one is looked up, and :meth:`Workspace.tenant_folder` is the one
place a path is built from a slug: it also refuses a folder that resolves outside the workspace (a symlink).
Lower case only: on a case-insensitive file system "Acme" and "acme" would share one index folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import platformdirs
from filelock import FileLock, Timeout
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import TenantError, WorkspaceError, WorkspaceLockedError
from core.store.db import create_sqlite_engine
from core.store.migrations import upgrade_to_head
from core.store.models import Tenant
from core.store.tenancy import TenantSession

APP_NAME = "RunbookDesk"
WORKSPACE_ENV = "RUNBOOK_DESK_WORKSPACE"
DB_FILENAME = "runbook-desk.sqlite3"
LOCK_FILENAME = ".runbook-desk.lock"
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


def resolve_workspace_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--workspace`` wins, then ``$RUNBOOK_DESK_WORKSPACE``, then the platform's user data dir."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    from_env = os.environ.get(WORKSPACE_ENV)
    if from_env:
        return Path(from_env).expanduser().resolve()
    return default_workspace_dir()


@dataclass(frozen=True)
class TenantRow:
    id: int
    slug: str
    name: str


class Workspace:
    def __init__(self, root: Path, engine: Engine, lock: FileLock) -> None:
        self.root = root
        self.engine = engine
        self._lock = lock
        self._admin_sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def db_path(self) -> Path:
        return self.root / DB_FILENAME

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None = None) -> Workspace:
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
            raise WorkspaceLockedError(
                f"workspace {path} is open in another Runbook Desk window or command; close it and retry"
            ) from exc
        engine = create_sqlite_engine(path / DB_FILENAME)
        try:
            upgrade_to_head(engine)
            workspace = cls(path, engine, lock)
            workspace.ensure_tenant(DEFAULT_TENANT, "Default")
        except Exception:
            engine.dispose()
            lock.release()
            raise
        return workspace

    def close(self) -> None:
        self.engine.dispose()
        self._lock.release()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

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
