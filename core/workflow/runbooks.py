"""Authoring runbooks: create, edit (a new revision per real change), move through review, compare revisions.

The editor, the CLI and tests all change runbooks through these functions so that every change leaves the same
trail: a ``runbook_revisions`` row holding the text as saved and an ``audit_events`` row naming who did it.

Transactions: each function takes a :class:`~core.store.tenancy.TenantSession` inside the caller's
``with sessions.begin()`` block, flushes but never commits. A refused change (stale revision, bad transition,
empty title) raises before anything is written, and any later failure rolls back the revision *and* its audit
row together, so the trail never claims an edit that did not happen.

Concurrency (team mode, issue 17): a save carries the revision the editor loaded, a status change may carry
the ``version`` the screen showed; every write records ``updated_by`` and SQLAlchemy's version check
(:mod:`core.workflow.concurrency`) refuses an UPDATE that another session beat, so two analysts editing one
runbook never silently overwrite each other.

Errors, all :class:`~core.errors.RunbookDeskError`::

    RunbookEditError
    ├── RunbookNotFoundError     no such runbook (or revision) in this tenant
    ├── InvalidRunbookError      the values cannot be saved (an empty title)
    ├── StaleRevisionError       someone saved a newer revision since the editor loaded its copy
    │                            (also a ConcurrentChangeError: it names who and when)
    └── StatusTransitionError    the workflow does not allow that status change

``content_hash`` is computed exactly as the importer computes it (:class:`RunbookValues`), from title, body,
tags, service and status: matching rebuilds a runbook's sections when the hash changes, and a re-import of a
file whose text equals the stored runbook is recognised as unchanged. The flip side, by design: when an
*imported* runbook is edited here and its folder is imported again, the file differs from the stored text, so
the import writes the file's version as a new revision (the edit stays in the history). The file is the
source of truth for imported runbooks; authored runbooks have no ``external_ref`` and no import touches them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.errors import ConcurrentChangeError, RunbookDeskError
from core.importing.runbooks import RunbookValues, parse_tags
from core.matching.rematch import (
    REASON_APPROVED,
    REASON_CREATED,
    REASON_EDITED,
    REASON_RETIRED,
    REASON_WITHDRAWN,
    request_rematch,
)
from core.store.models import Runbook, RunbookRevision, RunbookSource, RunbookStatus
from core.store.repository import RunbookRow, add_revision, record_audit, runbook_row
from core.store.tenancy import TenantSession
from core.workflow.concurrency import changed_text, editor, runbook_write_guard

ENTITY = "runbook"

# The review workflow. Only approved runbooks are indexed for matching, so reaching APPROVED goes through
# review; any state may go back to draft for rework, and anything not yet retired may be retired.
TRANSITIONS: Mapping[RunbookStatus, frozenset[RunbookStatus]] = {
    RunbookStatus.DRAFT: frozenset({RunbookStatus.IN_REVIEW, RunbookStatus.RETIRED}),
    RunbookStatus.IN_REVIEW: frozenset({RunbookStatus.APPROVED, RunbookStatus.DRAFT, RunbookStatus.RETIRED}),
    RunbookStatus.APPROVED: frozenset({RunbookStatus.DRAFT, RunbookStatus.RETIRED}),
    RunbookStatus.RETIRED: frozenset({RunbookStatus.DRAFT}),
}


class RunbookEditError(RunbookDeskError):
    """Base of the errors an authoring action raises; the message is meant for the person who acted."""


class RunbookNotFoundError(RunbookEditError):
    pass


class InvalidRunbookError(RunbookEditError):
    pass


class StaleRevisionError(RunbookEditError, ConcurrentChangeError):
    def __init__(
        self, runbook_id: int, expected: int, current: int, changed: str = "changed by another session"
    ) -> None:
        super().__init__(
            f"runbook {runbook_id} was saved by someone else meanwhile ({changed}; you edited revision "
            f"{expected}, it is now at revision {current}); reopen it to see their changes"
        )
        self.runbook_id = runbook_id
        self.expected = expected
        self.current = current


class StatusTransitionError(RunbookEditError):
    pass


@dataclass(frozen=True, slots=True)
class RevisionRow:
    """One saved revision, safe to hand across threads and to Qt models."""

    runbook_id: int
    revision: int
    title: str
    body: str
    tags: tuple[str, ...]
    service: str | None
    author: str
    saved_at: datetime


@dataclass(frozen=True, slots=True)
class RunbookContent:
    """Title, body, tags and service as they are stored: what a revision snapshots and a save compares."""

    title: str
    body: str
    tags: tuple[str, ...]
    service: str | None

    @classmethod
    def normalised(
        cls, *, title: str, body: str, tags: Iterable[str] | str, service: str | None
    ) -> RunbookContent:
        """Tidied the way the importer tidies a file, so the same text hashes the same from either side, and
        a save that only adds trailing blank lines or re-cases a tag is not a new revision."""
        clean_title = " ".join(title.split())
        if not clean_title:
            raise InvalidRunbookError("a runbook needs a title")
        tag_input: Any = tags if isinstance(tags, str) else list(tags)
        clean_service = service.strip() if service else None
        return cls(
            title=clean_title,
            body=body.strip(),
            tags=parse_tags(tag_input),
            service=clean_service or None,
        )

    @classmethod
    def of(cls, runbook: Runbook | RunbookRevision) -> RunbookContent:
        return cls(runbook.title, runbook.body, tuple(runbook.tags or ()), runbook.service)


def allowed_transitions(status: RunbookStatus | str) -> frozenset[RunbookStatus]:
    return TRANSITIONS[RunbookStatus(status)]


def content_hash(content: RunbookContent, status: RunbookStatus) -> str:
    """The importer's hash (it is :class:`RunbookValues` that computes it), so both sides always agree."""
    values = RunbookValues(
        external_ref="",  # not part of the hash
        title=content.title,
        body=content.body,
        tags=content.tags,
        service=content.service,
        status=status,
    )
    return values.content_hash


def _summary(runbook: Runbook) -> dict[str, Any]:
    """What an audit row records of a runbook: enough to see what changed; the text is in the revision."""
    return {
        "title": runbook.title,
        "tags": list(runbook.tags or ()),
        "service": runbook.service,
        "status": runbook.status.value,
        "revision": runbook.current_revision,
        "content_hash": runbook.content_hash,
    }


def _get_runbook(session: TenantSession, runbook_id: int) -> Runbook:
    runbook = session.scalar(select(Runbook).where(Runbook.id == runbook_id))
    if runbook is None:
        raise RunbookNotFoundError(f"there is no runbook {runbook_id} in this tenant")
    return runbook


def get_runbook_row(session: TenantSession, runbook_id: int) -> RunbookRow:
    """The runbook as it is stored now (an editor opening it, a save reporting back)."""
    return runbook_row(_get_runbook(session, runbook_id))


def _flush_revision(session: TenantSession, runbook: Runbook, expected_revision: int) -> None:
    """Two saves of the same revision that raced past the check both write revision N+1; the unique
    constraint on (runbook, revision) stops the second, which is the same conflict as a stale revision; the
    runbook's own version check (a StaleDataError) is the same again."""
    runbook_id, title = runbook.id, runbook.title
    try:
        with runbook_write_guard(session, runbook_id, title):
            session.flush()
    except ConcurrentChangeError as exc:
        raise StaleRevisionError(runbook_id, expected_revision, expected_revision + 1, _changed(exc)) from exc
    except IntegrityError as exc:
        raise StaleRevisionError(runbook_id, expected_revision, expected_revision + 1) from exc


def _changed(exc: ConcurrentChangeError) -> str:
    """'changed by alice at …' out of the guard's message (“title” was changed by …; nothing was saved)."""
    text = str(exc)
    start = text.find("changed by")
    return text[start:].split(";")[0] if start >= 0 else "changed by another session"


def create_runbook(
    session: TenantSession,
    *,
    title: str,
    body: str,
    tags: Iterable[str] | str,
    service: str | None,
    actor: str,
    status: RunbookStatus = RunbookStatus.DRAFT,
    source: RunbookSource = RunbookSource.AUTHORED,
) -> int:
    """A new runbook with revision 1 and a ``runbook.create`` audit row; returns its id."""
    content = RunbookContent.normalised(title=title, body=body, tags=tags, service=service)
    runbook = Runbook(
        tenant_id=session.tenant_id,
        title=content.title,
        body=content.body,
        tags=list(content.tags),
        service=content.service,
        status=status,
        source=source,
        updated_by=editor(session, actor),
        content_hash=content_hash(content, status),
        current_revision=0,
    )
    session.add(runbook)
    add_revision(session, runbook, actor)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="runbook.create",
        entity_type=ENTITY,
        entity_id=runbook.id,
        before=None,
        after=_summary(runbook),
    )
    if status == RunbookStatus.APPROVED:
        request_rematch(session, [runbook.id], REASON_CREATED, actor)
    session.flush()
    return runbook.id


def save_runbook(
    session: TenantSession,
    runbook_id: int,
    *,
    title: str,
    body: str,
    tags: Iterable[str] | str,
    service: str | None,
    actor: str,
    expected_revision: int,
) -> int:
    """Save an edit made to revision ``expected_revision``; returns the runbook's revision afterwards.

    A save whose (normalised) content equals the stored one writes nothing and returns the current revision:
    pressing Save twice must not fill the history with empty revisions. The status is left as it is.
    """
    runbook = _get_runbook(session, runbook_id)
    if runbook.current_revision != expected_revision:
        raise StaleRevisionError(
            runbook_id,
            expected_revision,
            runbook.current_revision,
            changed_text(runbook.updated_by, runbook.updated_at),
        )
    content = RunbookContent.normalised(title=title, body=body, tags=tags, service=service)
    if content == RunbookContent.of(runbook):
        return runbook.current_revision
    before = _summary(runbook)
    editor_name = editor(session, actor)  # a query on PostgreSQL: asked before the runbook changes
    runbook.title = content.title
    runbook.body = content.body
    runbook.tags = list(content.tags)
    runbook.service = content.service
    runbook.content_hash = content_hash(content, runbook.status)
    runbook.updated_by = editor_name
    add_revision(session, runbook, actor)
    _flush_revision(session, runbook, expected_revision)
    record_audit(
        session,
        actor=actor,
        action="runbook.edit",
        entity_type=ENTITY,
        entity_id=runbook.id,
        before=before,
        after=_summary(runbook),
    )
    if runbook.status == RunbookStatus.APPROVED:  # what matching sees changed: old tickets may match anew
        request_rematch(session, [runbook.id], REASON_EDITED, actor)
    session.flush()
    return runbook.current_revision


def set_status(
    session: TenantSession,
    runbook_id: int,
    new_status: RunbookStatus | str,
    actor: str,
    *,
    expected_version: int | None = None,
) -> RunbookRow:
    """Move a runbook along the review workflow (:data:`TRANSITIONS`); returns the updated row.

    No revision: revisions snapshot the text, and the status is not text. The content hash does change,
    because the importer's hash includes the status. ``expected_version``: the runbook's ``version`` as the
    screen showed it; a change since (another analyst approved or edited it) raises
    :class:`~core.errors.ConcurrentChangeError` naming who and when, and nothing is written.
    """
    target = RunbookStatus(new_status)
    runbook = _get_runbook(session, runbook_id)
    if expected_version is not None and runbook.version != expected_version:
        raise ConcurrentChangeError(
            f"“{runbook.title}” was {changed_text(runbook.updated_by, runbook.updated_at)}; nothing was saved"
        )
    current = runbook.status
    if target == current:
        raise StatusTransitionError(f"“{runbook.title}” is already {_status_words(current)}")
    if target not in TRANSITIONS[current]:
        allowed = " or ".join(sorted(_status_words(s) for s in TRANSITIONS[current]))
        raise StatusTransitionError(
            f"“{runbook.title}” is {_status_words(current)}: it cannot become {_status_words(target)} "
            f"directly (it can become {allowed})"
        )
    before = _summary(runbook)
    editor_name = editor(session, actor)  # a query on PostgreSQL: asked before the runbook changes
    runbook.status = target
    runbook.content_hash = content_hash(RunbookContent.of(runbook), target)
    runbook.updated_by = editor_name
    with runbook_write_guard(session, runbook.id, runbook.title):
        session.flush()
    record_audit(
        session,
        actor=actor,
        action="runbook.status",
        entity_type=ENTITY,
        entity_id=runbook.id,
        before=before,
        after=_summary(runbook),
    )
    if RunbookStatus.APPROVED in (current, target):  # it enters or leaves matching: re-match old tickets
        reason = {RunbookStatus.APPROVED: REASON_APPROVED, RunbookStatus.RETIRED: REASON_RETIRED}
        request_rematch(session, [runbook.id], reason.get(target, REASON_WITHDRAWN), actor)
    session.flush()
    return runbook_row(runbook)


def _status_words(status: RunbookStatus) -> str:
    return status.value.replace("_", " ")


def list_revisions(session: TenantSession, runbook_id: int) -> list[RevisionRow]:
    """Oldest first. Raises if the runbook does not exist, so an empty list always means 'no revisions'."""
    _get_runbook(session, runbook_id)
    revisions = session.scalars(
        select(RunbookRevision)
        .where(RunbookRevision.runbook_id == runbook_id)
        .order_by(RunbookRevision.revision)
    )
    return [revision_row(revision) for revision in revisions]


def revision_row(revision: RunbookRevision) -> RevisionRow:
    return RevisionRow(
        runbook_id=revision.runbook_id,
        revision=revision.revision,
        title=revision.title,
        body=revision.body,
        tags=tuple(revision.tags or ()),
        service=revision.service,
        author=revision.author,
        saved_at=revision.created_at,
    )


def revision_lines(revision: RevisionRow | None) -> list[str]:
    """A revision as the lines a diff compares: the fields first (a retag is a change too), then the body."""
    if revision is None:
        return []
    return [
        f"Title: {revision.title}",
        f"Service: {revision.service or ''}",
        f"Tags: {', '.join(revision.tags)}",
        "",
        *revision.body.splitlines(),
    ]


def diff_revisions(old: RevisionRow | None, new: RevisionRow) -> str:
    """Unified diff from ``old`` (None: nothing, for revision 1) to ``new``; empty when they are equal.

    Pure, so the history dialog can diff rows it already loaded without another database round trip.
    """
    old_name = f"revision {old.revision}" if old is not None else "(nothing)"
    lines = difflib.unified_diff(
        revision_lines(old),
        revision_lines(new),
        fromfile=old_name,
        tofile=f"revision {new.revision}",
        lineterm="",
    )
    return "\n".join(lines)


def revision_diff(session: TenantSession, runbook_id: int, old_rev: int, new_rev: int) -> str:
    """Unified diff of title, service, tags and body between two revisions; ``old_rev`` 0 means nothing."""
    by_number = {row.revision: row for row in list_revisions(session, runbook_id)}
    for number in (old_rev, new_rev):
        if number != 0 and number not in by_number:
            raise RunbookNotFoundError(f"runbook {runbook_id} has no revision {number}")
    if new_rev == 0:
        raise RunbookNotFoundError("revision 0 is 'nothing'; it can only be the older side of a diff")
    return diff_revisions(by_number.get(old_rev), by_number[new_rev])
