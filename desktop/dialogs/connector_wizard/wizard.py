"""The wizard itself: its pages in order, the draft they add up to, and Finish (saving on a worker).

Nothing is stored before Finish: typed secrets live in the line edits and the jobs' arguments only. Finish
saves through :func:`desktop.background.connector_jobs.save_job` (``create_config``: validation, keychain,
audit) on a worker, and emits :attr:`ConnectorWizard.saved`; the Connectors page starts the first sync. In
edit mode the wizard opens on the "where" page pre-filled; secrets show as stored and are replaced only if
typed again.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget, QWizard

from connectors.base import ConnectorSpec
from connectors.configs import ConfigRow, validate_options
from connectors.errors import ConfigurationError
from connectors.registry import connector_class
from connectors.secrets import redact_text, register_secret
from desktop.background.connector_jobs import ConnectorDraft, SaveOutcome, save_job
from desktop.background.tasks import Task, TaskRunner
from desktop.context import AppContext
from desktop.dialogs.connector_wizard.check_page import ConnectionTestPage
from desktop.dialogs.connector_wizard.form_pages import AuthPage, WherePage
from desktop.dialogs.connector_wizard.scope_page import ScopePage
from desktop.dialogs.connector_wizard.system_page import SystemPage
from desktop.dialogs.connector_wizard.when_page import WhenPage

SYSTEM_PAGE, WHERE_PAGE, AUTH_PAGE, TEST_PAGE, SCOPE_PAGE, WHEN_PAGE = range(6)


class ConnectorWizard(QWizard):
    """Add a connector, or (``existing``) edit one. ``saved(ConfigRow)`` fires once the row is committed."""

    saved = Signal(object)

    def __init__(
        self,
        context: AppContext,
        *,
        existing: ConfigRow | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.context = context
        self.existing = existing
        self.spec: ConnectorSpec | None = None
        self._save_task: Task | None = None
        self.setObjectName("connectorWizard")
        self.setWindowTitle(f"Edit {existing.name}" if existing else "Add a connector")
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.system_page = SystemPage(self)
        self.where_page = WherePage(self)
        self.auth_page = AuthPage(self)
        self.test_page = ConnectionTestPage(self)
        self.scope_page = ScopePage(self)
        self.when_page = WhenPage(self)
        for page_id, page in (
            (SYSTEM_PAGE, self.system_page),
            (WHERE_PAGE, self.where_page),
            (AUTH_PAGE, self.auth_page),
            (TEST_PAGE, self.test_page),
            (SCOPE_PAGE, self.scope_page),
            (WHEN_PAGE, self.when_page),
        ):
            self.setPage(page_id, page)
        self.when_page.configure_for_edit(existing)
        if existing is not None:
            self.system_page.select(existing.connector_type)
            self.set_spec(connector_class(existing.connector_type).spec)
            self.setStartId(WHERE_PAGE)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Save" if existing else "Finish")
        self.resize(820, 640)

    @property
    def runner(self) -> TaskRunner:
        return self.context.runner

    def stored_secret_fields(self) -> tuple[str, ...]:
        return self.existing.secret_fields if self.existing is not None else ()

    def set_spec(self, spec: ConnectorSpec) -> None:
        """Generate the form pages for this connector (kept as they are if it is the same one)."""
        if self.spec is not None and self.spec.type == spec.type:
            return
        self.spec = spec
        self.where_page.build(spec)
        self.auth_page.build(spec, self.stored_secret_fields())
        self.scope_page.build(spec)
        if self.existing is not None:
            self._prefill(self.existing)
        self.apply_auth_mode(self.auth_page.auth_mode())

    def apply_auth_mode(self, auth_mode: str) -> None:
        """Show each form's fields of this auth mode only (a field may declare the modes it belongs to)."""
        forms = (
            self.where_page.form,
            self.auth_page.form,
            self.scope_page.form,
            self.scope_page.mapping_form,
        )
        for form in forms:
            if form is not None:
                form.set_auth_mode(auth_mode)

    def _prefill(self, existing: ConfigRow) -> None:
        assert self.where_page.form and self.auth_page.form and self.scope_page.form
        self.where_page.url_edit.setText(existing.base_url)
        if existing.ca_bundle:
            self.where_page.set_ca_bundle(existing.ca_bundle)
        self.auth_page.set_auth_mode(existing.auth_mode)
        for form in (
            self.where_page.form,
            self.auth_page.form,
            self.scope_page.form,
            self.scope_page.mapping_form,
        ):
            if form is not None:
                form.set_values({k: v for k, v in existing.options.items() if k in form.editors})

    def default_name(self) -> str:
        assert self.spec is not None
        host = urlsplit(self.where_page.base_url()).hostname or ""
        label = host.split(".")[0] if host else ""
        return f"{self.spec.display_name} ({label})" if label else self.spec.display_name

    def draft(self) -> ConnectorDraft:
        """What the pages hold now, validated like the CLI validates it; raises ConfigurationError."""
        spec = self.spec
        if spec is None:
            raise ConfigurationError("connector", "choose a system first")
        mode = self.auth_page.auth_mode()
        name = self.when_page.name() or self.default_name()
        raw = self.where_page.options(mode) | self.auth_page.options(mode) | self.scope_page.options(mode)
        options = validate_options(spec, name, mode, raw)
        secrets = self.auth_page.secrets()
        for value in secrets.values():
            register_secret(value)  # masked in any message or log line from here on
        existing = self.existing
        return ConnectorDraft(
            connector_type=spec.type,
            name=name,
            base_url=self.where_page.base_url(),
            auth_mode=mode,
            options=options,
            secrets=secrets,
            ca_bundle=self.where_page.ca_bundle(),
            sync_frequency_minutes=self.when_page.frequency_spin.value(),
            first_sync_start=None if existing else self.when_page.first_sync_start(),
            existing_id=existing.id if existing else None,
            keychain_key=existing.keychain_key if existing else "",
            stored_secret_fields=existing.secret_fields if existing else (),
        )

    def summary_text(self) -> str:
        try:
            draft = self.draft()
        except ConfigurationError as exc:
            return redact_text(str(exc))
        secret_state = [
            f"{key}: {'entered' if key in draft.secrets else 'stored'}"
            for key in sorted(set(draft.secrets) | set(draft.stored_secret_fields))
        ]
        lines = [
            f"System: {self.spec.display_name if self.spec else draft.connector_type}",
            f"Address: {draft.base_url}",
            f"Sign-in: {draft.auth_mode}"
            + (f" ({', '.join(secret_state)}; kept in the OS keychain)" if secret_state else ""),
        ]
        if draft.ca_bundle:
            lines.append(f"CA bundle: {draft.ca_bundle}")
        scope = ", ".join(f"{k}={v}" for k, v in draft.options.items())
        if scope:
            lines.append(f"Options: {scope}")
        if not self.existing:
            lines.append(
                "The first sync starts as soon as you finish; the Connectors page shows its progress."
            )
        return "\n".join(lines)

    # --- finishing ---------------------------------------------------------------------------------------

    def is_saving(self) -> bool:
        return self._save_task is not None and self._save_task.is_active

    def accept(self) -> None:
        if self.is_saving():
            return
        try:
            draft = self.draft()
        except ConfigurationError as exc:
            self.when_page.show_error(redact_text(str(exc)))
            return
        self.when_page.error_label.hide()
        self._save_task = self.runner.run(
            save_job,
            self.context.sessions,
            draft,
            self.context.reviewer(),
            title=f"Saving {draft.name}",
            on_done=self._saved,
            on_error=self._save_failed,
        )
        self._set_saving(True)

    def _set_saving(self, saving: bool) -> None:
        self.when_page.saving_bar.setVisible(saving)
        for button in (QWizard.WizardButton.BackButton, QWizard.WizardButton.CancelButton):
            self.button(button).setEnabled(not saving)
        self.when_page.completeChanged.emit()

    def _saved(self, result: SaveOutcome) -> None:
        self._save_task = None
        self._set_saving(False)
        if result.config is None:
            self.when_page.show_error(redact_text(result.problem or "not saved"))
            return
        self.saved.emit(result.config)
        super().accept()

    def _save_failed(self, exc: Exception, _traceback_text: str) -> None:
        self._save_task = None
        self._set_saving(False)
        self.when_page.show_error(f"Not saved: {redact_text(str(exc))}")

    def reject(self) -> None:
        if self.is_saving():  # the row is being committed: Cancel would not undo it
            return
        self.test_page.cancel_check()
        self.auth_page.consent_panel.cancel()
        self.scope_page.cleanupPage()
        super().reject()
