"""The runbook generation queue: procedure confidence, the three groups, one audited draft per gap.

The integration tests plant two gaps of their own in the analysed demo (``tests.helpers.gap_fixtures``): a
coherent one (eight tickets fixed the same way) and a likely one (five of seven). The demo's own gaps have
few and mixed resolution notes, so they all wait for manual authoring; nothing here depends on that.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from core.analytics.gaps import GapCluster, GapQuery, GapReport, Trend, analyse_gaps, engine_ticket_vectors
from core.analytics.generation_queue import (
    GENERATED_ACTION,
    REF_PREFIX,
    Bucket,
    bucket_of,
    build_queue,
    generate_automatic,
    generate_draft,
    procedure_confidence,
)
from core.importing import import_tickets
from core.matching.analysis import analyze_pending
from core.matching.embedding import SentenceTransformerEmbedder
from core.matching.engine import MatchingEngine, open_engine
from core.store.models import AuditEvent, Runbook, RunbookStatus, Ticket
from core.store.repository import SYSTEM_ACTOR
from core.store.workspace import Workspace
from tests.helpers.gap_fixtures import HEADER, SCANNER_FIX, planted_workspace

FIXED_NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _cluster(documented: int, groups: tuple[int, ...], cohesion: float) -> GapCluster:
    """A hand-made cluster (no store): only what the confidence reads matters."""
    return GapCluster(
        key="g0000000000",
        rank=1,
        label="label",
        terms=(),
        size=10,
        share=1.0,
        trend=Trend.STABLE,
        trend_counts=(),
        severity_mix=(),
        mttr_hours=None,
        resolved_count=0,
        mean_severity_weight=1.0,
        impact=1.0,
        impact_hours=1.0,
        impact_share=1.0,
        cumulative_share=1.0,
        cohesion=cohesion,
        central_tickets=(),
        resolution_notes=(),
        nearest_runbook=None,
        member_ticket_ids=tuple(range(10)),
        centroid=b"",
        notes_read=documented,
        documented=documented,
        procedure_groups=groups,
    )


@pytest.mark.parametrize(
    ("documented", "groups", "cohesion", "expected"),
    [
        (4, (4,), 1.0, 0.7734375),  # Beta(5, 3): P(p > 1/2) = 1 - P(Bin(7, .5) >= 5)
        (8, (8,), 1.0, 0.9672851),  # Beta(9, 3)
        (3, (2, 1), 1.0, 0.34375),  # Beta(3, 4)
        (7, (5, 1, 1), 0.9, 0.5607422),  # Beta(6, 5): 638/1024, times the cohesion
        (0, (), 0.9, 0.1125),  # no note says how: the prior alone, 1/8
        (1, (1,), 1.0, 0.3125),  # one note is not a procedure
    ],
)
def test_procedure_confidence_is_the_chance_most_tickets_share_a_fix_times_cohesion(
    documented: int, groups: tuple[int, ...], cohesion: float, expected: float
) -> None:
    confidence = procedure_confidence(_cluster(documented, groups, cohesion))
    assert confidence.value == pytest.approx(expected, abs=1e-6)
    assert 0.0 <= confidence.value <= 1.0
    assert confidence.value == pytest.approx(confidence.majority * cohesion)
    assert f"{confidence.value:.0%}" in confidence.explain()


def test_buckets_follow_the_roadmap_thresholds() -> None:
    assert bucket_of(0.71) is Bucket.AUTOMATIC
    assert bucket_of(0.70) is Bucket.PROMPT  # "> 70 %" is automatic, 70 % itself is not
    assert bucket_of(0.50) is Bucket.PROMPT
    assert bucket_of(0.4999) is Bucket.MANUAL


# --- On a workspace --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def planted_template(
    analysed_demo_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
    embedder: SentenceTransformerEmbedder,
) -> Path:
    root = tmp_path_factory.mktemp("planted") / "workspace"
    return planted_workspace(analysed_demo_template, root, embedder)


@pytest.fixture
def planted(planted_template: Path, tmp_path: Path) -> Iterator[Workspace]:
    root = tmp_path / "planted"
    shutil.copytree(planted_template, root, ignore=shutil.ignore_patterns("*.lock"))
    workspace = Workspace.open(root)
    yield workspace
    workspace.close()


@pytest.fixture
def engine(planted: Workspace, embedder: SentenceTransformerEmbedder) -> MatchingEngine:
    return open_engine(planted, "default", embedder)


def analyse(workspace: Workspace, engine: MatchingEngine) -> GapReport:
    sessions = workspace.session_factory()
    return analyse_gaps(
        sessions, engine_ticket_vectors(engine, sessions), engine.embedder.model_id, GapQuery(), now=FIXED_NOW
    )


def planted_cluster(workspace: Workspace, report: GapReport, prefix: str) -> GapCluster:
    with workspace.session_factory()() as session:
        external = dict(session.execute(select(Ticket.id, Ticket.external_id)).all())
    return max(
        report.clusters, key=lambda c: sum(external[i].startswith(prefix) for i in c.member_ticket_ids)
    )


@pytest.mark.slow
def test_a_coherent_gap_is_drafted_once_awaiting_approval_citing_its_tickets(
    planted: Workspace, engine: MatchingEngine, tmp_path: Path
) -> None:
    sessions = planted.session_factory()
    report = analyse(planted, engine)
    scanner = planted_cluster(planted, report, "SCN")
    with sessions() as session:
        before = build_queue(session, report.clusters)
    assert before.entry(scanner.key).bucket is Bucket.AUTOMATIC and before.entry(scanner.key).draft is None
    assert sum(before.counts().values()) == len(report.clusters)

    queue = generate_automatic(sessions, report.clusters)
    automatic = before.in_bucket(Bucket.AUTOMATIC)
    assert len(queue.generated) == len(automatic)  # one per automatic gap, none for the others
    entry = queue.entry(scanner.key)
    assert entry.draft is not None and entry.draft.status is RunbookStatus.IN_REVIEW
    with sessions() as session:
        runbook = session.get(Runbook, entry.draft.runbook_id)
        assert runbook is not None
        assert runbook.external_ref == f"{REF_PREFIX}{scanner.key}"
        members = dict(
            session.execute(
                select(Ticket.id, Ticket.external_id).where(Ticket.id.in_(scanner.member_ticket_ids))
            ).all()
        )
        audit = session.scalars(
            select(AuditEvent).where(AuditEvent.entity_type == "runbook", AuditEvent.entity_id == runbook.id)
        ).all()
    body = runbook.body
    assert "## Source tickets" in body and all(number in body for number in members.values())
    assert "Scanned the USB HID keyboard programming barcode" in body
    assert "_(from SCN" in body  # the step cites the ticket it came from
    assert "Confirmed with user" not in body  # status, not a step
    assert [(a.action, a.actor) for a in audit] == [
        ("runbook.create", SYSTEM_ACTOR),
        (GENERATED_ACTION, SYSTEM_ACTOR),
    ]
    generated = audit[1].after or {}
    assert generated["key"] == scanner.key and generated["reason"] == "automatic"
    assert sorted(generated["tickets"]) == sorted(scanner.member_ticket_ids)
    assert generated["confidence"] > 0.7

    # Running again, or again after the gap grew (a new ticket changes its key), drafts nothing new.
    assert generate_automatic(sessions, report.clusters).generated == ()
    new_ticket = {
        "number": "SCN0100",
        "short_description": "Handheld barcode scanner beeps, nothing typed",
        "description": "The barcode scanner at desk 40 beeps but no digits appear in the shipping screen.",
        "priority": "3 - Moderate",
        "state": "Closed",
        "assigned_to": "Sam Field",
        "sys_created_on": "2026-11-28 10:00:00",
        "sys_updated_on": "2026-11-28 11:00:00",
        "close_notes": SCANNER_FIX,
        "category": "Hardware",
        "cmdb_ci": "",
    }
    path = tmp_path / "one.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADER)
        writer.writeheader()
        writer.writerow(new_ticket)
    import_tickets(sessions, path, actor="test")
    engine.refresh()
    analyze_pending(engine, sessions)
    grown_report = analyse(planted, engine)
    grown = planted_cluster(planted, grown_report, "SCN")
    assert grown.key != scanner.key and grown.size == scanner.size + 1
    again = generate_automatic(sessions, grown_report.clusters)
    assert again.generated == ()
    assert again.entry(grown.key).draft == entry.draft
    with sessions() as session:
        drafts = session.scalars(select(Runbook).where(Runbook.external_ref.startswith(REF_PREFIX))).all()
    assert len(drafts) == len(automatic)


@pytest.mark.slow
def test_a_likely_gap_waits_for_the_analyst_who_approves_its_generation(
    planted: Workspace, engine: MatchingEngine
) -> None:
    sessions = planted.session_factory()
    report = analyse(planted, engine)
    tablet = planted_cluster(planted, report, "TAB")
    queue = generate_automatic(sessions, report.clusters)
    entry = queue.entry(tablet.key)
    assert entry.bucket is Bucket.PROMPT and entry.draft is None  # not generated by itself
    assert 0.5 <= entry.confidence.value <= 0.7
    assert (entry.confidence.agreeing, entry.confidence.documented) == (5, 7)
    with sessions.begin() as session:
        draft, created = generate_draft(session, tablet, actor="ana", reason="approved by an analyst")
    assert created and draft.status is RunbookStatus.IN_REVIEW
    with sessions.begin() as session:
        same, created_again = generate_draft(session, tablet, actor="bob", reason="approved by an analyst")
    assert (same, created_again) == (draft, False)
    with sessions() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == GENERATED_ACTION)).all()
        mine = [e for e in events if e.entity_id == draft.runbook_id]
        assert [(e.actor, (e.after or {})["bucket"]) for e in mine] == [("ana", "prompt")]
        assert build_queue(session, report.clusters).entry(tablet.key).draft == draft
