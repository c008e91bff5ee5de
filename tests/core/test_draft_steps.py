"""Which resolution notes become draft steps: actions, not status or hand-overs, for the right platform.

The rules are general (verbs and platform markers, no product or demo names): the unit tests use notes of
their own; one test checks the demo's Linux disk-full draft, the case an analyst reported.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.matching.embedding import SentenceTransformerEmbedder
from core.matching.engine import open_engine
from core.store.models import Ticket
from core.store.workspace import Workspace
from core.workflow.draft_steps import (
    ClauseKind,
    Platform,
    candidate_steps,
    classify_clause,
    dominant_platform,
    fits_platform,
    platforms_in,
    step_text,
)
from core.workflow.review import draft_from_ticket


@pytest.mark.parametrize(
    ("clause", "kind"),
    [
        ("Restarted the print spooler", ClauseKind.ACTION),
        ("Restart the tomcat service on both nodes", ClauseKind.ACTION),  # imperative
        ("re-paired the headset with its dongle", ClauseKind.ACTION),
        ("Power-cycled the switch", ClauseKind.ACTION),
        ("certificate rebuilt from the CA template", ClauseKind.ACTION),  # irregular past
        ("issued a new voucher", ClauseKind.ACTION),  # "issue" counts only in the past
        ("systemctl daemon-reload --now", ClauseKind.ACTION),  # a command line is an action
        ("Clear-RecycleBin -Force", ClauseKind.ACTION),
        ("Escalated to the network team", ClauseKind.STATUS),  # hand-overs
        ("handed over to L2 storage", ClauseKind.STATUS),
        ("Passed to vendor support (case 4411)", ClauseKind.STATUS),
        ("reassigned to the facilities desk", ClauseKind.STATUS),
        ("Problem no longer occurring", ClauseKind.STATUS),
        ("Issue cannot reproduce", ClauseKind.STATUS),
        ("User confirmed", ClauseKind.STATUS),
        ("No reply from the customer after three reminders", ClauseKind.STATUS),
        ("Closing", ClauseKind.STATUS),
        ("Blocked by design", ClauseKind.STATUS),
        ("application launches fine", ClauseKind.STATUS),  # a description, not something done
        ("Issue with the docking firmware", ClauseKind.OTHER),  # "Issue" the noun
        ("Toner sensor faulty", ClauseKind.OTHER),
    ],
)
def test_clauses_are_actions_status_or_context(clause: str, kind: ClauseKind) -> None:
    assert classify_clause(clause) is kind


def test_a_step_keeps_its_actions_and_context_and_loses_its_status() -> None:
    assert step_text("Toner sensor faulty - replaced the sensor. Confirmed with user by phone.") == (
        "Toner sensor faulty - replaced the sensor."
    )
    assert step_text("Rolled back the driver to 31.0.101; works now, closing.") == (
        "Rolled back the driver to 31.0.101."
    )
    assert step_text("Reinstalled agent v7.2 (MSI).") == "Reinstalled agent v7.2 (MSI)."


@pytest.mark.parametrize(
    "note",
    [
        "Handed to DevOps platform team (INC0001234).",
        "escalated to network team - INC0004321",
        "Issue no longer occurring.",
        "No response from user after 3 attempts, closing. Reopen if still an issue.",
        "User confirmed issue resolved, closing.",
        "Resolved.",
        "Duplicate of INC0009999.",
    ],
)
def test_notes_without_an_action_are_not_steps(note: str) -> None:
    assert step_text(note) is None


@pytest.mark.parametrize(
    ("text", "platforms"),
    [
        ("extended c: by 40gb in vsphere, resize-partition done", {Platform.WINDOWS}),
        ("MEMORY.DMP removed after copying it to the share", {Platform.WINDOWS}),
        ("Windows update failing with 0x80070070", {Platform.WINDOWS}),
        ("cleared %TEMP% and ran Get-ChildItem to find the big files", {Platform.WINDOWS}),
        ("no space left on device on /srv; lvextend -r +20G", {Platform.LINUX}),
        ("journalctl --vacuum-size=500M", {Platform.LINUX}),
        ("sudo systemctl restart nginx", {Platform.LINUX}),
        ("reinstalled the client from the .dmg on the MacBook", {Platform.MACOS}),
        ("restarted the app service, space freed", set()),
        ("see https://wiki.example.com/var/notes", set()),  # a URL path is not a Linux path
    ],
)
def test_platforms_are_recognised_by_general_markers(text: str, platforms: set[Platform]) -> None:
    assert platforms_in(text) == platforms


def test_a_set_of_tickets_has_a_platform_only_when_it_clearly_shares_one() -> None:
    linux = ["/var/log full on app-01", "No space left on device", "df -h shows /opt at 100%", "disk full"]
    assert dominant_platform(linux) is Platform.LINUX
    assert dominant_platform(["/var/log full", "C: drive full", "disk full"]) is None  # mixed
    assert dominant_platform(["disk full", "volume full", "server out of space"]) is None  # none named
    assert dominant_platform(["sudo df -h says the root file system is full"]) is Platform.LINUX  # one ticket
    assert fits_platform("Extended C: by 40GB", Platform.LINUX) is False
    assert fits_platform("Deleted old logs", Platform.LINUX) is True
    assert fits_platform("Extended C: by 40GB", None) is True


def test_candidate_steps_drop_other_platforms_status_and_repeats() -> None:
    notes = [
        ("Deleted 40 GB of core dumps from /var/crash, /data now at 58%.", "T1"),
        ("deleted 40 gb of core dumps from /var/crash, /u01 now at 61%.", "T2"),  # the same step
        ("MEMORY.DMP removed after copying it to the vendor share. ok now.", "T3"),  # Windows
        ("Handed to the storage team (T9).", "T4"),
        ("Added a 100G disk, pvresize + lvextend -r. User confirmed.", "T5"),
        ("Extended C: by 40GB in vSphere, Resize-Partition done.", "T6"),  # Windows
    ]
    steps = candidate_steps(notes, platform=Platform.LINUX, limit=6)
    assert [(s.text, s.source_ticket) for s in steps] == [
        ("Deleted 40 GB of core dumps from /var/crash, /data now at 58%.", "T1"),
        ("Added a 100G disk, pvresize + lvextend -r.", "T5"),
    ]
    unknown = candidate_steps(notes, platform=None, limit=2)
    assert [s.source_ticket for s in unknown] == ["T1", "T3"]


@pytest.mark.slow
def test_a_linux_disk_full_draft_has_no_windows_step(
    analysed_demo: Workspace, embedder: SentenceTransformerEmbedder
) -> None:
    """INC0010102 (lnx-app-07: "No space left on device"): its similar tickets include Windows servers that
    ran out of disk; their MEMORY.DMP and "extend C:" fixes used to become steps of the Linux draft."""
    engine = open_engine(analysed_demo, "default", embedder)
    sessions = analysed_demo.session_factory()
    with sessions() as session:
        ticket_id = session.scalars(select(Ticket.id).where(Ticket.external_id == "INC0010102")).one()
        draft = draft_from_ticket(session, engine, ticket_id)
    similar_notes = " ".join(s.resolution_notes or "" for s in engine.similar_tickets(ticket_id, 10))
    assert Platform.WINDOWS in platforms_in(similar_notes)  # the trap is there
    assert draft.steps
    for step in draft.steps:
        assert Platform.WINDOWS not in platforms_in(step.text), step.text
        assert step_text(step.text) == step.text
