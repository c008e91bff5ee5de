"""What the Gaps page's generation queue runs on worker threads: the automatic drafts after an analysis, the
queue as it stands, and an analyst's approval of one gap's draft. Plain functions with their own sessions;
a frozen :class:`~core.analytics.generation_queue.GenerationQueue` out."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import sessionmaker

from core.analytics.gaps import GapCluster
from core.analytics.generation_queue import (
    GenerationQueue,
    build_queue,
    generate_automatic,
    generate_draft,
)
from core.store.tenancy import TenantSession
from desktop.background.tasks import TaskContext

APPROVAL_REASON = "approved by an analyst"


def generate_queue_drafts(
    task: TaskContext, sessions: sessionmaker[TenantSession], clusters: Sequence[GapCluster], actor: str
) -> GenerationQueue:
    """Generate the drafts of the gaps above the automatic threshold that have none, then the queue."""
    return generate_automatic(sessions, clusters, actor=actor, progress=task)


def load_queue(sessions: sessionmaker[TenantSession], clusters: Sequence[GapCluster]) -> GenerationQueue:
    """The queue without generating anything."""
    with sessions() as session:
        return build_queue(session, clusters)


def approve_generation(
    sessions: sessionmaker[TenantSession], clusters: Sequence[GapCluster], key: str, actor: str
) -> GenerationQueue:
    """The analyst approved generating this gap's draft: generate it (audited as theirs), then the queue."""
    cluster = next(c for c in clusters if c.key == key)
    with sessions.begin() as session:
        draft, created = generate_draft(session, cluster, actor=actor, reason=APPROVAL_REASON)
    with sessions() as session:
        return build_queue(session, clusters, (draft.runbook_id,) if created else ())
