"""What every page of the main window shares: the workspace, one tenant's sessions, the task runner and the
matching engine.

Built once per window and passed down (no module singletons), so tests build their own with the session's
embedder. The engine is cheap to construct (it opens the FAISS files) but its embedder loads the model on
first use (~0.5 s with the ONNX export, 7-10 s with torch): call :meth:`AppContext.engine` and anything that
encodes only from a worker task.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import sessionmaker

from core.matching.embedding import Embedder
from core.matching.embedding_onnx import default_embedder
from core.matching.engine import MatchingEngine, open_engine
from core.store.repository import current_actor
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from desktop.background.tasks import TaskRunner


@dataclass
class AppContext:
    workspace: Workspace
    tenant_slug: str
    runner: TaskRunner
    # ONNX when an exported model is there (the bundle; `make` in a checkout): loads in ~0.5 s, not ~8 s.
    embedder_factory: Callable[[], Embedder] = default_embedder
    reviewer_name: str | None = None  # from settings; the OS user name when unset
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

    @property
    def engine_ready(self) -> bool:
        return self._engine is not None
