"""Knowledge articles in drafts and gaps (issue 14): article steps as candidate steps citing their article,
and gaps "covered by KB…" ranked as the cheaper fix.

The pure rules first (hand-computed), then the analysed demo workspace with the real model and FAISS: the
Jenkins gap, which no runbook covers, gets a ServiceNow article about it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.analytics.gap_report import render_csv, render_html
from core.analytics.gaps import (
    ADOPT_EFFORT,
    CoveringArticle,
    GapCluster,
    Trend,
    analyse_gaps,
    draft_from_gap,
    engine_ticket_vectors,
    rerank,
)
from core.knowledge.adopt import adopt_article
from core.knowledge.markdown import html_to_markdown
from core.knowledge.records import ArticleState, ArticleValues
from core.knowledge.store import upsert_articles
from core.matching.embedding import SentenceTransformerEmbedder
from core.matching.engine import MatchingEngine, open_engine
from core.store.models import Ticket
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.draft_steps import Platform, article_candidate_steps, article_steps
from core.workflow.drafts import CandidateStep, RunbookDraft
from core.workflow.review import draft_from_ticket, load_ticket_review
from tests.conftest import DEMO_DIR

# A ServiceNow Knowledge ``text``: inline styles, entities, a numbered procedure under a heading.
SERVICENOW_TEXT = """\
<p style="margin: 0">Applies to: <span style="color:#333">Jenkins 2.4x</span>&nbsp;agents.</p>
<h2>Cause</h2><ol><li>The controller was upgraded to JDK 17.</li></ol>
<h2>Resolution steps</h2>
<ol>
  <li>Open <b>Manage Jenkins &gt; Nodes</b> and note the offline agents.</li>
  <li>Restart the agent service:<pre><code>systemctl restart jenkins-agent</code></pre></li>
  <li>Upgrade the agent JDK to 17 and reconnect the node.<ol><li>Check with java -version.</li></ol></li>
</ol>
<h2>Verification</h2><ol><li>The build queue drains.</li></ol>
"""
JENKINS_STEPS = [
    "Open **Manage Jenkins > Nodes** and note the offline agents.",
    "Restart the agent service: `systemctl restart jenkins-agent`",
    "Upgrade the agent JDK to 17 and reconnect the node.",
]
KB_URL = "https://acme.service-now.com/kb_view.do?sysparm_article=KB0020001"


def test_the_steps_of_an_article_are_its_procedures_top_level_items() -> None:
    markdown = html_to_markdown(SERVICENOW_TEXT)
    assert article_steps(markdown) == JENKINS_STEPS  # not the cause, the nested check or the verification
    # No procedure heading: the numbered items anywhere; bullets alone are not steps.
    assert article_steps("Intro\n\n1. Clear the cache.\n2. Sign in again.\n\n- a note") == [
        "Clear the cache.",
        "Sign in again.",
    ]
    assert article_steps("Just prose, no list.") == []


def test_article_steps_cite_their_article_and_skip_repeats_and_other_platforms() -> None:
    known = (CandidateStep("Restart the Jenkins agent service on the host", "INC0010079"),)
    steps = article_candidate_steps(
        [
            (
                "## Steps\n\n1. Restart the jenkins agent service.\n2. Run chkdsk on C: to repair it.",
                "KB1",
                "u1",
            ),
            ("## Fix\n\n1. Reconnect the node.\n2. Reconnect the node.", "Jenkins page", None),
        ],
        platform=Platform.LINUX,
        limit=5,
        known=known,
    )
    # "Restart the jenkins agent service" repeats the note (4 of its 5 terms: overlap 0.8), chkdsk is a
    # Windows step in a Linux draft, the second "Reconnect the node" repeats the first.
    assert steps == (CandidateStep("Reconnect the node.", source_article="Jenkins page"),)


def test_a_draft_lists_article_steps_apart_with_their_links() -> None:
    draft = RunbookDraft(
        title="Jenkins agents offline",
        symptoms="Builds wait.",
        steps=(CandidateStep("Agent JDK upgraded to 17.", "INC0010113"),),
        article_steps=(
            CandidateStep("Restart the agent.", source_article="KB0020001", source_url=KB_URL),
            CandidateStep("Reconnect the node.", source_article="Jenkins page"),
        ),
    )
    assert draft.to_markdown() == (
        "## Symptoms\n\nBuilds wait.\n\n## Resolution steps\n\n"
        "1. Agent JDK upgraded to 17. _(from INC0010113)_\n\n"
        "## Steps from knowledge articles\n\n_Candidates: keep what applies._\n\n"
        f"1. Restart the agent. _(from [KB0020001]({KB_URL}))_\n"
        "2. Reconnect the node. _(from Jenkins page)_\n\n"
        "## Verification\n\n_How to confirm the fix worked._\n"
    )


def cluster(key: str, impact: float, covered: bool) -> GapCluster:
    article = CoveringArticle(1, "KB0020001", "Jenkins", KB_URL, 0.7, 0.8) if covered else None
    return GapCluster(
        key=key,
        rank=0,
        label=key,
        terms=(),
        size=10,
        share=0.0,
        trend=Trend.STABLE,
        trend_counts=(),
        severity_mix=(),
        mttr_hours=None,
        resolved_count=0,
        mean_severity_weight=1.0,
        impact=impact,
        impact_hours=1.0,
        impact_share=0.0,
        cumulative_share=0.0,
        cohesion=0.0,
        central_tickets=(),
        resolution_notes=(),
        nearest_runbook=None,
        member_ticket_ids=(),
        centroid=b"",
        covering_article=article,
        fix_effort=ADOPT_EFFORT if covered else 1.0,
    )


def test_a_gap_covered_by_an_article_ranks_as_the_cheaper_fix() -> None:
    # Priorities: a 100 / 1 = 100, b 60 / 0.25 = 240, c 20 / 0.25 = 80, d 90 / 1 = 90 -> b, a, d, c.
    ranked = rerank(
        [cluster("a", 100, False), cluster("b", 60, True), cluster("c", 20, True), cluster("d", 90, False)]
    )
    assert [(c.key, c.rank) for c in ranked] == [("b", 1), ("a", 2), ("d", 3), ("c", 4)]
    # Impact and its shares are not scaled: 60 / 270, then (60 + 100) / 270, (160 + 90) / 270, 1.
    assert [round(c.impact_share, 4) for c in ranked] == [0.2222, 0.3704, 0.3333, 0.0741]
    assert [round(c.cumulative_share, 4) for c in ranked] == [0.2222, 0.5926, 0.9259, 1.0]
    assert ranked[0].covering_article is not None
    assert ranked[0].covering_article.words == "covered by KB0020001: adopt it"
    adopted = replace(ranked[0].covering_article, adopted_runbook_id=7)
    assert adopted.words == "covered by KB0020001: adopted as runbook #7, approve it"


# --- the demo workspace ----------------------------------------------------------------------------------

DRAFTED_FROM = "INC0010300"  # "jenkins builds stuck in queue": no runbook covers it


def jenkins_article() -> ArticleValues:
    return ArticleValues(
        external_id="6f2b1c0e9a",
        source_system="servicenow-kb",
        title="Jenkins agents offline: builds stuck in the queue",
        body=html_to_markdown(SERVICENOW_TEXT)
        + "\n\nSymptoms: builds wait in the Jenkins queue (Waiting for next available executor); agents "
        "disconnected with a Java version mismatch after the controller update.",
        state=ArticleState.PUBLISHED,
        updated_at=datetime(2026, 10, 1, tzinfo=UTC),
        number="KB0020001",
        url=KB_URL,
        space="IT Knowledge",
        category="CI",
    )


@pytest.fixture
def demo(analysed_demo: Workspace) -> sessionmaker[TenantSession]:
    sessions = analysed_demo.session_factory()
    with sessions.begin() as session:
        upsert_articles(
            session, [jenkins_article()], instance="https://acme.service-now.com", connector_config_id=None
        )
    return sessions


@pytest.fixture
def engine(
    analysed_demo: Workspace, demo: sessionmaker[TenantSession], embedder: SentenceTransformerEmbedder
) -> MatchingEngine:
    engine = open_engine(analysed_demo, "default", embedder)
    engine.refresh()  # indexes the article
    return engine


def ticket_id(sessions: sessionmaker[TenantSession], number: str) -> int:
    with sessions() as session:
        found = session.scalar(select(Ticket.id).where(Ticket.external_id == number))
    assert found is not None
    return found


@pytest.mark.slow
def test_a_ticket_only_an_article_covers_gets_it_in_review_and_a_draft_citing_it(
    demo: sessionmaker[TenantSession], engine: MatchingEngine
) -> None:
    drafted = ticket_id(demo, DRAFTED_FROM)
    with demo() as session:
        review = load_ticket_review(session, engine, drafted)
        assert review.articles and review.articles[0].number == "KB0020001"
        draft = draft_from_ticket(session, engine, drafted)
    assert [(s.text, s.source_article, s.source_url) for s in draft.article_steps] == [
        (text, "KB0020001", KB_URL) for text in JENKINS_STEPS
    ]
    assert draft.steps and all(step.source_article is None for step in draft.steps)  # the notes' steps
    assert f"1. {JENKINS_STEPS[0]} _(from [KB0020001]({KB_URL}))_" in draft.to_markdown()


@pytest.mark.slow
def test_the_jenkins_gap_is_covered_by_the_article_and_ranks_as_the_cheaper_fix(
    analysed_demo: Workspace, demo: sessionmaker[TenantSession], engine: MatchingEngine
) -> None:
    with (DEMO_DIR / "labels.csv").open(encoding="utf-8") as handle:
        jenkins = {row["number"] for row in csv.DictReader(handle) if row["gap"] == "jenkins-agents"}
    vectors = engine_ticket_vectors(engine, demo)
    plain = analyse_gaps(demo, vectors, engine.embedder.model_id)
    report = analyse_gaps(demo, vectors, engine.embedder.model_id, article_search=engine)

    with demo() as session:
        numbers = dict(session.execute(select(Ticket.id, Ticket.external_id)).all())
    covered = [c for c in report.clusters if c.covering_article is not None]
    assert len(covered) == 1
    gap = covered[0]
    assert {numbers[t] for t in gap.member_ticket_ids} <= jenkins
    assert gap.covering_article is not None and gap.covering_article.number == "KB0020001"
    assert gap.covering_article.words == "covered by KB0020001: adopt it"
    assert gap.fix_effort == ADOPT_EFFORT
    # Same clusters, same impacts; only the order moves: the covered gap counts four times its impact.
    assert sorted((c.key, c.impact) for c in plain.clusters) == sorted(
        (c.key, c.impact) for c in report.clusters
    )
    old_rank = next(c.rank for c in plain.clusters if c.key == gap.key)
    expected_rank = 1 + sum(1 for c in plain.clusters if c.key != gap.key and c.impact > 4 * gap.impact)
    assert gap.rank == expected_rank < old_rank
    assert [s.text for s in draft_from_gap(gap).article_steps][:1] == [JENKINS_STEPS[0]]
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert [row["covered_by_article"] for row in rows if row["key"] == gap.key] == [
        "covered by KB0020001: adopt it"
    ]
    assert {row["covered_by_article"] for row in rows if row["key"] != gap.key} == {""}
    assert f"Covered by KB0020001: adopt it</b> <a href='{KB_URL.replace('&', '&amp;')}'>KB0020001</a>" in (
        render_html(report)
    )

    with demo.begin() as session:  # adopted, not yet approved: the gap says so
        runbook_id = adopt_article(session, gap.covering_article.article_id, "ana.analyst")
    again = analyse_gaps(demo, vectors, engine.embedder.model_id, article_search=engine)
    [still] = [c for c in again.clusters if c.covering_article is not None]
    assert still.covering_article is not None
    assert (
        still.covering_article.words == f"covered by KB0020001: adopted as runbook #{runbook_id}, approve it"
    )
