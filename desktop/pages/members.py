"""The Members page (team mode, issue 17): who may read, decide and configure in this tenant.

A table of the tenant's members (login, role, who added them, since when). An admin adds a member
(``Ctrl+N``), changes a role (``Enter`` or double-click on a row) and removes one (``Delete``, after a
confirmation); for everyone else those actions are disabled with the role they need, and the database would
refuse them anyway (``team_members`` is written by admins only). A refusal (no longer an admin, the last admin
of the tenant) is shown inline above the table, in the database's or the core's own words.

A login must exist on the server before it can be a member: creating logins and their passwords is the
database administrator's job (``CREATE ROLE … LOGIN``), not the app's: no password ever passes through here.

On SQLite there is one analyst and no membership: the window does not show the page; built there anyway, it
says so instead of showing an empty table.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from core.store.models import TeamRole
from core.store.team import MemberRow
from desktop.background.member_jobs import (
    add_member_job,
    change_role_job,
    load_members,
    remove_member_job,
)
from desktop.background.tasks import Task
from desktop.context import AppContext
from desktop.permissions import RoleLock
from desktop.refusals import describe_error
from desktop.widgets.browse import focus_filter_box, row_filter_edit
from desktop.widgets.table_models import Column, RowTableModel

ROLE_WORDS = {
    TeamRole.VIEWER: "viewer: reads tickets, runbooks and metrics",
    TeamRole.ANALYST: "analyst: decides, drafts runbooks, records outcomes",
    TeamRole.ADMIN: "admin: connectors, secrets, thresholds, calibration, members",
}
LOGIN_MAX = 63  # PostgreSQL's identifier length

MEMBER_COLUMNS: tuple[Column[MemberRow], ...] = (
    Column("Login", lambda member: member.login),
    Column("Role", lambda member: member.role.value, tooltip=lambda member: ROLE_WORDS[member.role]),
    Column("Added by", lambda member: member.added_by or None),
    Column("Since", lambda member: member.added_at),
)


class MemberDialog(QDialog):
    """Add a member (the login typed) or change one's role (the login fixed); Enter accepts."""

    def __init__(
        self, parent: QWidget, *, login: str | None = None, role: TeamRole = TeamRole.ANALYST
    ) -> None:
        super().__init__(parent)
        adding = login is None
        self.setWindowTitle("Add a member" if adding else f"Change the role of {login}")
        self.login_edit = QLineEdit(login or "", self)
        self.login_edit.setObjectName("memberLogin")
        self.login_edit.setMaxLength(LOGIN_MAX)
        self.login_edit.setPlaceholderText("the analyst's database login, e.g. alice")
        self.login_edit.setReadOnly(not adding)
        self.role_combo = QComboBox(self)
        self.role_combo.setObjectName("memberRole")
        for choice in TeamRole:
            self.role_combo.addItem(ROLE_WORDS[choice], choice.value)
        self.role_combo.setCurrentIndex(self.role_combo.findData(role.value))
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add" if adding else "Change role")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Database login", self.login_edit)
        form.addRow("Role", self.role_combo)
        if adding:
            form.addRow(
                QLabel(
                    "The login must exist on the database server (its administrator creates it, with its "
                    "password); here it only gets a role in this tenant.",
                    self,
                )
            )
        form.addRow(self.buttons)
        self.login_edit.textChanged.connect(self._update_ok)
        self._update_ok()
        (self.login_edit if adding else self.role_combo).setFocus()

    def login(self) -> str:
        return self.login_edit.text().strip()

    def role(self) -> TeamRole:
        return TeamRole(self.role_combo.currentData())

    def _update_ok(self) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(self.login()))


class MembersPage(QWidget):
    """See the module docstring. ``changed`` is emitted after each stored change (the window may reload)."""

    loaded = Signal()
    changed = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.permissions = context.permissions
        self.dialog: MemberDialog | None = None
        self.remove_box: QMessageBox | None = None
        self._load_task: Task | None = None
        self._change_task: Task | None = None
        self._stopped = False
        self.loaded_once = False
        self._select_after = ""  # the member a change was about: selected once the list is back
        tenant = context.workspace.tenant(context.tenant_slug)

        self.toolbar = QToolBar(self)
        self.toolbar.setObjectName("memberActions")
        self.add_action = self._page_action("&Add member…", self.open_add_dialog, "Ctrl+N")
        self.change_action = self._page_action("&Change role…", self.open_change_dialog)
        self.change_action.setToolTip("Change the selected member's role (Enter or double-click)")
        self.remove_action = self._page_action("&Remove…", self.ask_remove)
        self.remove_action.setToolTip("Remove the selected member from this tenant (Delete)")
        for action in (self.add_action, self.change_action, self.remove_action):
            self.toolbar.addAction(action)
        self.toolbar.addSeparator()
        self.toolbar.addAction("Refresh", self.reload)

        self.intro = QLabel(self)
        self.intro.setObjectName("membersIntro")
        self.intro.setWordWrap(True)
        self.error_label = QLabel(self)
        self.error_label.setObjectName("membersError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: white; background: #b3261e; padding: 6px;")
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()

        self.model: RowTableModel[MemberRow] = RowTableModel(MEMBER_COLUMNS, self)
        self.table = QTableView(self)
        self.table.setObjectName("membersTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(self.model.column_index("Login"), QHeaderView.ResizeMode.Stretch)
        self.filter_edit = row_filter_edit(self.table, "membersFilter", "Filter the members by login or role")
        # Enter edits and Delete removes, on the table only: Enter in the filter box still filters.
        self.table_change_action = self._table_action(
            self.open_change_dialog, QKeySequence(Qt.Key.Key_Return), QKeySequence(Qt.Key.Key_Enter)
        )
        self.table_remove_action = self._table_action(
            self.ask_remove, QKeySequence(QKeySequence.StandardKey.Delete)
        )
        self.table.doubleClicked.connect(lambda _index: self.change_action.trigger())

        layout = QVBoxLayout(self)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.intro)
        layout.addWidget(self.error_label)
        layout.addWidget(self.filter_edit)
        layout.addWidget(self.table, 1)

        self.lock = RoleLock(self.permissions, TeamRole.ADMIN, self)
        self.lock.lock(
            self.add_action,
            self.change_action,
            self.remove_action,
            self.table_change_action,
            self.table_remove_action,
        )
        is_admin = self.permissions.allows(TeamRole.ADMIN)
        hidden: tuple[QWidget, ...] = ()
        if not context.workspace.is_team:
            self.intro.setText(
                "Single-user workspace: this workspace is one SQLite file on this computer and you may do "
                "everything. Members and roles apply to a team database (Settings > Team database)."
            )
            hidden = (self.toolbar, self.filter_edit, self.table)
        else:
            you = f"You are {self.permissions.login or 'this login'}"
            role = self.permissions.role.value if self.permissions.role is not None else "no member"
            self.intro.setText(
                f"Members of tenant “{tenant.name}” and their roles. {you}, {role}. Viewers read; analysts "
                "decide, draft and record outcomes; admins manage connectors, secrets, thresholds, "
                "calibration and members." + ("" if is_admin else " Only an admin sees and changes the list.")
            )
            if not is_admin:  # the list itself is an admin's (core.store.team.list_members): no refusal
                hidden = (self.filter_edit, self.table)
        for widget in hidden:
            widget.hide()
        self._stopped = bool(hidden)  # nothing to load
        self.table.selectionModel().currentRowChanged.connect(lambda *_a: self._update_actions())
        self._update_actions()

    def _page_action(self, text: str, slot: Callable[[], object], shortcut: str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(lambda *_checked: slot())
        self.addAction(action)
        return action

    def _table_action(self, slot: Callable[[], object], *keys: QKeySequence) -> QAction:
        action = QAction(self.table)
        action.setShortcuts(list(keys))
        action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        action.triggered.connect(lambda *_checked: slot())
        self.table.addAction(action)
        return action

    # --- life cycle --------------------------------------------------------------------------------------

    def focus_filter(self) -> None:
        focus_filter_box(self.filter_edit)

    def stop(self) -> None:
        self._stopped = True
        for task in (self._load_task, self._change_task):
            if task is not None and task.is_active:
                task.cancel()
        if self.dialog is not None:
            self.dialog.reject()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self.loaded_once:
            self.reload()

    # --- loading -----------------------------------------------------------------------------------------

    def reload(self) -> Task | None:
        if self._stopped:
            return None
        if self._load_task is not None and self._load_task.is_active:
            self._load_task.cancel()
        self._load_task = self.context.runner.run(
            load_members,
            self.context.sessions,
            title="Loading the members",
            on_done=self._show_rows,
            on_error=self._failed,
        )
        return self._load_task

    def is_busy(self) -> bool:
        return any(task is not None and task.is_active for task in (self._load_task, self._change_task))

    def _show_rows(self, member_rows: tuple[MemberRow, ...]) -> None:
        previous = self.current_member()
        self.model.set_rows(member_rows)
        self.loaded_once = True
        wanted = previous.login if previous is not None else None
        if not (wanted is not None and self.select_member(wanted)) and self.model.rows:
            self.table.selectRow(0)
        self.filter_edit.textChanged.emit(self.filter_edit.text())  # the filter applies to the new rows
        self._update_actions()
        self.loaded.emit()

    def select_member(self, login: str) -> bool:
        number = self.model.position_of(lambda member: member.login == login)
        if number is not None:
            self.table.selectRow(number)
        return number is not None

    def current_member(self) -> MemberRow | None:
        return self.model.row_or_none(self.table.currentIndex())

    def _update_actions(self) -> None:
        selected = self.current_member() is not None
        busy = self._change_task is not None and self._change_task.is_active
        self.add_action.setEnabled(not busy)
        for action in (
            self.change_action,
            self.remove_action,
            self.table_change_action,
            self.table_remove_action,
        ):
            action.setEnabled(selected and not busy)

    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    def _failed(self, exc: Exception, _traceback_text: str) -> None:
        self._change_task = None
        self.show_error(describe_error(exc))
        self._update_actions()

    # --- changes -----------------------------------------------------------------------------------------

    def open_add_dialog(self) -> MemberDialog | None:
        return self._open_dialog(MemberDialog(self))

    def open_change_dialog(self) -> MemberDialog | None:
        member = self.current_member()
        if member is None:
            return None
        return self._open_dialog(MemberDialog(self, login=member.login, role=member.role))

    def _open_dialog(self, dialog: MemberDialog) -> MemberDialog | None:
        if self.dialog is not None:
            dialog.deleteLater()
            self.dialog.raise_()
            return self.dialog
        adding = not dialog.login_edit.isReadOnly()
        dialog.accepted.connect(lambda: self._dialog_accepted(dialog, adding=adding))
        dialog.finished.connect(lambda _result: self._dialog_closed(dialog))
        self.dialog = dialog
        dialog.open()  # window-modal, no nested event loop
        return dialog

    def _dialog_closed(self, dialog: MemberDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
        dialog.deleteLater()

    def _dialog_accepted(self, dialog: MemberDialog, *, adding: bool) -> None:
        login, role = dialog.login(), dialog.role()
        if adding:
            self.add_member(login, role)
        else:
            self.change_role(login, role)

    def add_member(self, login: str, role: TeamRole) -> Task | None:
        return self._change(add_member_job, login, role, title=f"Adding {login} as {role.value}")

    def change_role(self, login: str, role: TeamRole) -> Task | None:
        return self._change(change_role_job, login, role, title=f"Making {login} {role.value}")

    def remove_member(self, login: str) -> Task | None:
        return self._change(remove_member_job, login, title=f"Removing {login}")

    def _change(
        self, job: Callable[..., tuple[MemberRow, ...]], login: str, *args: object, title: str
    ) -> Task | None:
        if self._stopped:
            return None
        self.show_error("")
        self._select_after = login
        self._change_task = self.context.runner.run(
            job,
            self.context.sessions,
            login,
            *args,
            self.context.reviewer(),
            title=title,
            on_done=self._changed,
            on_error=self._failed,
        )
        self._update_actions()
        return self._change_task

    def _changed(self, member_rows: tuple[MemberRow, ...]) -> None:
        self._change_task = None
        self._show_rows(member_rows)
        self.select_member(self._select_after)
        self.changed.emit()

    def ask_remove(self) -> QMessageBox | None:
        member = self.current_member()
        if member is None:
            return None
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Remove member",
            f"Remove {member.login} ({member.role.value}) from this tenant? The login stays on the server; "
            "it no longer sees or changes anything of this tenant.",
            QMessageBox.StandardButton.NoButton,
            self,
        )
        box.setObjectName("removeMemberBox")
        self.remove_button = box.addButton("Remove", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.buttonClicked.connect(lambda button: self._remove_answered(member.login, button))
        self.remove_box = box
        box.open()
        return box

    def _remove_answered(self, login: str, button: object) -> None:
        self.remove_box = None
        if button is self.remove_button:
            self.remove_member(login)
