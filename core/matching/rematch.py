"""New knowledge reaches old tickets: re-match the tickets a changed runbook could affect (issue 12, item 1).

Why. Analysis decides a ticket once, against the runbooks approved at that moment, and decides it again only
when the ticket's text, the model, the thresholds or the calibration change. A runbook approved later (the
one an analyst just wrote for a gap) would never reach the tickets that prompted it, and a retired one would
stay their "best match". Re-analysing every ticket on every runbook change is what ``analyze --all`` does:
minutes on a large store, for a change that concerns a few dozen tickets.

How.

1. **Request.** Whatever changes what matching sees of a runbook writes a :class:`RematchRequest` row in the
   transaction that makes the change (:func:`request_rematch`): a runbook approved, an approved runbook's
   text edited, a runbook imported new or changed while approved (or approved before), a runbook taken out
   of approval (retired, back to draft). :mod:`core.workflow.runbooks` and :mod:`core.importing.runbooks`
   call it; the change's own audit row already says who did what, so the request is not audited again.
2. **Drain** (:func:`rematch_pending`, also the second half of a plain
   :func:`~core.matching.analysis.analyze_pending`): bring the sections and indexes in line
   (:meth:`MatchingEngine.refresh`), find the candidate tickets (below), re-match them with the vectors the
   ticket index already holds (no ticket is embedded again: its text did not change), record the results as
   analysis does (:func:`~core.matching.analysis.record_result`, which never touches a link an analyst
   reviewed), and delete the requests in the transaction of the last batch. Batches commit; a cancel or a kill
   leaves the requests in place, so the next drain does the work again (re-matching is idempotent).

Which tickets. Only *eligible* ones: analysed as they are now (a ticket never analysed, or changed since, is
the stale-ticket pass's job: its vector must be embedded again) and not linked to a runbook by an analyst (an
approved link is a decision the machine does not revisit). That keeps
the open, uncovered and needs-review tickets and the automatic links nobody has confirmed yet. Among them:

* the tickets whose current analysis involves a requested runbook: an unreviewed suggestion or automatic link
  to it, or it is their best match. Its score changed (an edit) or it left matching (retired, back to draft;
  a deleted runbook's links went with it, so only what is left of it is found);
* for a requested runbook that is approved now, the tickets *near* it that it could *change*:

  - near: the ``DENSE_NEIGHBOURS`` nearest tickets of each of its sections in the ticket index, and the
    ``LEXICAL_NEIGHBOURS`` tickets whose text best matches its terms (BM25 over the tickets' FTS5 table,
    ``ticket_fts``): the runbook's meaning and its words, against the tickets, not the whole store;
  - could change: the runbook is not beaten, signal by signal, by the weakest runbook the ticket shows now
    (its best match, its suggestions). Confidence grows with each of a pair's signals (the cosine of the
    runbook's best section, the share of the ticket's words the runbook holds), so a runbook that is no
    nearer in meaning and holds no more of the ticket's words cannot take that runbook's place. Both
    signals are computed exactly from what is stored (the index's vectors, the texts' terms): no search,
    no embedding; the words only for the tickets found by their words. ``DENSE_MARGIN`` leaves room for
    the third signal, past decisions, which a new runbook does not have and the other may hold against it.

What the bounds leave out: a generic runbook near more than ``DENSE_NEIGHBOURS`` tickets per section (or
``LEXICAL_NEIGHBOURS`` by its words) re-matches the nearest ones only; the farther ones wait for the next full
re-analysis (``analyze --all``, "Re-analyse all" in the app). Measured by ``bench/rematch_speed.py``.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, exists, func, select, text, union
from sqlalchemy.orm import sessionmaker

from core.matching import pg_search
from core.matching.lexical import fts_query, term_parts
from core.matching.text import lexical_terms, ticket_text
from core.progress import NO_PROGRESS, Progress, raise_if_cancelled
from core.queries import has_link, is_covered, latest_analysis
from core.settings import Thresholds, load_settings
from core.store.models import (
    Analysis,
    LinkDecision,
    RematchRequest,
    Runbook,
    RunbookSection,
    RunbookStatus,
    Ticket,
    TicketRunbookLink,
)
from core.store.team import is_team_session
from core.store.tenancy import TenantSession

if TYPE_CHECKING:  # the engine pulls FAISS and numpy; runbook authoring imports this module for one insert
    import numpy as np

    from core.matching.engine import MatchingEngine, RefreshReport

__all__ = [
    "REASON_APPROVED",
    "REASON_CREATED",
    "REASON_EDITED",
    "REASON_IMPORTED",
    "REASON_RETIRED",
    "REASON_WITHDRAWN",
    "RematchReport",
    "clear_requests",
    "count_requests",
    "find_candidates",
    "latest_request_id",
    "rematch_pending",
    "request_rematch",
]

# Why a runbook was queued (``rematch_requests.reason``).
REASON_CREATED = "created"  # created approved (a script, not the editor: the editor creates drafts)
REASON_APPROVED = "approved"
REASON_EDITED = "edited"  # an approved runbook's text changed
REASON_IMPORTED = "imported"  # imported new or changed, approved before or after
REASON_RETIRED = "retired"
REASON_WITHDRAWN = "withdrawn"  # approved -> draft

DENSE_NEIGHBOURS = 1000  # nearest tickets per section of a changed runbook
LEXICAL_NEIGHBOURS = 300  # tickets best matching a changed runbook's terms
DENSE_MARGIN = 0.02  # cosine a runbook may trail the one it would displace by and still be tried
BATCH_SIZE = 128  # tickets re-matched per transaction
_ID_CHUNK = 900  # ids per IN (...) list: SQLite's old default limit of bound parameters is 999

_TICKET_TERMS_SQL = text(
    "SELECT rowid FROM ticket_fts WHERE ticket_fts MATCH :match AND tenant_id = :tenant "
    "ORDER BY bm25(ticket_fts) LIMIT :limit"
)


@dataclass
class RematchReport:
    """What one drain did; ``left_gap`` counts tickets that were uncovered (no link, best confidence below the
    review threshold: the gap report's rule) and are not any more."""

    requests: int = 0
    runbook_ids: tuple[int, ...] = ()
    candidates: int = 0
    reanalysed: int = 0
    best_changed: int = 0  # tickets whose best runbook is another one now
    newly_linked: int = 0  # tickets covered now (an automatic link) that were not
    unlinked: int = 0  # tickets no longer covered (their automatic link was taken back)
    left_gap: int = 0
    entered_gap: int = 0
    elapsed_s: float = 0.0
    refresh: RefreshReport | None = None

    def headline(self) -> str:
        if not self.requests:
            return "no runbook changed since the last analysis"
        runbooks = f"{len(self.runbook_ids):,} changed runbook{'s' * (len(self.runbook_ids) != 1)}"
        return (
            f"re-matched {self.reanalysed:,} tickets near {runbooks}: "
            f"{self.best_changed:,} with a new best match, {self.newly_linked:,} newly linked, "
            f"{self.unlinked:,} unlinked, {self.left_gap:,} left the gap list"
        )


# --------------------------------------------------------------------------------------------------------
# Requests


def request_rematch(session: TenantSession, runbook_ids: Iterable[int], reason: str, actor: str) -> None:
    """Queue ``runbook_ids`` for re-matching, in the caller's transaction (the one changing the runbooks)."""
    for runbook_id in dict.fromkeys(runbook_ids):
        session.add(
            RematchRequest(
                tenant_id=session.tenant_id,
                runbook_id=runbook_id,
                reason=reason[:50],
                requested_by=actor[:200],
            )
        )


def count_requests(session: TenantSession) -> int:
    return session.scalar(select(func.count()).select_from(RematchRequest)) or 0


def latest_request_id(session: TenantSession) -> int | None:
    """The newest request's id: a run that answers every request made before it clears up to this one."""
    return session.scalar(select(func.max(RematchRequest.id)))


def clear_requests(session: TenantSession, *, up_to_id: int) -> None:
    """Delete the requests answered by a full re-analysis that started after request ``up_to_id``."""
    session.execute(delete(RematchRequest).where(RematchRequest.id <= up_to_id))


def _delete_requests(session: TenantSession, request_ids: Sequence[int]) -> None:
    for chunk in _chunks(request_ids):
        session.execute(delete(RematchRequest).where(RematchRequest.id.in_(chunk)))


# --------------------------------------------------------------------------------------------------------
# Draining


@dataclass(frozen=True, slots=True)
class _TicketState:
    best_runbook_id: int | None
    covered: bool
    in_gap: bool


def rematch_pending(
    engine: MatchingEngine,
    sessions: sessionmaker[TenantSession],
    progress: Progress = NO_PROGRESS,
    *,
    already_current: Collection[int] = frozenset(),
    batch_size: int = BATCH_SIZE,
) -> RematchReport:
    """Drain the re-match requests (module docstring); returns what changed.

    ``already_current``: tickets the caller analysed against the refreshed indexes in this run (the stale
    tickets of :func:`~core.matching.analysis.analyze_pending`), not re-matched twice. A cancel between
    batches raises :class:`~core.errors.OperationCancelledError`; the batches committed stay and the requests
    wait for the next drain.
    """
    # Here, not at the top: analysis imports this module, and the engine's FAISS is not for every importer.
    from core.matching.analysis import reanalyse_indexed

    started = time.perf_counter()
    report = RematchReport()
    with sessions() as session:
        requests = session.execute(select(RematchRequest.id, RematchRequest.runbook_id)).all()
    if not requests:
        return report
    request_ids = [request_id for request_id, _ in requests]
    report.requests = len(requests)
    report.runbook_ids = tuple(sorted({runbook_id for _, runbook_id in requests}))
    progress.report(0, None, "updating the indexes for the changed runbooks")
    report.refresh = engine.refresh(progress)
    raise_if_cancelled(progress, "re-matching")
    progress.report(0, None, "finding the tickets the changed runbooks could affect")
    with sessions() as session:
        thresholds = load_settings(session, Thresholds)
        candidates = find_candidates(engine, session, report.runbook_ids, exclude=already_current)
    report.candidates = len(candidates)
    if not candidates:
        with sessions.begin() as session:
            _delete_requests(session, request_ids)
    for start in range(0, len(candidates), batch_size):
        raise_if_cancelled(progress, "re-matching")
        batch = candidates[start : start + batch_size]
        with sessions.begin() as session:
            before = _states(session, batch, thresholds)
            results = reanalyse_indexed(engine, session, batch, thresholds)
            session.flush()
            after = _states(session, batch, thresholds)
            report.reanalysed += len(results)
            _tally(report, before, after)
            if start + batch_size >= len(candidates):  # the requests are answered with the last batch
                _delete_requests(session, request_ids)
        done = min(start + batch_size, len(candidates))
        progress.report(done, len(candidates), f"re-matched {done:,} of {len(candidates):,} tickets")
    report.elapsed_s = time.perf_counter() - started
    return report


def _states(
    session: TenantSession, ticket_ids: Sequence[int], thresholds: Thresholds
) -> dict[int, _TicketState]:
    latest = latest_analysis(ticket_ids)
    rows = session.execute(
        select(Ticket.id, Analysis.best_runbook_id, Analysis.confidence, is_covered())
        .join(latest, latest.c.ticket_id == Ticket.id)
        .join(Analysis, Analysis.id == latest.c.analysis_id)
    ).all()
    return {
        ticket_id: _TicketState(best, bool(covered), not covered and confidence < thresholds.partial)
        for ticket_id, best, confidence, covered in rows
    }


def _tally(report: RematchReport, before: dict[int, _TicketState], after: dict[int, _TicketState]) -> None:
    for ticket_id, now in after.items():
        then = before.get(ticket_id)
        if then is None:
            continue
        report.best_changed += then.best_runbook_id != now.best_runbook_id
        report.newly_linked += now.covered and not then.covered
        report.unlinked += then.covered and not now.covered
        report.left_gap += then.in_gap and not now.in_gap
        report.entered_gap += now.in_gap and not then.in_gap


# --------------------------------------------------------------------------------------------------------
# Candidates


def find_candidates(
    engine: MatchingEngine,
    session: TenantSession,
    runbook_ids: Collection[int],
    *,
    exclude: Collection[int] = frozenset(),
) -> list[int]:
    """The eligible tickets a change of ``runbook_ids`` could affect (module docstring), sorted by id."""
    eligible = _eligible_ticket_ids(session, engine.embedder.model_id) - set(exclude)
    if not eligible or not runbook_ids:
        return []
    found = _involved_ticket_ids(session, runbook_ids) & eligible
    approved = sorted(
        session.scalars(
            select(Runbook.id).where(
                Runbook.id.in_(list(runbook_ids)), Runbook.status == RunbookStatus.APPROVED
            )
        )
    )
    if not approved:
        return sorted(found)
    profiles = _RunbookProfiles(engine, session)
    for runbook_id in approved:
        by_words = _lexical_near(session, runbook_id) & eligible - found
        near = _dense_near(engine, profiles, runbook_id) & eligible - found | by_words
        found |= _could_outrank(engine, session, profiles, runbook_id, sorted(near), by_words)
    return sorted(found)


def _eligible_ticket_ids(session: TenantSession, model_id: str) -> set[int]:
    """Analysed tickets whose text and model are those of an analysis (the index holds the vector that
    analysis used; a changed ticket is the stale pass's, to be embedded again), not linked by an analyst."""
    analysed_as_is = exists().where(
        Analysis.ticket_id == Ticket.id,
        Analysis.ticket_content_hash == Ticket.content_hash,
        Analysis.model_id == model_id,
    )
    analyst_linked = has_link(
        TicketRunbookLink.reviewed_at.is_not(None), TicketRunbookLink.decision == LinkDecision.LINKED
    )
    return set(session.scalars(select(Ticket.id).where(analysed_as_is, ~analyst_linked)))


def _involved_ticket_ids(session: TenantSession, runbook_ids: Collection[int]) -> set[int]:
    """Tickets with an unreviewed link to one of the runbooks, or one of them as their latest best match."""
    wanted = list(runbook_ids)
    latest = latest_analysis()
    linked = select(TicketRunbookLink.ticket_id).where(
        TicketRunbookLink.runbook_id.in_(wanted), TicketRunbookLink.reviewed_at.is_(None)
    )
    best = (
        select(Analysis.ticket_id)
        .join(latest, latest.c.analysis_id == Analysis.id)
        .where(Analysis.best_runbook_id.in_(wanted))
    )
    return set(session.scalars(union(linked, best)))


class _RunbookProfiles:
    """What the candidate test compares of a runbook: its section vectors and its terms, read once each."""

    def __init__(self, engine: MatchingEngine, session: TenantSession) -> None:
        self._engine = engine
        self._session = session
        self._sections: dict[int, list[int]] = {}
        for section_id, runbook_id in session.execute(select(RunbookSection.id, RunbookSection.runbook_id)):
            if section_id in engine.runbook_index:
                self._sections.setdefault(runbook_id, []).append(section_id)
        self._vectors: dict[int, np.ndarray] = {}
        self._terms: dict[int, frozenset[str]] = {}

    def section_vectors(self, runbook_id: int) -> np.ndarray | None:
        """The runbook's section vectors (rows), None when matching does not index it (not approved)."""
        if runbook_id not in self._vectors:
            sections = self._sections.get(runbook_id)
            if not sections:
                return None
            self._vectors[runbook_id] = self._engine.runbook_index.vectors(sections)
        return self._vectors[runbook_id]

    def terms(self, runbook_ids: Collection[int]) -> dict[int, frozenset[str]]:
        """Each runbook's terms with their parts, as matching's coverage reads them."""
        missing = [runbook_id for runbook_id in runbook_ids if runbook_id not in self._terms]
        for chunk in _chunks(missing):
            for runbook_id, title, body in self._session.execute(
                select(Runbook.id, Runbook.title, Runbook.body).where(Runbook.id.in_(chunk))
            ):
                whole = lexical_terms(f"{title}\n{body}")
                self._terms[runbook_id] = frozenset(whole).union(*(term_parts(term) for term in whole))
        return {runbook_id: self._terms.get(runbook_id, frozenset()) for runbook_id in runbook_ids}


def _dense_near(engine: MatchingEngine, profiles: _RunbookProfiles, runbook_id: int) -> set[int]:
    """The tickets nearest the runbook's sections in the ticket index."""
    vectors = profiles.section_vectors(runbook_id)
    if vectors is None or not len(engine.ticket_index):
        return set()
    hits = engine.ticket_index.search(vectors, min(DENSE_NEIGHBOURS, len(engine.ticket_index)))
    return {ticket_id for row in hits for ticket_id, _ in row}


def _lexical_near(session: TenantSession, runbook_id: int) -> set[int]:
    """The tickets best matching the runbook's terms (BM25 over the tickets' FTS5 table)."""
    runbook = session.execute(
        select(Runbook.title, Runbook.body, Runbook.tags).where(Runbook.id == runbook_id)
    ).one_or_none()
    if runbook is None:
        return set()
    title, body, tags = runbook
    query_text = "\n".join([title, " ".join(tags or ()), body])
    if is_team_session(session):  # core.matching.pg_search: the same BM25 on PostgreSQL
        ranked = pg_search.search(
            session, "ticket_fts", query_text, tenant_id=session.tenant_id, limit=LEXICAL_NEIGHBOURS
        )
        return {rowid for rowid, _score in ranked}
    match = fts_query(query_text)
    if match is None:
        return set()
    params = {"match": match, "tenant": session.tenant_id, "limit": LEXICAL_NEIGHBOURS}
    return {int(rowid) for (rowid,) in session.execute(_TICKET_TERMS_SQL, params)}


def _weakest_shown(session: TenantSession, ticket_ids: Sequence[int]) -> dict[int, int]:
    """Per ticket, the runbook with the lowest confidence among those its analysis shows (its best match and
    its unreviewed suggestions or automatic link). A runbook that cannot outrank that one changes nothing."""
    shown: dict[int, tuple[float, int]] = {}

    def consider(ticket_id: int, runbook_id: int | None, confidence: float | None) -> None:
        if runbook_id is None:
            return
        score = confidence if confidence is not None else 0.0
        if ticket_id not in shown or score < shown[ticket_id][0]:
            shown[ticket_id] = (score, runbook_id)

    for chunk in _chunks(ticket_ids):
        latest = latest_analysis(chunk)
        for ticket_id, runbook_id, confidence in session.execute(
            select(Analysis.ticket_id, Analysis.best_runbook_id, Analysis.confidence).join(
                latest, latest.c.analysis_id == Analysis.id
            )
        ):
            consider(ticket_id, runbook_id, confidence)
        for ticket_id, runbook_id, link_confidence in session.execute(
            select(
                TicketRunbookLink.ticket_id, TicketRunbookLink.runbook_id, TicketRunbookLink.confidence_score
            ).where(TicketRunbookLink.ticket_id.in_(chunk), TicketRunbookLink.reviewed_at.is_(None))
        ):
            consider(ticket_id, runbook_id, link_confidence)
    return {ticket_id: runbook_id for ticket_id, (_, runbook_id) in shown.items()}


def _could_outrank(
    engine: MatchingEngine,
    session: TenantSession,
    profiles: _RunbookProfiles,
    runbook_id: int,
    ticket_ids: Sequence[int],
    by_words: Collection[int],
) -> set[int]:
    """The tickets where the runbook is not beaten, signal by signal, by the weakest runbook they show.

    Confidence grows with each pair signal (the best section's cosine, the share of the ticket's words the
    runbook holds; calibrators are monotone), so a runbook no nearer in meaning (within ``DENSE_MARGIN``: the
    other runbook may carry votes against it) and holding no more of the ticket's words than one the ticket
    already shows cannot take its place. Exact signals, no search: cosines from the index vectors, terms
    from the texts. The words are compared for the tickets found by words (``by_words``) only: tokenising
    every ticket near in meaning would cost more than re-matching the few it lets through.
    """
    from core.matching.engine import lexical_coverage  # loaded already: the caller holds an engine

    vectors = profiles.section_vectors(runbook_id)
    if vectors is None or not ticket_ids:
        return set()
    weakest = _weakest_shown(session, ticket_ids)
    terms = profiles.terms({runbook_id, *weakest.values()})
    found: set[int] = set()
    indexed = [ticket_id for ticket_id in ticket_ids if ticket_id in engine.ticket_index]
    for chunk in _chunks(indexed, 1024):
        ticket_vectors = engine.ticket_index.vectors(chunk)
        cosines = (ticket_vectors @ vectors.T).max(axis=1).tolist()
        wanted = [ticket_id for ticket_id in chunk if ticket_id in by_words]
        tickets = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(wanted)))}
        for row, ticket_id in enumerate(chunk):
            other = weakest.get(ticket_id)
            other_vectors = profiles.section_vectors(other) if other is not None else None
            if other is None or other_vectors is None:
                found.add(ticket_id)  # it shows nothing that matching still has: any approved runbook matters
                continue
            if cosines[row] + DENSE_MARGIN >= float((other_vectors @ ticket_vectors[row]).max()):
                found.add(ticket_id)
                continue
            if ticket_id not in by_words:
                continue
            ticket_terms = set(lexical_terms(ticket_text(tickets[ticket_id])))
            if lexical_coverage(ticket_terms, terms[runbook_id]) > lexical_coverage(
                ticket_terms, terms[other]
            ):
                found.add(ticket_id)
    return found


def _chunks(values: Sequence[int], size: int = _ID_CHUNK) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
