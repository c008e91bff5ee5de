"""Why a match got its confidence, in sentences an analyst reads without knowing what a cosine is.

The review screen (and the headless review commands) show these next to the numbers. Each sentence comes
from one signal the confidence is made of (:mod:`core.matching.engine`): how close the ticket is in meaning
to the runbook's best section, how many of the ticket's words the runbook contains, and what was decided for
similar past tickets (:mod:`core.matching.votes`). When the runbook is the best word match yet the
confidence stays low, a sentence says which signal holds it down (issue 12: "Lexical 100 %, confidence 16 %"
must be explained, not left for the analyst to puzzle over).

The words for a cosine ("close", "related", "far") are bands of all-MiniLM-L6-v2 scores on ticket text,
where unrelated texts score below ~0.3 and rewordings of one problem above ~0.6; they describe, they do not
decide anything.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.matching.engine import RunbookMatch
from core.matching.votes import Evidence, EvidenceKind
from core.settings import Thresholds
from core.store.models import OutcomeKind

__all__ = ["evidence_sentences", "explain_match", "low_confidence_reason"]

CLOSE_MEANING = 0.6
RELATED_MEANING = 0.45
FEW_WORDS = 4  # a ticket with this many distinct words or fewer says too little to be sure of anything
LISTED_TICKETS = 5
HIGH_WORD_MATCH = 0.9  # best word match of the query (BM25 share) or share of the ticket's words
LOW_CONFIDENCE = 0.5


def _percent(value: float) -> str:
    return f"{round(value * 100)} %"


def _tickets(numbers: Sequence[str]) -> str:
    shown = ", ".join(numbers[:LISTED_TICKETS])
    more = len(numbers) - LISTED_TICKETS
    return f"{shown} and {more} more" if more > 0 else shown


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def meaning_sentence(match: RunbookMatch) -> str:
    section = f"“{match.best_section}” section" if match.best_section else "text"
    score = f"(semantic similarity {match.dense_score:.2f})"
    if match.dense_score >= CLOSE_MEANING:
        return f"The ticket reads much like the runbook's {section} {score}."
    if match.dense_score >= RELATED_MEANING:
        return f"The ticket is related in meaning to the runbook's {section} {score}."
    return f"In meaning the ticket is far from the runbook; its closest part is the {section} {score}."


def words_sentence(match: RunbookMatch) -> str:
    total = match.ticket_term_count
    if total == 0:
        return "The ticket has no words to compare (only stop words, numbers or symbols)."
    found = round(match.coverage_score * total)
    share = _percent(match.coverage_score)
    sentence = f"{found} of the ticket's {total} distinct words appear in the runbook ({share})"
    if match.shared_terms:
        sentence += ": " + ", ".join(match.shared_terms[:8])
    sentence += "."
    if match.title_term_count:
        found_in_title = round(match.title_coverage * match.title_term_count)
        title_words = match.title_term_count
        sentence += (
            f" The ticket mentions {found_in_title} of the {title_words} words of the runbook's title."
        )
    return sentence


def _evidence_group(
    evidence: Sequence[Evidence], kind: EvidenceKind, outcome: OutcomeKind | None
) -> list[str]:
    return [e.external_id for e in evidence if e.kind is kind and e.outcome is outcome]


def evidence_sentences(match: RunbookMatch) -> list[str]:
    """One sentence per kind of past decision behind the vote, strongest evidence first within each."""
    evidence = match.evidence
    sentences: list[str] = []
    resolved = [
        e.external_id
        for e in evidence
        if e.kind is not EvidenceKind.REJECTED and e.outcome is OutcomeKind.RESOLVED
    ]
    if resolved:
        were = _count(len(resolved), "similar ticket was", "similar tickets were")
        sentences.append(f"{were} resolved with this runbook: {_tickets(resolved)}.")
    approved = _evidence_group(evidence, EvidenceKind.APPROVED, None)
    if approved:
        tickets = _count(len(approved), "similar ticket", "similar tickets")
        sentences.append(f"An analyst linked {tickets} to this runbook: {_tickets(approved)}.")
    partly = [e.external_id for e in evidence if e.outcome is OutcomeKind.PARTLY]
    if partly:
        sentences.append(
            f"It partly fixed {_count(len(partly), 'similar ticket', 'similar tickets')}: {_tickets(partly)}."
        )
    standing = _evidence_group(evidence, EvidenceKind.STANDING, None)
    if standing:
        were = _count(len(standing), "similar ticket was", "similar tickets were")
        sentences.append(f"{were} linked to it automatically and nobody changed that: {_tickets(standing)}.")
    failed = [e.external_id for e in evidence if e.outcome is OutcomeKind.FAILED]
    if failed:
        sentences.append(
            f"It did not help {_count(len(failed), 'similar ticket', 'similar tickets')}: {_tickets(failed)}."
        )
    rejected = [e.external_id for e in evidence if e.kind is EvidenceKind.REJECTED]
    if rejected:
        sentences.append(
            f"An analyst rejected it for {_count(len(rejected), 'similar ticket', 'similar tickets')}: "
            f"{_tickets(rejected)}."
        )
    return sentences


def low_confidence_reason(match: RunbookMatch, low: float = LOW_CONFIDENCE) -> str | None:
    """Why a match that looks right by its words has a low confidence, or None when that is not the case."""
    looks_right = match.lexical_score >= HIGH_WORD_MATCH or match.coverage_score >= HIGH_WORD_MATCH
    if match.confidence >= low or not looks_right:
        return None
    reasons = []
    if match.dense_score < RELATED_MEANING:
        reasons.append(f"its meaning is far from the ticket's (semantic similarity {match.dense_score:.2f})")
    elif match.dense_score < CLOSE_MEANING:
        reasons.append(f"its meaning is only loosely related (semantic similarity {match.dense_score:.2f})")
    if match.coverage_score < HIGH_WORD_MATCH:
        reasons.append(f"only {_percent(match.coverage_score)} of the ticket's words are in it")
    if match.ticket_term_count <= FEW_WORDS:
        words = _count(match.ticket_term_count, "word", "words")
        reasons.append(f"the ticket has only {words} to go on, too few to be sure")
    if match.vote_score < 0:
        reasons.append("similar past tickets went against it")
    if not reasons:
        reasons.append("the signals together are not strong enough")
    opening = (
        "It is the best word match among the runbooks"
        if match.lexical_score >= HIGH_WORD_MATCH
        else "Most of the ticket's words are in it"
    )
    return (
        f"{opening}, yet the confidence is {_percent(match.confidence)} because " + "; ".join(reasons) + "."
    )


def decision_sentence(confidence: float, thresholds: Thresholds) -> str:
    if confidence >= thresholds.existing:
        return (
            f"Confidence {_percent(confidence)} is at or above the auto-link threshold "
            f"({_percent(thresholds.existing)}): linked automatically, to spot-check."
        )
    if confidence >= thresholds.partial:
        review, link = _percent(thresholds.partial), _percent(thresholds.existing)
        return (
            f"Confidence {_percent(confidence)} is between the review threshold ({review}) "
            f"and the auto-link threshold ({link}): an analyst decides."
        )
    return (
        f"Confidence {_percent(confidence)} is below the review threshold ({_percent(thresholds.partial)}): "
        "no runbook is taken to cover the ticket."
    )


def explain_match(match: RunbookMatch, thresholds: Thresholds | None = None) -> list[str]:
    """The sentences that explain ``match``'s confidence.

    Pass ``thresholds`` for the ticket's *best* match only: the last sentence then says what its confidence
    decides (the analysis decides on the best match; a runner-up's confidence decides nothing).
    """
    sentences = [meaning_sentence(match), words_sentence(match), *evidence_sentences(match)]
    reason = low_confidence_reason(match, thresholds.partial if thresholds is not None else LOW_CONFIDENCE)
    if reason is not None:
        sentences.append(reason)
    if thresholds is not None:
        sentences.append(decision_sentence(match.confidence, thresholds))
    return sentences
