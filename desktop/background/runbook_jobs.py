"""What the runbook library, the runbook editor and the revision history run on worker threads.

Plain functions: each opens its own session, goes through :mod:`core.workflow.runbooks` (so every change
leaves a revision and an audit row) and hands back frozen rows, never ORM objects.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.store.models import RunbookSource, RunbookStatus
from core.store.repository import RunbookRow, list_runbooks
from core.workflow.runbooks import (
    RevisionRow,
    create_runbook,
    get_runbook_row,
    list_revisions,
    save_runbook,
    set_status,
)
from desktop.context import AppContext


@dataclass(frozen=True, slots=True)
class RunbookLoad:
    runbook_rows: tuple[RunbookRow, ...]
    total: int


@dataclass(frozen=True, slots=True)
class StatusChange:
    previous: RunbookStatus
    runbook: RunbookRow


def load_runbooks(app: AppContext, search: str, status: RunbookStatus | None) -> RunbookLoad:
    with app.sessions() as session:
        runbook_rows = tuple(list_runbooks(session, status=status, search=search or None))
        # The core has no runbook count yet; runbooks number in the hundreds, so listing them all is cheap.
        filtered = bool(search) or status is not None
        total = len(list_runbooks(session)) if filtered else len(runbook_rows)
    return RunbookLoad(runbook_rows, total)


def change_status(app: AppContext, runbook_id: int, target: RunbookStatus, actor: str) -> StatusChange:
    """The previous status is read in the same transaction: the row the page showed may be out of date."""
    with app.sessions.begin() as session:
        previous = RunbookStatus(get_runbook_row(session, runbook_id).status)
        return StatusChange(previous, set_status(session, runbook_id, target, actor))


@dataclass(frozen=True, slots=True)
class EditorValues:
    """The editor's fields exactly as typed: what dirty tracking compares (normalising is the core's job)."""

    title: str
    service: str
    tags: str
    body: str


@dataclass(frozen=True, slots=True)
class SaveResult:
    runbook: RunbookRow
    created: bool
    changed: bool  # False: the text equalled the stored one, nothing was written


def save_runbook_values(
    app: AppContext,
    runbook_id: int | None,
    values: EditorValues,
    actor: str,
    expected_revision: int,
) -> SaveResult:
    """One transaction: create the runbook or save a revision on top of ``expected_revision`` (a newer save
    by someone else is refused with :class:`~core.workflow.runbooks.StaleRevisionError`)."""
    with app.sessions.begin() as session:
        if runbook_id is None:
            new_id = create_runbook(
                session,
                title=values.title,
                body=values.body,
                tags=values.tags,
                service=values.service,
                actor=actor,
                status=RunbookStatus.DRAFT,
                source=RunbookSource.AUTHORED,
            )
            return SaveResult(get_runbook_row(session, new_id), created=True, changed=True)
        revision = save_runbook(
            session,
            runbook_id,
            title=values.title,
            body=values.body,
            tags=values.tags,
            service=values.service,
            actor=actor,
            expected_revision=expected_revision,
        )
        return SaveResult(
            get_runbook_row(session, runbook_id), created=False, changed=revision != expected_revision
        )


def load_revisions(app: AppContext, runbook_id: int) -> tuple[RevisionRow, ...]:
    with app.sessions() as session:
        return tuple(list_revisions(session, runbook_id))
