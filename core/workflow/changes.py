"""Has someone else changed the review queue? A change token per tenant, polled (team mode, issue 17).

Polling, not LISTEN/NOTIFY, on purpose: the same two queries work on SQLite (a desktop and a headless
scheduler on one file) and on PostgreSQL; they survive a connection pooler (PgBouncer in transaction mode
drops a session's LISTEN) and a reconnect without any re-subscription; and they need no connection held open
per desktop. The review page polls every :data:`POLL_INTERVAL_S` seconds; a queue five seconds late is fine.

The token is two numbers:

* the newest audit ``seq`` of the tenant (the hash chain's counter, :mod:`core.store.audit_chain`): every
  decision (``review.*``), undo and automatic link or unlink (``analysis.*``) appends an audit row in the
  same transaction as the change, so a decision cannot land without moving it. Read from the unique
  ``(tenant_id, seq)`` index: O(log n) whatever the trail's size and however busy other tenants are, and
  gap-free in commit order (the chain lock is held from the insert to the commit);
* the newest ``analyses`` id of the tenant: a sync that analysed new tickets changes the queue without
  necessarily auditing anything (a suggestion is not a decision). There is no (tenant, id) index, so a poll
  asks only for ids *above* the last token (``WHERE id > :last``): a primary-key range scan over the rows
  written since. Its cost grows with other tenants' analyses newer than this tenant's newest (measured: 33 ms
  with 100k of them on PostgreSQL; under 1 ms with one tenant). Two analysis batches committing out of id
  order could hide the later-committed one until the next change moves the token, which reloads the whole
  queue anyway.

When the token moved, :func:`changes_since` reads the audit rows after the old one (a handful) to tell the
analyst who decided ("Queue updated: 2 decisions by alice") and to skip a reload when every change was the
analyst's own (the page already shows those). ``max(ticket_runbook_links.updated_at)`` was considered and
left out: it has no index, so it scans every link of the tenant on each poll, and every link change it
would catch writes an audit row anyway.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select

from core.store.models import Analysis, AuditEvent
from core.store.tenancy import TenantSession

POLL_INTERVAL_S = 5.0
DECISION_ACTIONS = frozenset(
    {"review.approve", "review.reject", "review.link_other", "review.draft", "review.undo"}
)
_QUEUE_ACTION_PREFIXES = ("review.", "analysis.")
_MAX_ROWS_READ = 2000  # after a long pause (a laptop asleep) the summary counts at most this many rows


@dataclass(frozen=True, slots=True)
class ChangeToken:
    """Where the tenant's store stood: equal tokens mean nothing the queue shows has changed."""

    last_audit_seq: int = 0
    last_analysis_id: int = 0


@dataclass(frozen=True, slots=True)
class QueueChanges:
    """What changed since a token, as the review page words it."""

    token: ChangeToken
    decisions_by: dict[str, int] = field(default_factory=dict)  # others' decisions, by who made them
    queue_changed: bool = False  # the queue should reload: others decided, or tickets were (re)analysed

    def summary(self) -> str:
        """'Queue updated: 2 decisions by alice, 1 decision by bob', or 'Queue updated: new analyses'."""
        if not self.decisions_by:
            return "Queue updated: new analyses" if self.queue_changed else ""
        parts = [
            f"{count} decision{'s' if count != 1 else ''} by {who}"
            for who, count in sorted(self.decisions_by.items(), key=lambda item: (-item[1], item[0]))
        ]
        return "Queue updated: " + ", ".join(parts)


def change_token(session: TenantSession, since: ChangeToken | None = None) -> ChangeToken:
    """Where the store stands now (the session scopes both ids to its tenant); with ``since``, only rows
    above it are looked at (see the module docstring)."""
    analysis_query = select(func.max(Analysis.id))
    if since is not None:
        analysis_query = analysis_query.where(Analysis.id > since.last_analysis_id)
    floor = since or ChangeToken()
    last_audit = session.scalar(select(func.max(AuditEvent.seq)))
    last_analysis = session.scalar(analysis_query)
    return ChangeToken(
        int(last_audit) if last_audit is not None else floor.last_audit_seq,
        int(last_analysis) if last_analysis is not None else floor.last_analysis_id,
    )


def changes_since(
    session: TenantSession, since: ChangeToken, *, our_login: str, our_actor: str
) -> QueueChanges:
    """What others changed after ``since``: decisions by who, and whether the queue needs a reload.

    Ours: audit rows whose database login is ``our_login`` (team mode: the server wrote it) or, where the
    row has none (SQLite), whose actor is ``our_actor``. Only others' changes reload the queue.
    """
    token = change_token(session, since)
    if token == since:
        return QueueChanges(token)
    rows = session.execute(
        select(AuditEvent.db_login, AuditEvent.actor, AuditEvent.action)
        .where(AuditEvent.seq > since.last_audit_seq, AuditEvent.seq <= token.last_audit_seq)
        .order_by(AuditEvent.seq)
        .limit(_MAX_ROWS_READ)
    ).all()
    decisions: Counter[str] = Counter()
    others_touched_queue = False
    for db_login, actor, action in rows:
        ours = db_login == our_login if db_login else actor == our_actor
        if ours or not action.startswith(_QUEUE_ACTION_PREFIXES):
            continue
        others_touched_queue = True
        if action in DECISION_ACTIONS:
            decisions[db_login or actor] += 1
    analysed = token.last_analysis_id != since.last_analysis_id
    return QueueChanges(token, dict(decisions), others_touched_queue or analysed)
