"""Authoring runbooks in the core: revisions, optimistic locking, the review workflow, audit and diffs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.importing import import_runbooks
from core.importing.demo import demo_data_dir
from core.importing.runbooks import RunbookValues
from core.store.models import AuditEvent, Runbook, RunbookRevision, RunbookSource, RunbookStatus
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.runbooks import (
    TRANSITIONS,
    InvalidRunbookError,
    RunbookNotFoundError,
    StaleRevisionError,
    StatusTransitionError,
    allowed_transitions,
    create_runbook,
    list_revisions,
    revision_diff,
    save_runbook,
    set_status,
)

BODY = "## Symptoms\n\nOutlook cannot send.\n\n## Resolution steps\n\n1. Check SMTP auth.\n"


def new_runbook(sessions: sessionmaker[TenantSession], **changes: object) -> int:
    values: dict[str, object] = {
        "title": "Outlook cannot send",
        "body": BODY,
        "tags": "Mail, outlook, mail",
        "service": " Messaging ",
        "actor": "alice",
    }
    values.update(changes)
    with sessions.begin() as session:
        return create_runbook(session, **values)  # type: ignore[arg-type]


def audit_actions(sessions: sessionmaker[TenantSession]) -> list[tuple[str, str, int | None]]:
    with sessions() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(e.action, e.actor, e.entity_id) for e in events]


def test_create_makes_revision_one_normalised_and_audited(sessions) -> None:
    runbook_id = new_runbook(sessions)
    with sessions() as session:
        runbook = session.scalars(select(Runbook)).one()
        assert (runbook.id, runbook.title, runbook.tags, runbook.service) == (
            runbook_id,
            "Outlook cannot send",
            ["mail", "outlook"],  # lower-cased and de-duplicated, as the importer does
            "Messaging",
        )
        assert (runbook.status, runbook.source, runbook.current_revision) == (
            RunbookStatus.DRAFT,
            RunbookSource.AUTHORED,
            1,
        )
        assert runbook.body == BODY.strip()
        [revision] = runbook.revisions
        assert (revision.revision, revision.author, revision.body) == (1, "alice", BODY.strip())
        # The importer's hash, so matching and re-imports see the same value.
        expected = RunbookValues(
            "", runbook.title, runbook.body, ("mail", "outlook"), "Messaging", runbook.status
        )
        assert runbook.content_hash == expected.content_hash
    assert audit_actions(sessions) == [("runbook.create", "alice", runbook_id)]


def test_create_refuses_an_empty_title(sessions) -> None:
    with pytest.raises(InvalidRunbookError, match="needs a title"):
        new_runbook(sessions, title="   ")
    with sessions() as session:
        assert session.scalars(select(Runbook)).all() == []


def test_save_makes_a_new_revision_with_a_diff(sessions) -> None:
    runbook_id = new_runbook(sessions)
    with sessions.begin() as session:
        revision = save_runbook(
            session,
            runbook_id,
            title="Outlook cannot send mail",
            body=BODY.replace("Check SMTP auth.", "Check SMTP auth.\n2. Clear the outbox."),
            tags=["mail", "outlook", "smtp"],
            service="Messaging",
            actor="bob",
            expected_revision=1,
        )
    assert revision == 2
    with sessions() as session:
        rows = list_revisions(session, runbook_id)
        diff = revision_diff(session, runbook_id, 1, 2)
        first = revision_diff(session, runbook_id, 0, 1)
        stored_hash = session.scalar(select(Runbook.content_hash))
    latest = rows[-1]
    assert (
        stored_hash
        == RunbookValues(
            "", latest.title, latest.body, latest.tags, latest.service, RunbookStatus.DRAFT
        ).content_hash
    )
    assert [(r.revision, r.author) for r in rows] == [(1, "alice"), (2, "bob")]
    assert diff.splitlines()[:2] == ["--- revision 1", "+++ revision 2"]
    assert "-Title: Outlook cannot send" in diff
    assert "+Title: Outlook cannot send mail" in diff
    assert "+Tags: mail, outlook, smtp" in diff
    assert "+2. Clear the outbox." in diff
    assert " 1. Check SMTP auth." in diff  # context line
    assert "Service" not in diff.replace("Service: Messaging", "")  # unchanged field: context at most
    assert first.startswith("--- (nothing)\n+++ revision 1")
    assert "+Title: Outlook cannot send" in first
    actions = audit_actions(sessions)
    assert actions[-1] == ("runbook.edit", "bob", runbook_id)
    with sessions() as session:
        edit = session.scalars(select(AuditEvent).where(AuditEvent.action == "runbook.edit")).one()
    assert (edit.before["revision"], edit.after["revision"]) == (1, 2)
    assert (edit.before["title"], edit.after["title"]) == ("Outlook cannot send", "Outlook cannot send mail")


def test_unchanged_save_writes_nothing(sessions) -> None:
    runbook_id = new_runbook(sessions)
    with sessions.begin() as session:
        # Same content up to what normalisation tidies: trailing blank lines, tag case, spaces.
        revision = save_runbook(
            session,
            runbook_id,
            title=" Outlook cannot send ",
            body=BODY + "\n\n",
            tags="MAIL, Outlook",
            service="Messaging",
            actor="bob",
            expected_revision=1,
        )
    assert revision == 1
    with sessions() as session:
        assert len(session.scalars(select(RunbookRevision)).all()) == 1
    assert [action for action, _, _ in audit_actions(sessions)] == ["runbook.create"]


def test_stale_expected_revision_is_refused_and_writes_nothing(sessions) -> None:
    runbook_id = new_runbook(sessions)
    with sessions.begin() as session:
        save_runbook(
            session, runbook_id, title="Edited by bob", body=BODY, tags=(), service=None, actor="bob",
            expected_revision=1,
        )  # fmt: skip
    with (
        pytest.raises(StaleRevisionError, match="saved by someone else") as caught,
        sessions.begin() as session,
    ):
        save_runbook(
            session, runbook_id, title="Edited by carol", body=BODY, tags=(), service=None, actor="carol",
            expected_revision=1,
        )  # fmt: skip
    assert (caught.value.expected, caught.value.current) == (1, 2)
    with sessions() as session:
        assert session.scalar(select(Runbook.title)) == "Edited by bob"
        assert session.scalar(select(Runbook.current_revision)) == 2
    assert [actor for _, actor, _ in audit_actions(sessions)] == ["alice", "bob"]


def test_save_and_history_of_a_missing_runbook(sessions) -> None:
    with pytest.raises(RunbookNotFoundError), sessions.begin() as session:
        save_runbook(session, 999, title="x", body="y", tags=(), service=None, actor="a", expected_revision=1)
    runbook_id = new_runbook(sessions)
    with pytest.raises(RunbookNotFoundError, match="no revision 7"), sessions() as session:
        revision_diff(session, runbook_id, 1, 7)


def test_status_workflow_allowed_transitions(sessions) -> None:
    runbook_id = new_runbook(sessions)
    path = [
        RunbookStatus.IN_REVIEW,
        RunbookStatus.DRAFT,  # sent back for rework
        RunbookStatus.IN_REVIEW,
        RunbookStatus.APPROVED,
        RunbookStatus.DRAFT,  # reopened
        RunbookStatus.RETIRED,
        RunbookStatus.DRAFT,  # revived
    ]
    for status in path:
        with sessions.begin() as session:
            row = set_status(session, runbook_id, status, "alice")
        assert row.status == status.value
    with sessions() as session:
        runbook = session.scalars(select(Runbook)).one()
        assert runbook.current_revision == 1  # a status is not text: no revision
        expected = RunbookValues(
            "", runbook.title, runbook.body, tuple(runbook.tags), runbook.service, path[-1]
        )
        assert runbook.content_hash == expected.content_hash
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "runbook.status")).all()
    assert [(e.before["status"], e.after["status"]) for e in events] == [
        ("draft", "in_review"),
        ("in_review", "draft"),
        ("draft", "in_review"),
        ("in_review", "approved"),
        ("approved", "draft"),
        ("draft", "retired"),
        ("retired", "draft"),
    ]
    assert allowed_transitions("draft") == {RunbookStatus.IN_REVIEW, RunbookStatus.RETIRED}
    assert set(TRANSITIONS) == set(RunbookStatus)


@pytest.mark.parametrize(
    ("start", "target", "message"),
    [
        ([], RunbookStatus.APPROVED, "is draft: it cannot become approved directly"),
        ([], RunbookStatus.DRAFT, "is already draft"),
        (
            [RunbookStatus.IN_REVIEW, RunbookStatus.APPROVED],
            RunbookStatus.IN_REVIEW,
            "cannot become in review",
        ),
        ([RunbookStatus.RETIRED], RunbookStatus.APPROVED, "it can become draft"),
    ],
)
def test_status_workflow_refuses_other_transitions(
    sessions, start: list[RunbookStatus], target: RunbookStatus, message: str
) -> None:
    runbook_id = new_runbook(sessions)
    for status in start:
        with sessions.begin() as session:
            set_status(session, runbook_id, status, "alice")
    before = audit_actions(sessions)
    with pytest.raises(StatusTransitionError, match=message), sessions.begin() as session:
        set_status(session, runbook_id, target, "mallory")
    assert audit_actions(sessions) == before


@pytest.fixture
def demo_runbooks(tmp_path: Path) -> Path:
    folder = tmp_path / "runbooks"
    shutil.copytree(demo_data_dir() / "runbooks", folder)
    return folder


def test_reimport_after_an_edit(workspace: Workspace, sessions, demo_runbooks: Path) -> None:
    """What a re-import does to runbooks edited in the app (the file is the source of truth for imported
    runbooks):

    * untouched imported runbooks, and runbooks whose only change was a status round trip back to the
      file's status, stay "unchanged": the app computes the importer's hash;
    * an imported runbook edited in the app is "updated" back to the file's text and status, as a new
      revision: the edit is not lost, it stays in the history;
    * runbooks authored in the app have no file, so no import touches them.
    """
    first = import_runbooks(sessions, demo_runbooks, actor="importer")
    assert first.inserted == 47
    with sessions() as session:
        edited, round_trip = session.scalars(select(Runbook).order_by(Runbook.external_ref).limit(2)).all()
    with sessions.begin() as session:
        save_runbook(
            session,
            edited.id,
            title=edited.title,
            body=edited.body + "\n\n## Local note\n\nCall the on-call DBA first.",
            tags=edited.tags,
            service=edited.service,
            actor="alice",
            expected_revision=edited.current_revision,
        )
        set_status(session, round_trip.id, RunbookStatus.DRAFT, "alice")
    with sessions.begin() as session:
        set_status(session, round_trip.id, RunbookStatus.IN_REVIEW, "alice")
    with sessions.begin() as session:
        set_status(session, round_trip.id, RunbookStatus.APPROVED, "alice")
    authored_id = new_runbook(sessions)

    again = import_runbooks(sessions, demo_runbooks, actor="importer")
    assert (again.inserted, again.updated, again.unchanged, again.rejected_count) == (0, 1, 46, 0)
    with sessions() as session:
        restored = session.scalars(select(Runbook).where(Runbook.id == edited.id)).one()
        assert "Local note" not in restored.body
        assert restored.current_revision == 3
        assert [r.author for r in list_revisions(session, edited.id)] == ["importer", "alice", "importer"]
        assert "-Call the on-call DBA first." in revision_diff(session, edited.id, 2, 3)
        assert session.scalar(select(Runbook.current_revision).where(Runbook.id == round_trip.id)) == 1
        assert session.scalar(select(Runbook.title).where(Runbook.id == authored_id)) == "Outlook cannot send"
