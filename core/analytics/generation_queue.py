"""The roadmap's runbook generation queue: which gaps can become a draft runbook by themselves.

**Procedure confidence** (:func:`procedure_confidence`), in [0, 1], for a gap cluster: how sure we are that
its tickets are one coherent procedure, i.e. that most of them are fixed the same way and they are the same
problem. From what :func:`core.analytics.gaps.analyse_gaps` records per cluster:

* ``d``: its central members (up to 200) whose resolution note holds an action step, and ``m``: how many of
  them share the most common procedure (steps grouped by term overlap; ``GapCluster.procedure_groups``);
* ``majority = P(p > 1/2)`` where ``p``, the share of the cluster's tickets fixed by that procedure, has the
  posterior ``Beta(m + 1, d - m + 3)``: a ``Beta(1, 3)`` prior (before any note we assume a cluster is fixed
  several ways, expected dominant share 1/4) updated by the ``m`` notes that agree and the ``d - m`` that
  do not. Four agreeing notes and no other give 0.77, eight give 0.97; two of three give 0.34; no note 0.125;
* ``cohesion``: the mean cosine of the members to the cluster's centre (``GapCluster.cohesion``, in [0, 1]
  for any cluster the analysis keeps): a loose cluster may be several problems that share words;
* **confidence = majority x cohesion**.

**Buckets** (issue 12): above :data:`AUTOMATIC_ABOVE` (70 %) a draft is generated automatically and put
*awaiting approval* (a runbook in status ``in_review``); from :data:`PROMPT_FROM` (50 %) to 70 % the analyst
is asked to approve generation; below 50 % the gap waits for manual authoring.

**One draft per gap, ever.** A generated draft carries ``external_ref = "gap:<cluster key>"`` (unique per
tenant, so two runs racing on the same cluster cannot both insert) and its generation is audited
(``gap.draft_generated``, with every member ticket id). A cluster counts as drafted when its key is a draft's
reference or when at least :data:`SAME_GAP_OVERLAP` of its tickets were members of a drafted cluster: a gap
that grew since (new tickets change its key) is still the same gap. Whatever its draft's status since
(edited, approved, sent back, retired), the queue never generates a second one for it.

Who generates: the desktop app after every gap analysis on the Gaps page, in the background; headless,
``runbook-desk gaps queue --generate``. The plain ``runbook-desk gaps`` report never writes.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from core.analytics.gaps import GapCluster, draft_from_gap
from core.progress import NO_PROGRESS, Progress, raise_if_cancelled
from core.store.models import AuditEvent, Runbook, RunbookStatus, Ticket
from core.store.repository import SYSTEM_ACTOR, record_audit
from core.store.tenancy import TenantSession
from core.workflow.runbooks import create_runbook

__all__ = [
    "AUTOMATIC_ABOVE",
    "GENERATED_ACTION",
    "PROMPT_FROM",
    "REF_PREFIX",
    "SAME_GAP_OVERLAP",
    "Bucket",
    "GeneratedDraft",
    "GenerationQueue",
    "ProcedureConfidence",
    "QueueEntry",
    "bucket_of",
    "build_queue",
    "generate_automatic",
    "generate_draft",
    "procedure_confidence",
]

AUTOMATIC_ABOVE = 0.70
PROMPT_FROM = 0.50
PRIOR_AGREEING = 1  # Beta prior: pseudo-notes that follow the dominant procedure ...
PRIOR_OTHER = 3  # ... and that follow another one
SAME_GAP_OVERLAP = 0.5
REF_PREFIX = "gap:"
GENERATED_ACTION = "gap.draft_generated"
CITED_TICKETS = 50  # tickets named in a draft's body; the audit row keeps them all


class Bucket(enum.StrEnum):
    AUTOMATIC = "automatic"  # > 70 %: generated, awaiting approval
    PROMPT = "prompt"  # 50-70 %: the analyst approves generation
    MANUAL = "manual"  # < 50 %: queued for manual authoring

    @property
    def words(self) -> str:
        return {
            Bucket.AUTOMATIC: "Generated automatically, awaiting approval",
            Bucket.PROMPT: "Approve generation",
            Bucket.MANUAL: "Manual authoring",
        }[self]


@dataclass(frozen=True, slots=True)
class ProcedureConfidence:
    value: float
    majority: float  # P(most of the tickets share the dominant procedure)
    cohesion: float
    documented: int  # central members whose note holds an action step
    agreeing: int  # of them, members that share the dominant procedure
    notes_read: int

    def explain(self) -> str:
        """The figure in words, with its parts, for the queue view and the CLI."""
        if not self.documented:
            evidence = f"none of its {self.notes_read} resolution notes read describe a fix"
        elif self.documented == 1:
            evidence = "only one ticket's note describes a fix"
        else:
            evidence = (
                f"{self.agreeing} of the {self.documented} tickets whose notes describe a fix used the same "
                f"procedure (chance that most tickets share one: {self.majority:.0%})"
            )
        return f"{self.value:.0%}: {evidence}; cluster cohesion {self.cohesion:.2f}"


@dataclass(frozen=True, slots=True)
class GeneratedDraft:
    runbook_id: int
    title: str
    status: RunbookStatus
    external_ref: str


@dataclass(frozen=True, slots=True)
class QueueEntry:
    cluster: GapCluster
    confidence: ProcedureConfidence
    bucket: Bucket
    draft: GeneratedDraft | None  # the draft already generated for this gap, if any

    @property
    def key(self) -> str:
        return self.cluster.key


@dataclass(frozen=True, slots=True)
class GenerationQueue:
    entries: tuple[QueueEntry, ...]  # in the report's rank order
    generated: tuple[int, ...] = ()  # runbook ids generated by the run that built this queue

    def counts(self) -> dict[Bucket, int]:
        return {bucket: sum(1 for e in self.entries if e.bucket is bucket) for bucket in Bucket}

    def in_bucket(self, bucket: Bucket) -> tuple[QueueEntry, ...]:
        return tuple(e for e in self.entries if e.bucket is bucket)

    def entry(self, key: str) -> QueueEntry:
        for candidate in self.entries:
            if candidate.key == key:
                return candidate
        raise KeyError(key)


# --- Confidence --------------------------------------------------------------------------------------------


def _beta_above_half(a: int, b: int) -> float:
    """P(X > 1/2) for X ~ Beta(a, b) with whole a and b, which equals P(Y <= a - 1) for
    Y ~ Binomial(a + b - 1, 1/2)."""
    n = a + b - 1
    log_half = n * math.log(0.5)
    return min(
        1.0,
        sum(
            math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + log_half)
            for k in range(a)
        ),
    )


def procedure_confidence(cluster: GapCluster) -> ProcedureConfidence:
    """See the module docstring for the formula."""
    documented = cluster.documented
    agreeing = cluster.procedure_groups[0] if cluster.procedure_groups else 0
    majority = _beta_above_half(agreeing + PRIOR_AGREEING, documented - agreeing + PRIOR_OTHER)
    cohesion = min(max(cluster.cohesion, 0.0), 1.0)
    return ProcedureConfidence(
        value=majority * cohesion,
        majority=majority,
        cohesion=cohesion,
        documented=documented,
        agreeing=agreeing,
        notes_read=cluster.notes_read,
    )


def bucket_of(confidence: float) -> Bucket:
    if confidence > AUTOMATIC_ABOVE:
        return Bucket.AUTOMATIC
    if confidence >= PROMPT_FROM:
        return Bucket.PROMPT
    return Bucket.MANUAL


# --- Drafts already generated ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Known:
    draft: GeneratedDraft
    key: str
    members: frozenset[int]


def _known_drafts(session: TenantSession) -> list[_Known]:
    """Every generated draft still in the store, with the members of the cluster it was generated from."""
    runbooks = {
        runbook.id: runbook
        for runbook in session.scalars(select(Runbook).where(Runbook.external_ref.startswith(REF_PREFIX)))
    }
    members: dict[int, frozenset[int]] = {}
    if runbooks:
        for event in session.scalars(
            select(AuditEvent).where(
                AuditEvent.tenant_id == session.tenant_id,
                AuditEvent.action == GENERATED_ACTION,
                AuditEvent.entity_id.in_(sorted(runbooks)),
            )
        ):
            tickets = (event.after or {}).get("tickets") or []
            members[int(event.entity_id or 0)] = frozenset(int(t) for t in tickets)
    out = []
    for runbook_id, runbook in sorted(runbooks.items()):
        ref = runbook.external_ref or ""
        out.append(
            _Known(
                draft=GeneratedDraft(runbook_id, runbook.title, runbook.status, ref),
                key=ref.removeprefix(REF_PREFIX),
                members=members.get(runbook_id, frozenset()),
            )
        )
    return out


def _draft_for(cluster: GapCluster, known: Sequence[_Known]) -> GeneratedDraft | None:
    members = set(cluster.member_ticket_ids)
    for candidate in known:
        if candidate.key == cluster.key:
            return candidate.draft
    for candidate in known:
        if members and len(members & candidate.members) / len(members) >= SAME_GAP_OVERLAP:
            return candidate.draft
    return None


# --- The queue ---------------------------------------------------------------------------------------------


def build_queue(
    session: TenantSession, clusters: Iterable[GapCluster], generated: Sequence[int] = ()
) -> GenerationQueue:
    """The clusters (a report's ranked gaps) with their confidence, bucket and existing draft."""
    known = _known_drafts(session)
    entries = []
    for cluster in clusters:
        confidence = procedure_confidence(cluster)
        entries.append(
            QueueEntry(
                cluster=cluster,
                confidence=confidence,
                bucket=bucket_of(confidence.value),
                draft=_draft_for(cluster, known),
            )
        )
    return GenerationQueue(entries=tuple(entries), generated=tuple(generated))


def _body(session: TenantSession, cluster: GapCluster, confidence: ProcedureConfidence) -> str:
    """The draft's Markdown: symptoms and cited steps (:func:`draft_from_gap`), then its source tickets."""
    cited = list(cluster.member_ticket_ids[:CITED_TICKETS])
    numbers = dict(session.execute(select(Ticket.id, Ticket.external_id).where(Ticket.id.in_(cited))).all())
    names = ", ".join(numbers.get(ticket_id, f"#{ticket_id}") for ticket_id in cited)
    more = len(cluster.member_ticket_ids) - len(cited)
    if more > 0:
        names += f" and {more} more"
    return (
        draft_from_gap(cluster).to_markdown().rstrip()
        + "\n\n## Source tickets\n\n"
        + f"Generated from the gap “{cluster.label}” ({cluster.size} tickets without a runbook; procedure "
        + f"confidence {confidence.explain()}). Tickets: {names}.\n"
    )


def generate_draft(
    session: TenantSession, cluster: GapCluster, *, actor: str, reason: str
) -> tuple[GeneratedDraft, bool]:
    """The draft runbook for this gap, awaiting approval (status ``in_review``), and whether it is new.

    An existing draft for the same gap (by reference or by members: module docstring) is returned instead
    of a second one. A new one is created through :func:`core.workflow.runbooks.create_runbook` (revision
    and ``runbook.create`` audit row) and audited once more as ``gap.draft_generated`` with the gap, its
    confidence, ``reason`` ("automatic" or the analyst's approval) and every member ticket. The caller
    commits.
    """
    existing = _draft_for(cluster, _known_drafts(session))
    if existing is not None:
        return existing, False
    confidence = procedure_confidence(cluster)
    draft = draft_from_gap(cluster)
    try:
        with session.begin_nested():  # a savepoint: a lost race undoes only this draft
            runbook_id = create_runbook(
                session,
                title=draft.title,
                body=_body(session, cluster, confidence),
                tags=draft.tags,
                service=draft.service,
                actor=actor,
                status=RunbookStatus.IN_REVIEW,
            )
            runbook = session.get(Runbook, runbook_id)
            assert runbook is not None  # just created in this session
            runbook.external_ref = REF_PREFIX + cluster.key
            session.flush()
    except IntegrityError:  # another worker generated this gap's draft meanwhile: that one stands
        existing = _draft_for(cluster, _known_drafts(session))
        if existing is None:
            raise
        return existing, False
    record_audit(
        session,
        actor=actor,
        action=GENERATED_ACTION,
        entity_type="runbook",
        entity_id=runbook_id,
        after={
            "key": cluster.key,
            "label": cluster.label,
            "confidence": round(confidence.value, 4),
            "bucket": bucket_of(confidence.value).value,
            "reason": reason,
            "size": cluster.size,
            "tickets": list(cluster.member_ticket_ids),
        },
    )
    return GeneratedDraft(runbook_id, runbook.title, runbook.status, runbook.external_ref), True


def generate_automatic(
    sessions: sessionmaker[TenantSession],
    clusters: Sequence[GapCluster],
    *,
    actor: str = SYSTEM_ACTOR,
    progress: Progress = NO_PROGRESS,
) -> GenerationQueue:
    """Generate the draft of every gap above :data:`AUTOMATIC_ABOVE` that has none yet, one transaction per
    draft (a failure keeps the drafts before it), and return the queue as it then stands."""
    with sessions() as session:
        queue = build_queue(session, clusters)
    pending = [e for e in queue.in_bucket(Bucket.AUTOMATIC) if e.draft is None]
    generated: list[int] = []
    for done, entry in enumerate(pending):
        raise_if_cancelled(progress, "draft generation")
        progress.report(done, len(pending), f"Drafting “{entry.cluster.label}”")
        with sessions.begin() as session:
            draft, created = generate_draft(session, entry.cluster, actor=actor, reason="automatic")
        if created:
            generated.append(draft.runbook_id)
    progress.report(len(pending), len(pending), f"{len(generated)} drafts generated")
    with sessions() as session:
        return build_queue(session, clusters, generated)
