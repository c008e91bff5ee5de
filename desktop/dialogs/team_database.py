"""Settings > Team database (issue 17): which store this workspace opens, and switching it to a team's
PostgreSQL database.

The URL names the login, the server and the database (``postgresql://alice@db.example:5432/runbooks``) and
is written to the workspace's ``team.json`` (:func:`core.store.workspace.set_workspace_database_url`). A URL
with a password in it is refused with the reason: the password goes to the OS keychain (service
``runbook-desk/postgresql``, one entry per login, server and database), or stays in the analyst's
``~/.pgpass`` or libpq service file, and is never written to a file by the app. "Test connection" connects
once off the GUI thread with the typed password (or the stored one); "Use this database" stores the typed
password, writes ``team.json`` and says a restart opens it: the running window holds the workspace and its
store until then.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.errors import WorkspaceError
from core.store.db import parse_database_url
from core.store.workspace import set_workspace_database_url, workspace_database_url
from desktop.background.tasks import Task
from desktop.background.team_db_jobs import ConnectionProbe, probe_database, store_database_password
from desktop.context import AppContext
from desktop.refusals import describe_error

PLACEHOLDER_URL = "postgresql://alice@db.example:5432/runbooks"


class TeamDatabasePanel(QWidget):
    """See the module docstring. ``database_chosen(url or "")`` after team.json changed."""

    database_chosen = Signal(str)

    def __init__(self, app: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._app = app
        self._task: Task | None = None
        root = app.workspace.root

        current_box = QGroupBox("Open now", self)
        if app.workspace.is_team:
            url = app.workspace.engine.url.set(drivername="postgresql").render_as_string(hide_password=True)
            role = app.permissions.role.value if app.permissions.role is not None else "no member"
            current = f"Team database {url}, as {app.permissions.login} ({role} in this tenant)."
        else:
            current = f"This computer's single-user workspace: the SQLite file {app.workspace.db_path}."
        self.current_label = QLabel(current, current_box)
        self.current_label.setObjectName("currentStore")
        self.current_label.setWordWrap(True)
        QVBoxLayout(current_box).addWidget(self.current_label)

        choose_box = QGroupBox("Team database (PostgreSQL)", self)
        try:
            configured = workspace_database_url(root) or ""
        except WorkspaceError as exc:
            configured = ""
            self._configured_problem = str(exc)
        else:
            self._configured_problem = ""
        if not configured and app.workspace.is_team:  # opened with --database: that one, to keep or change
            configured = app.workspace.engine.url.set(drivername="postgresql").render_as_string(
                hide_password=True
            )
        self.url_edit = QLineEdit(configured, choose_box)
        self.url_edit.setObjectName("teamDatabaseUrl")
        self.url_edit.setPlaceholderText(PLACEHOLDER_URL)
        self.url_edit.setToolTip("Your own database login, the server and the database; no password here")
        self.url_edit.textChanged.connect(self._validate)
        self.password_edit = QLineEdit(choose_box)
        self.password_edit.setObjectName("teamDatabasePassword")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setPlaceholderText("stored in the OS keychain; empty: the keychain's or ~/.pgpass")
        self.test_button = QPushButton("Test connection", choose_box)
        self.test_button.clicked.connect(self.test_connection)
        self.use_button = QPushButton("Use this database", choose_box)
        self.use_button.clicked.connect(self.use_database)
        self.local_button = QPushButton("Use the local SQLite file", choose_box)
        self.local_button.setToolTip("Forget the team database: this workspace opens its own file again")
        self.local_button.clicked.connect(self.use_local_file)
        buttons = QHBoxLayout()
        for button in (self.test_button, self.use_button, self.local_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.message_label = QLabel(self._configured_problem, choose_box)
        self.message_label.setObjectName("teamDatabaseMessage")
        self.message_label.setWordWrap(True)
        form = QFormLayout(choose_box)
        form.addRow("Database URL", self.url_edit)
        form.addRow("Password", self.password_edit)
        form.addRow(buttons)
        form.addRow(self.message_label)
        form.addRow(
            QLabel(
                "Each analyst connects with their own login; an admin gives it a role on the Members page. "
                "The password is kept in the OS keychain (or your ~/.pgpass), never in a settings file.",
                choose_box,
            )
        )

        layout = QVBoxLayout(self)
        layout.addWidget(current_box)
        layout.addWidget(choose_box)
        layout.addStretch(1)
        self._validate()

    # --- validation --------------------------------------------------------------------------------------

    def url(self) -> str:
        return self.url_edit.text().strip()

    def url_problem(self) -> str:
        """Why the typed URL cannot be used ("" when it can); the message masks a password typed in it."""
        if not self.url():
            return "Type the database URL, e.g. " + PLACEHOLDER_URL
        try:
            parse_database_url(self.url())
        except WorkspaceError as exc:
            return str(exc)
        return ""

    def _validate(self) -> None:
        problem = self.url_problem()
        busy = self._task is not None and self._task.is_active
        self.test_button.setEnabled(not problem and not busy)
        self.use_button.setEnabled(not problem and not busy)
        self.local_button.setEnabled(not busy and (self._app.workspace.is_team or bool(self._configured())))
        if self.url():
            self.message_label.setText(problem)

    def _configured(self) -> str:
        try:
            return workspace_database_url(self._app.workspace.root) or ""
        except WorkspaceError:
            return ""

    # --- actions -----------------------------------------------------------------------------------------

    def test_connection(self) -> Task | None:
        if self.url_problem():
            return None
        self.message_label.setText("Connecting…")
        self._task = self._app.runner.run(
            probe_database,
            self.url(),
            self.password_edit.text() or None,
            title="Testing the team database connection",
            on_done=self._tested,
            on_error=self._failed,
        )
        self._validate()
        return self._task

    def _tested(self, probe: ConnectionProbe) -> None:
        self._task = None
        self._validate()
        self.message_label.setText(probe.summary())

    def _failed(self, exc: Exception, _traceback_text: str) -> None:
        self._task = None
        self._validate()
        self.message_label.setText(describe_error(exc))

    def use_database(self) -> Task | None:
        """Store the typed password (when there is one) in the keychain, then write team.json."""
        if self.url_problem():
            return None
        password = self.password_edit.text()
        if not password:
            self._write_team_settings(self.url())
            return None
        self.message_label.setText("Storing the password in the keychain…")
        url = self.url()
        self._task = self._app.runner.run(
            store_database_password,
            url,
            password,
            title="Storing the team database password",
            on_done=lambda _account: self._write_team_settings(url),
            on_error=self._failed,
        )
        self._validate()
        return self._task

    def _write_team_settings(self, url: str | None) -> None:
        self._task = None
        self.password_edit.clear()
        try:
            set_workspace_database_url(self._app.workspace.root, url)
        except (WorkspaceError, OSError) as exc:
            self.message_label.setText(f"Could not save the choice: {exc}")
            self._validate()
            return
        self._validate()
        where = f"the team database {url}" if url else "its own SQLite file"
        self.message_label.setText(f"Saved: this workspace opens {where}. Restart Runbook Desk to open it.")
        self.database_chosen.emit(url or "")

    def use_local_file(self) -> None:
        self._write_team_settings(None)
