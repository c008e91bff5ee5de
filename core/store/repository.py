"""Tenant-scoped reads and writes the UI and CLI share.

Functions take a :class:`~core.store.tenancy.TenantSession` (already bound to one tenant) and return frozen
row
objects, never live ORM instances: rows cross threads and reach Qt models, ORM objects must not.
"""

from __future__ import annotations

import functools
import getpass
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy import inspect as orm_state
from sqlalchemy.orm import sessionmaker

from core.errors import OperationCancelledError, SearchTooLongError
from core.store.models import AuditEvent, Runbook, RunbookRevision, RunbookStatus, Ticket
from core.store.tenancy import TenantSession

# SQLite refuses a LIKE pattern over 50,000 bytes ("LIKE or GLOB pattern too complex"); a person types a few
# words, so a far smaller cap gives a clear message long before that.
MAX_SEARCH_CHARS = 1000

P = ParamSpec("P")
R = TypeVar("R")

SYSTEM_ACTOR = "runbook-desk"  # who the audit trail names for what the app decided on its own
LINK_ENTITY = "ticket_runbook_link"  # audit entity_type of a link between a ticket and a runbook
ERROR_TEXT_LIMIT = 500  # characters of an error message an audit row keeps


@dataclass(frozen=True, slots=True)
class TicketRow:
    id: int
    external_id: str
    source_system: str
    title: str
    description: str
    status: str | None
    severity: str | None
    assignee: str | None
    kind: str
    category: str | None
    configuration_item: str | None
    resolution_notes: str | None
    created_at: datetime | None
    updated_at: datetime | None
    resolved_at: datetime | None
    source_url: str | None


@dataclass(frozen=True, slots=True)
class RunbookRow:
    id: int
    title: str
    body: str
    tags: tuple[str, ...]
    service: str | None
    status: str
    source: str
    external_ref: str | None
    current_revision: int
    updated_at: datetime
    version: int = 1  # optimistic concurrency (issue 17): a status change may say which version it showed
    updated_by: str = ""


def ticket_row(ticket: Ticket) -> TicketRow:
    return TicketRow(
        id=ticket.id,
        external_id=ticket.external_id,
        source_system=ticket.source_system,
        title=ticket.title,
        description=ticket.description,
        status=ticket.status,
        severity=ticket.severity,
        assignee=ticket.assignee,
        kind=ticket.kind.value,
        category=ticket.category,
        configuration_item=ticket.configuration_item,
        resolution_notes=ticket.resolution_notes,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        resolved_at=ticket.resolved_at,
        source_url=ticket.source_url,
    )


def runbook_row(runbook: Runbook) -> RunbookRow:
    return RunbookRow(
        id=runbook.id,
        title=runbook.title,
        body=runbook.body,
        tags=tuple(runbook.tags),
        service=runbook.service,
        status=runbook.status.value,
        source=runbook.source.value,
        external_ref=runbook.external_ref,
        current_revision=runbook.current_revision,
        updated_at=runbook.updated_at,
        version=runbook.version,
        updated_by=runbook.updated_by,
    )


def _checked_search(search: str) -> str:
    if len(search) > MAX_SEARCH_CHARS:
        raise SearchTooLongError(
            f"the search text is {len(search):,} characters; the limit is {MAX_SEARCH_CHARS:,}"
        )
    return search


def list_tickets(
    session: TenantSession, *, search: str | None = None, limit: int | None = None, offset: int = 0
) -> list[TicketRow]:
    """Tickets, newest first; ``search`` is plain text (``%`` and ``_`` match only themselves), any case."""
    query = select(Ticket).order_by(Ticket.updated_at.desc().nulls_last(), Ticket.id.desc())
    if search:
        text = _checked_search(search)
        query = query.where(
            or_(
                Ticket.title.icontains(text, autoescape=True),
                Ticket.external_id.icontains(text, autoescape=True),
                Ticket.description.icontains(text, autoescape=True),
            )
        )
    query = query.offset(offset).limit(limit)
    return [ticket_row(t) for t in session.scalars(query)]


def count_tickets(session: TenantSession) -> int:
    return session.scalar(select(func.count()).select_from(Ticket)) or 0


def list_runbooks(
    session: TenantSession, *, status: RunbookStatus | None = None, search: str | None = None
) -> list[RunbookRow]:
    query = select(Runbook).order_by(Runbook.title)
    if status is not None:
        query = query.where(Runbook.status == status)
    if search:
        text = _checked_search(search)
        query = query.where(
            or_(Runbook.title.icontains(text, autoescape=True), Runbook.body.icontains(text, autoescape=True))
        )
    return [runbook_row(r) for r in session.scalars(query)]


def current_actor() -> str:
    """The OS user name: who the audit trail names unless settings say otherwise."""
    try:
        return getpass.getuser()
    except OSError:  # no login name (some containers): still audit, with an honest placeholder
        return "unknown-user"


def record_audit(
    session: TenantSession,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: int | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    attempt = _OPEN_ATTEMPT.get()
    closes_attempt = attempt is not None and attempt.closes(action, session.tenant_id)
    if attempt is not None and closes_attempt:
        after = {**(after or {}), "started_id": attempt.started_id}
    event = AuditEvent(
        tenant_id=session.tenant_id,
        tenant_slug=session.tenant_slug,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=before,
        after=after,
    )
    session.add(event)
    if attempt is not None and closes_attempt:
        attempt.closing = event
    return event


@dataclass(slots=True)
class _Attempt:
    action: str
    tenant_id: int
    started_id: int
    closing: AuditEvent | None = None

    def closes(self, action: str, tenant_id: int) -> bool:
        return action == self.action and tenant_id == self.tenant_id and self.closing is None

    @property
    def closed(self) -> bool:
        """A closing row was written and committed (a rolled-back one loses its identity)."""
        return self.closing is not None and orm_state(self.closing).has_identity


# The attempt running in this thread (or task): record_audit links its closing row to the "started" row.
_OPEN_ATTEMPT: ContextVar[_Attempt | None] = ContextVar("open_audited_attempt", default=None)


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, OperationCancelledError):
        return "cancelled"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return "failed"


def _detail(value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    # A file name that is not valid UTF-8 arrives with lone surrogates: kept visible, never an encoding error.
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def audited_attempt(
    action: str, *, entity_type: str, details: tuple[str, ...] = ()
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Audit every way out of long work that commits as it goes (an import), even one killed part-way.

    The decorated function takes ``sessions`` (a tenant's sessionmaker) and ``actor``. Before it runs,
    ``<action>.started`` is committed, naming the arguments listed in ``details``; a kill -9 leaves that
    row alone, which is what an auditor needs to see. The closing row is ``<action>``: the function's own
    (``record_audit`` with that action, e.g. the import summary), which gains ``started_id``; or, when the
    function wrote none (an exception, Ctrl-C), one written here with ``status`` "failed", "cancelled" or
    "interrupted" and the error.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(fn)
        missing = [name for name in ("sessions", "actor", *details) if name not in signature.parameters]
        if missing:
            raise TypeError(f"audited_attempt: {fn.__qualname__} has no parameter {', '.join(missing)}")

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            arguments = signature.bind(*args, **kwargs).arguments
            sessions: sessionmaker[TenantSession] = arguments["sessions"]
            actor = str(arguments.get("actor") or current_actor())
            with sessions.begin() as session:
                started = record_audit(
                    session,
                    actor=actor,
                    action=f"{action}.started",
                    entity_type=entity_type,
                    entity_id=None,
                    after={name: _detail(arguments.get(name)) for name in details} | {"status": "started"},
                )
                session.flush()
                attempt = _Attempt(action, session.tenant_id, started.id)
            token = _OPEN_ATTEMPT.set(attempt)
            ending: dict[str, Any] = {"status": "finished"}
            try:
                return fn(*args, **kwargs)
            except BaseException as exc:
                ending = {"status": _outcome(exc), "error": _error_text(exc)}
                raise
            finally:
                _OPEN_ATTEMPT.reset(token)
                if not attempt.closed:
                    with sessions.begin() as session:
                        record_audit(
                            session,
                            actor=actor,
                            action=action,
                            entity_type=entity_type,
                            entity_id=None,
                            after=ending | {"started_id": attempt.started_id},
                        )

        return run

    return decorate


def _error_text(exc: BaseException) -> str:
    message = str(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text[:ERROR_TEXT_LIMIT]


def add_revision(session: TenantSession, runbook: Runbook, author: str) -> RunbookRevision:
    """Snapshot the runbook's current text as its next revision (call after changing it)."""
    runbook.current_revision = (runbook.current_revision or 0) + 1
    revision = RunbookRevision(
        tenant_id=session.tenant_id,
        revision=runbook.current_revision,
        title=runbook.title,
        body=runbook.body,
        tags=list(runbook.tags or []),
        service=runbook.service,
        author=author,
    )
    runbook.revisions.append(revision)
    return revision
