"""Execution tracking: the analyst's outcome, the outcomes inferred from the source's history (through the
real ticket upsert, a real file re-import and a real sync against the fake ServiceNow), which one counts, the
per-runbook figures and the revision flag, and the scorecard's MTTR.

Times: tickets are opened at ``T0`` (source times); each link is attached at ``LINKED_AT`` unless a test says
otherwise, so "resolved after the link" is decided by the tickets' times alone.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from connectors.configs import create_config
from connectors.sync import run_sync
from connectors.testing.standard_suite import SleepRecorder
from core.analytics.metrics import LINKED, UNLINKED, MetricRange, mttr
from core.analytics.outcome_stats import runbook_outcome_stats, runbooks_needing_revision
from core.importing import import_tickets
from core.settings import OutcomeSettings, load_settings, save_settings
from core.store.models import (
    AuditEvent,
    LinkDecision,
    OutcomeKind,
    OutcomeSource,
    Runbook,
    RunbookOutcome,
    RunbookStatus,
    Ticket,
    TicketKind,
    TicketRunbookLink,
)
from core.store.tenancy import TenantSession
from core.store.tickets import TicketChanges, TicketValues, upsert_tickets
from core.workflow.outcome_inference import InferenceReport, infer_from_changes, infer_outcomes
from core.workflow.outcomes import OutcomeError, effective_outcomes, record_outcome
from core.workflow.runbooks import create_runbook, save_runbook
from tests.connectors.fake_servicenow import FakeServiceNow

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
LINKED_AT = T0 + timedelta(minutes=30)
ACTOR = "ana.analyst"


# --- helpers ----------------------------------------------------------------------------------------------


def ticket(
    external_id: str,
    *,
    status: str = "In Progress",
    title: str = "Outlook cannot send mail, error 0x800CCC0E",
    created_at: datetime = T0,
    resolved_at: datetime | None = None,
    category: str | None = "Email",
    configuration_item: str | None = "exchange-01",
    notes: str | None = None,
) -> TicketValues:
    return TicketValues(
        external_id=external_id,
        source_system="servicenow",
        title=title,
        description=f"{title}. Reported by a user.",
        status=status,
        severity="3",
        assignee=None,
        kind=TicketKind.INCIDENT,
        category=category,
        configuration_item=configuration_item,
        resolution_notes=notes,
        resolved_at=resolved_at,
        created_at=created_at,
        updated_at=resolved_at or created_at,
        source_url=None,
        raw_payload={},
    )


def resolved(values: TicketValues, after: timedelta, status: str = "Resolved") -> TicketValues:
    return replace(
        values, status=status, resolved_at=values.created_at + after if values.created_at else None
    )


def store(
    sessions: sessionmaker[TenantSession], *batch: TicketValues
) -> tuple[TicketChanges, InferenceReport]:
    """One batch as a sync page or an import batch stores it: the upsert, then inference, one transaction."""
    changes = TicketChanges()
    with sessions.begin() as session:
        upsert_tickets(session, list(batch), instance="acme.service-now.com", changes=changes)
        report = infer_from_changes(session, changes)
    return changes, report


def ticket_id(sessions: sessionmaker[TenantSession], external_id: str) -> int:
    with sessions() as session:
        found = session.scalar(select(Ticket.id).where(Ticket.external_id == external_id))
    assert found is not None
    return found


def new_runbook(sessions: sessionmaker[TenantSession], title: str = "Outlook send errors") -> int:
    with sessions.begin() as session:
        return create_runbook(
            session,
            title=title,
            body="## Steps\n1. Repair the profile.",
            tags="email",
            service="Email",
            actor=ACTOR,
            status=RunbookStatus.APPROVED,
        )


def link(
    sessions: sessionmaker[TenantSession],
    external_id: str,
    runbook_id: int,
    *,
    at: datetime = LINKED_AT,
    decision: LinkDecision = LinkDecision.LINKED,
) -> int:
    """An automatic link attached at ``at`` (its row's creation time: when the runbook reached the ticket)."""
    tid = ticket_id(sessions, external_id)
    with sessions.begin() as session:
        row = TicketRunbookLink(
            tenant_id=session.tenant_id,
            ticket_id=tid,
            runbook_id=runbook_id,
            confidence_score=0.8,
            linked_automatically=True,
            linked_at=at,
            decision=decision,
        )
        session.add(row)
        session.flush()
        row.created_at = at
    return tid


def outcome_rows(
    sessions: sessionmaker[TenantSession],
) -> list[tuple[str, str, str, float | None, int | None]]:
    """(ticket, source, outcome, time to resolve, evidence ticket) of every stored outcome row."""
    with sessions() as session:
        query = (
            select(
                Ticket.external_id,
                RunbookOutcome.source,
                RunbookOutcome.outcome,
                RunbookOutcome.time_to_resolve_s,
                RunbookOutcome.evidence_ticket_id,
            )
            .join(Ticket, Ticket.id == RunbookOutcome.ticket_id)
            .order_by(Ticket.external_id, RunbookOutcome.source)
        )
        return [
            (n, OutcomeSource(s).value, OutcomeKind(o).value, t, e)
            for n, s, o, t, e in session.execute(query)
        ]


def audit_actions(sessions: sessionmaker[TenantSession], prefix: str = "outcome.") -> list[str]:
    with sessions() as session:
        query = select(AuditEvent.action).where(AuditEvent.action.like(f"{prefix}%")).order_by(AuditEvent.id)
        return list(session.scalars(query))


# --- source resolved -------------------------------------------------------------------------------------


def test_a_ticket_resolved_after_the_link_is_a_success_with_its_time_to_resolve(
    sessions: sessionmaker[TenantSession],
) -> None:
    runbook = new_runbook(sessions)
    first = ticket("INC1")
    store(sessions, first)
    link(sessions, "INC1", runbook)

    _, report = store(sessions, resolved(first, timedelta(hours=3)))

    assert report.resolved == 1
    assert outcome_rows(sessions) == [("INC1", "source_resolved", "resolved", 3 * 3600.0, None)]
    assert audit_actions(sessions) == ["outcome.inferred"]
    with sessions() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "outcome.inferred")).one()
        assert event.actor == "runbook-desk"  # the machine decided
        assert event.before is None
        assert event.after is not None
        assert event.after["outcome"] == "resolved"
        assert event.after["runbook_id"] == runbook


def test_a_resolution_before_the_link_or_a_cancel_credits_no_runbook(
    sessions: sessionmaker[TenantSession],
) -> None:
    """History imported already closed and analysed afterwards: the runbook never had a chance."""
    runbook = new_runbook(sessions)
    store(sessions, ticket("INC1"), ticket("INC2"))
    link(sessions, "INC1", runbook, at=T0 + timedelta(days=30))  # attached long after it was closed
    link(sessions, "INC2", runbook)

    _, report = store(
        sessions,
        resolved(ticket("INC1"), timedelta(hours=2)),
        resolved(ticket("INC2"), timedelta(hours=2), status="Cancelled"),
    )

    assert report.written == 0
    assert outcome_rows(sessions) == []


def test_a_resync_updates_the_inferred_row_and_never_duplicates_it(
    sessions: sessionmaker[TenantSession],
) -> None:
    runbook = new_runbook(sessions)
    first = ticket("INC1")
    store(sessions, first)
    tid = link(sessions, "INC1", runbook)
    closed = resolved(first, timedelta(hours=3))
    store(sessions, closed)

    # The same record again (nothing changed: the upsert reports no id), then inference forced on it anyway.
    changes, report = store(sessions, closed)
    assert changes.ticket_ids == []
    with sessions.begin() as session:
        assert infer_outcomes(session, [tid]).written == 0
    # A change that keeps the facts (a note added) writes nothing either.
    _, report = store(sessions, replace(closed, resolution_notes="Profile repaired."))
    assert report.written == 0
    assert audit_actions(sessions) == ["outcome.inferred"]

    # A new resolution time (re-resolved later) updates the one row.
    _, report = store(sessions, resolved(first, timedelta(hours=5), status="Closed"))
    assert report.resolved == 1
    assert outcome_rows(sessions) == [("INC1", "source_resolved", "resolved", 5 * 3600.0, None)]
    assert audit_actions(sessions) == ["outcome.inferred", "outcome.inferred"]
    with sessions() as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
        assert last.before is not None
        assert last.before["time_to_resolve_s"] == 3 * 3600.0


# --- reopened --------------------------------------------------------------------------------------------


def test_a_reopen_seen_by_the_upsert_is_a_failure(sessions: sessionmaker[TenantSession]) -> None:
    """The resolution was stored before any inference ran (an older version, or inference off): only the
    upsert, which sees the stored status before overwriting it, can tell that the ticket was reopened."""
    runbook = new_runbook(sessions)
    first = ticket("INC1")
    store(sessions, first)
    tid = link(sessions, "INC1", runbook)
    with sessions.begin() as session:  # stored resolved, no inference
        upsert_tickets(session, [resolved(first, timedelta(hours=3))], instance="acme.service-now.com")
    assert outcome_rows(sessions) == []

    changes, report = store(
        sessions, replace(first, status="In Progress", resolution_notes="User says it is back.")
    )

    assert tid in changes.reopened
    assert changes.reopened[tid].previous_status == "Resolved"
    assert report.reopened == 1
    assert outcome_rows(sessions) == [("INC1", "source_reopened", "failed", None, None)]
    with sessions() as session:
        assert effective_outcomes(session) == {(tid, runbook): OutcomeKind.FAILED}


def test_resolved_then_reopened_then_resolved_again_stays_a_failure(
    sessions: sessionmaker[TenantSession],
) -> None:
    runbook = new_runbook(sessions)
    first = ticket("INC1")
    store(sessions, first)
    tid = link(sessions, "INC1", runbook)
    store(sessions, resolved(first, timedelta(hours=3)))
    with sessions() as session:
        assert effective_outcomes(session) == {(tid, runbook): OutcomeKind.RESOLVED}

    _, reopened = store(sessions, replace(first, status="In Progress", resolved_at=None))
    _, again = store(sessions, replace(first, status="On Hold"))  # still open: no second reopen row
    store(sessions, resolved(first, timedelta(hours=30)))

    assert (reopened.reopened, again.written) == (1, 0)
    assert outcome_rows(sessions) == [
        ("INC1", "source_reopened", "failed", None, None),
        ("INC1", "source_resolved", "resolved", 30 * 3600.0, None),
    ]
    with sessions() as session:
        assert effective_outcomes(session) == {(tid, runbook): OutcomeKind.FAILED}


# --- recurrence ------------------------------------------------------------------------------------------


def test_a_similar_ticket_on_the_same_item_soon_after_is_a_recurrence(
    sessions: sessionmaker[TenantSession],
) -> None:
    runbook = new_runbook(sessions)
    first = ticket("INC1")
    store(sessions, first)
    first_id = link(sessions, "INC1", runbook)
    store(sessions, resolved(first, timedelta(hours=2)))
    fixed_at = T0 + timedelta(hours=2)

    _, report = store(
        sessions,
        # The same item and problem, 3 days after the fix: the fix did not hold.
        ticket(
            "INC2", created_at=fixed_at + timedelta(days=3), title="Outlook again cannot send mail 0x800CCC0E"
        ),
        # Another item, another category, too late, or an unrelated problem on the same item: not evidence.
        ticket("INC3", created_at=fixed_at + timedelta(days=1), configuration_item="exchange-02"),
        ticket("INC4", created_at=fixed_at + timedelta(days=1), category="Hardware"),
        ticket("INC5", created_at=fixed_at + timedelta(days=8)),
        ticket("INC6", created_at=fixed_at + timedelta(days=1), title="Mailbox quota increase request"),
        # Opened before the first one was resolved: a parallel duplicate, not a recurrence.
        ticket("INC7", created_at=T0 + timedelta(hours=1)),
    )

    assert report.recurrences == 1
    evidence = ticket_id(sessions, "INC2")
    assert outcome_rows(sessions) == [
        ("INC1", "recurrence", "failed", None, evidence),
        ("INC1", "source_resolved", "resolved", 2 * 3600.0, None),
    ]
    with sessions() as session:
        assert effective_outcomes(session, [first_id]) == {(first_id, runbook): OutcomeKind.FAILED}
        row = session.scalars(
            select(RunbookOutcome).where(RunbookOutcome.source == OutcomeSource.RECURRENCE)
        ).one()
        assert row.note is not None and "INC2" in row.note and "exchange-01" in row.note

    # A later, similar ticket on a re-sync keeps the one row and its first evidence.
    _, again = store(sessions, ticket("INC8", created_at=fixed_at + timedelta(days=4)))
    assert again.written == 0
    assert [r for r in outcome_rows(sessions) if r[1] == "recurrence"] == [
        ("INC1", "recurrence", "failed", None, evidence)
    ]


def test_a_recurrence_is_found_whichever_ticket_the_source_delivers_first(
    sessions: sessionmaker[TenantSession],
) -> None:
    """The new ticket is stored before the first one's resolution arrives (another page, another sync)."""
    runbook = new_runbook(sessions)
    first = ticket("INC1", category=None)  # no category on one side: the title decides
    store(sessions, first)
    link(sessions, "INC1", runbook)
    store(sessions, ticket("INC2", created_at=T0 + timedelta(days=2), configuration_item="EXCHANGE-01 "))

    _, report = store(sessions, resolved(first, timedelta(hours=2)))

    assert (report.resolved, report.recurrences) == (1, 1)
    assert ("INC1", "recurrence", "failed", None, ticket_id(sessions, "INC2")) in outcome_rows(sessions)


def test_the_recurrence_window_is_the_tenants_setting(sessions: sessionmaker[TenantSession]) -> None:
    with sessions.begin() as session:
        save_settings(session, OutcomeSettings(recurrence_days=2), actor=ACTOR)
    runbook = new_runbook(sessions)
    first = ticket("INC1")
    store(sessions, first)
    link(sessions, "INC1", runbook)
    store(sessions, resolved(first, timedelta(hours=2)))

    _, report = store(sessions, ticket("INC2", created_at=T0 + timedelta(days=3)))

    assert report.recurrences == 0


# --- the analyst's outcome -------------------------------------------------------------------------------


def test_the_analysts_outcome_wins_over_the_inferred_one(sessions: sessionmaker[TenantSession]) -> None:
    runbook = new_runbook(sessions)
    store(sessions, ticket("INC1"), ticket("INC2"))
    first = link(sessions, "INC1", runbook)
    second = link(sessions, "INC2", runbook)
    store(
        sessions, resolved(ticket("INC1"), timedelta(hours=1)), resolved(ticket("INC2"), timedelta(hours=1))
    )
    store(sessions, ticket("INC2"))  # INC2 reopened: an inferred failure

    with sessions.begin() as session:
        record_outcome(session, first, OutcomeKind.FAILED, ACTOR, note="the steps did not apply")
        record_outcome(session, second, OutcomeKind.PARTLY, ACTOR)
        record_outcome(session, second, OutcomeKind.RESOLVED, ACTOR)  # replaces the analyst's earlier word

    with sessions() as session:
        assert effective_outcomes(session) == {
            (first, runbook): OutcomeKind.FAILED,
            (second, runbook): OutcomeKind.RESOLVED,
        }
        assert (
            len(session.scalars(select(RunbookOutcome).where(RunbookOutcome.source == "analyst")).all()) == 2
        )
    assert audit_actions(sessions, "outcome.record") == ["outcome.record"] * 3


def test_an_outcome_needs_a_linked_runbook_and_a_known_one(sessions: sessionmaker[TenantSession]) -> None:
    runbook = new_runbook(sessions)
    store(sessions, ticket("INC1"))
    tid = ticket_id(sessions, "INC1")
    with sessions.begin() as session, pytest.raises(OutcomeError, match="no linked runbook"):
        record_outcome(session, tid, OutcomeKind.RESOLVED, ACTOR)
    with sessions.begin() as session, pytest.raises(OutcomeError, match="no runbook with id"):
        record_outcome(session, tid, OutcomeKind.RESOLVED, ACTOR, runbook_id=runbook + 99)
    with sessions.begin() as session, pytest.raises(OutcomeError, match="no ticket"):
        record_outcome(session, tid + 99, OutcomeKind.RESOLVED, ACTOR, runbook_id=runbook)
    assert outcome_rows(sessions) == []


# --- per-runbook figures and the revision flag -----------------------------------------------------------


def analyst_outcomes(
    sessions: sessionmaker[TenantSession], runbook: int, kinds: Sequence[OutcomeKind], prefix: str
) -> list[int]:
    ids = []
    for number, kind in enumerate(kinds):
        external_id = f"{prefix}{number}"
        store(sessions, ticket(external_id, configuration_item=None))
        tid = link(sessions, external_id, runbook)
        with sessions.begin() as session:
            record_outcome(session, tid, kind, ACTOR)
        ids.append(tid)
    return ids


def test_success_rate_last_failures_and_the_revision_flag(sessions: sessionmaker[TenantSession]) -> None:
    weak = new_runbook(sessions, "Weak runbook")
    thin = new_runbook(sessions, "Too few outcomes")
    good = new_runbook(sessions, "Good runbook")
    resolved_it, partly, failed = OutcomeKind.RESOLVED, OutcomeKind.PARTLY, OutcomeKind.FAILED
    analyst_outcomes(sessions, weak, [resolved_it, partly, failed, failed, failed], "W")  # 1.5 / 5 = 0.3
    analyst_outcomes(sessions, thin, [failed] * 4, "T")
    analyst_outcomes(sessions, good, [resolved_it, resolved_it, resolved_it, partly, failed], "G")  # 0.7

    with sessions() as session:
        stats = runbook_outcome_stats(session)
        flagged = runbooks_needing_revision(session)
    assert stats[weak].success_rate == pytest.approx(0.3)
    assert (stats[weak].resolved, stats[weak].partly, stats[weak].failed) == (1, 1, 3)
    assert stats[weak].needs_revision
    assert [f.external_id for f in stats[weak].last_failures] == ["W4", "W3", "W2"]  # newest first
    assert stats[thin].success_rate == 0.0 and not stats[thin].needs_revision  # 4 < 5 outcomes
    assert stats[good].success_rate == pytest.approx(0.7) and not stats[good].needs_revision
    assert [item.runbook_id for item in flagged] == [weak]

    # The tenant's own threshold moves the line.
    with sessions.begin() as session:
        save_settings(
            session, OutcomeSettings(revision_success_rate=0.8, revision_min_outcomes=4), actor=ACTOR
        )
    with sessions() as session:
        assert [item.runbook_id for item in runbooks_needing_revision(session)] == [thin, weak, good]


def test_a_revised_runbook_starts_afresh_and_a_retired_one_is_not_flagged(
    sessions: sessionmaker[TenantSession],
) -> None:
    weak = new_runbook(sessions, "Weak runbook")
    analyst_outcomes(sessions, weak, [OutcomeKind.FAILED] * 5, "W")
    with sessions.begin() as session:
        save_runbook(
            session,
            weak,
            title="Weak runbook",
            body="## Steps\n1. Repair the profile.\n2. Rebuild the OST.",
            tags="email",
            service="Email",
            actor=ACTOR,
            expected_revision=1,
        )
    with sessions() as session:
        stats = runbook_outcome_stats(session)[weak]
    assert (stats.revision, stats.outcomes, stats.lifetime_outcomes) == (2, 0, 5)
    assert stats.lifetime_success_rate == 0.0
    assert not stats.needs_revision
    assert len(stats.last_failures) == 3  # the history is still shown

    retired = new_runbook(sessions, "Retired runbook")
    analyst_outcomes(sessions, retired, [OutcomeKind.FAILED] * 5, "R")
    with sessions.begin() as session:
        session.execute(update_status(retired, RunbookStatus.RETIRED))
    with sessions() as session:
        assert runbooks_needing_revision(session) == []


def update_status(runbook_id: int, status: RunbookStatus) -> Any:
    return update(Runbook).where(Runbook.id == runbook_id).values(status=status)


def test_an_inferred_outcome_counts_only_while_the_runbook_is_linked(
    sessions: sessionmaker[TenantSession],
) -> None:
    runbook = new_runbook(sessions)
    store(sessions, ticket("INC1"))
    tid = link(sessions, "INC1", runbook)
    store(sessions, resolved(ticket("INC1"), timedelta(hours=1)))
    with sessions() as session:
        assert runbook_outcome_stats(session)[runbook].outcomes == 1
    with sessions.begin() as session:  # an analyst rejected the automatic link afterwards
        session.execute(
            update(TicketRunbookLink)
            .where(TicketRunbookLink.ticket_id == tid)
            .values(decision=LinkDecision.REJECTED)
        )
    with sessions() as session:
        assert runbook_outcome_stats(session) == {}


def test_mttr_with_the_runbook_against_the_same_categories_without_one(
    sessions: sessionmaker[TenantSession],
) -> None:
    """With: INC1 (Email, 2 h) and INC2 (Network, 4 h) -> 3 h; INC3 failed: left out. Without, per category:
    Email B1 10 h, B2 20 h -> 15 h; Network B3 6 h -> 6 h; Hardware B4 (not a category of the runbook's
    tickets) left out. Weighted by the with-mix (1 Email, 1 Network): (15 + 6) / 2 = 10.5 h, over 3 tickets.
    B5 was resolved with a runbook linked before: not "without"."""
    runbook = new_runbook(sessions)
    other = new_runbook(sessions, "Another runbook")
    with_tickets = [
        ticket("INC1", configuration_item=None),
        ticket("INC2", category="Network", configuration_item=None),
        ticket("INC3", configuration_item=None),
    ]
    store(sessions, *with_tickets)
    for values in with_tickets:
        link(sessions, values.external_id, runbook)
    store(
        sessions,
        resolved(with_tickets[0], timedelta(hours=2)),
        resolved(with_tickets[1], timedelta(hours=4)),
        resolved(with_tickets[2], timedelta(hours=1)),
    )
    with sessions.begin() as session:
        record_outcome(session, ticket_id(sessions, "INC3"), OutcomeKind.FAILED, ACTOR)
    store(
        sessions,
        resolved(ticket("B1", configuration_item=None), timedelta(hours=10)),
        resolved(ticket("B2", category="email ", configuration_item=None), timedelta(hours=20)),
        resolved(ticket("B3", category="Network", configuration_item=None), timedelta(hours=6)),
        resolved(ticket("B4", category="Hardware", configuration_item=None), timedelta(hours=50)),
        ticket("B5", configuration_item=None),
    )
    link(sessions, "B5", other)
    store(sessions, resolved(ticket("B5", configuration_item=None), timedelta(hours=40)))

    with sessions() as session:
        stats = runbook_outcome_stats(session)[runbook]
    assert stats.mttr_with_hours == pytest.approx(3.0)
    assert stats.with_count == 2
    assert stats.mttr_without_hours == pytest.approx(10.5)
    assert stats.without_count == 3
    assert stats.mttr_change == pytest.approx((3.0 - 10.5) / 10.5)


def test_the_scorecard_mttr_counts_a_ticket_whose_runbook_failed_as_without(
    sessions: sessionmaker[TenantSession],
) -> None:
    runbook = new_runbook(sessions)
    store(sessions, ticket("INC1"), ticket("INC2", configuration_item="other"))
    link(sessions, "INC1", runbook)
    link(sessions, "INC2", runbook)
    store(
        sessions,
        resolved(ticket("INC1"), timedelta(hours=2)),
        resolved(ticket("INC2", configuration_item="other"), timedelta(hours=8)),
    )
    metric_range = MetricRange(T0 - timedelta(days=1), T0 + timedelta(days=1))

    def hours() -> dict[str, tuple[float | None, int | None]]:
        with sessions() as session:
            series = mttr(session, metric_range)
        # julianday() arithmetic is off by microseconds: hours to 4 decimals are exact enough here.
        return {s.group: (s.overall and round(s.overall, 4), s.total_denominator) for s in series}

    assert hours() == {LINKED: (5.0, 2), UNLINKED: (None, 0)}
    store(sessions, ticket("INC2", configuration_item="other"))  # reopened: the runbook did not hold
    store(sessions, resolved(ticket("INC2", configuration_item="other"), timedelta(hours=8)))
    assert hours() == {LINKED: (2.0, 1), UNLINKED: (8.0, 1)}
    with sessions.begin() as session:  # the analyst says it did help after all: the analyst's word counts
        record_outcome(session, ticket_id(sessions, "INC2"), OutcomeKind.PARTLY, ACTOR)
    assert hours() == {LINKED: (5.0, 2), UNLINKED: (None, 0)}


# --- the real write paths: a re-imported file and a sync ------------------------------------------------


def write_export(path: Path, state: str, resolved_at: str = "") -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["number", "short_description", "state", "sys_created_on", "resolved_at", "cmdb_ci"])
        writer.writerow(
            ["INC0000001", "Outlook cannot send mail", state, "2026-06-01 09:00:00", resolved_at, "ex"]
        )
    return path


def test_a_reimported_export_infers_the_outcome(
    sessions: sessionmaker[TenantSession], tmp_path: Path
) -> None:
    runbook = new_runbook(sessions)
    import_tickets(sessions, write_export(tmp_path / "open.csv", "In Progress"), actor=ACTOR)
    link(sessions, "INC0000001", runbook)

    import_tickets(
        sessions, write_export(tmp_path / "closed.csv", "Resolved", "2026-06-01 13:00:00"), actor=ACTOR
    )

    assert outcome_rows(sessions) == [("INC0000001", "source_resolved", "resolved", 4 * 3600.0, None)]


def test_a_sync_infers_resolution_and_reopen_with_each_page(sessions: sessionmaker[TenantSession]) -> None:
    fake = FakeServiceNow()
    opened = fake.new_ticket(1, T0 + timedelta(hours=1))
    fake.add_ticket(opened)
    settings = fake.settings()
    config = create_config(
        sessions,
        connector_type="servicenow",
        name="prod",
        base_url=fake.base_url,
        auth_mode=settings.auth_mode,
        options=dict(settings.options),
        secrets=dict(settings.secrets),
        actor="test",
    )

    def sync() -> None:
        report = asyncio.run(run_sync(sessions, config.id, transport=fake.transport(), sleep=SleepRecorder()))
        assert report.ok, report.error

    sync()
    runbook = new_runbook(sessions)
    link(sessions, opened.external_id, runbook, at=opened.created_at + timedelta(minutes=5))
    resolved_at = opened.created_at + timedelta(hours=6)
    fake.update_ticket(
        opened.external_id, at=resolved_at, status="Resolved", extra={"resolved_at": resolved_at}
    )
    sync()
    assert outcome_rows(sessions) == [(opened.external_id, "source_resolved", "resolved", 6 * 3600.0, None)]

    fake.update_ticket(opened.external_id, at=resolved_at + timedelta(days=1), status="In Progress", extra={})
    sync()
    assert [row[:3] for row in outcome_rows(sessions)] == [
        (opened.external_id, "source_reopened", "failed"),
        (opened.external_id, "source_resolved", "resolved"),
    ]


def test_outcome_settings_refuse_nonsense(sessions: sessionmaker[TenantSession]) -> None:
    with sessions() as session:
        assert load_settings(session, OutcomeSettings) == OutcomeSettings()
    assert OutcomeSettings().recurrence_days == 7.0
    for bad, message in (
        ({"recurrence_days": 0}, "recurrence window"),
        ({"recurrence_title_overlap": 0}, "title overlap"),
        ({"revision_success_rate": 1.5}, "success rate"),
        ({"revision_min_outcomes": 0}, "at least 1 outcome"),
    ):
        with pytest.raises(ValueError, match=message):
            OutcomeSettings(**bad)
