"""Hybrid runbook matching: dense (FAISS over sections), lexical (FTS5 BM25) and past decisions, calibrated.

How a ticket finds its runbooks:

1. Its prepared text (:func:`core.matching.text.prepare_ticket_text`) is embedded (cached by text hash).
2. Candidates: the runbook-section index returns the nearest sections (a runbook scores its best section's
   cosine), FTS5 BM25 returns the best lexical hits over the approved runbooks' title and body terms, and
   similar decided tickets add the runbooks they were linked to (:mod:`core.matching.votes`). Sections exist
   because all-MiniLM-L6-v2 reads 256 word pieces at most: a whole runbook would be cut off after its
   symptoms; a section (<= ~200 words, see ``core.matching.text``) is read whole.
3. Every candidate gets four scores that belong to the (ticket, runbook) pair alone: the cosine of its best
   section (computed exactly when the dense search did not return it), the share of the ticket's distinct
   words found in the runbook (``coverage_score``), the share of the runbook title's words found in the
   ticket (``title_coverage``: what the runbook is about, said by the ticket; on the gitbugs set it is what
   gives the ranking back the focus BM25 had), and the vote of similar past decisions (``vote_score``).
4. Confidence: a calibrator maps those four scores to the probability that the runbook is the right one (the
   default calibration ships in ``resources/calibration.json``); matches are ordered by it.

Why only pair scores feed the confidence (issue 12, item 3): BM25 divided by the query's best hit and the
reciprocal rank fusion of the two rankings say how a runbook compares with the *other* runbooks the query
found, so the same ticket text scored 0.73 in one workspace and 0.37 in another. They are still computed
(``lexical_score``, ``fused_score``) because the fused ranking is what ``bench/retrieval.py`` measures and it
breaks ties, but a confidence never depends on what else is in the catalogue or in the batch.

Knowledge articles are a second collection, ranked the same way with the same calibrator
(:mod:`core.matching.articles`, :meth:`MatchingEngine.search_articles`).

Only *approved* runbooks are matched. Indexes live under ``<workspace>/indexes/<tenant>/`` and are repaired
against the store when opened (:meth:`MatchingEngine.refresh`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import delete, select, text
from sqlalchemy.orm import sessionmaker

from core.matching import pg_search
from core.matching.calibration import (
    BM25_NORMALISED,
    DENSE_COSINE,
    FUSED_SCORE,
    LEXICAL_COVERAGE,
    TITLE_COVERAGE,
    VOTE_SCORE,
    Calibrator,
    calibrator_from_dict,
)
from core.matching.embedding import Embedder
from core.matching.embedding_cache import CachedEmbedder, text_hash
from core.matching.lexical import fts_query, shared_terms, term_parts
from core.matching.text import lexical_terms, split_runbook_sections, ticket_lexical_text, ticket_text
from core.matching.vector_index import IndexCorruptError, IndexNotFoundError, ModelMismatchError, VectorIndex
from core.matching.votes import (
    DecidedTickets,
    Evidence,
    RunbookVote,
    VoteSettings,
    load_past_decisions,
    vote_scores,
)
from core.progress import NO_PROGRESS, Progress
from core.resources import default_calibration_path
from core.settings import load_settings
from core.store.models import Runbook, RunbookSection, RunbookStatus, Ticket, utcnow
from core.store.team import is_team_session
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace

if TYPE_CHECKING:
    from core.matching.articles import ArticleCollection, ArticleMatch

RRF_K = 60
CANDIDATES = 50
TITLE_WEIGHT = 3.0  # bm25() column weight of the title against the body
# What the shipped calibration is fitted on: scores of the (ticket, runbook) pair alone (module docstring).
FEATURES = (DENSE_COSINE, LEXICAL_COVERAGE, TITLE_COVERAGE, VOTE_SCORE)
SECTION_BATCH = 256  # sections embedded between two progress reports of a refresh (~10 s cold on 2 cores)


@dataclass(frozen=True, slots=True)
class RunbookMatch:
    runbook_id: int
    title: str
    confidence: float
    dense_score: float  # cosine of the runbook's best section to the ticket
    lexical_score: float  # BM25 normalised to the best lexical hit of this query, in [0, 1] (not calibrated)
    fused_score: float  # reciprocal rank fusion, scaled so rank 1 on both sides is 1.0 (not calibrated)
    best_section: str | None
    shared_terms: tuple[str, ...] = ()
    coverage_score: float = 0.0  # share of the ticket's distinct words found in the runbook, in [0, 1]
    vote_score: float = 0.0  # similar past tickets' decisions, in [-1, 1] (core.matching.votes)
    evidence_for: tuple[str, ...] = ()  # external ids of similar tickets linked to this runbook
    evidence_against: tuple[str, ...] = ()  # ... that refused it, or that it did not help
    evidence: tuple[Evidence, ...] = ()  # the decisions behind the vote, strongest first
    ticket_term_count: int = 0  # how many distinct words of the ticket ``coverage_score`` is a share of
    title_coverage: float = 0.0  # share of the runbook title's distinct words found in the ticket, in [0, 1]
    title_term_count: int = 0  # how many distinct words the runbook's title has


@dataclass(frozen=True, slots=True)
class SimilarTicket:
    ticket_id: int
    external_id: str
    title: str
    status: str | None
    resolution_notes: str | None
    similarity: float
    resolved: bool


@dataclass
class RefreshReport:
    sections_rebuilt: int = 0
    runbook_index: dict[str, int] = field(default_factory=dict)
    ticket_index: dict[str, int] = field(default_factory=dict)
    articles_rebuilt: int = 0  # knowledge articles whose sections were cut again (core.matching.articles)
    article_index: dict[str, int] = field(default_factory=dict)


# Every feature a calibrator may name, read off a match. The last two are the query-relative scores older
# calibrations used; they still load, but lose the "same text, same confidence" guarantee.
FEATURE_VALUES: Mapping[str, Callable[[RunbookMatch], float]] = {
    DENSE_COSINE: lambda m: m.dense_score,
    LEXICAL_COVERAGE: lambda m: m.coverage_score,
    TITLE_COVERAGE: lambda m: m.title_coverage,
    VOTE_SCORE: lambda m: m.vote_score,
    BM25_NORMALISED: lambda m: m.lexical_score,
    FUSED_SCORE: lambda m: m.fused_score,
}


def feature_matrix(names: Sequence[str], matches: Sequence[RunbookMatch]) -> np.ndarray:
    """One row per match, one column per feature name, in the order given."""
    getters = [FEATURE_VALUES[name] for name in names]
    return np.array([[get(m) for get in getters] for m in matches], dtype=np.float64).reshape(
        len(matches), len(getters)
    )


def features(matches: Sequence[RunbookMatch]) -> np.ndarray:
    """The :data:`FEATURES` columns of ``matches``: what a new calibration is fitted on."""
    return feature_matrix(FEATURES, matches)


def check_feature_names(calibrator: Calibrator, where: object) -> Calibrator:
    unknown = set(calibrator.feature_names) - set(FEATURE_VALUES)
    if unknown:
        raise ValueError(
            f"{where}: calibration uses unknown features {sorted(unknown)} (known: {sorted(FEATURE_VALUES)})"
        )
    return calibrator


def load_default_calibrator(path: Path) -> Calibrator | None:
    if not path.is_file():
        return None
    return check_feature_names(calibrator_from_dict(json.loads(path.read_text(encoding="utf-8"))), path)


def calibrator_features(calibrator: Calibrator, matches: Sequence[RunbookMatch]) -> np.ndarray:
    """The features this calibrator was fitted on, in its order."""
    return feature_matrix(calibrator.feature_names, matches)


def lexical_coverage(ticket_terms: Collection[str], runbook_terms: Collection[str]) -> float:
    """Share of the ticket's distinct words that the runbook contains, in [0, 1].

    A compound term (``vpn-gw-01``, an error code, a hostname) counts as found when the runbook has it whole
    or has all its parts. Every word counts the same: weighting words by how rare they are among the
    runbooks (IDF) would make the score of one pair move whenever a runbook is added, and measured no better
    on the demo (``bench/decisions.py`` history in ``bench/README.md``); the same number is also what the
    review screen can say in words ("9 of the ticket's 12 words are in the runbook").
    """
    distinct = set(ticket_terms)
    if not distinct:
        return 0.0
    found = 0
    for term in distinct:
        if term in runbook_terms:
            found += 1
            continue
        parts = term_parts(term)
        if parts and all(part in runbook_terms for part in parts):
            found += 1
    return found / len(distinct)


def rank_by_confidence(calibrator: Calibrator | None, matches: Sequence[RunbookMatch]) -> list[RunbookMatch]:
    """Each match with its calibrated confidence, best first (ties: fused rank, cosine, runbook id).

    Without a calibrator the cosine stands in for the confidence and the fused order is kept.
    """
    if not matches:
        return []
    if calibrator is None:
        probabilities = np.clip([m.dense_score for m in matches], 0.0, 1.0)
    else:
        probabilities = calibrator.predict(calibrator_features(calibrator, matches))
    out = [replace(m, confidence=float(p)) for m, p in zip(matches, probabilities, strict=True)]
    by_confidence = calibrator is not None
    return sorted(
        out,
        key=lambda m: (-m.confidence if by_confidence else 0.0, -m.fused_score, -m.dense_score, m.runbook_id),
    )


INDEXES_FOLDER = "indexes"  # <workspace>/indexes/<tenant>/


def open_engine(workspace: Workspace, tenant_slug: str, embedder: Embedder) -> MatchingEngine:
    """The engine for one tenant of a workspace, with the tenant's own calibration when one is active
    (refitted from its decisions, :mod:`core.matching.tenant_calibration`), else the shipped default."""
    from core.matching.tenant_calibration import load_active_calibrator  # it uses this module (lazily)

    sessions = workspace.session_factory(tenant_slug)
    with sessions() as session:
        tenant_calibrator = load_active_calibrator(session, known_features=FEATURES)
    return MatchingEngine(
        sessions,
        embedder,
        workspace.tenant_folder(INDEXES_FOLDER, tenant_slug),
        tenant_calibrator or load_default_calibrator(default_calibration_path()),
    )


@dataclass(frozen=True, slots=True)
class _RunbookTerms:
    """A runbook's lexical terms at one content version: whole (shown as shared) and with compound parts."""

    content_hash: str
    whole: frozenset[str]
    with_parts: frozenset[str]
    title: frozenset[str]


def _reporting(
    fetch: Callable[[list[int]], np.ndarray], progress: Progress, what: str, total: int
) -> Callable[[list[int]], np.ndarray]:
    """``fetch`` that reports how many of ``total`` vectors it has embedded after each batch."""
    done = 0

    def fetch_and_report(ids: list[int]) -> np.ndarray:
        nonlocal done
        vectors = fetch(ids)
        done += len(ids)
        progress.report(done, total, f"indexed {done:,} of {total:,} {what}")
        return vectors

    return fetch_and_report


class MatchingEngine:
    """One tenant's matcher. Thread-safe for searches; refresh and analysis run in a background job."""

    def __init__(
        self,
        sessions: sessionmaker[TenantSession],
        embedder: Embedder,
        index_dir: Path,
        calibrator: Calibrator | None = None,
    ) -> None:
        self._sessions = sessions
        self.embedder = CachedEmbedder(embedder, sessions)
        self._index_dir = index_dir
        self.calibrator = calibrator
        self._lock = threading.RLock()
        self.runbook_index = self._open_index("runbook_sections")
        self.ticket_index = self._open_index("tickets")
        # section id -> (runbook id, section name); read at once so a just-opened engine can search its saved
        # index, and kept current by refresh().
        self._section_owner: dict[int, tuple[int, str]] = self._load_section_owners()
        self._terms_cache: dict[int, _RunbookTerms] = {}
        self.articles = self._open_articles()
        # What "now" is for the age of past decisions (votes); tests pin it.
        self.clock: Callable[[], datetime] = utcnow

    # ------------------------------------------------------------------------------------------------
    # Indexes

    def _open_articles(self) -> ArticleCollection:
        # Imported here: the article collection builds on this module's scores (it imports this module).
        from core.matching.articles import ARTICLE_INDEX_NAME, ArticleCollection

        return ArticleCollection(self._sessions, self.embedder, self._open_index(ARTICLE_INDEX_NAME))

    def _index_path(self, name: str) -> Path:
        return self._index_dir / f"{name}.faiss"

    def _open_index(self, name: str) -> VectorIndex:
        try:
            return VectorIndex.load(self._index_path(name), expected_model_id=self.embedder.model_id)
        except (IndexNotFoundError, IndexCorruptError, ModelMismatchError):
            # A missing, damaged or other-model index is rebuilt from the store by refresh(); nothing is lost.
            return VectorIndex(self.embedder.model_id, self.embedder.dimension)

    @property
    def _section_owner(self) -> dict[int, tuple[int, str]]:
        """Section id -> (runbook id, section name); setting it also regroups the sections by runbook."""
        return self._owners

    @_section_owner.setter
    def _section_owner(self, owners: dict[int, tuple[int, str]]) -> None:
        by_runbook: dict[int, list[tuple[int, str]]] = {}
        for section_id, (runbook_id, name) in sorted(owners.items()):
            by_runbook.setdefault(runbook_id, []).append((section_id, name))
        self._owners = owners
        self._sections_by_runbook = by_runbook

    def _load_section_owners(self) -> dict[int, tuple[int, str]]:
        with self._sessions() as session:
            rows = session.execute(select(RunbookSection.id, RunbookSection.runbook_id, RunbookSection.name))
            return {section_id: (runbook_id, name) for section_id, runbook_id, name in rows}

    def refresh(self, progress: Progress = NO_PROGRESS) -> RefreshReport:
        """Bring sections and both indexes in line with the store, touching only what differs.

        A first build embeds every section and ticket (minutes for a large store), so each embedded batch is
        reported through ``progress`` (roadmap: Batch Analysis Tool, the CLI shows it).
        """
        report = RefreshReport()
        with self._lock:
            report.sections_rebuilt = self._sync_sections()
            with self._sessions() as session:
                sections = session.execute(
                    select(
                        RunbookSection.id, RunbookSection.runbook_id, RunbookSection.name, RunbookSection.text
                    )
                ).all()
                ticket_ids = set(session.scalars(select(Ticket.id)))
            self._section_owner = {sid: (rid, name) for sid, rid, name, _ in sections}
            section_text = {sid: body for sid, _, _, body in sections}
            sync = self.runbook_index.sync_with(
                section_text,
                _reporting(
                    lambda ids: self.embedder.encode([section_text[i] for i in ids]),
                    progress,
                    "runbook sections",
                    len(section_text.keys() - self.runbook_index.ids()),
                ),
                batch_size=SECTION_BATCH,
            )
            report.runbook_index = {"added": sync.added, "removed": sync.removed}
            sync = self.ticket_index.sync_with(
                ticket_ids,
                _reporting(
                    self._ticket_vectors, progress, "tickets", len(ticket_ids - self.ticket_index.ids())
                ),
            )
            report.ticket_index = {"added": sync.added, "removed": sync.removed}
            articles = self.articles.refresh(progress)
            report.articles_rebuilt = articles.articles_rebuilt
            report.article_index = {"added": articles.added, "removed": articles.removed}
            self.save()
        return report

    def expected_ids(self) -> dict[str, set[int]]:
        """What the indexes should hold according to the store (``runbook-desk index check``)."""
        with self._sessions() as session:
            return {
                "runbook_sections": set(session.scalars(select(RunbookSection.id))),
                "tickets": set(session.scalars(select(Ticket.id))),
                "article_sections": self.articles.expected_ids(),
            }

    def reset_indexes(self) -> None:
        """Forget both indexes (``index rebuild``); the next refresh re-adds everything from the cache."""
        with self._lock:
            self.runbook_index = VectorIndex(self.embedder.model_id, self.embedder.dimension)
            self.ticket_index = VectorIndex(self.embedder.model_id, self.embedder.dimension)
            self.articles.index = VectorIndex(self.embedder.model_id, self.embedder.dimension)

    def save(self) -> None:
        self._index_dir.mkdir(parents=True, exist_ok=True)
        self.runbook_index.save(self._index_path("runbook_sections"))
        self.ticket_index.save(self._index_path("tickets"))
        self.articles.index.save(self._index_path("article_sections"))

    def _ticket_vectors(self, ids: list[int]) -> np.ndarray:
        with self._sessions() as session:
            by_id = {t.id: ticket_text(t) for t in session.scalars(select(Ticket).where(Ticket.id.in_(ids)))}
        return self.embedder.encode([by_id[i] for i in ids])

    def index_tickets(self, tickets: Iterable[Ticket]) -> None:
        """Add or replace tickets in the ticket index (after an import, sync or edit)."""
        batch = list(tickets)
        if batch:
            self.ticket_index.add(
                [t.id for t in batch], self.embedder.encode([ticket_text(t) for t in batch])
            )

    def _sync_sections(self) -> int:
        """Sections of approved runbooks, rebuilt where the runbook changed; others' sections removed."""
        rebuilt = 0
        with self._sessions.begin() as session:
            current = dict(  # .all(): a Result has keys(), so dict() would read it as a mapping
                session.execute(
                    select(Runbook.id, Runbook.content_hash).where(Runbook.status == RunbookStatus.APPROVED)
                ).all()
            )
            indexed = dict(
                session.execute(
                    select(RunbookSection.runbook_id, RunbookSection.runbook_content_hash).distinct()
                ).all()
            )
            stale = [rid for rid, digest in indexed.items() if current.get(rid) != digest]
            if stale:
                session.execute(delete(RunbookSection).where(RunbookSection.runbook_id.in_(stale)))
            for runbook in session.scalars(
                select(Runbook).where(
                    Runbook.id.in_([rid for rid, digest in current.items() if indexed.get(rid) != digest])
                )
            ):
                for ordinal, section in enumerate(split_runbook_sections(runbook.body, runbook.title)):
                    session.add(
                        RunbookSection(
                            tenant_id=session.tenant_id,
                            runbook_id=runbook.id,
                            ordinal=ordinal,
                            name=section.name[:200],  # the column's length, as articles' (PostgreSQL checks)
                            text=section.text,
                            text_hash=text_hash(section.text),
                            runbook_content_hash=runbook.content_hash,
                        )
                    )
                rebuilt += 1
        return rebuilt

    # ------------------------------------------------------------------------------------------------
    # Search

    def search(
        self,
        query_text: str,
        k: int = 5,
        *,
        exclude_ticket_id: int | None = None,
        lexical_text: str | None = None,
    ) -> list[RunbookMatch]:
        """Top-k runbooks for a text; ``exclude_ticket_id``: the ticket the text is (it does not vote);
        ``lexical_text``: what its FTS search is made of, when not the text (see :meth:`search_many`)."""
        vector = self.embedder.encode([query_text])
        lexical = None if lexical_text is None else [lexical_text]
        return self.search_many(
            [query_text], vector, k, exclude_ticket_ids=[exclude_ticket_id], lexical_texts=lexical
        )[0]

    def search_many(
        self,
        texts: Sequence[str],
        vectors: np.ndarray,
        k: int = 5,
        exclude_ticket_ids: Sequence[int | None] | None = None,
        lexical_texts: Sequence[str] | None = None,
    ) -> list[list[RunbookMatch]]:
        """Top-k runbooks per query; ``vectors`` are the queries' embeddings, batched by the caller.

        ``exclude_ticket_ids[i]`` is the ticket query ``i`` is, so that its own past decision never votes
        for it (None for a free text); without it every decided ticket may vote. ``lexical_texts[i]``, when
        given, is what the FTS search of query ``i`` is made of instead of ``texts[i]``
        (:func:`core.matching.text.ticket_lexical_text`: an alert's raw expressions stay searchable there);
        the pair scores (coverage, shared terms) still read ``texts[i]``.
        """
        if exclude_ticket_ids is not None and len(exclude_ticket_ids) != len(texts):
            raise ValueError(f"{len(exclude_ticket_ids)} exclude_ticket_ids for {len(texts)} queries")
        if lexical_texts is not None and len(lexical_texts) != len(texts):
            raise ValueError(f"{len(lexical_texts)} lexical_texts for {len(texts)} queries")
        fts_texts = texts if lexical_texts is None else lexical_texts
        if not len(texts):
            return []
        dense_hits = self.runbook_index.search(vectors, CANDIDATES * 3)
        results = []
        with self._sessions() as session:
            votes = self._votes(session, vectors, exclude_ticket_ids)
            for row, (query_text, hits) in enumerate(zip(texts, dense_hits, strict=True)):
                results.append(
                    self._rank(
                        session,
                        query_text,
                        vectors[row],
                        self._dense_runbooks(hits),
                        self._lexical_runbooks(session, fts_texts[row]),
                        votes[row],
                        k,
                    )
                )
        return results

    def search_articles(
        self,
        query_text: str,
        k: int = 3,
        *,
        lexical_text: str | None = None,
        include_unpublished: bool = False,
    ) -> list[ArticleMatch]:
        """Top-k knowledge articles for a text, published ones only unless ``include_unpublished``, each with
        a confidence from this engine's calibrator on the same pair scores (:mod:`core.matching.articles`)."""
        vector = self.embedder.encode([query_text])[0]
        return self.articles.search(
            query_text,
            vector,
            k,
            calibrator=self.calibrator,
            lexical_text=lexical_text,
            include_unpublished=include_unpublished,
        )

    def score_pair(self, ticket_id: int, runbook_id: int) -> RunbookMatch | None:
        """The calibrated match of one given pair, features included (see :meth:`score_pairs`)."""
        return self.score_pairs([(ticket_id, runbook_id)])[0]

    def score_pairs(self, pairs: Sequence[tuple[int, int]]) -> list[RunbookMatch | None]:
        """Calibrated matches of given (ticket id, runbook id) pairs, whether or not the search finds them.

        What a refit of the calibration needs: the features of every pair an analyst decided, including
        a runbook they linked that was never suggested. The ticket's vector is the one in the ticket index
        (nothing is embedded) and the ticket itself does not vote. None for a pair whose ticket is not
        indexed or whose runbook is not approved.
        """
        out: list[RunbookMatch | None] = [None] * len(pairs)
        with self._sessions() as session:
            approved = set(
                session.scalars(
                    select(Runbook.id).where(
                        Runbook.id.in_({rid for _, rid in pairs}), Runbook.status == RunbookStatus.APPROVED
                    )
                )
            )
            tickets = {
                t.id: t
                for t in session.scalars(select(Ticket).where(Ticket.id.in_({tid for tid, _ in pairs})))
            }
            wanted: dict[int, set[int]] = {}
            for ticket_id, runbook_id in pairs:
                if ticket_id in tickets and ticket_id in self.ticket_index and runbook_id in approved:
                    wanted.setdefault(ticket_id, set()).add(runbook_id)
            ticket_ids = sorted(wanted)
            if not ticket_ids:
                return out
            vectors = self.ticket_index.vectors(ticket_ids)
            votes = self._votes(session, vectors, ticket_ids)
            scored: dict[tuple[int, int], RunbookMatch] = {}
            for row, ticket_id in enumerate(ticket_ids):
                query_text = ticket_text(tickets[ticket_id])
                hits = self.runbook_index.search(vectors[row : row + 1], CANDIDATES * 3)[0]
                matches = self._rank(
                    session,
                    query_text,
                    vectors[row],
                    self._dense_runbooks(hits),
                    self._lexical_runbooks(session, ticket_lexical_text(tickets[ticket_id])),
                    votes[row],
                    None,
                    only=wanted[ticket_id],
                )
                scored.update({(ticket_id, m.runbook_id): m for m in matches})
        return [scored.get(pair) for pair in pairs]

    @staticmethod
    def features_of(matches: Sequence[RunbookMatch]) -> np.ndarray:
        """The :data:`FEATURES` matrix of ``matches`` (what ``PlattCalibrator(FEATURES).fit`` takes)."""
        return features(matches)

    def _votes(
        self,
        session: TenantSession,
        vectors: np.ndarray,
        exclude_ticket_ids: Sequence[int | None] | None,
    ) -> list[dict[int, RunbookVote]]:
        """Per query, the votes of similar decided tickets (:mod:`core.matching.votes`)."""
        settings = load_settings(session, VoteSettings)
        now = self.clock()
        decisions = load_past_decisions(session, settings, now)
        indexed = sorted({d.ticket_id for d in decisions if d.ticket_id in self.ticket_index})
        if not indexed:
            return [{} for _ in range(len(vectors))]
        decided = DecidedTickets.with_vectors(
            decisions, dict(zip(indexed, self.ticket_index.vectors(indexed), strict=True))
        )
        return vote_scores(vectors, decided, settings, now, exclude_ticket_ids)

    def _dense_runbooks(self, hits: list[tuple[int, float]]) -> dict[int, tuple[float, str]]:
        best: dict[int, tuple[float, str]] = {}
        for section_id, score in hits:
            owner = self._section_owner.get(section_id)
            if owner is None:
                continue
            runbook_id, name = owner
            if runbook_id not in best or score > best[runbook_id][0]:
                best[runbook_id] = (score, name)
            if len(best) >= CANDIDATES:
                break
        return best

    @staticmethod
    def _lexical_runbooks(session: TenantSession, query_text: str) -> dict[int, float]:
        if is_team_session(session):  # core.matching.pg_search: the same BM25 on PostgreSQL
            ranked = pg_search.search(
                session,
                "runbook_fts",
                query_text,
                tenant_id=session.tenant_id,
                limit=CANDIDATES,
                weights=(TITLE_WEIGHT, 1.0),
                where="src.status = 'approved'",
            )
            return dict(ranked)
        match = fts_query(query_text)
        if match is None:
            return {}
        rows = session.execute(
            text(
                "SELECT runbook_fts.rowid, -bm25(runbook_fts, :title_weight, 1.0) AS score "
                "FROM runbook_fts JOIN runbooks r ON r.id = runbook_fts.rowid "
                "WHERE runbook_fts MATCH :match AND r.tenant_id = :tenant AND r.status = 'approved' "
                "ORDER BY score DESC LIMIT :limit"
            ),
            {"match": match, "tenant": session.tenant_id, "limit": CANDIDATES, "title_weight": TITLE_WEIGHT},
        ).all()
        return {int(rowid): float(score) for rowid, score in rows}

    def _best_section(self, runbook_id: int, vector: np.ndarray) -> tuple[float, str | None]:
        """Exact cosine of the runbook's best section, for a candidate the dense search did not return."""
        sections = [
            (sid, name)
            for sid, name in self._sections_by_runbook.get(runbook_id, ())
            if sid in self.runbook_index
        ]
        if not sections:
            return 0.0, None
        scores = self.runbook_index.vectors([sid for sid, _ in sections]) @ vector
        best = int(np.argmax(scores))
        return float(scores[best]), sections[best][1]

    def _rank(
        self,
        session: TenantSession,
        query_text: str,
        vector: np.ndarray,
        dense: dict[int, tuple[float, str]],
        lexical: dict[int, float],
        votes: Mapping[int, RunbookVote],
        k: int | None,
        *,
        only: Collection[int] | None = None,
    ) -> list[RunbookMatch]:
        """Score every candidate on its own (module docstring), calibrate, and keep the best ``k``.

        ``only``: score exactly these runbooks (ignoring the others), found by the search or not.
        """
        dense_rank = {
            rid: rank for rank, rid in enumerate(sorted(dense, key=lambda r: (-dense[r][0], r)), start=1)
        }
        lexical_rank = {
            rid: rank for rank, rid in enumerate(sorted(lexical, key=lambda r: (-lexical[r], r)), start=1)
        }
        top_lexical = max(lexical.values(), default=0.0)
        voted = {rid for rid, vote in votes.items() if vote.score > 0}
        candidates = set(only) if only is not None else dense.keys() | lexical.keys() | voted
        if not candidates:
            return []
        runbooks = {
            rid: (title, digest)
            for rid, title, digest in session.execute(
                select(Runbook.id, Runbook.title, Runbook.content_hash).where(
                    Runbook.id.in_(candidates), Runbook.status == RunbookStatus.APPROVED
                )
            )
        }
        terms = self._runbook_terms(session, runbooks)
        query_terms = lexical_terms(query_text)
        distinct_query_terms = set(query_terms)
        query_with_parts = distinct_query_terms | {part for term in query_terms for part in term_parts(term)}
        matches = []
        for rid in sorted(runbooks):
            fused = 0.0
            if rid in dense_rank:
                fused += 1 / (RRF_K + dense_rank[rid])
            if rid in lexical_rank:
                fused += 1 / (RRF_K + lexical_rank[rid])
            cosine, section = dense[rid] if rid in dense else self._best_section(rid, vector)
            vote = votes.get(rid, RunbookVote(0.0))
            matches.append(
                RunbookMatch(
                    runbook_id=rid,
                    title=runbooks[rid][0],
                    confidence=0.0,
                    dense_score=cosine,
                    lexical_score=lexical.get(rid, 0.0) / top_lexical if top_lexical > 0 else 0.0,
                    fused_score=fused * (RRF_K + 1) / 2,  # 1.0 = first on both sides
                    best_section=section,
                    coverage_score=lexical_coverage(distinct_query_terms, terms[rid].with_parts),
                    vote_score=vote.score,
                    evidence_for=vote.evidence_for,
                    evidence_against=vote.evidence_against,
                    evidence=vote.evidence,
                    ticket_term_count=len(distinct_query_terms),
                    title_coverage=lexical_coverage(terms[rid].title, query_with_parts),
                    title_term_count=len(terms[rid].title),
                )
            )
        ranked = self._calibrated(matches)[:k] if k is not None else self._calibrated(matches)
        return [
            replace(m, shared_terms=tuple(shared_terms(query_terms, terms[m.runbook_id].whole)))
            for m in ranked
        ]

    def _runbook_terms(
        self, session: TenantSession, runbooks: Mapping[int, tuple[str, str]]
    ) -> dict[int, _RunbookTerms]:
        """The runbooks' lexical terms, tokenised once per content version (every search reads them)."""
        stale = [rid for rid, (_, digest) in runbooks.items() if self._cached_terms(rid, digest) is None]
        if stale:
            for rid, title, body, digest in session.execute(
                select(Runbook.id, Runbook.title, Runbook.body, Runbook.content_hash).where(
                    Runbook.id.in_(stale)
                )
            ):
                whole = frozenset(lexical_terms(f"{title}\n{body}"))
                parts = {part for term in whole for part in term_parts(term)}
                self._terms_cache[rid] = _RunbookTerms(
                    digest, whole, whole | parts, frozenset(lexical_terms(title))
                )
        return {rid: self._terms_cache[rid] for rid in runbooks}

    def _cached_terms(self, runbook_id: int, digest: str) -> _RunbookTerms | None:
        cached = self._terms_cache.get(runbook_id)
        return cached if cached is not None and cached.content_hash == digest else None

    def _calibrated(self, matches: list[RunbookMatch]) -> list[RunbookMatch]:
        return rank_by_confidence(self.calibrator, matches)

    # ------------------------------------------------------------------------------------------------
    # Similar tickets

    def similar_tickets(self, ticket_id: int, k: int = 5) -> list[SimilarTicket]:
        """Nearest past tickets, resolved ones first (their resolution notes are the useful part)."""
        if ticket_id not in self.ticket_index:
            return []
        vector = self.ticket_index.vectors([ticket_id])
        hits = [
            (tid, score) for tid, score in self.ticket_index.search(vector, k * 4 + 1)[0] if tid != ticket_id
        ]
        with self._sessions() as session:
            rows = {
                t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_([h[0] for h in hits])))
            }
        similar = [
            SimilarTicket(
                ticket_id=tid,
                external_id=rows[tid].external_id,
                title=rows[tid].title,
                status=rows[tid].status,
                resolution_notes=rows[tid].resolution_notes,
                similarity=score,
                resolved=rows[tid].resolved_at is not None or bool(rows[tid].resolution_notes),
            )
            for tid, score in hits
            if tid in rows
        ]
        similar.sort(key=lambda s: (not s.resolved, -s.similarity))
        return similar[:k]
