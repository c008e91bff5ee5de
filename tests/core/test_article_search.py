"""Knowledge articles as the engine's second collection (issue 14): real SQLite, the real model, real FAISS.

The demo workspace's 47 runbooks cover IT operations; none is about SAP Concur expense receipts, so a
ticket about that can only be answered by the knowledge article that is.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.knowledge.records import ArticleState, ArticleValues
from core.knowledge.store import upsert_articles
from core.matching.articles import ARTICLE_FEATURE_VALUES, ArticleMatch
from core.matching.embedding import SentenceTransformerEmbedder
from core.matching.engine import MatchingEngine, open_engine
from core.matching.text import split_runbook_sections
from core.store.models import ArticleSection, KnowledgeArticle, Ticket
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.review import load_ticket_review

INSTANCE = "acme.service-now.com"
UPDATED = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

CONCUR_BODY = """## Symptoms

Uploading a receipt to an expense report in SAP Concur fails with error EXP-4012 "receipt image rejected".
The expense report cannot be submitted for approval while the receipt is missing.

## Cause

Concur rejects receipt images larger than 5 MB and PDF receipts that are password protected.

## Resolution

1. Ask the user to re-scan the receipt at 150 dpi or export it as an unprotected PDF.
2. Attach the new receipt to the expense line in Concur and submit the expense report again.
3. If EXP-4012 persists, clear the receipt store under Profile > Receipt settings.
"""

BADGE_BODY = """## Request

New starters and people who lost their building access badge request one from Facilities.

## Steps

1. Open the Facilities portal and choose "Access badge".
2. Security prints the badge; collect it at reception with photo ID.
"""

TRAVEL_BODY = """## Policy

Business travel is booked through the travel agency; economy class for flights under six hours.
"""


def article(
    external_id: str,
    title: str,
    body: str,
    *,
    state: ArticleState = ArticleState.PUBLISHED,
    number: str | None = None,
    attachment_text: str | None = None,
) -> ArticleValues:
    return ArticleValues(
        external_id=external_id,
        source_system="servicenow_kb",
        title=title,
        body=body,
        state=state,
        updated_at=UPDATED,
        number=number or external_id,
        url=f"https://acme.service-now.com/kb_view.do?sysparm_article={number or external_id}",
        space="IT Self-Service",
        category="Finance apps",
        attachment_text=attachment_text,
    )


CONCUR = article("KB0010001", "Concur: expense receipt upload fails with EXP-4012", CONCUR_BODY)
BADGE = article("KB0010002", "Request a building access badge", BADGE_BODY)
TRAVEL = article(
    "KB0010003",
    "Travel policy",
    TRAVEL_BODY,
    attachment_text="Annex: per diem table PDR-7781, meal allowance by country.",
)
CONCUR_DRAFT = article(
    "KB0010004", "Concur receipt upload error EXP-4012 (rewrite)", CONCUR_BODY, state=ArticleState.DRAFT
)
CONCUR_RETIRED = article(
    "KB0009001", "Concur receipts rejected with EXP-4012 (old UI)", CONCUR_BODY, state=ArticleState.RETIRED
)

TICKET_TITLE = "Concur won't take my receipt - EXP-4012"
TICKET_TEXT = (
    "I try to upload the receipt for my hotel to the expense report in Concur and it says error EXP-4012, "
    "receipt image rejected. I can't submit the expense report."
)


def store(sessions: sessionmaker[TenantSession], *articles: ArticleValues) -> None:
    with sessions.begin() as session:
        upsert_articles(session, articles, instance=INSTANCE, connector_config_id=None)


@pytest.fixture
def engine(analysed_demo: Workspace, embedder: SentenceTransformerEmbedder) -> MatchingEngine:
    return open_engine(analysed_demo, "default", embedder)


@pytest.fixture
def sessions(analysed_demo: Workspace) -> sessionmaker[TenantSession]:
    return analysed_demo.session_factory("default")


def article_id(sessions: sessionmaker[TenantSession], external_id: str) -> int:
    with sessions() as session:
        found = session.scalar(select(KnowledgeArticle.id).where(KnowledgeArticle.external_id == external_id))
    assert found is not None
    return found


def section_ids(sessions: sessionmaker[TenantSession], external_id: str) -> set[int]:
    wanted = article_id(sessions, external_id)
    with sessions() as session:
        return set(session.scalars(select(ArticleSection.id).where(ArticleSection.article_id == wanted)))


def test_a_ticket_only_an_article_covers_gets_it_on_top_with_a_calibrated_confidence(
    sessions: sessionmaker[TenantSession], engine: MatchingEngine
) -> None:
    store(sessions, CONCUR, BADGE, TRAVEL)
    report = engine.refresh()
    assert report.articles_rebuilt == 3
    # Title + one section per "##" heading (each is short enough for one chunk).
    assert report.article_index == {"added": 4 + 3 + 2, "removed": 0}
    with sessions.begin() as session:
        ticket = Ticket(
            external_id="INC0099001",
            source_system="servicenow",
            title=TICKET_TITLE,
            description=TICKET_TEXT,
            content_hash="concur-ticket",
        )
        session.add(ticket)
        session.flush()
        ticket_id = ticket.id

    with sessions() as session:
        review = load_ticket_review(session, engine, ticket_id)

    assert len(review.articles) == 3
    best = review.articles[0]
    assert (best.number, best.source_system, best.space, best.state) == (
        "KB0010001",
        "servicenow_kb",
        "IT Self-Service",
        "published",
    )
    assert best.url == "https://acme.service-now.com/kb_view.do?sysparm_article=KB0010001"
    assert 0.0 <= best.confidence <= 1.0
    assert best.confidence > review.articles[1].confidence
    # The article is about what the ticket says; the catalogue's best runbook is not (no runbook covers it).
    assert not review.matches or best.confidence > review.matches[0].match.confidence
    assert {"exp-4012", "receipt", "concur", "expense"} <= set(best.shared_terms)
    assert best.section_name in {"Symptoms", "Resolution", "Cause", "Title"}
    assert best.section_text
    assert best.vote_score == 0.0
    # Reuse of the shipped calibration: the same features as a runbook match, in the calibrator's order.
    assert engine.calibrator is not None
    features = np.array([[ARTICLE_FEATURE_VALUES[n](best) for n in engine.calibrator.feature_names]])
    assert best.confidence == pytest.approx(float(engine.calibrator.predict(features)[0]))


def test_draft_and_retired_articles_are_not_offered_by_default(
    sessions: sessionmaker[TenantSession], engine: MatchingEngine
) -> None:
    store(sessions, CONCUR, BADGE, CONCUR_DRAFT, CONCUR_RETIRED)
    engine.refresh()
    query = f"{TICKET_TITLE}\n{TICKET_TEXT}"

    published = engine.search_articles(query, k=10)
    assert [m.number for m in published] == ["KB0010001", "KB0010002"]
    assert {m.state for m in published} == {"published"}

    everything = engine.search_articles(query, k=10, include_unpublished=True)
    assert {m.number for m in everything} == {"KB0010001", "KB0010002", "KB0010004", "KB0009001"}
    assert {m.number: m.state for m in everything}["KB0009001"] == "retired"
    assert {m.number: m.state for m in everything}["KB0010004"] == "draft"


def test_a_changed_article_is_reindexed_and_an_unchanged_one_is_not_re_embedded(
    sessions: sessionmaker[TenantSession], engine: MatchingEngine
) -> None:
    store(sessions, CONCUR, BADGE)
    engine.refresh()
    badge_sections = section_ids(sessions, "KB0010002")
    concur_sections = section_ids(sessions, "KB0010001")
    embedded = engine.embedder.embedded_count

    # Nothing changed: nothing rebuilt, nothing embedded.
    store(sessions, CONCUR, BADGE)
    report = engine.refresh()
    assert (report.articles_rebuilt, report.article_index) == (0, {"added": 0, "removed": 0})
    assert engine.embedder.embedded_count == embedded

    # One step of the Concur article changes; the badge article is read again unchanged.
    new_step = "3. If EXP-4012 persists, ask Finance to reset the Concur mobile upload token."
    changed_body = CONCUR_BODY.replace(CONCUR_BODY.splitlines()[-1], new_step)
    old_texts = {s.text for s in split_runbook_sections(CONCUR_BODY, CONCUR.title)}
    new_texts = {s.text for s in split_runbook_sections(changed_body, CONCUR.title)}
    assert len(new_texts - old_texts) == 1  # only the "Resolution" section's text differs
    changed = article("KB0010001", CONCUR.title, changed_body)
    with sessions.begin() as session:
        changes = upsert_articles(session, [changed, BADGE], instance=INSTANCE, connector_config_id=None)
    assert (changes.updated, changes.unchanged) == (1, 1)

    report = engine.refresh()
    assert report.articles_rebuilt == 1
    assert report.article_index == {"added": 4, "removed": 4}  # the Concur article's sections, re-cut
    # The three unchanged section texts come from the embedding cache: one text reached the model.
    assert engine.embedder.embedded_count == embedded + 1
    assert section_ids(sessions, "KB0010002") == badge_sections
    assert section_ids(sessions, "KB0010001").isdisjoint(concur_sections)
    assert engine.articles.index.ids() == engine.expected_ids()["article_sections"]

    found = engine.search_articles("reset the Concur mobile upload token", k=1)
    assert [(m.number, m.section_name) for m in found] == [("KB0010001", "Resolution")]
    assert "mobile upload token" in found[0].section_text


def test_attachment_text_is_searchable_by_words(
    sessions: sessionmaker[TenantSession], engine: MatchingEngine
) -> None:
    store(sessions, CONCUR, BADGE, TRAVEL)
    engine.refresh()

    def travel(matches: list[ArticleMatch]) -> ArticleMatch:
        return next(m for m in matches if m.number == "KB0010003")

    # PDR-7781 is only in the attachment's text: the article is the one lexical hit.
    assert travel(engine.search_articles("per diem PDR-7781", k=3)).lexical_score == 1.0
    store(sessions, article("KB0010003", "Travel policy", TRAVEL_BODY))  # attachments no longer indexed
    assert travel(engine.search_articles("per diem PDR-7781", k=3)).lexical_score == 0.0


def test_a_reopened_engine_searches_its_saved_article_index(
    analysed_demo: Workspace,
    sessions: sessionmaker[TenantSession],
    engine: MatchingEngine,
    embedder: SentenceTransformerEmbedder,
) -> None:
    store(sessions, CONCUR, BADGE)
    engine.refresh()
    reopened = open_engine(analysed_demo, "default", embedder)
    assert reopened.articles.index.ids() == engine.articles.index.ids() != set()
    assert reopened.search_articles(TICKET_TEXT, k=1)[0].number == "KB0010001"


def test_articles_belong_to_their_tenant(
    analysed_demo: Workspace, sessions: sessionmaker[TenantSession], embedder: SentenceTransformerEmbedder
) -> None:
    store(sessions, CONCUR)
    open_engine(analysed_demo, "default", embedder).refresh()
    analysed_demo.ensure_tenant("acme", "Acme")
    other = open_engine(analysed_demo, "acme", embedder)
    other.refresh()
    assert other.search_articles(TICKET_TEXT, k=3) == []
    assert other.articles.index.ids() == set()
