"""The matching engine end to end: real SQLite, the real model, real FAISS, the demo data."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import sessionmaker

from core.errors import OperationCancelledError
from core.importing import import_runbooks, import_tickets
from core.matching.analysis import analyze_pending
from core.matching.embedding import SentenceTransformerEmbedder
from core.matching.embedding_cache import CachedEmbedder
from core.matching.engine import MatchingEngine, open_engine
from core.settings import Thresholds, load_settings, save_settings
from core.store.models import (
    Analysis,
    AnalysisDecision,
    LinkDecision,
    Runbook,
    RunbookStatus,
    Ticket,
    TicketRunbookLink,
)
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from tests.conftest import DEMO_DIR
from tests.helpers.progress import RecordingProgress


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> Iterator[Workspace]:
    """One demo workspace, imported and analysed once for the read-only tests of this module."""
    workspace = Workspace.open(tmp_path_factory.mktemp("demo"))
    sessions = workspace.session_factory()
    import_runbooks(sessions, DEMO_DIR / "runbooks")
    import_tickets(sessions, DEMO_DIR / "tickets.csv")
    engine = open_engine(workspace, "default", embedder)
    engine.refresh()
    analyze_pending(engine, sessions)
    yield workspace
    workspace.close()


def labels() -> dict[str, dict[str, str]]:
    with (DEMO_DIR / "labels.csv").open(encoding="utf-8") as handle:
        return {row["number"]: row for row in csv.DictReader(handle)}


FEW_RUNBOOKS = (
    "printer-offline-print-spooler.md",
    "outlook-profile-corrupt-repair.md",
    "linux-server-disk-full.md",
    "vpn-anyconnect-cannot-connect.md",
)


def import_few_runbooks(sessions: sessionmaker[TenantSession], tmp_path: Path) -> None:
    """A handful of demo runbooks: enough to match against, cheap to embed in a per-test workspace."""
    folder = tmp_path / "few-runbooks"
    folder.mkdir(exist_ok=True)
    for name in FEW_RUNBOOKS:
        (folder / name).write_text(
            (DEMO_DIR / "runbooks" / name).read_text(encoding="utf-8"), encoding="utf-8"
        )
    assert import_runbooks(sessions, folder).rejected_count == 0


def engine_for(workspace: Workspace, embedder: SentenceTransformerEmbedder) -> MatchingEngine:
    return open_engine(workspace, "default", embedder)


def add_runbook(sessions: sessionmaker[TenantSession], title: str, body: str, ref: str) -> int:
    with sessions.begin() as session:
        runbook = Runbook(
            title=title, body=body, status=RunbookStatus.APPROVED, external_ref=ref, content_hash=ref
        )
        session.add(runbook)
        session.flush()
        return runbook.id


def test_clear_tickets_find_their_runbook(demo: Workspace, embedder) -> None:
    engine = engine_for(demo, embedder)
    engine.refresh()
    cases = {
        "my vpn wont connect from home, anyconnect says login failed": "vpn-anyconnect-cannot-connect",
        "pod keeps restarting CrashLoopBackOff in prod namespace": "k8s-pod-crashloopbackoff",
        "TNS:no listener ORA-12541 when app connects to database": "oracle-listener-ora-12541",
    }
    with demo.session_factory()() as session:
        by_ref = {r.external_ref: r.id for r in session.scalars(select(Runbook))}
    for query, slug in cases.items():
        matches = engine.search(query, 5)
        assert matches[0].runbook_id == by_ref[f"{slug}.md"], (query, [m.title for m in matches])
        assert 0.0 <= matches[-1].confidence <= matches[0].confidence <= 1.0
        assert matches[0].shared_terms, "the explanation lists terms both sides share"


def test_analysis_decisions_follow_the_labels(demo: Workspace) -> None:
    truth = labels()
    with demo.session_factory()() as session:
        rows = session.execute(
            select(Ticket.external_id, Analysis.decision, Runbook.external_ref)
            .join(Analysis, Analysis.ticket_id == Ticket.id)
            .join(Runbook, Runbook.id == Analysis.best_runbook_id, isouter=True)
        ).all()
    assert len(rows) == len(truth)
    auto = [(number, ref) for number, decision, ref in rows if decision is AnalysisDecision.LINK_RUNBOOK]
    correct = [
        number
        for number, ref in auto
        if truth[number]["match"] == "full" and ref == f"{truth[number]['runbook']}.md"
    ]
    assert auto, "some tickets are clear enough to link automatically"
    assert len(correct) / len(auto) >= 0.85
    gaps = [decision for number, decision, _ in rows if truth[number]["match"] == "none"]
    assert gaps.count(AnalysisDecision.LINK_RUNBOOK) / len(gaps) <= 0.05


def test_auto_links_are_recorded_as_automatic(demo: Workspace) -> None:
    with demo.session_factory()() as session:
        linked = session.scalars(
            select(Analysis.ticket_id).where(Analysis.decision == AnalysisDecision.LINK_RUNBOOK)
        ).all()
        links = session.scalars(
            select(TicketRunbookLink).where(TicketRunbookLink.linked_automatically.is_(True))
        ).all()
    assert {link.ticket_id for link in links} == set(linked)
    assert all(link.decision is LinkDecision.LINKED and link.confidence_score is not None for link in links)


def test_similar_tickets_put_resolved_ones_first(demo: Workspace, embedder) -> None:
    engine = engine_for(demo, embedder)
    engine.refresh()
    with demo.session_factory()() as session:
        ticket_id = session.scalars(select(Ticket.id).where(Ticket.title.ilike("%salesforce%"))).first()
    assert ticket_id is not None
    similar = engine.similar_tickets(ticket_id, 5)
    assert similar
    assert ticket_id not in [s.ticket_id for s in similar]
    resolved_flags = [s.resolved for s in similar]
    assert resolved_flags == sorted(resolved_flags, reverse=True)


def test_embedding_cache_avoids_re_embedding_across_engines(workspace: Workspace, embedder) -> None:
    sessions = workspace.session_factory()
    first = CachedEmbedder(embedder, sessions)
    vectors = first.encode(["vpn drops every hour", "printer jammed"])
    assert first.embedded_count == 2
    second = CachedEmbedder(embedder, sessions)  # a new process would start like this
    again = second.encode(["printer jammed", "vpn drops every hour", "new text"])
    assert second.embedded_count == 1
    assert again[0] == pytest.approx(vectors[1])
    assert again[1] == pytest.approx(vectors[0])


def test_reanalysis_of_unchanged_tickets_embeds_nothing(
    workspace: Workspace, embedder, tmp_path: Path
) -> None:
    sessions = workspace.session_factory()
    import_few_runbooks(sessions, tmp_path)
    (tmp_path / "t.csv").write_text(
        "number,short_description,description\nINC1,outlook wont open,stuck on loading profile\n"
        "INC2,disk full on lnx-app-07,/var is 99%\n",
        encoding="utf-8",
    )
    import_tickets(sessions, tmp_path / "t.csv")
    engine = engine_for(workspace, embedder)
    engine.refresh()
    first = analyze_pending(engine, sessions)
    assert first.analysed == 2
    embedded = engine.embedder.embedded_count
    second = analyze_pending(engine, sessions)
    assert (second.analysed, second.skipped_current) == (0, 2)
    assert engine.embedder.embedded_count == embedded
    # A changed ticket is analysed again, and only that one.
    (tmp_path / "t.csv").write_text(
        "number,short_description,description\nINC1,outlook wont open,stuck on loading profile\n"
        "INC2,disk full on lnx-app-07,/var/log is 100% now\n",
        encoding="utf-8",
    )
    import_tickets(sessions, tmp_path / "t.csv")
    assert analyze_pending(engine, sessions).analysed == 1


def test_cancelled_analysis_keeps_the_batches_it_committed(
    workspace: Workspace, embedder, tmp_path: Path
) -> None:
    sessions = workspace.session_factory()
    import_few_runbooks(sessions, tmp_path)
    rows = "".join(f"INC{i},outlook wont open {i},stuck on loading profile\n" for i in range(5))
    (tmp_path / "t.csv").write_text(f"number,short_description,description\n{rows}", encoding="utf-8")
    import_tickets(sessions, tmp_path / "t.csv")
    engine = engine_for(workspace, embedder)
    engine.refresh()
    progress = RecordingProgress(cancel_after=1)
    with pytest.raises(OperationCancelledError, match="ticket analysis cancelled"):
        analyze_pending(engine, sessions, batch_size=2, progress=progress)
    assert progress.reports == [(2, 5, "analysed 2 of 5 tickets")]
    with sessions() as session:
        assert len(session.scalars(select(Analysis)).all()) == 2
    assert analyze_pending(engine, sessions).analysed == 3  # the rest, on the next run


def test_index_repairs_only_what_differs(workspace: Workspace, embedder, tmp_path: Path) -> None:
    sessions = workspace.session_factory()
    first = add_runbook(sessions, "Disk full on Linux", "## Symptoms\nNo space left on device", "disk")
    add_runbook(sessions, "VPN cannot connect", "## Symptoms\nAnyConnect login failed", "vpn")
    engine = engine_for(workspace, embedder)
    assert engine.refresh().runbook_index["added"] > 0
    assert engine.refresh().runbook_index == {"added": 0, "removed": 0}
    # Damage the saved index: drop one section, add a bogus id, then reopen as a new process would.
    victim = min(engine.runbook_index.ids())
    engine.runbook_index.remove([victim])
    engine.runbook_index.add([999_999], engine.embedder.encode(["bogus"]))
    engine.save()
    reopened = engine_for(workspace, embedder)
    assert reopened.refresh().runbook_index == {"added": 1, "removed": 1}
    assert reopened.runbook_index.ids() == reopened.expected_ids()["runbook_sections"]
    # Retiring a runbook takes it out of matching at the next refresh.
    with sessions.begin() as session:
        session.execute(update(Runbook).where(Runbook.id == first).values(status=RunbookStatus.RETIRED))
    report = reopened.refresh()
    assert report.runbook_index["removed"] > 0
    assert first not in [m.runbook_id for m in reopened.search("no space left on device", 5)]


def test_fts_triggers_follow_inserts_updates_and_deletes(workspace: Workspace) -> None:
    sessions = workspace.session_factory()
    runbook_id = add_runbook(sessions, "Oracle listener down", "ORA-12541 on db01.corp.example.com.", "ora")

    def hits(term: str) -> list[int]:
        with workspace.engine.connect() as conn:
            return (
                conn.execute(
                    text("SELECT rowid FROM runbook_fts WHERE runbook_fts MATCH :q"), {"q": f'"{term}"'}
                )
                .scalars()
                .all()
            )

    assert hits("ora-12541") == [runbook_id]  # the error code survives as one term
    assert hits("db01.corp.example.com") == [runbook_id]
    assert hits("listener") == [runbook_id]
    with sessions.begin() as session:
        session.execute(update(Runbook).where(Runbook.id == runbook_id).values(title="Oracle TNS problems"))
    assert hits("tns") == [runbook_id]
    with sessions.begin() as session:
        session.execute(delete(Runbook).where(Runbook.id == runbook_id))
    assert hits("ora-12541") == []


def test_thresholds_are_per_tenant(workspace: Workspace, embedder, tmp_path: Path) -> None:
    workspace.ensure_tenant("loose")
    strict, loose = workspace.session_factory("default"), workspace.session_factory("loose")
    with loose.begin() as session:
        save_settings(session, Thresholds(existing=0.0, partial=0.0))
    with strict() as session:
        assert load_settings(session, Thresholds) == Thresholds()
    # No runbook covers a badge reader: a low confidence the two tenants' thresholds judge differently.
    csv_text = (
        "number,short_description,description\nINC1,badge reader broken,door 3 badge reader flashes red\n"
    )
    (tmp_path / "t.csv").write_text(csv_text, encoding="utf-8")
    for sessions in (loose, strict):
        import_few_runbooks(sessions, tmp_path)
        import_tickets(sessions, tmp_path / "t.csv")
    decisions = {}
    for slug, sessions in (("default", strict), ("loose", loose)):
        engine = open_engine(workspace, slug, embedder)
        engine.refresh()
        analyze_pending(engine, sessions)
        with sessions() as session:
            analysis = session.scalars(select(Analysis)).one()
        decisions[slug] = (analysis.decision, analysis.threshold_existing)
    assert decisions["loose"] == (AnalysisDecision.LINK_RUNBOOK, 0.0)
    assert decisions["default"] == (AnalysisDecision.GENERATE_RUNBOOK, 0.70)
    with pytest.raises(ValueError, match="thresholds must satisfy"):
        Thresholds(existing=0.4, partial=0.6)


def test_an_analysts_decision_survives_reanalysis(workspace: Workspace, embedder, tmp_path: Path) -> None:
    sessions = workspace.session_factory()
    import_few_runbooks(sessions, tmp_path)
    (tmp_path / "t.csv").write_text(
        "number,short_description,description\nINC1,printer offline,jobs stuck in queue\n", encoding="utf-8"
    )
    import_tickets(sessions, tmp_path / "t.csv")
    engine = engine_for(workspace, embedder)
    engine.refresh()
    analyze_pending(engine, sessions)
    with sessions.begin() as session:
        link = session.scalars(select(TicketRunbookLink)).first()
        assert link is not None
        link.decision = LinkDecision.REJECTED
        link.reviewed_by = "ana"
        link.reviewed_at = link.created_at
    analyze_pending(engine, sessions, reanalyse_all=True)
    with sessions() as session:
        decided = session.scalars(
            select(TicketRunbookLink).where(TicketRunbookLink.reviewed_by == "ana")
        ).one()
    assert decided.decision is LinkDecision.REJECTED


def explained(confidence: float = 0.16, dense_score: float = 0.38) -> list[str]:
    from core.matching.engine import RunbookMatch
    from core.matching.explain import explain_match

    match = RunbookMatch(
        runbook_id=1,
        title="Shared mailbox access",
        confidence=confidence,
        dense_score=dense_score,
        lexical_score=1.0,
        fused_score=0.99,
        best_section="Symptoms",
        shared_terms=("mailbox", "shared"),
        ticket_term_count=3,
        coverage_score=2 / 3,
        title_term_count=3,
        title_coverage=2 / 3,
    )
    return explain_match(match, Thresholds())


def test_a_best_word_match_with_a_low_confidence_says_why() -> None:
    """Issue 12: "Lexical 100 %, Fused 0.99, confidence 16 %" must be explained in words."""
    sentences = explained()
    assert "2 of the ticket's 3 distinct words appear in the runbook (67 %): mailbox, shared." in sentences[1]
    why = next(s for s in sentences if s.startswith("It is the best word match among the runbooks"))
    assert "confidence is 16 %" in why
    assert "its meaning is far from the ticket's (semantic similarity 0.38)" in why
    assert "only 67 % of the ticket's words are in it" in why
    assert "the ticket has only 3 words to go on" in why
    assert sentences[-1].startswith("Confidence 16 % is below the review threshold (50 %)")
    # A confident match needs no excuse.
    assert not any("yet the confidence" in s for s in explained(confidence=0.9, dense_score=0.8))
