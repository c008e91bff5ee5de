"""What the Gaps page runs on worker threads: the analysis (with progress and cancel), its filters' choices,
a dismissal and an export. Plain functions with their own session; frozen reports out."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import sessionmaker

from core.analytics.gap_report import export_report
from core.analytics.gaps import (
    GapCluster,
    GapQuery,
    GapReport,
    analyse_gaps,
    dismiss_gap,
    engine_ticket_vectors,
)
from core.queries import ticket_facets
from core.store.tenancy import TenantSession
from desktop.background.tasks import TaskContext
from desktop.context import AppContext


def run_gap_analysis(task: TaskContext, context: AppContext, query: GapQuery) -> GapReport:
    engine = context.engine()
    sessions = context.sessions
    return analyse_gaps(
        sessions,
        engine_ticket_vectors(engine, sessions),
        engine.embedder.model_id,
        query,
        progress=task,
        article_search=engine,
    )


def load_facets(sessions: sessionmaker[TenantSession]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The source systems and categories the filters offer."""
    with sessions() as session:
        facets = ticket_facets(session)
    return facets.source_systems, facets.categories


def dismiss(
    sessions: sessionmaker[TenantSession], cluster: GapCluster, model_id: str, actor: str, reason: str | None
) -> str:
    with sessions.begin() as session:
        dismiss_gap(session, cluster, model_id, actor=actor, reason=reason)
    return cluster.key


def export(
    sessions: sessionmaker[TenantSession], report: GapReport, path: Path, kind: str, actor: str
) -> Path:
    return export_report(sessions, report, path, kind, actor=actor)
