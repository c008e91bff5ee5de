"""What every page of the main window shares: the workspace, one tenant's sessions, the task runner, the
matching engine and the test seams.

Built once per window and passed down (no module singletons), so tests build their own with the session's
embedder. The seams (``embedder_factory``, ``transport_factory``) live here and nowhere else: a page, dialog
or job that needs one reads it from the context at the moment it uses it, so a test can set it on a window's
context after the window is built.

The engine is cheap to construct (it opens the FAISS files) but its embedder loads the model on first use
(~0.5 s with the ONNX export, 7-10 s with torch): call :meth:`AppContext.engine` and anything that encodes
only from a worker task.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from sqlalchemy.orm import sessionmaker

from connectors.base import ConnectorSettings
from core.matching.embedding import Embedder
from core.matching.embedding_onnx import default_embedder
from core.matching.engine import MatchingEngine, open_engine
from core.store.repository import current_actor
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from desktop.background.tasks import TaskRunner
from desktop.permissions import LOCAL_ADMIN, Permissions

# Given a connector's settings, the transport its HTTP client uses; None means the real network. Tests plug
# the local fake systems in here.
TransportFactory = Callable[[ConnectorSettings], httpx.AsyncBaseTransport | None]


@dataclass
class AppContext:
    workspace: Workspace
    tenant_slug: str
    runner: TaskRunner
    # ONNX when an exported model is there (the bundle; `make` in a checkout): loads in ~0.5 s, not ~8 s.
    embedder_factory: Callable[[], Embedder] = default_embedder
    reviewer_name: str | None = None  # from settings; the OS user name when unset
    transport_factory: TransportFactory | None = None  # tests: every connector's HTTP goes to a fake system
    # This login's role in the tenant (team mode), read once by the window before it builds its pages.
    permissions: Permissions = LOCAL_ADMIN
    _sessions: sessionmaker[TenantSession] | None = field(default=None, init=False, repr=False)
    _engine: MatchingEngine | None = field(default=None, init=False, repr=False)
    _engine_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def sessions(self) -> sessionmaker[TenantSession]:
        if self._sessions is None:  # one factory per window (it looks the tenant up once)
            self._sessions = self.workspace.session_factory(self.tenant_slug)
        return self._sessions

    def reviewer(self) -> str:
        """Who decisions and edits are recorded as: the name set in settings, else the OS user."""
        return self.reviewer_name or current_actor()

    def engine(self) -> MatchingEngine:
        """The tenant's matching engine, created on first call. Thread-safe; call it from worker tasks."""
        with self._engine_lock:
            if self._engine is None:
                self._engine = open_engine(self.workspace, self.tenant_slug, self.embedder_factory())
            return self._engine
