"""A runbook draft before it is saved: what the review screen (``D``) and gap analysis hand to the editor.

Plain data so that whoever proposes a draft (a ticket under review, a cluster of uncovered tickets) and the
editor that shows it never depend on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CandidateStep:
    """One proposed step, with the ticket it came from so the author can check it."""

    text: str
    source_ticket: str | None = None  # the ticket's external id, e.g. INC0012345


@dataclass(frozen=True, slots=True)
class RunbookDraft:
    title: str
    symptoms: str = ""
    steps: tuple[CandidateStep, ...] = ()
    tags: tuple[str, ...] = ()
    service: str | None = None
    source_ticket_ids: tuple[int, ...] = field(default=())  # store ids of the tickets that prompted it

    def to_markdown(self) -> str:
        """The body the editor opens with, in the demo runbooks' layout (the title is a field of its own)."""
        lines = ["## Symptoms", "", self.symptoms.strip() or "_Describe what users see._"]
        lines += ["", "## Resolution steps", ""]
        if self.steps:
            for number, step in enumerate(self.steps, start=1):
                cite = f" _(from {step.source_ticket})_" if step.source_ticket else ""
                lines.append(f"{number}. {step.text.strip()}{cite}")
        else:
            lines.append("1. _First step._")
        lines += ["", "## Verification", "", "_How to confirm the fix worked._", ""]
        return "\n".join(lines)
