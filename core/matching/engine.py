"""Hybrid runbook matching: dense (FAISS over runbook sections) + lexical (FTS5 BM25), calibrated.

How a ticket finds its runbooks:

1. Its prepared text (:func:`core.matching.text.prepare_ticket_text`) is embedded (cached by text hash).
2. Dense: the runbook-section index returns the nearest sections; a runbook scores its best section's cosine.
   Sections exist because all-MiniLM-L6-v2 reads 256 word pieces at most: a whole runbook would be cut off
   after its symptoms; a section (<= ~200 words, see ``core.matching.text``) is read whole.
3. Lexical: FTS5 BM25 over the approved runbooks' title and body terms.
4. Fusion: reciprocal rank fusion of the two rankings (chosen over a weighted sum by ``bench/retrieval.py``).
5. Confidence: a calibrator maps (dense cosine, normalised BM25, fused score) to the probability that the
   runbook is the right one; the default calibration ships in ``resources/calibration.json``.

Only *approved* runbooks are matched. Indexes live under ``<workspace>/indexes/<tenant>/`` and are repaired
against the store when opened (:meth:`MatchingEngine.refresh`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from sqlalchemy import delete, select, text
from sqlalchemy.orm import sessionmaker

from core.matching.calibration import (
    BM25_NORMALISED,
    DENSE_COSINE,
    FUSED_SCORE,
    Calibrator,
    calibrator_from_dict,
)
from core.matching.embedding import Embedder
from core.matching.embedding_cache import CachedEmbedder, text_hash
from core.matching.lexical import fts_query, shared_terms
from core.matching.text import lexical_terms, split_runbook_sections, ticket_text
from core.matching.vector_index import IndexCorruptError, IndexNotFoundError, ModelMismatchError, VectorIndex
from core.progress import NO_PROGRESS, Progress
from core.resources import default_calibration_path
from core.store.models import Runbook, RunbookSection, RunbookStatus, Ticket
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace

RRF_K = 60
CANDIDATES = 50
TITLE_WEIGHT = 3.0  # bm25() column weight of the title against the body
FEATURES = (DENSE_COSINE, BM25_NORMALISED, FUSED_SCORE)
SECTION_BATCH = 256  # sections embedded between two progress reports of a refresh (~10 s cold on 2 cores)


@dataclass(frozen=True, slots=True)
class RunbookMatch:
    runbook_id: int
    title: str
    confidence: float
    dense_score: float  # cosine of the best section, 0 when the dense side did not return it
    lexical_score: float  # BM25 normalised to the best lexical hit of this query, in [0, 1]
    fused_score: float  # reciprocal rank fusion, scaled so rank 1 on both sides is 1.0
    best_section: str | None
    shared_terms: tuple[str, ...] = ()


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


def features(matches: Sequence[RunbookMatch]) -> np.ndarray:
    return np.array([[m.dense_score, m.lexical_score, m.fused_score] for m in matches], dtype=np.float64)


def load_default_calibrator(path: Path) -> Calibrator | None:
    if not path.is_file():
        return None
    calibrator = calibrator_from_dict(json.loads(path.read_text(encoding="utf-8")))
    unknown = set(calibrator.feature_names) - set(FEATURES)
    if unknown:
        raise ValueError(f"{path}: calibration uses unknown features {sorted(unknown)} (known: {FEATURES})")
    return calibrator


def calibrator_features(calibrator: Calibrator, matches: Sequence[RunbookMatch]) -> np.ndarray:
    """The columns of :func:`features` this calibrator was fitted on, in its order."""
    return features(matches)[:, [FEATURES.index(name) for name in calibrator.feature_names]]


INDEXES_FOLDER = "indexes"  # <workspace>/indexes/<tenant>/


def open_engine(workspace: Workspace, tenant_slug: str, embedder: Embedder) -> MatchingEngine:
    """The engine for one tenant of a workspace, with the shipped default calibration."""
    return MatchingEngine(
        workspace.session_factory(tenant_slug),
        embedder,
        workspace.tenant_folder(INDEXES_FOLDER, tenant_slug),
        load_default_calibrator(default_calibration_path()),
    )


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
        self._terms_cache: dict[tuple[int, str], frozenset[str]] = {}

    # ------------------------------------------------------------------------------------------------
    # Indexes

    def _index_path(self, name: str) -> Path:
        return self._index_dir / f"{name}.faiss"

    def _open_index(self, name: str) -> VectorIndex:
        try:
            return VectorIndex.load(self._index_path(name), expected_model_id=self.embedder.model_id)
        except (IndexNotFoundError, IndexCorruptError, ModelMismatchError):
            # A missing, damaged or other-model index is rebuilt from the store by refresh(); nothing is lost.
            return VectorIndex(self.embedder.model_id, self.embedder.dimension)

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
            self.save()
        return report

    def expected_ids(self) -> dict[str, set[int]]:
        """What the indexes should hold according to the store (``runbook-desk index check``)."""
        with self._sessions() as session:
            return {
                "runbook_sections": set(session.scalars(select(RunbookSection.id))),
                "tickets": set(session.scalars(select(Ticket.id))),
            }

    def reset_indexes(self) -> None:
        """Forget both indexes (``index rebuild``); the next refresh re-adds everything from the cache."""
        with self._lock:
            self.runbook_index = VectorIndex(self.embedder.model_id, self.embedder.dimension)
            self.ticket_index = VectorIndex(self.embedder.model_id, self.embedder.dimension)

    def save(self) -> None:
        self._index_dir.mkdir(parents=True, exist_ok=True)
        self.runbook_index.save(self._index_path("runbook_sections"))
        self.ticket_index.save(self._index_path("tickets"))

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
                            name=section.name,
                            text=section.text,
                            text_hash=text_hash(section.text),
                            runbook_content_hash=runbook.content_hash,
                        )
                    )
                rebuilt += 1
        return rebuilt

    # ------------------------------------------------------------------------------------------------
    # Search

    def search(self, query_text: str, k: int = 5) -> list[RunbookMatch]:
        vector = self.embedder.encode([query_text])
        return self.search_many([query_text], vector, k)[0]

    def search_many(self, texts: Sequence[str], vectors: np.ndarray, k: int = 5) -> list[list[RunbookMatch]]:
        """Hybrid top-k runbooks per query; ``vectors`` are the queries' embeddings, batched by the caller."""
        dense_hits = self.runbook_index.search(vectors, CANDIDATES * 3) if len(texts) else []
        results = []
        with self._sessions() as session:
            for query_text, hits in zip(texts, dense_hits, strict=True):
                dense = self._dense_runbooks(hits)
                lexical = self._lexical_runbooks(session, query_text)
                results.append(self._fuse(session, query_text, dense, lexical, k))
        return results

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

    def _fuse(
        self,
        session: TenantSession,
        query_text: str,
        dense: dict[int, tuple[float, str]],
        lexical: dict[int, float],
        k: int,
    ) -> list[RunbookMatch]:
        dense_rank = {
            rid: rank for rank, rid in enumerate(sorted(dense, key=lambda r: -dense[r][0]), start=1)
        }
        lexical_rank = {
            rid: rank for rank, rid in enumerate(sorted(lexical, key=lambda r: -lexical[r]), start=1)
        }
        top_lexical = max(lexical.values(), default=0.0)
        fused: dict[int, float] = {}
        for rid in dense_rank.keys() | lexical_rank.keys():
            score = 0.0
            if rid in dense_rank:
                score += 1 / (RRF_K + dense_rank[rid])
            if rid in lexical_rank:
                score += 1 / (RRF_K + lexical_rank[rid])
            fused[rid] = score * (RRF_K + 1) / 2  # 1.0 = first on both sides
        # Ties broken by the dense score, then the id, so the order never depends on set iteration.
        ranked = sorted(fused, key=lambda r: (-fused[r], -dense.get(r, (0.0, ""))[0], r))[:k]
        if not ranked:
            return []
        runbooks = {r.id: r for r in session.scalars(select(Runbook).where(Runbook.id.in_(ranked)))}
        query_terms = lexical_terms(query_text)
        matches = [
            RunbookMatch(
                runbook_id=rid,
                title=runbooks[rid].title,
                confidence=0.0,
                dense_score=dense[rid][0] if rid in dense else 0.0,
                lexical_score=lexical.get(rid, 0.0) / top_lexical if top_lexical > 0 else 0.0,
                fused_score=fused[rid],
                best_section=dense[rid][1] if rid in dense else None,
                shared_terms=tuple(shared_terms(query_terms, self._runbook_terms(runbooks[rid]))),
            )
            for rid in ranked
        ]
        return self._calibrated(matches)

    def _runbook_terms(self, runbook: Runbook) -> frozenset[str]:
        """A runbook's lexical terms, tokenised once per content version (shared terms of every search)."""
        key = (runbook.id, runbook.content_hash)
        terms = self._terms_cache.get(key)
        if terms is None:
            terms = frozenset(lexical_terms(f"{runbook.title}\n{runbook.body}"))
            self._terms_cache[key] = terms
        return terms

    def _calibrated(self, matches: list[RunbookMatch]) -> list[RunbookMatch]:
        if not matches:
            return matches
        if self.calibrator is None:
            # No calibration shipped: the cosine is a rough stand-in, and the fused order is kept.
            probabilities = np.clip([m.dense_score for m in matches], 0.0, 1.0)
        else:
            probabilities = self.calibrator.predict(calibrator_features(self.calibrator, matches))
        out = [replace(m, confidence=float(p)) for m, p in zip(matches, probabilities, strict=True)]
        if self.calibrator is None:
            return out
        return sorted(out, key=lambda m: (-m.confidence, -m.fused_score))

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
