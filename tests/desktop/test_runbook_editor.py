"""The runbook library UI: editor (draft -> runbook, Ctrl+S -> revision, preview, discard prompt), status
actions, revision history with its diff, folder import through the page, and the matching refresh after an
approved runbook changes.

Headless and real: a SQLite workspace in tmp_path, the real task runner, the session's embedding model. No
native dialog ever opens: the folder chooser and the discard prompt are injected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QAbstractItemModelTester
from PySide6.QtWidgets import QApplication, QWidget
from sqlalchemy import select

from core.matching.embedding import SentenceTransformerEmbedder
from core.store.models import AuditEvent, Runbook, RunbookRevision, RunbookSource, RunbookStatus
from core.store.workspace import Workspace
from core.workflow.drafts import CandidateStep, RunbookDraft
from core.workflow.runbooks import create_runbook, list_revisions, save_runbook, set_status
from desktop.background.tasks import TaskRunner, TaskState
from desktop.context import AppContext
from desktop.dialogs.runbook_editor import RunbookEditor
from desktop.main_window import MainWindow
from desktop.pages.runbooks import RunbooksPage
from desktop.widgets.revision_history import REVISION_COLUMNS, RevisionHistoryDialog
from desktop.widgets.table_models import RowTableModel

WAIT_MS = 15_000
REFRESH_WAIT_MS = 120_000  # the first refresh in the test session may load the model

DRAFT = RunbookDraft(
    title="Outlook stuck on 'Trying to connect'",
    symptoms="Outlook shows *Trying to connect* after the password change.",
    steps=(
        CandidateStep("Remove the cached credentials in Credential Manager.", "INC0012345"),
        CandidateStep("Restart Outlook and sign in again.", "INC0012399"),
    ),
    tags=("outlook", "mail"),
    service="Messaging",
    source_ticket_ids=(12345,),
)


def allow_discard(_parent: QWidget) -> bool:
    return True


def keep_editing(_parent: QWidget) -> bool:
    return False


def make_context(
    workspace: Workspace, runner: TaskRunner, embedder: SentenceTransformerEmbedder
) -> AppContext:
    return AppContext(workspace, "default", runner, embedder_factory=lambda: embedder, reviewer_name="alice")


@pytest.fixture
def runner_editor(qapp: QApplication) -> Iterator[TaskRunner]:
    runner = TaskRunner()
    yield runner
    runner.shutdown(timeout_ms=REFRESH_WAIT_MS)
    runner.deleteLater()


def open_page(qtbot, context: AppContext) -> RunbooksPage:
    page = RunbooksPage(context)
    qtbot.addWidget(page)
    page.show()
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.reload()
    return page


@pytest.fixture
def page_editor(qtbot, workspace: Workspace, runner_editor: TaskRunner, embedder) -> Iterator[RunbooksPage]:
    page = open_page(qtbot, make_context(workspace, runner_editor, embedder))
    yield page
    for editor in page.open_editors():
        editor.confirm_discard = allow_discard
    page.close_editors()
    page.stop()


def seed(
    workspace: Workspace, title: str = "Printer offline", status: RunbookStatus = RunbookStatus.DRAFT
) -> int:
    sessions = workspace.session_factory("default")
    with sessions.begin() as session:
        runbook_id = create_runbook(
            session,
            title=title,
            body="## Resolution steps\n\n1. Restart the spooler.",
            tags=["printing"],
            service="Devices",
            actor="seed",
        )
    for step in {
        RunbookStatus.DRAFT: [],
        RunbookStatus.IN_REVIEW: [RunbookStatus.IN_REVIEW],
        RunbookStatus.APPROVED: [RunbookStatus.IN_REVIEW, RunbookStatus.APPROVED],
    }[status]:
        with sessions.begin() as session:
            set_status(session, runbook_id, step, "seed")
    return runbook_id


def select_title(page: RunbooksPage, title: str) -> None:
    column = page.model.column_index("Title")
    proxy = page.table.model()
    titles = [proxy.index(row, column).data() for row in range(proxy.rowCount())]
    page.table.setFocus()
    page.table.selectRow(titles.index(title))
    assert page.current_row() is not None and page.current_row().title == title


def stored(workspace: Workspace, runbook_id: int) -> Runbook:
    with workspace.session_factory("default")() as session:
        runbook = session.scalars(select(Runbook).where(Runbook.id == runbook_id)).one()
        runbook.revisions  # noqa: B018 - load them before the session closes
        return runbook


# --- editor -----------------------------------------------------------------------------------------------


def test_draft_opens_prefilled_and_saves_as_a_draft_runbook(
    qtbot, page_editor: RunbooksPage, workspace: Workspace
) -> None:
    page = page_editor
    editor = page.open_draft(DRAFT)
    assert editor in page.open_editors()
    assert editor.title_edit.text() == DRAFT.title
    assert editor.service_edit.text() == "Messaging"
    assert editor.tags_edit.text() == "outlook, mail"
    assert editor.body_edit.toPlainText() == DRAFT.to_markdown()
    assert "Remove the cached credentials" in editor.preview.toPlainText()  # first render is immediate
    assert editor.runbook_id is None
    assert editor.is_dirty() and editor.isWindowModified()  # an unsaved draft is unsaved work
    assert "Draft" in editor.status_label.text() and "not saved yet" in editor.status_label.text()

    with qtbot.waitSignal(editor.saved, timeout=WAIT_MS) as saved:
        qtbot.mouseClick(editor.save_button, Qt.MouseButton.LeftButton)
        assert not editor.save_button.isEnabled()  # disabled while the worker saves
        assert editor.save_button.text() == "Saving…"
    [runbook_id] = saved.args
    assert editor.runbook_id == runbook_id and editor.revision == 1
    assert not editor.is_dirty() and not editor.isWindowModified()
    assert not editor.save_button.isEnabled()  # nothing left to save
    assert "Created as a draft" in editor.message_label.text()

    runbook = stored(workspace, runbook_id)
    assert (runbook.title, runbook.service, runbook.tags) == (DRAFT.title, "Messaging", ["outlook", "mail"])
    assert runbook.body == DRAFT.to_markdown().strip()
    assert (runbook.status, runbook.source, runbook.current_revision) == (
        RunbookStatus.DRAFT,
        RunbookSource.AUTHORED,
        1,
    )
    assert [r.author for r in runbook.revisions] == ["alice"]  # context.reviewer()
    # The page lists and selects the new runbook; a draft does not touch the matching index.
    qtbot.waitUntil(lambda: page.current_row() is not None and page.current_row().id == runbook_id)
    assert not page.is_refreshing_index()


# Bringing an open editor forward calls raise_(), which the offscreen platform only logs about.
@pytest.mark.qt_log_ignore("This plugin does not support raise")
def test_enter_opens_the_editor_and_ctrl_s_saves_a_revision(
    qtbot, page_editor: RunbooksPage, workspace: Workspace
) -> None:
    runbook_id = seed(workspace)
    page = page_editor
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.reload()
    select_title(page, "Printer offline")
    qtbot.keyClick(page.table, Qt.Key.Key_Return)
    [editor] = page.open_editors()
    assert editor.runbook_id == runbook_id and editor.revision == 1
    assert not editor.is_dirty() and not editor.save_action.isEnabled()
    # A second request for the same runbook brings the open editor forward instead of a conflicting copy.
    assert page.edit_runbook() is editor

    editor.activateWindow()
    qtbot.waitUntil(editor.isActiveWindow)
    editor.body_edit.setFocus()
    editor.body_edit.moveCursor(editor.body_edit.textCursor().MoveOperation.End)
    qtbot.keyClick(editor.body_edit, Qt.Key.Key_Return)
    qtbot.keyClicks(editor.body_edit, "2. Clear the queue.")
    editor.tags_edit.setText("printing, spooler")
    assert editor.is_dirty() and editor.isWindowModified()
    with qtbot.waitSignal(editor.saved, timeout=WAIT_MS):
        qtbot.keyClick(editor, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert editor.revision == 2
    assert editor.message_label.text() == "Saved revision 2."

    runbook = stored(workspace, runbook_id)
    assert runbook.current_revision == 2
    assert runbook.body.endswith("1. Restart the spooler.\n2. Clear the queue.")
    assert runbook.tags == ["printing", "spooler"]
    assert [(r.revision, r.author) for r in runbook.revisions] == [(1, "seed"), (2, "alice")]
    with workspace.session_factory("default")() as session:
        assert session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all() == [
            "runbook.create",
            "runbook.edit",
        ]
    qtbot.waitUntil(lambda: page.current_row() is not None and page.current_row().current_revision == 2)
    # Ctrl+S with nothing changed writes nothing.
    assert editor.save() is None


def test_preview_follows_typing_after_a_pause(qtbot, page_editor: RunbooksPage) -> None:
    editor = page_editor.new_runbook()
    assert editor.preview.toPlainText() == "Nothing to preview yet."
    assert not editor.is_dirty()
    qtbot.keyClicks(editor.body_edit, "# Check the relay")
    assert editor.preview_pending()  # debounced: not re-rendered on every key
    qtbot.waitUntil(lambda: "Check the relay" in editor.preview.toPlainText(), timeout=WAIT_MS)
    document = editor.preview.document()
    assert document.firstBlock().text() == "Check the relay"
    assert document.firstBlock().blockFormat().headingLevel() == 1
    assert "# Check" not in editor.preview.toPlainText()
    assert editor.is_dirty()


def test_closing_asks_before_discarding_unsaved_text(qtbot, page_editor: RunbooksPage) -> None:
    editor = page_editor.new_runbook()
    asked: list[bool] = []

    def refuse(_parent: QWidget) -> bool:
        asked.append(False)
        return False

    editor.confirm_discard = refuse
    assert editor.close()  # nothing typed: closes without asking
    assert asked == []
    qtbot.waitUntil(lambda: editor not in page_editor.open_editors())

    editor = page_editor.new_runbook()
    editor.confirm_discard = refuse
    editor.title_edit.setText("Half-written")
    assert not editor.close()
    assert editor.isVisible() and asked == [False]
    assert not page_editor.close_editors()  # the window's close asks the same question
    editor.confirm_discard = allow_discard
    assert editor.close()
    assert not editor.isVisible()


def test_an_empty_title_is_refused_before_saving(qtbot, page_editor: RunbooksPage) -> None:
    editor = page_editor.new_runbook()
    editor.body_edit.setPlainText("Steps without a title")
    assert editor.save() is None
    assert "needs a title" in editor.message_label.text()


def test_a_stale_save_is_refused_and_keeps_the_text(
    qtbot, page_editor: RunbooksPage, workspace: Workspace
) -> None:
    runbook_id = seed(workspace)
    with qtbot.waitSignal(page_editor.loaded, timeout=WAIT_MS):
        page_editor.reload()
    select_title(page_editor, "Printer offline")
    editor = page_editor.edit_runbook()
    assert editor is not None
    with workspace.session_factory("default").begin() as session:  # someone else saves meanwhile
        save_runbook(
            session, runbook_id, title="Printer offline (bob)", body="x", tags=(), service=None, actor="bob",
            expected_revision=1,
        )  # fmt: skip
    editor.body_edit.appendPlainText("2. My change.")
    with qtbot.waitSignal(editor.save_failed, timeout=WAIT_MS) as failed:
        editor.save()
    assert "saved by someone else" in failed.args[0]
    assert "Your text is still here" in editor.message_label.text()
    assert editor.is_dirty() and editor.save_button.isEnabled()
    assert stored(workspace, runbook_id).title == "Printer offline (bob)"


# --- status actions ---------------------------------------------------------------------------------------


def test_status_actions_follow_the_workflow(qtbot, page_editor: RunbooksPage, workspace: Workspace) -> None:
    runbook_id = seed(workspace)
    page = page_editor
    with qtbot.waitSignal(page.loaded, timeout=WAIT_MS):
        page.reload()
    select_title(page, "Printer offline")
    actions = page.status_actions

    def enabled() -> set[RunbookStatus]:
        return {status for status, action in actions.items() if action.isEnabled()}

    assert enabled() == {RunbookStatus.IN_REVIEW, RunbookStatus.RETIRED}
    editor = page.edit_runbook()
    assert editor is not None
    with qtbot.waitSignal(page.status_changed, timeout=WAIT_MS) as changed:
        actions[RunbookStatus.IN_REVIEW].trigger()
    assert changed.args == [runbook_id, "in_review"]
    qtbot.waitUntil(lambda: page.current_row() is not None and page.current_row().status == "in_review")
    assert enabled() == {RunbookStatus.APPROVED, RunbookStatus.DRAFT, RunbookStatus.RETIRED}
    assert "In review" in page.detail_header.text()
    assert editor.status is RunbookStatus.IN_REVIEW  # the open editor shows it too
    assert "In review" in editor.status_label.text()

    with qtbot.waitSignal(page.status_changed, timeout=WAIT_MS):
        actions[RunbookStatus.DRAFT].trigger()
    qtbot.waitUntil(lambda: page.current_row() is not None and page.current_row().status == "draft")
    assert not page.is_refreshing_index()  # nothing approved was involved

    # A transition the workflow refuses (the action is disabled; the core refuses it anyway).
    assert not actions[RunbookStatus.APPROVED].isEnabled()
    page.change_status(RunbookStatus.APPROVED)
    qtbot.waitUntil(page.error_label.isVisible, timeout=WAIT_MS)
    assert "cannot become approved directly" in page.error_label.text()
    assert stored(workspace, runbook_id).status is RunbookStatus.DRAFT
    with workspace.session_factory("default")() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "runbook.status")).all()
    assert [(e.actor, e.after["status"]) for e in events] == [("alice", "in_review"), ("alice", "draft")]


# --- history ----------------------------------------------------------------------------------------------


def test_history_dialog_shows_coloured_diffs(qtbot, page_editor: RunbooksPage, workspace: Workspace) -> None:
    runbook_id = seed(workspace)
    sessions = workspace.session_factory("default")
    bodies = (
        "## Resolution steps\n\n1. Restart the spooler.\n2. Clear the queue.",
        "## Resolution steps\n\n1. Restart the print spooler.\n2. Clear the queue.",
    )
    for expected, body in enumerate(bodies, start=1):
        with sessions.begin() as session:
            save_runbook(
                session, runbook_id, title="Printer offline", body=body, tags=["printing"], service="Devices",
                actor="bob", expected_revision=expected,
            )  # fmt: skip
    with qtbot.waitSignal(page_editor.loaded, timeout=WAIT_MS):
        page_editor.reload()
    select_title(page_editor, "Printer offline")
    dialog = page_editor.show_history()
    assert isinstance(dialog, RevisionHistoryDialog)
    qtbot.waitUntil(lambda: not dialog.is_loading() and dialog.model.rowCount() == 3, timeout=WAIT_MS)
    assert [row.revision for row in dialog.revisions()] == [3, 2, 1]  # newest first
    assert dialog.selected_numbers() == [3]
    diff = dialog.diff_text()
    assert "-1. Restart the spooler." in diff
    assert "+1. Restart the print spooler." in diff
    assert dialog.compare_label.text() == "Changes from revision 2 to revision 3 (bob)"

    def colour_of(prefix: str) -> QColor:
        block = dialog.diff_view.document().begin()
        while block.isValid():
            if block.text().startswith(prefix):
                [fmt] = block.layout().formats()
                return fmt.format.foreground().color()
            block = block.next()
        raise AssertionError(f"no line starting with {prefix!r}")

    assert colour_of("+1. Restart the print") == dialog.highlighter.added.foreground().color()
    assert colour_of("-1. Restart the spooler") == dialog.highlighter.removed.foreground().color()
    assert colour_of("+1.").green() > colour_of("+1.").red()
    assert colour_of("-1.").red() > colour_of("-1.").green()

    dialog.select_revisions(1)
    assert dialog.diff_text().startswith("--- (nothing)\n+++ revision 1")
    assert "the first version, by seed" in dialog.compare_label.text()
    dialog.select_revisions(1, 3)  # any two: older against newer
    assert dialog.diff_text().startswith("--- revision 1\n+++ revision 3")
    assert "+2. Clear the queue." in dialog.diff_text()
    dialog.close()


def test_revision_model_passes_the_model_tester(qapp: QApplication, workspace: Workspace) -> None:
    runbook_id = seed(workspace)
    with workspace.session_factory("default")() as session:
        rows = list_revisions(session, runbook_id)
    model = RowTableModel(REVISION_COLUMNS)
    tester = QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    model.set_rows(rows)
    model.set_rows([])
    model.set_rows(rows * 3)
    assert model.data(model.index(0, 1)) == "seed"
    del tester


# --- import -----------------------------------------------------------------------------------------------


def runbook_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "team-runbooks"
    folder.mkdir()
    (folder / "dns.md").write_text(
        "---\ntitle: DNS lookups time out\ntags: [dns]\nstatus: draft\n---\n"
        "## Steps\n\n1. Flush the cache.\n",
        encoding="utf-8",
    )
    (folder / "broken.md").write_text("---\ntitle: [unclosed\n---\nbody\n", encoding="utf-8")
    return folder


def test_import_folder_through_the_page(qtbot, page_editor: RunbooksPage, tmp_path: Path) -> None:
    page = page_editor
    folder = runbook_folder(tmp_path)
    page.choose_folder = lambda _parent: folder
    with qtbot.waitSignal(page.import_finished, timeout=WAIT_MS) as finished:
        page.import_action.trigger()
        assert page.is_importing() and not page.import_action.isEnabled()
    summary = finished.args[0]
    assert (summary.inserted, summary.rejected_count) == (1, 1)
    box = page.import_summary_box
    assert box is not None and box.isVisible()
    assert box.text() == "team-runbooks: 1 inserted, 0 updated, 0 unchanged, 1 rejected"
    assert "broken.md" in box.detailedText() and "invalid YAML front matter" in box.detailedText()
    qtbot.waitUntil(lambda: page.model.rowCount() == 1, timeout=WAIT_MS)
    assert page.model.rows[0].title == "DNS lookups time out"
    assert page.import_action.isEnabled()
    box.close()
    # Anything written may change what matching sees: an index refresh follows.
    qtbot.waitUntil(lambda: not page.is_refreshing_index(), timeout=REFRESH_WAIT_MS)

    page.choose_folder = lambda _parent: None  # the user cancelled the folder dialog
    assert page.import_folder() is None


def test_cancelled_import_says_so(
    qtbot, page_editor: RunbooksPage, runner_editor: TaskRunner, tmp_path: Path
) -> None:
    page = page_editor
    notices: list[str] = []
    page.notice.connect(notices.append)
    task = page.import_folder(runbook_folder(tmp_path))
    assert task is not None
    task.cancel()
    # Other page tasks (the outcomes load) finish too: wait for this one, not for any task_finished.
    qtbot.waitUntil(lambda: task.state is TaskState.CANCELLED, timeout=WAIT_MS)
    assert notices[-1].startswith("Import cancelled")
    assert page.import_action.isEnabled()
    qtbot.waitUntil(lambda: not page.is_refreshing_index(), timeout=REFRESH_WAIT_MS)


def test_import_error_is_shown(qtbot, page_editor: RunbooksPage, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    page_editor.import_folder(tmp_path / "empty")
    qtbot.waitUntil(page_editor.error_label.isVisible, timeout=WAIT_MS)
    assert "no Markdown (.md) files" in page_editor.error_label.text()
    assert page_editor.import_action.isEnabled()


# --- matching sees approved edits -------------------------------------------------------------------------


@pytest.mark.slow
def test_saving_an_approved_runbook_refreshes_the_matching_index(
    qtbot, analysed_demo: Workspace, runner_editor: TaskRunner, embedder
) -> None:
    context = make_context(analysed_demo, runner_editor, embedder)
    page = open_page(qtbot, context)
    approved = next(row for row in page.model.rows if row.status == "approved")
    query = "flux capacitor of the ZX-81 telemetry gateway overheats"
    editor = page.edit_runbook(approved)
    assert editor is not None
    editor.body_edit.appendPlainText(f"\n## Known quirk\n\nThe {query}; reseat it.")
    with qtbot.waitSignal(page.index_refreshed, timeout=REFRESH_WAIT_MS) as refreshed:
        editor.save()
    assert refreshed.args[0].sections_rebuilt == 1  # only the edited runbook
    assert context.engine().search(query)[0].runbook_id == approved.id
    with analysed_demo.session_factory("default")() as session:
        assert session.scalar(
            select(RunbookRevision.author).where(RunbookRevision.runbook_id == approved.id).order_by(
                RunbookRevision.revision.desc()
            )
        ) == "alice"  # fmt: skip
    editor.confirm_discard = allow_discard
    page.close_editors()
    page.stop()


# --- main window ------------------------------------------------------------------------------------------


def test_main_window_hosts_the_library_and_keeps_unsaved_editors(
    qtbot, workspace: Workspace, tmp_path: Path
) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(workspace, "default", settings=settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: not window.runbooks_page.is_loading(), timeout=WAIT_MS)
    assert isinstance(window.runbooks_page, RunbooksPage)
    editor = window.runbooks_page.open_draft(DRAFT)
    assert isinstance(editor, RunbookEditor)
    editor.confirm_discard = keep_editing
    assert not window.close()  # the unsaved draft keeps the window open
    assert window.isVisible() and editor.isVisible()
    editor.confirm_discard = allow_discard
    assert window.close()
