"""PostgreSQL's lexical search ranks as SQLite's FTS5 BM25 does (issue 17, core.matching.pg_search).

The same runbooks, tickets and articles go into a SQLite workspace and a team workspace through the app's
own stores; every query must give the same rows in the same order with the same scores (to 1e-6) on both,
through the same functions the matcher calls (the engine's, the article collection's, re-matching's).
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, make_url, select, text, update
from sqlalchemy.orm import InstrumentedAttribute

from core.importing import import_runbooks
from core.knowledge.records import ArticleState, ArticleValues
from core.knowledge.store import upsert_articles
from core.matching import pg_search
from core.matching.articles import ArticleCollection
from core.matching.engine import MatchingEngine
from core.matching.lexical import FTS_TOKENIZE, fts_query
from core.matching.rematch import _lexical_near
from core.store.db import POSTGRES_KEYRING_SERVICE, postgres_keyring_account
from core.store.models import KnowledgeArticle, Runbook, TeamRole, Ticket, TicketKind
from core.store.team import add_member
from core.store.tenancy import TenantSession
from core.store.tickets import TicketValues, upsert_tickets
from core.store.workspace import Workspace
from tests.helpers.memory_keyring import MemoryKeyring
from tests.helpers.postgres import PgServer

pytestmark = pytest.mark.team

RUNBOOKS = [
    {
        "id": "ora",
        "title": "ORA-12541 TNS no listener",
        "body": "Start the listener on db-prod-01.corp.local.",
    },
    {"id": "vpn", "title": "VPN gateway down", "body": "Restart vpn-gw-01 and check the tunnel. VPN logs."},
    {"id": "vpn2", "title": "Slow network", "body": "The VPN is slow: check MTU on vpn-gw-01, then the ISP."},
    {
        "id": "cafe",
        "title": "Réseau du café",
        "body": "Le réseau Wi-Fi du café ne répond plus; l'accès est refusé.",
    },
    {
        "id": "obrien",
        "title": "Mailbox of O'Brien full",
        "body": "Archive o'brien@corp.com mail, raise quota.",
    },
    {
        "id": "split",
        "title": "Disk full",
        "body": "Brien saw it after O'Connor: clean /var/log on lnx-app-07.",
    },
    {"id": "draft", "title": "VPN draft notes", "body": "vpn vpn vpn", "status": "draft"},
    {
        "id": "disk",
        "title": "Disk cleanup",
        "body": "Disk full on lnx-app-07.corp.example.com: purge logs, disk.",
    },
]
TICKETS = [
    ("INC1", "VPN down for sales", "vpn-gw-01 unreachable since 9:00, tunnel flaps"),
    ("INC2", "Database error", "ORA-12541: TNS:no listener on db-prod-01.corp.local"),
    ("INC3", "Accès refusé", "L'accès au réseau est refusé depuis le café"),
    ("INC4", "Printer jam", "Printer on floor 3 jams on every job"),
    ("INC5", "Disk full", "lnx-app-07.corp.example.com disk full, /var/log 100%"),
    ("INC6", "Mail for O'Brien", "o'brien cannot send mail; quota exceeded"),
]
ARTICLES = [
    ("KB1", "Fix ORA-12541", "Start the listener.", "lsnrctl start; ORA-12541 gone", ArticleState.PUBLISHED),
    ("KB2", "VPN client reset", "Reset the VPN profile on the laptop.", None, ArticleState.PUBLISHED),
    (
        "KB3",
        "Disk full runbook",
        "Purge logs on lnx-app-07.",
        "disk usage chart: disk full",
        ArticleState.PUBLISHED,
    ),
    ("KB4", "VPN draft", "vpn vpn vpn vpn", None, ArticleState.DRAFT),
    ("KB5", "Café Wi-Fi", "Réseau du café: l'accès invité", None, ArticleState.PUBLISHED),
]
QUERIES = [
    "ORA-12541",  # an error code, whole
    "vpn-gw-01 unreachable",  # a hostname and its parts
    "VPN",  # in titles and bodies: the title weighs more
    "slow vpn network mtu",  # multiword
    "reseau cafe",  # accents removed on both sides
    "Réseau du CAFÉ",
    "l'accès refusé",  # a phrase of two tokens: "l" then "acces"
    "o'brien mailbox",  # a phrase: "o" then "brien"; "split" holds both, apart
    "disk full lnx-app-07.corp.example.com",
    "printer",  # found in no runbook
    "the and of",  # stop words only: no query at all
]


def _fill(workspace: Workspace, tmp_path: Path, tenant: str = "default") -> None:
    """The fixture data, through the app's importers and stores."""
    runbooks = tmp_path / f"runbooks-{tenant}.json"
    runbooks.write_text(json.dumps(RUNBOOKS), encoding="utf-8")
    sessions = workspace.session_factory(tenant)
    import_runbooks(sessions, runbooks, actor="test")
    with sessions.begin() as session:
        upsert_tickets(session, [_ticket(*row) for row in TICKETS], instance="https://itsm.example.com")
        upsert_articles(
            session,
            [_article(*row) for row in ARTICLES],
            instance="https://kb.example.com",
            connector_config_id=None,
        )


def _ticket(external_id: str, title: str, description: str) -> TicketValues:
    return TicketValues(
        external_id=external_id,
        source_system="servicenow",
        title=title,
        description=description,
        status="open",
        severity=None,
        assignee=None,
        kind=TicketKind.INCIDENT,
        category=None,
        configuration_item=None,
        resolution_notes=None,
        resolved_at=None,
        created_at=None,
        updated_at=None,
        source_url=None,
        raw_payload={},
    )


def _article(
    external_id: str, title: str, body: str, attachment_text: str | None, state: ArticleState
) -> ArticleValues:
    return ArticleValues(
        external_id=external_id,
        source_system="confluence",
        title=title,
        body=body,
        state=state,
        updated_at=None,
        attachment_text=attachment_text,
    )


Ranked = list[tuple[str, float]]  # external reference, score; best first


def _by_ref(
    session: TenantSession,
    key: InstrumentedAttribute[int],
    ref: InstrumentedAttribute[Any],
    scores: dict[int, float],
) -> Ranked:
    refs: dict[int, str] = {
        int(rowid): str(name) for rowid, name in session.execute(select(key, ref).where(key.in_(scores)))
    }
    return [(refs[rowid], scores[rowid]) for rowid in sorted(scores, key=lambda r: (-scores[r], refs[r]))]


def _runbooks(session: TenantSession, query: str) -> Ranked:
    return _by_ref(
        session, Runbook.id, Runbook.external_ref, MatchingEngine._lexical_runbooks(session, query)
    )


def _articles(session: TenantSession, query: str) -> Ranked:
    key, ref = KnowledgeArticle.id, KnowledgeArticle.external_id
    published = _by_ref(session, key, ref, ArticleCollection._lexical(session, query, False))
    every = _by_ref(session, key, ref, ArticleCollection._lexical(session, query, True))
    return [*published, ("--", 0.0), *every]


def _tickets(session: TenantSession, query: str) -> Ranked:
    """BM25 over the tickets' table, as re-matching orders it (scores read here: re-matching keeps ids)."""
    if session.get_bind().dialect.name == "postgresql":
        scores = dict(pg_search.search(session, "ticket_fts", query, tenant_id=session.tenant_id, limit=100))
    elif (match := fts_query(query)) is None:
        scores = {}
    else:
        rows = session.execute(
            text("SELECT rowid, -bm25(ticket_fts) FROM ticket_fts WHERE ticket_fts MATCH :m"), {"m": match}
        )
        scores = {int(rowid): float(score) for rowid, score in rows}
    return _by_ref(session, Ticket.id, Ticket.external_id, scores)


def _assert_same(sqlite_side: Ranked, postgres_side: Ranked, query: str) -> None:
    assert [ref for ref, _ in postgres_side] == [ref for ref, _ in sqlite_side], query
    for (ref, expected), (_, got) in zip(sqlite_side, postgres_side, strict=True):
        assert got == pytest.approx(expected, abs=1e-6), (query, ref)


@pytest.fixture
def both(workspace: Workspace, team_workspace: Workspace, tmp_path: Path) -> tuple[Workspace, Workspace]:
    _fill(workspace, tmp_path)
    _fill(team_workspace, tmp_path)
    return workspace, team_workspace


@pytest.mark.parametrize("search", [_runbooks, _articles, _tickets], ids=["runbooks", "articles", "tickets"])
def test_postgresql_ranks_and_scores_as_sqlite_fts5(
    both: tuple[Workspace, Workspace], search: Callable[[TenantSession, str], Ranked]
) -> None:
    sqlite_ws, team_ws = both
    found = 0
    with sqlite_ws.session_factory()() as lite, team_ws.session_factory()() as pg:
        for query in QUERIES:
            expected = search(lite, query)
            _assert_same(expected, search(pg, query), query)
            found += bool(expected)
    assert found >= 7  # the comparison is not between empty lists


def test_the_title_weighs_more_and_drafts_stay_out(both: tuple[Workspace, Workspace]) -> None:
    _, team_ws = both
    with team_ws.session_factory()() as pg:
        ranked = [ref for ref, _ in _runbooks(pg, "VPN")]
        assert ranked[0] == "vpn" and "draft" not in ranked
        # "split" holds both tokens of the phrase o'brien, "o" and "brien", but not side by side.
        assert [ref for ref, _ in _runbooks(pg, "o'brien")] == ["obrien"]
        assert "KB4" not in [ref for ref, _ in _articles(pg, "vpn")[:2]]


def test_re_matching_finds_the_same_tickets(both: tuple[Workspace, Workspace]) -> None:
    sqlite_ws, team_ws = both
    with sqlite_ws.session_factory()() as lite, team_ws.session_factory()() as pg:
        for ref in ("vpn", "ora", "cafe", "obrien"):
            near = {}
            for name, session in (("sqlite", lite), ("postgresql", pg)):
                runbook_id = session.scalars(select(Runbook.id).where(Runbook.external_ref == ref)).one()
                ids = _lexical_near(session, runbook_id)
                near[name] = set(session.scalars(select(Ticket.external_id).where(Ticket.id.in_(ids))))
            assert near["postgresql"] == near["sqlite"] != set(), ref


def test_an_edited_ticket_is_found_by_its_new_words(team_workspace: Workspace, tmp_path: Path) -> None:
    _fill(team_workspace, tmp_path)
    sessions = team_workspace.session_factory()
    with sessions.begin() as session:
        assert "INC4" in [ref for ref, _ in _tickets(session, "printer")]
        edited = _ticket("INC4", "Scanner offline", "The scanner on floor 3 shows error 0x80070005")
        upsert_tickets(session, [edited], instance="https://itsm.example.com")
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.external_id == "INC4"))
        assert session.scalar(text("SELECT stale FROM ticket_fts WHERE rowid = :id"), {"id": ticket_id})
    with sessions.begin() as session:
        assert [ref for ref, _ in _tickets(session, "0x80070005 scanner")] == ["INC4"]
        assert _tickets(session, "printer") == []
        assert not session.scalar(text("SELECT stale FROM ticket_fts WHERE rowid = :id"), {"id": ticket_id})
    with sessions() as session:  # committed: the next session reads it fresh
        assert session.scalar(text("SELECT count(*) FROM ticket_fts WHERE stale")) == 0


def test_a_viewer_s_search_refreshes_what_an_analyst_changed(
    team_workspace: Workspace, tmp_path: Path, pg_server: PgServer, memory_keyring: MemoryKeyring
) -> None:
    """Search tables are the viewer role's to write (a viewer's search may find them stale), within RLS."""
    _fill(team_workspace, tmp_path)
    viewer = "search_viewer"  # a server-wide login: create_login resets its password if it exists
    password = pg_server.create_login(viewer)
    with team_workspace.session_factory().begin() as session:
        add_member(session, viewer, TeamRole.VIEWER, actor="test")
        edited = _ticket("INC4", "Scanner offline", "The scanner on floor 3 shows error 0x80070005")
        upsert_tickets(session, [edited], instance="https://itsm.example.com")
    url = pg_server.url(team_workspace.engine.url.database or "", viewer)
    memory_keyring.set_password(POSTGRES_KEYRING_SERVICE, postgres_keyring_account(make_url(url)), password)
    with Workspace.open(tmp_path / "viewer", database_url=url) as workspace:
        with workspace.session_factory().begin() as session:
            assert session.scalar(text("SELECT session_user")) == viewer
            assert [ref for ref, _ in _tickets(session, "scanner 0x80070005")] == ["INC4"]
        with workspace.session_factory()() as session:
            assert session.scalar(text("SELECT count(*) FROM ticket_fts WHERE stale")) == 0


def test_a_deleted_row_disappears(team_workspace: Workspace, tmp_path: Path) -> None:
    _fill(team_workspace, tmp_path)
    sessions = team_workspace.session_factory()
    with sessions.begin() as session:
        assert "ora" in [ref for ref, _ in _runbooks(session, "ORA-12541")]
        session.execute(delete(Runbook).where(Runbook.external_ref == "ora"))
    with sessions() as session:
        assert "ora" not in [ref for ref, _ in _runbooks(session, "ORA-12541")]
        assert session.scalar(text("SELECT count(*) FROM runbook_fts")) == len(RUNBOOKS) - 1


def test_another_tenants_rows_never_appear(team_workspace: Workspace, tmp_path: Path) -> None:
    """Tenant B's rows are neither found nor counted for tenant A (the statistics are per tenant)."""
    _fill(team_workspace, tmp_path)
    mine = team_workspace.session_factory()
    with mine() as session:
        before = _tickets(session, "vpn tunnel")
    team_workspace.ensure_tenant("other")
    other = team_workspace.session_factory("other")
    with other.begin() as session:
        upsert_tickets(
            session,
            [_ticket("B1", "VPN vpn-gw-01 outage", "vpn vpn tunnel")],
            instance="https://b.example.com",
        )
    with other() as session:
        b_alone = _tickets(session, "vpn tunnel")
        assert [ref for ref, _ in b_alone] == ["B1"]
    with mine() as session:
        assert _tickets(session, "vpn tunnel") == before != []
    with mine.begin() as session:  # A's tickets change: B's score does not move
        session.execute(update(Ticket).where(Ticket.external_id == "INC4").values(description="vpn tunnel"))
    with other() as session:
        assert _tickets(session, "vpn tunnel") == b_alone


# --- The tokeniser is SQLite's ---------------------------------------------------------------------------


def _sqlite_tokens(texts: Sequence[str]) -> list[list[str]]:
    """What SQLite's FTS5 itself makes of each text (the oracle)."""
    db = sqlite3.connect(":memory:")
    db.execute(f'CREATE VIRTUAL TABLE t USING fts5(c, tokenize="{FTS_TOKENIZE}")')
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    db.executemany("INSERT INTO t(rowid, c) VALUES (?, ?)", [(i + 1, s) for i, s in enumerate(texts)])
    tokens: list[list[str]] = [[] for _ in texts]
    for doc, term in db.execute("SELECT doc, term FROM v ORDER BY doc, offset"):
        tokens[doc - 1].append(term)
    db.close()
    return tokens


def test_the_tokens_are_fts5_unicode61s() -> None:
    """Every character of the Latin, Greek, Cyrillic, combining-mark and CJK blocks, alone and inside a
    word, and random strings mixing them with separators and tokenchars, give FTS5's tokens."""
    code_points = [*range(0x20, 0x2000), *range(0x3000, 0x3100), *range(0x4E00, 0x4F00), 0x1F600, 0xE000]
    texts = [f"x{chr(c)}y {chr(c)}z {chr(c)} A{chr(c)}{chr(c)}B" for c in code_points]
    rng = random.Random(17)
    pool = [chr(c) for c in rng.sample(code_points, 400)] + list("aZ09-._@' ,;\u0301\u0308éÉßİ")
    texts += ["".join(rng.choice(pool) for _ in range(rng.randint(1, 24))) for _ in range(3000)]
    texts += ["ORA-12541 lnx-app-07.corp.example.com o'brien@corp.com v2.14.1 max_seq_length L'ACCÈS"]
    assert [pg_search.fts_tokens(s) for s in texts] == _sqlite_tokens(texts)


def test_a_tsquery_literal_takes_lexemes_as_they_are() -> None:
    assert pg_search.tsquery_literal(["ora-12541", "it's", "a\\b"]) == "'ora-12541' | 'it''s' | 'a\\\\b'"
    assert pg_search.tsquery_literal(["l", "acces"], "&") == "'l' & 'acces'"
