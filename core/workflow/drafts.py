"""A runbook draft before it is saved: what the review screen (``D``) and gap analysis hand to the editor.

Plain data so that whoever proposes a draft (a ticket under review, a cluster of uncovered tickets) and the
editor that shows it never depend on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CandidateStep:
    """One proposed step, with the ticket (or knowledge article) it came from so the author can check it."""

    text: str
    source_ticket: str | None = None  # the ticket's external id, e.g. INC0012345
    source_article: str | None = None  # a knowledge article's number (KB0012345) or title (issue 14)
    source_url: str | None = None  # the article's link

    def citation(self) -> str:
        """`` _(from INC0012345)_`` or `` _(from [KB0012345](url))_``; empty when it cites nothing."""
        if self.source_article:
            label = self.source_article.replace("[", "(").replace("]", ")")
            return f" _(from [{label}]({self.source_url}))_" if self.source_url else f" _(from {label})_"
        return f" _(from {self.source_ticket})_" if self.source_ticket else ""


@dataclass(frozen=True, slots=True)
class RunbookDraft:
    title: str
    symptoms: str = ""
    steps: tuple[CandidateStep, ...] = ()
    tags: tuple[str, ...] = ()
    service: str | None = None
    source_ticket_ids: tuple[int, ...] = field(default=())  # store ids of the tickets that prompted it
    # Steps of the best matching knowledge articles (issue 14), each citing its article: offered beside the
    # steps mined from resolution notes, in a section of their own for the author to keep or delete.
    article_steps: tuple[CandidateStep, ...] = ()

    def to_markdown(self) -> str:
        """The body the editor opens with, in the demo runbooks' layout (the title is a field of its own)."""
        lines = ["## Symptoms", "", self.symptoms.strip() or "_Describe what users see._"]
        lines += ["", "## Resolution steps", ""]
        if self.steps:
            for number, step in enumerate(self.steps, start=1):
                lines.append(f"{number}. {step.text.strip()}{step.citation()}")
        else:
            lines.append("1. _First step._")
        if self.article_steps:
            lines += ["", "## Steps from knowledge articles", "", "_Candidates: keep what applies._", ""]
            for number, step in enumerate(self.article_steps, start=1):
                lines.append(f"{number}. {step.text.strip()}{step.citation()}")
        lines += ["", "## Verification", "", "_How to confirm the fix worked._", ""]
        return "\n".join(lines)
