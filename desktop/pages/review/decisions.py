"""The analyst's decisions on the review page: approve, reject, link another runbook, draft, undo.

Each decision is one transaction on a worker (:func:`desktop.background.review_jobs.decide`): the link
change and its audit row commit together or not at all. One decision runs at a time; a key pressed while
one is saving says so rather than queueing a second one behind a result the analyst has not seen. Every
decision that changed something goes on the undo stack with a few words on what it was about, so ``Ctrl+Z``
can name the step it would undo (:meth:`ReviewDecisions.describe_last`) before the page lets it happen.

The undo stack survives a restart: it is read back from the audit trail (:func:`core.workflow.history.
undo_history`, the reviewer's decisions not undone yet and still undoable) when the page loads its queue and
after every decision or undo. A decision is pushed at once as well, so Ctrl+Z right after it never waits for
that read; a read that started before the latest change is dropped when it lands.

Team mode (issue 17): each decision carries the ticket's links as the page showed them
(:class:`~core.workflow.review.LinkVersions`). When another analyst changed the ticket meanwhile, the core
refuses with :class:`~core.errors.ConcurrentChangeError` and writes nothing; that is not a failure of the
app, so it comes back as a value (:class:`Conflict`) and out through ``conflicted``, for the page to say
"changed by alice at …" and reload, instead of through the error path that notifies like a crash.

This object holds no widgets: the page tells it what was chosen and shows what it reports (``message``,
``decided``, ``undone``, ``draft_ready``, ``conflicted``; failures go to the page's error handler).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from PySide6.QtCore import QObject, Signal

from core.errors import ConcurrentChangeError
from core.store.models import OutcomeKind
from core.workflow.drafts import RunbookDraft
from core.workflow.history import UndoStep
from core.workflow.review import (
    DecisionRecord,
    LinkVersions,
    ReviewQueueRow,
    approve,
    bulk_approve,
    bulk_reject,
    link_other,
    record_draft,
    reject,
    undo,
)
from desktop.background.outcome_jobs import save_outcome
from desktop.background.review_jobs import build_draft, decide, load_undo_history
from desktop.background.tasks import ErrorCallback, Task
from desktop.context import AppContext

Seen = Mapping[int, LinkVersions]  # ticket id -> its links as the page showed them

# What a decision on one ticket is about: the runbook id, the match's confidence and the runbook's title.
Target = tuple[int, float | None, str | None]

ACTION_TEXT = {
    "review.approve": "Approved",
    "review.reject": "Rejected",
    "review.link_other": "Linked",
    "review.draft": "Linked the draft of",
    "review.undo": "Undid",
}


# The same actions as a verb for "Undo: <verb> <subject>?".
UNDO_VERB = {
    "review.approve": "approve",
    "review.reject": "reject",
    "review.link_other": "link",
    "review.draft": "link the draft for",
}


@dataclass(frozen=True, slots=True)
class Conflict:
    """A decision another analyst's change refused (nothing was written): what to tell, what to reload."""

    message: str
    ticket_ids: tuple[int, ...]


def decide_unless_changed(
    sessions: object, ticket_ids: tuple[int, ...], decision: Callable[..., DecisionRecord], *args: object
) -> DecisionRecord | Conflict:
    """On a worker: :func:`~desktop.background.review_jobs.decide`, with a refusal for a concurrent change
    returned as a :class:`Conflict` (the transaction rolled back before it got here)."""
    try:
        return decide(sessions, decision, *args)  # type: ignore[arg-type]
    except ConcurrentChangeError as exc:
        return Conflict(str(exc), ticket_ids)


def action_text(action: str) -> str:
    return ACTION_TEXT.get(action, action)


def tickets_text(count: int) -> str:
    return f"{count} ticket" if count == 1 else f"{count} tickets"


def subject_text(external_id: str, runbook_title: str | None) -> str:
    return f"{external_id} → “{runbook_title}”" if runbook_title else external_id


def _seen_of(rows: list[ReviewQueueRow]) -> dict[int, LinkVersions]:
    return {row.ticket_id: row.seen for row in rows if row.seen is not None}


def age_text(then: datetime, now: datetime) -> str:
    """Coarse on purpose: the analyst needs "just now" vs "an hour ago" to recognise the step, not seconds."""
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


class ReviewDecisions(QObject):
    decided = Signal(object)  # DecisionRecord; on the undo stack already if it changed anything
    undone = Signal(object, object)  # the DecisionRecord undone, the undo's own DecisionRecord
    draft_ready = Signal(object, int)  # RunbookDraft, ticket id
    message = Signal(str)  # for the page's status line
    outcome_recorded = Signal(object)  # OutcomeRecord: the analyst's "resolved it / partly / did not help"
    history_changed = Signal()  # the undo stack was read back from the store
    conflicted = Signal(str, object)  # "INC… was changed by alice at …", the ticket ids to reload

    def __init__(
        self,
        context: AppContext,
        error_handler: Callable[[str], ErrorCallback],
        parent: QObject | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(parent)
        self._context = context
        self._error_handler = error_handler
        self._clock = clock
        self._decision_task: Task | None = None
        self._draft_task: Task | None = None
        self.undo_stack: list[DecisionRecord] = []
        # What each undo_stack entry was about ("INC0010042 → “VPN …”"), index for index.
        self._undo_subjects: list[str] = []
        self._pending_subject = ""
        self._history_task: Task | None = None
        self._history_generation = 0  # bumped by every change: a read begun before it is stale

    def busy(self) -> bool:
        """True (and the analyst is told) while the last decision is still being saved."""
        if self._decision_task is not None and self._decision_task.is_active:
            self.message.emit("Still saving the last decision…")
            return True
        return False

    def tasks(self) -> tuple[Task | None, Task | None]:
        return self._decision_task, self._draft_task

    def stop(self) -> None:
        """The page is closing: a draft still being built is dropped (a decision being saved finishes)."""
        if self._draft_task is not None and self._draft_task.is_active:
            self._draft_task.cancel()

    def _run(
        self,
        label: str,
        subject: str,
        ticket_ids: tuple[int, ...],
        decision: Callable[..., DecisionRecord],
        *args: object,
        on_done: Callable[[DecisionRecord], None] | None = None,
        failed_what: str | None = None,
    ) -> None:
        self._pending_subject = subject  # one decision at a time (busy()), so one pending subject
        done = on_done or self._decision_done
        self._decision_task = self._context.runner.run(
            decide_unless_changed,
            self._context.sessions,
            ticket_ids,
            decision,
            *args,
            title=label,
            on_done=lambda result: self._landed(result, done),
            on_error=self._error_handler(failed_what or label.lower()),
        )

    def _landed(self, result: DecisionRecord | Conflict, done: Callable[[DecisionRecord], None]) -> None:
        if isinstance(result, Conflict):
            self.conflicted.emit(result.message, result.ticket_ids)
        else:
            done(result)

    def approve(self, rows: list[ReviewQueueRow], target: Target | None, seen: Seen | None = None) -> None:
        """Approve ``target`` for a single row, or each row's best match when several are selected.
        ``seen``: the tickets' links as the page showed them (None: the rows' own)."""
        if not rows or self.busy():
            return
        seen = seen if seen is not None else _seen_of(rows)
        actor = self._context.reviewer()
        ids = tuple(r.ticket_id for r in rows)
        if len(rows) > 1:
            label = f"Approving {len(rows)} tickets"
            self._run(label, tickets_text(len(rows)), ids, bulk_approve, list(ids), actor, seen)
            return
        row = rows[0]
        if target is None:
            self.message.emit(f"{row.external_id} has no match to approve: link (L) or draft (D).")
            return
        runbook_id, confidence, title = target
        subject = subject_text(row.external_id, title)
        self._run(
            f"Approving {row.external_id}",
            subject,
            ids,
            approve,
            row.ticket_id,
            runbook_id,
            confidence,
            actor,
            seen.get(row.ticket_id),
        )

    def reject(
        self, rows: list[ReviewQueueRow], target: Target | None, reason: str | None, seen: Seen | None = None
    ) -> None:
        """Reject ``target`` for a single row, or each row's best match when several are selected."""
        if not rows or self.busy():
            return
        seen = seen if seen is not None else _seen_of(rows)
        actor = self._context.reviewer()
        ids = tuple(r.ticket_id for r in rows)
        if len(rows) > 1 or target is None:
            label = f"Rejecting {len(rows)} tickets"
            self._run(label, tickets_text(len(rows)), ids, bulk_reject, list(ids), reason, actor, seen)
            return
        row = rows[0]
        subject = subject_text(row.external_id, target[2])
        self._run(
            f"Rejecting {row.external_id}",
            subject,
            ids,
            reject,
            row.ticket_id,
            target[0],
            reason,
            actor,
            seen.get(row.ticket_id),
        )

    def link(
        self,
        row: ReviewQueueRow,
        runbook_id: int,
        runbook_title: str | None = None,
        seen: LinkVersions | None = None,
    ) -> None:
        if self.busy():
            return
        self._run(
            f"Linking {row.external_id}",
            subject_text(row.external_id, runbook_title),
            (row.ticket_id,),
            link_other,
            row.ticket_id,
            runbook_id,
            self._context.reviewer(),
            seen if seen is not None else row.seen,
        )

    def record_draft(
        self,
        ticket_id: int,
        runbook_id: int,
        external_id: str | None = None,
        seen: LinkVersions | None = None,
    ) -> None:
        """Link a ticket to the runbook saved from its draft, as an undoable decision."""
        self._run(
            f"Linking ticket {ticket_id} to its draft",
            external_id or f"ticket {ticket_id}",
            (ticket_id,),
            record_draft,
            ticket_id,
            runbook_id,
            self._context.reviewer(),
            seen,
        )

    def record_outcome(
        self, row: ReviewQueueRow, runbook_id: int | None, runbook_title: str | None, outcome: OutcomeKind
    ) -> None:
        """The analyst's outcome for the ticket's linked runbook, saved (and audited) on a worker. Not on the
        undo stack: recording again replaces it, and the ticket stays in the queue."""
        if self.busy():
            return
        subject = subject_text(row.external_id, runbook_title)
        self._decision_task = self._context.runner.run(
            save_outcome,
            self._context.sessions,
            row.ticket_id,
            outcome,
            self._context.reviewer(),
            runbook_id,
            title=f"Recording the outcome of {subject}",
            on_done=self.outcome_recorded.emit,
            on_error=self._error_handler(f"record the outcome of {row.external_id}"),
        )

    def refresh_history(self) -> None:
        """Read the reviewer's undo stack back from the store (on a worker); see the module docstring."""
        self._history_generation += 1
        generation = self._history_generation
        if self._history_task is not None and self._history_task.is_active:
            self._history_task.cancel()
        self._history_task = self._context.runner.run(
            load_undo_history,
            self._context.sessions,
            self._context.reviewer(),
            title="Loading the undo history",
            on_done=lambda steps: self._history_loaded(generation, steps),
            on_error=self._error_handler("read the undo history"),
        )

    def _history_loaded(self, generation: int, steps: tuple[UndoStep, ...]) -> None:
        busy = self._decision_task is not None and self._decision_task.is_active
        if generation != self._history_generation or busy:
            return  # a decision or undo landed (or is landing) since this read began; a newer read follows
        undoable = [step for step in reversed(steps) if not step.changed_since]  # oldest first, as pushed
        self.undo_stack[:] = [step.record for step in undoable]  # in place: the page holds this list
        self._undo_subjects[:] = [step.subject for step in undoable]
        self.history_changed.emit()

    def describe_last(self) -> str | None:
        """The step ``undo_last`` would undo, as the analyst will recognise it; None with nothing to undo."""
        if not self.undo_stack:
            return None
        record = self.undo_stack[-1]
        verb = UNDO_VERB.get(record.action, action_text(record.action).lower())
        who = "you" if record.actor == self._context.reviewer() else record.actor
        return f"{verb} {self._undo_subjects[-1]} (by {who}, {age_text(record.decided_at, self._clock())})"

    def undo_last(self) -> None:
        if not self.undo_stack or self.busy():
            return
        record = self.undo_stack[-1]
        self._run(
            "Undoing the last decision",
            self._pending_subject,
            record.ticket_ids,
            undo,
            record,
            self._context.reviewer(),
            on_done=self._undo_done,
            failed_what="undo the last decision",
        )

    def draft(self, row: ReviewQueueRow) -> None:
        """Draft a runbook from the ticket; on a worker, since the model finds the closest runbooks."""
        if self._draft_task is not None and self._draft_task.is_active:
            return
        self.message.emit(f"Drafting a runbook from {row.external_id}…")
        self._draft_task = self._context.runner.run(
            build_draft,
            self._context,
            row.ticket_id,
            title=f"Drafting from {row.external_id}",
            on_done=self._draft_done,
            on_error=self._error_handler(f"draft from {row.external_id}"),
        )

    def _decision_done(self, record: DecisionRecord) -> None:
        if record.changes:
            self.undo_stack.append(record)
            self._undo_subjects.append(self._pending_subject)
            self.refresh_history()
        self.decided.emit(record)

    def _undo_done(self, record: DecisionRecord) -> None:
        undone = self.undo_stack.pop()
        self._undo_subjects.pop()
        self.refresh_history()
        self.undone.emit(undone, record)

    def forget(self, ticket_ids: tuple[int, ...]) -> None:
        """Another analyst's change refused an undo of these tickets: the step is no longer undoable, so
        it leaves the stack (a read of the history follows and agrees)."""
        keep = [
            (record, subject)
            for record, subject in zip(self.undo_stack, self._undo_subjects, strict=True)
            if not set(record.ticket_ids) & set(ticket_ids)
        ]
        self.undo_stack[:] = [record for record, _subject in keep]
        self._undo_subjects[:] = [subject for _record, subject in keep]
        self.refresh_history()

    def _draft_done(self, result: tuple[RunbookDraft, int]) -> None:
        draft, ticket_id = result
        self.message.emit(f"Draft “{draft.title}” opened in the editor; save it to link the ticket.")
        self.draft_ready.emit(draft, ticket_id)
