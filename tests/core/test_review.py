"""The review domain (core/review.py) on the analysed demo workspace: queue, filters, decisions, undo, drafts.

No Qt. Every assertion reads the store back through a fresh session, so it checks what was committed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from core.matching.analysis import analyze_ticket
from core.matching.engine import MatchingEngine, SimilarTicket, open_engine
from core.queries import ticket_facets
from core.store.models import (
    Analysis,
    AnalysisDecision,
    AuditEvent,
    LinkDecision,
    Runbook,
    RunbookStatus,
    Ticket,
    TicketRunbookLink,
)
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.review import (
    DECISION_ORDER,
    DecisionRecord,
    QueueFilters,
    ReviewConflictError,
    ReviewError,
    ReviewQueueRow,
    SimilarTicketSource,
    approve,
    bulk_approve,
    bulk_reject,
    draft_from_ticket,
    is_in_queue,
    link_other,
    load_review_queue,
    load_ticket_review,
    queue_counts,
    record_draft,
    reject,
    runbook_choices,
    term_spans,
    undo,
)

ACTOR = "ana.analyst"


@pytest.fixture
def demo_sessions(analysed_demo: Workspace) -> sessionmaker[TenantSession]:
    return analysed_demo.session_factory("default")


@pytest.fixture
def engine(analysed_demo: Workspace, embedder) -> MatchingEngine:
    matcher = open_engine(analysed_demo, "default", embedder)
    matcher.refresh()
    return matcher


def queue(sessions: sessionmaker[TenantSession], filters: QueueFilters | None = None) -> list[ReviewQueueRow]:
    with sessions() as session:
        return load_review_queue(session, filters)


def first_of(sessions: sessionmaker[TenantSession], decision: AnalysisDecision) -> ReviewQueueRow:
    return next(row for row in queue(sessions) if row.decision is decision)


def links_of(sessions: sessionmaker[TenantSession], ticket_id: int) -> dict[int, TicketRunbookLink]:
    with sessions() as session:
        links = session.scalars(select(TicketRunbookLink).where(TicketRunbookLink.ticket_id == ticket_id))
        return {link.runbook_id: link for link in links}


def audit_rows(sessions: sessionmaker[TenantSession], action: str | None = None) -> list[AuditEvent]:
    with sessions() as session:
        query = select(AuditEvent).where(AuditEvent.action.like("review.%")).order_by(AuditEvent.id)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        return list(session.scalars(query))


def link_snapshot(link: TicketRunbookLink) -> tuple[object, ...]:
    return (
        link.decision,
        link.confidence_score,
        link.linked_automatically,
        link.linked_at,
        link.reviewed_by,
        link.reviewed_at,
        link.reason,
    )


# --- queue -------------------------------------------------------------------------------------------------


def test_queue_holds_every_analysed_ticket_in_decision_then_confidence_order(
    demo_sessions: sessionmaker[TenantSession],
) -> None:
    rows = queue(demo_sessions)
    with demo_sessions() as session:
        by_decision = dict(
            session.execute(select(Analysis.decision, func.count()).group_by(Analysis.decision)).all()
        )
        ticket_count = session.scalar(select(func.count()).select_from(Ticket))
        counts = queue_counts(session)
    assert ticket_count == 348
    assert len(rows) == 348
    assert len({row.ticket_id for row in rows}) == 348
    assert counts == {decision: by_decision[decision] for decision in DECISION_ORDER}
    assert sum(counts.values()) == 348

    groups = [DECISION_ORDER.index(row.decision) for row in rows]
    assert groups == sorted(groups), "flag_review first, then generate_runbook, then link_runbook"
    for decision in DECISION_ORDER:
        confidences = [row.confidence for row in rows if row.decision is decision]
        assert len(confidences) == counts[decision] > 0
        if decision is AnalysisDecision.LINK_RUNBOOK:
            assert confidences == sorted(confidences), "weakest auto-links are spot-checked first"
        else:
            assert confidences == sorted(confidences, reverse=True)
    flagged = rows[0]
    assert flagged.decision is AnalysisDecision.FLAG_REVIEW
    assert flagged.best_runbook_id is not None
    assert flagged.best_runbook_title
    assert flagged.source_system == "servicenow"
    assert flagged.id == flagged.ticket_id


def test_queue_uses_the_latest_analysis_only(demo_sessions: sessionmaker[TenantSession]) -> None:
    row = first_of(demo_sessions, AnalysisDecision.GENERATE_RUNBOOK)
    with demo_sessions.begin() as session:
        old = session.scalars(select(Analysis).where(Analysis.ticket_id == row.ticket_id)).one()
        session.add(
            Analysis(
                ticket_id=row.ticket_id,
                decision=AnalysisDecision.FLAG_REVIEW,
                confidence=0.61,
                best_runbook_id=old.best_runbook_id,
                model_id=old.model_id,
                threshold_existing=old.threshold_existing,
                threshold_partial=old.threshold_partial,
                ticket_content_hash=old.ticket_content_hash,
            )
        )
    rows = [r for r in queue(demo_sessions) if r.ticket_id == row.ticket_id]
    assert len(rows) == 1
    assert rows[0].decision is AnalysisDecision.FLAG_REVIEW
    assert rows[0].confidence == pytest.approx(0.61)


def test_queue_filters(demo_sessions: sessionmaker[TenantSession]) -> None:
    everything = queue(demo_sessions)
    with demo_sessions() as session:
        tickets = {t.id: t for t in session.scalars(select(Ticket))}
        facets = ticket_facets(session)
    assert facets.source_systems == ("servicenow",)
    assert "high" in facets.severities
    assert facets.severities == tuple(sorted({t.severity for t in tickets.values() if t.severity}))
    assert facets.categories == tuple(sorted({t.category for t in tickets.values() if t.category}))
    assert facets.categories, "the demo tickets have categories"

    flagged = queue(demo_sessions, QueueFilters(decisions=frozenset({AnalysisDecision.FLAG_REVIEW})))
    assert flagged == [row for row in everything if row.decision is AnalysisDecision.FLAG_REVIEW]

    high = queue(demo_sessions, QueueFilters(severities=frozenset({"high", "critical"})))
    assert {row.ticket_id for row in high} == {
        tid for tid, t in tickets.items() if t.severity in ("high", "critical")
    }
    assert queue(demo_sessions, QueueFilters(source_systems=frozenset({"jira"}))) == []

    band = queue(demo_sessions, QueueFilters(confidence_min=0.4, confidence_max=0.6))
    assert band
    assert all(0.4 <= row.confidence <= 0.6 for row in band)
    assert len(band) == sum(1 for row in everything if 0.4 <= row.confidence <= 0.6)

    vpn = queue(demo_sessions, QueueFilters(text="VPN"))
    expected = {
        tid
        for tid, t in tickets.items()
        if "vpn" in t.title.lower() or "vpn" in t.description.lower() or "vpn" in t.external_id.lower()
    }
    assert {row.ticket_id for row in vpn} == expected
    assert len(expected) > 3
    by_number = queue(demo_sessions, QueueFilters(text="inc0010104"))
    assert [row.external_id for row in by_number] == ["INC0010104"]
    assert queue(demo_sessions, QueueFilters(text="100%_")) == []  # LIKE wildcards are literal

    created = sorted(t.created_at for t in tickets.values() if t.created_at)
    middle = created[len(created) // 2]
    start, end = middle - timedelta(days=3), middle + timedelta(days=3)
    window = queue(demo_sessions, QueueFilters(date_field="created", date_from=start, date_to=end))
    assert {row.ticket_id for row in window} == {
        tid for tid, t in tickets.items() if t.created_at and start <= t.created_at < end
    }
    assert all(start <= row.created_at < end for row in window if row.created_at)
    updated_window = queue(demo_sessions, QueueFilters(date_field="updated", date_from=end))
    assert all(row.updated_at is not None and row.updated_at >= end for row in updated_window)

    with demo_sessions() as session:
        counts = queue_counts(
            session, QueueFilters(text="VPN", decisions=frozenset({AnalysisDecision.FLAG_REVIEW}))
        )
    # The decision filter is not applied to the counts: they say what each decision choice would show.
    assert sum(counts.values()) == len(vpn)
    assert counts[AnalysisDecision.LINK_RUNBOOK] == sum(
        1 for row in vpn if row.decision is AnalysisDecision.LINK_RUNBOOK
    )


def test_queue_is_scoped_to_the_tenant(analysed_demo: Workspace) -> None:
    analysed_demo.ensure_tenant("acme", "Acme")
    with analysed_demo.session_factory("acme")() as session:
        assert load_review_queue(session) == []
        assert sum(queue_counts(session).values()) == 0


# --- decisions ------------------------------------------------------------------------------------------


def test_approve_links_audits_and_leaves_the_queue(demo_sessions: sessionmaker[TenantSession]) -> None:
    row = first_of(demo_sessions, AnalysisDecision.FLAG_REVIEW)
    assert row.best_runbook_id is not None
    with demo_sessions() as session:
        flagged = queue_counts(session)[AnalysisDecision.FLAG_REVIEW]
    before = links_of(demo_sessions, row.ticket_id)[row.best_runbook_id]
    assert before.decision is LinkDecision.SUGGESTED
    assert before.reviewed_at is None

    with demo_sessions.begin() as session:
        record = approve(session, row.ticket_id, row.best_runbook_id, row.confidence, ACTOR)
    assert isinstance(record, DecisionRecord)
    assert record.ticket_ids == (row.ticket_id,)

    link = links_of(demo_sessions, row.ticket_id)[row.best_runbook_id]
    assert link.decision is LinkDecision.LINKED
    assert link.reviewed_by == ACTOR
    assert link.reviewed_at is not None
    assert datetime.now(UTC) - link.reviewed_at < timedelta(minutes=1)
    assert link.linked_at is not None
    assert link.confidence_score == pytest.approx(row.confidence)

    (event,) = audit_rows(demo_sessions)
    assert event.action == "review.approve"
    assert event.actor == ACTOR
    assert event.entity_type == "ticket_runbook_link"
    assert event.entity_id == link.id
    assert event.before is not None
    assert event.before["link"]["decision"] == "suggested"
    assert event.after is not None
    assert event.after["link"]["decision"] == "linked"
    assert event.after["ticket_id"] == row.ticket_id

    with demo_sessions() as session:
        assert not is_in_queue(session, row.ticket_id)
        assert queue_counts(session)[AnalysisDecision.FLAG_REVIEW] == flagged - 1
    assert row.ticket_id not in {r.ticket_id for r in queue(demo_sessions)}


def test_undo_restores_the_link_and_is_audited(demo_sessions: sessionmaker[TenantSession]) -> None:
    row = first_of(demo_sessions, AnalysisDecision.FLAG_REVIEW)
    assert row.best_runbook_id is not None
    original = link_snapshot(links_of(demo_sessions, row.ticket_id)[row.best_runbook_id])
    with demo_sessions.begin() as session:
        record = approve(session, row.ticket_id, row.best_runbook_id, row.confidence, ACTOR)
    with demo_sessions.begin() as session:
        inverse = undo(session, record, "bo.lead")
    assert inverse.action == "review.undo"

    assert link_snapshot(links_of(demo_sessions, row.ticket_id)[row.best_runbook_id]) == original
    actions = [(e.action, e.actor) for e in audit_rows(demo_sessions)]
    assert actions == [("review.approve", ACTOR), ("review.undo", "bo.lead")]  # history kept, not deleted
    undo_event = audit_rows(demo_sessions, "review.undo")[0]
    assert undo_event.before is not None
    assert undo_event.before["link"]["decision"] == "linked"
    assert undo_event.after is not None
    assert undo_event.after["link"]["decision"] == "suggested"
    assert undo_event.after["undoes"] == "review.approve"
    with demo_sessions() as session:
        assert is_in_queue(session, row.ticket_id)

    # The undo can itself be undone (redo).
    with demo_sessions.begin() as session:
        undo(session, inverse, ACTOR)
    assert links_of(demo_sessions, row.ticket_id)[row.best_runbook_id].decision is LinkDecision.LINKED


def test_reject_with_reason_of_an_auto_link_and_exact_undo(
    demo_sessions: sessionmaker[TenantSession],
) -> None:
    row = first_of(demo_sessions, AnalysisDecision.LINK_RUNBOOK)
    assert row.best_runbook_id is not None
    auto = links_of(demo_sessions, row.ticket_id)[row.best_runbook_id]
    assert auto.linked_automatically
    assert auto.decision is LinkDecision.LINKED
    assert auto.linked_at is not None
    original = link_snapshot(auto)

    with demo_sessions.begin() as session:
        record = reject(session, row.ticket_id, row.best_runbook_id, "  wrong product: this is Zoom  ", ACTOR)
    rejected = links_of(demo_sessions, row.ticket_id)[row.best_runbook_id]
    assert rejected.decision is LinkDecision.REJECTED
    assert rejected.reason == "wrong product: this is Zoom"
    assert rejected.reviewed_by == ACTOR
    assert rejected.linked_at is None
    (event,) = audit_rows(demo_sessions, "review.reject")
    assert event.after is not None
    assert event.after["link"]["reason"] == "wrong product: this is Zoom"
    with demo_sessions() as session:
        assert not is_in_queue(session, row.ticket_id), "a rejected ticket moves on (module docstring)"

    with demo_sessions.begin() as session:
        undo(session, record, ACTOR)
    assert link_snapshot(links_of(demo_sessions, row.ticket_id)[row.best_runbook_id]) == original
    with demo_sessions() as session:
        assert is_in_queue(session, row.ticket_id)


def test_reject_without_reason_stores_none(demo_sessions: sessionmaker[TenantSession]) -> None:
    row = first_of(demo_sessions, AnalysisDecision.GENERATE_RUNBOOK)
    assert row.best_runbook_id is not None
    with demo_sessions.begin() as session:
        reject(session, row.ticket_id, row.best_runbook_id, None, ACTOR)
    assert links_of(demo_sessions, row.ticket_id)[row.best_runbook_id].reason is None


def test_link_other_supersedes_the_auto_link_and_undo_removes_the_new_link(
    demo_sessions: sessionmaker[TenantSession],
) -> None:
    row = first_of(demo_sessions, AnalysisDecision.LINK_RUNBOOK)
    assert row.best_runbook_id is not None
    before_links = {rid: link_snapshot(link) for rid, link in links_of(demo_sessions, row.ticket_id).items()}
    with demo_sessions() as session:
        other = next(
            choice.id
            for choice in runbook_choices(session)
            if choice.id not in before_links and choice.status == "approved"
        )

    with demo_sessions.begin() as session:
        record = link_other(session, row.ticket_id, other, ACTOR)
    links = links_of(demo_sessions, row.ticket_id)
    assert links[other].decision is LinkDecision.LINKED
    assert links[other].reviewed_by == ACTOR
    assert not links[other].linked_automatically
    assert links[row.best_runbook_id].decision is LinkDecision.REJECTED
    assert links[row.best_runbook_id].reason == f"analyst linked runbook {other}"
    assert [e.action for e in audit_rows(demo_sessions)] == ["review.link_other", "review.supersede"]
    assert len(record.changes) == 2
    assert record.changes[0].before is None

    with demo_sessions.begin() as session:
        undo(session, record, ACTOR)
    after_undo = {rid: link_snapshot(link) for rid, link in links_of(demo_sessions, row.ticket_id).items()}
    assert after_undo == before_links  # the new link is gone, the auto-link is back exactly
    assert [e.action for e in audit_rows(demo_sessions)][-2:] == ["review.undo", "review.undo"]


def test_record_draft_links_the_new_draft_runbook(demo_sessions: sessionmaker[TenantSession]) -> None:
    row = first_of(demo_sessions, AnalysisDecision.GENERATE_RUNBOOK)
    with demo_sessions.begin() as session:
        draft = Runbook(
            title=f"Draft for {row.external_id}", body="## Symptoms\n", status=RunbookStatus.DRAFT
        )
        session.add(draft)
        session.flush()
        draft_id = draft.id
    with demo_sessions.begin() as session:
        record_draft(session, row.ticket_id, draft_id, ACTOR)
    link = links_of(demo_sessions, row.ticket_id)[draft_id]
    assert link.decision is LinkDecision.LINKED
    assert link.reviewed_by == ACTOR
    assert [e.action for e in audit_rows(demo_sessions)] == ["review.draft"]
    with demo_sessions() as session:
        assert not is_in_queue(session, row.ticket_id)


def test_a_failed_decision_writes_nothing(demo_sessions: sessionmaker[TenantSession]) -> None:
    row = first_of(demo_sessions, AnalysisDecision.FLAG_REVIEW)
    with pytest.raises(ReviewError, match="runbook 999999"), demo_sessions.begin() as session:
        approve(session, row.ticket_id, 999_999, 0.5, ACTOR)
    with pytest.raises(ReviewError, match="ticket 999999"), demo_sessions.begin() as session:
        reject(session, 999_999, 1, None, ACTOR)
    assert audit_rows(demo_sessions) == []
    with demo_sessions() as session:
        assert is_in_queue(session, row.ticket_id)


def test_undo_refuses_when_the_link_changed_since(demo_sessions: sessionmaker[TenantSession]) -> None:
    row = first_of(demo_sessions, AnalysisDecision.FLAG_REVIEW)
    assert row.best_runbook_id is not None
    with demo_sessions.begin() as session:
        first = approve(session, row.ticket_id, row.best_runbook_id, row.confidence, ACTOR)
    with demo_sessions.begin() as session:
        reject(session, row.ticket_id, row.best_runbook_id, "changed my mind", "someone.else")
    with pytest.raises(ReviewConflictError), demo_sessions.begin() as session:
        undo(session, first, ACTOR)
    link = links_of(demo_sessions, row.ticket_id)[row.best_runbook_id]
    assert link.decision is LinkDecision.REJECTED
    assert link.reviewed_by == "someone.else"


def test_bulk_approve_and_reject_in_one_transaction(demo_sessions: sessionmaker[TenantSession]) -> None:
    rows = [r for r in queue(demo_sessions) if r.decision is AnalysisDecision.FLAG_REVIEW][:4]
    ids = [r.ticket_id for r in rows]
    with demo_sessions.begin() as session:
        approved = bulk_approve(session, ids[:2], ACTOR)
        rejected = bulk_reject(session, ids[2:], "not our runbooks", ACTOR)
    assert approved.ticket_ids == tuple(ids[:2])
    assert rejected.ticket_ids == tuple(ids[2:])
    for row in rows:
        assert row.best_runbook_id is not None
        link = links_of(demo_sessions, row.ticket_id)[row.best_runbook_id]
        expected = LinkDecision.LINKED if row.ticket_id in ids[:2] else LinkDecision.REJECTED
        assert link.decision is expected
        assert link.reviewed_by == ACTOR
    assert len(audit_rows(demo_sessions, "review.approve")) == 2
    assert len(audit_rows(demo_sessions, "review.reject")) == 2
    remaining = {r.ticket_id for r in queue(demo_sessions)}
    assert remaining.isdisjoint(ids)

    with demo_sessions.begin() as session:
        undo(session, approved, ACTOR)
    remaining = {r.ticket_id for r in queue(demo_sessions)}
    assert set(ids[:2]) <= remaining
    assert remaining.isdisjoint(ids[2:])


def test_bulk_skips_tickets_without_a_best_match(demo_sessions: sessionmaker[TenantSession]) -> None:
    row = first_of(demo_sessions, AnalysisDecision.GENERATE_RUNBOOK)
    with demo_sessions.begin() as session:
        session.add(
            Ticket(
                external_id="INC-NEW", source_system="servicenow", title="never analysed", content_hash="x"
            )
        )
        session.flush()
        new_id = session.scalars(select(Ticket.id).where(Ticket.external_id == "INC-NEW")).one()
        record = bulk_approve(session, [row.ticket_id, new_id], ACTOR)
    assert record.ticket_ids == (row.ticket_id,)
    assert record.skipped_ticket_ids == (new_id,)


def test_an_analysts_decision_survives_reanalysis(
    demo_sessions: sessionmaker[TenantSession], engine: MatchingEngine
) -> None:
    row = first_of(demo_sessions, AnalysisDecision.LINK_RUNBOOK)
    assert row.best_runbook_id is not None
    with demo_sessions.begin() as session:
        reject(session, row.ticket_id, row.best_runbook_id, "wrong", ACTOR)
    with demo_sessions.begin() as session:
        ticket = session.get(Ticket, row.ticket_id)
        assert ticket is not None
        result = analyze_ticket(engine, session, ticket)
    assert result.decision is AnalysisDecision.LINK_RUNBOOK
    link = links_of(demo_sessions, row.ticket_id)[row.best_runbook_id]
    assert link.decision is LinkDecision.REJECTED
    assert link.reviewed_by == ACTOR
    with demo_sessions() as session:
        assert session.scalar(select(func.count()).where(Analysis.ticket_id == row.ticket_id)) == 2
        assert not is_in_queue(session, row.ticket_id)


# --- side by side and drafts ---------------------------------------------------------------------------


def test_load_ticket_review_ranks_matches_with_explanations(
    demo_sessions: sessionmaker[TenantSession], engine: MatchingEngine
) -> None:
    row = first_of(demo_sessions, AnalysisDecision.LINK_RUNBOOK)
    with demo_sessions() as session:
        review = load_ticket_review(session, engine, row.ticket_id)
    assert review.ticket.id == row.ticket_id
    assert review.analysis_decision is AnalysisDecision.LINK_RUNBOOK
    assert [m.rank for m in review.matches] == list(range(1, len(review.matches) + 1))
    assert 1 < len(review.matches) <= 5
    best = review.matches[0]
    assert best.runbook.id == row.best_runbook_id
    assert best.match.confidence == pytest.approx(row.confidence, abs=1e-6)
    assert best.link_decision == "linked"
    assert best.linked_automatically
    assert best.section_text
    assert best.match.shared_terms
    # Every shared term lights up in both texts.
    for term in best.match.shared_terms[:3]:
        assert term_spans(review.ticket_terms_text, [term])
    lit = [
        best.section_text[a:b].lower()
        for a, b in term_spans(best.section_text + "\n" + best.runbook.title, best.match.shared_terms)
    ]
    assert lit
    assert review.similar
    assert all(s.ticket_id != row.ticket_id for s in review.similar)


def test_term_spans_follow_the_matchers_terms() -> None:
    text = "Outlook's error 0x800CCC0E on lnx-app-07.corp.example.com. OUTLOOK again; outlooking not."
    spans = term_spans(text, ["outlook", "0x800ccc0e", "lnx-app-07.corp.example.com"])
    assert [text[a:b] for a, b in spans] == [
        "Outlook's",
        "0x800CCC0E",
        "lnx-app-07.corp.example.com",
        "OUTLOOK",
    ]
    assert term_spans(text, []) == []


class FakeSimilar(SimilarTicketSource):
    """Stands in for the matcher's similar-ticket search, with fixed neighbours."""

    def __init__(self, similar: list[SimilarTicket]) -> None:
        self.similar = similar
        self.asked: list[tuple[int, int]] = []

    def similar_tickets(self, ticket_id: int, k: int = 5) -> list[SimilarTicket]:
        self.asked.append((ticket_id, k))
        return self.similar[:k]


def similar(external_id: str, notes: str | None, *, resolved: bool = True) -> SimilarTicket:
    return SimilarTicket(0, external_id, "t", "Closed", notes, 0.8, resolved)


def test_draft_from_ticket_cleans_text_and_cites_resolution_notes(
    demo_sessions: sessionmaker[TenantSession],
) -> None:
    with demo_sessions.begin() as session:
        ticket = Ticket(
            external_id="INC0099001",
            source_system="servicenow",
            title="RE: [EXTERNAL] Plotter PLT-04 shows error 0xE1",
            description="Hi team,\n\nPlotter PLT-04 shows error 0xE1 after the firmware update.\n\n"
            "Thanks,\nJo\n\nSent from my iPhone",
            category="Hardware",
            content_hash="x",
        )
        session.add(ticket)
        session.flush()
        ticket_id = ticket.id
    fake = FakeSimilar(
        [
            similar("INC1", "Power-cycled PLT-04 and re-seated the 0xE1 cartridge."),
            similar("INC2", "Resolved - user confirmed."),  # says only that it was closed
            similar("INC3", "power-cycled plt-04 and re-seated the 0xe1 cartridge."),  # duplicate
            similar("INC4", "Rolled firmware back to 2.1 via the web console.", resolved=False),  # unresolved
            similar("INC5", "Rolled firmware back to 2.1 via the web console."),
        ]
    )
    with demo_sessions() as session:
        draft = draft_from_ticket(session, fake, ticket_id)
    assert draft.title == "Plotter PLT-04 shows error 0xE1"
    assert "Plotter PLT-04 shows error 0xE1 after the firmware update." in draft.symptoms
    assert "Hi team" not in draft.symptoms
    assert "iPhone" not in draft.symptoms
    assert [(s.text, s.source_ticket) for s in draft.steps] == [
        ("Power-cycled PLT-04 and re-seated the 0xE1 cartridge.", "INC1"),
        ("Rolled firmware back to 2.1 via the web console.", "INC5"),
    ]
    assert draft.source_ticket_ids == (ticket_id,)
    assert draft.tags == ("hardware",)
    assert "_(from INC1)_" in draft.to_markdown()


def test_draft_from_a_demo_ticket_with_the_real_matcher(
    demo_sessions: sessionmaker[TenantSession], engine: MatchingEngine
) -> None:
    row = first_of(demo_sessions, AnalysisDecision.GENERATE_RUNBOOK)
    with demo_sessions() as session:
        draft = draft_from_ticket(session, engine, row.ticket_id)
        tickets = {t.external_id: t for t in session.scalars(select(Ticket))}
    assert draft.title
    assert draft.title.lower() in row.title.lower() or row.title.lower() in draft.title.lower()
    assert draft.steps
    for step in draft.steps:
        assert step.source_ticket in tickets
        source = tickets[step.source_ticket]
        assert source.resolution_notes
        assert step.text.split()[0] in source.resolution_notes


def test_runbook_choices_list_approved_first(demo_sessions: sessionmaker[TenantSession]) -> None:
    with demo_sessions() as session:
        choices = runbook_choices(session)
        total = session.scalar(select(func.count()).select_from(Runbook))
    assert len(choices) == total == 47
    statuses = [c.status for c in choices]
    order = ["approved", "in_review", "draft", "retired"]
    assert statuses == sorted(statuses, key=order.index)
    approved_titles = [c.title.lower() for c in choices if c.status == "approved"]
    assert approved_titles == sorted(approved_titles)
