"""The auto-link threshold advisor (issue 12, item 5) on the analysed demo with real reviewed decisions:
the curve counted independently from the store, the suggestion rule, its refusals, and an audited apply."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.analytics.thresholds import (
    GRID,
    AdvisorSettings,
    ThresholdAdvisorError,
    advise_threshold,
    apply_suggestion,
    apply_threshold,
)
from core.matching.analysis import count_pending
from core.matching.engine import open_engine
from core.queries import latest_analysis
from core.settings import Thresholds, load_settings, save_settings
from core.store.models import Analysis, AuditEvent, LinkDecision, TicketRunbookLink
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from tests.helpers.labelled_review import review_like_the_labels


@pytest.fixture
def demo_sessions(analysed_demo: Workspace) -> sessionmaker[TenantSession]:
    return analysed_demo.session_factory()


def latest_confidences(session: TenantSession) -> dict[int, tuple[float, int | None]]:
    latest = latest_analysis()
    rows = session.execute(
        select(Analysis.ticket_id, Analysis.confidence, Analysis.best_runbook_id).join(
            latest, latest.c.analysis_id == Analysis.id
        )
    )
    return {ticket_id: (confidence, best) for ticket_id, confidence, best in rows}


def settings_audits(sessions: sessionmaker[TenantSession]) -> list[AuditEvent]:
    with sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == "settings.thresholds")))


def test_the_curve_and_the_suggestion_follow_the_reviewed_decisions(
    demo_sessions: sessionmaker[TenantSession],
) -> None:
    approvals, rejections = review_like_the_labels(demo_sessions, 140)
    with demo_sessions() as session:
        advice = advise_threshold(session)
        analyses = latest_confidences(session)
        decided = {
            (link.ticket_id, link.runbook_id): link.decision
            for link in session.scalars(
                select(TicketRunbookLink).where(TicketRunbookLink.reviewed_at.is_not(None))
            )
        }

    assert advice.analysed == len(analyses)
    assert advice.reviewed == approvals + rejections == len({t for t, _ in decided})
    assert [point.threshold for point in advice.points] == list(GRID)
    # Each point, counted again from the rows.
    reviewed_tickets = {t for t, _ in decided}
    for point in advice.points:
        above = {t for t, (confidence, _) in analyses.items() if confidence >= point.threshold}
        reviewed = above & reviewed_tickets
        approved = {t for t in reviewed if decided.get((t, analyses[t][1])) is LinkDecision.LINKED}
        assert (point.tickets, point.reviewed, point.approved) == (len(above), len(reviewed), len(approved))
        assert point.coverage == pytest.approx(len(above) / len(analyses))
        assert point.precision == (pytest.approx(len(approved) / len(reviewed)) if reviewed else None)
    # Lower thresholds never cover less.
    assert all(a.tickets >= b.tickets for a, b in zip(advice.points, advice.points[1:], strict=False))

    suggested = advice.suggested
    assert suggested is not None, advice.message
    assert suggested.precision is not None and suggested.precision >= 0.90
    assert suggested.reviewed >= AdvisorSettings().min_reviewed
    for lower in advice.points[: advice.points.index(suggested)]:
        assert lower.reviewed < advice.min_reviewed or (lower.precision or 0.0) < 0.90, lower
    assert f"{suggested.threshold:.2f} or above" in advice.message
    assert f"{suggested.coverage:.0%} of the {advice.analysed:,} analysed tickets" in advice.message
    assert advice.at_current.threshold == 0.70


def test_too_few_reviewed_decisions_get_no_suggestion(demo_sessions: sessionmaker[TenantSession]) -> None:
    review_like_the_labels(demo_sessions, 12)
    with demo_sessions() as session:
        advice = advise_threshold(session)
        with pytest.raises(ThresholdAdvisorError, match="Too few reviewed decisions"):
            apply_suggestion(session, advice, "admin")
    assert advice.suggested is None
    assert advice.reviewed == 12
    assert "Too few reviewed decisions" in advice.message and "at least 30" in advice.message


def test_a_target_no_threshold_reaches_is_said_so(demo_sessions: sessionmaker[TenantSession]) -> None:
    review_like_the_labels(demo_sessions, 140)
    with demo_sessions() as session:
        lowest = advise_threshold(session).points[0]
        assert lowest.precision is not None and lowest.precision < 1.0  # some best matches were rejected
        # Only the lowest thresholds have that many reviewed tickets, and none of them is 100 % precise.
        advice = advise_threshold(session, target=1.0, min_reviewed=lowest.reviewed)
    assert advice.suggested is None
    assert advice.message.startswith(
        f"No threshold reaches 100% precision with at least {lowest.reviewed} reviewed"
    )


def test_applying_the_suggestion_writes_the_thresholds_audited_and_makes_analyses_stale(
    demo_sessions: sessionmaker[TenantSession], analysed_demo: Workspace, embedder
) -> None:
    review_like_the_labels(demo_sessions, 140)
    engine = open_engine(analysed_demo, "default", embedder)
    assert count_pending(engine, demo_sessions) == 0
    with demo_sessions.begin() as session:
        save_settings(session, Thresholds(existing=0.95, partial=0.9))  # so the suggestion is below both
    with demo_sessions() as session:
        advice = advise_threshold(session)
    assert advice.suggested is not None and advice.suggested.threshold < 0.9

    with demo_sessions.begin() as session:
        change = apply_suggestion(session, advice, "admin")

    expected_partial = round(advice.suggested.threshold - 0.05, 2)
    assert change.after == Thresholds(existing=advice.suggested.threshold, partial=expected_partial)
    assert "to stay below it" in change.sentence
    with demo_sessions() as session:
        assert load_settings(session, Thresholds) == change.after
    [audit] = settings_audits(demo_sessions)
    assert audit.actor == "admin"
    assert audit.before == {"existing": 0.95, "partial": 0.9}
    assert audit.after is not None
    assert (audit.after["existing"], audit.after["partial"]) == (advice.suggested.threshold, expected_partial)
    assert audit.after["advisor"]["suggested"]["precision"] == advice.suggested.precision
    assert audit.after["advisor"]["target_precision"] == 0.90
    # Every analysis recorded the old thresholds: the next analysis re-decides every ticket.
    assert count_pending(engine, demo_sessions) == advice.analysed


def test_applying_keeps_the_review_threshold_when_it_is_below_and_skips_a_non_change(
    demo_sessions: sessionmaker[TenantSession],
) -> None:
    with demo_sessions.begin() as session:
        change = apply_threshold(session, 0.8, "admin")
    assert change.after == Thresholds(existing=0.8, partial=0.5)
    with demo_sessions.begin() as session:
        again = apply_threshold(session, 0.8, "admin")
    assert not again.changed and "already 0.80" in again.sentence
    assert len(settings_audits(demo_sessions)) == 1
    with demo_sessions.begin() as session, pytest.raises(ValueError, match="above 0"):
        apply_threshold(session, 0.0, "admin")
