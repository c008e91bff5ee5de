"""The pages whose forms come from the connector's declared schema: where the system is, and how to sign in.

A ``ConfigField``'s ``page`` says where it goes; the forms are rebuilt when another system is chosen
(:mod:`desktop.widgets.config_form`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWizardPage

from connectors.base import ConfigField, ConnectorSpec, FieldType
from connectors.onboarding import check_base_url
from desktop.dialogs.connector_wizard.consent import ConsentPanel
from desktop.dialogs.connector_wizard.feedback import error_label
from desktop.widgets.config_form import FieldForm

if TYPE_CHECKING:  # the pages and the wizard refer to each other; only the wizard module imports the pages
    from desktop.background.connector_jobs import ConnectorDraft
    from desktop.dialogs.connector_wizard.wizard import ConnectorWizard

BASE_URL_KEY = "base_url"
CA_BUNDLE_KEY = "ca_bundle"

URL_FIELD = ConfigField(
    BASE_URL_KEY, "Instance URL", FieldType.URL, placeholder="https://servicedesk.example.com", page="where"
)
CA_FIELD = ConfigField(
    CA_BUNDLE_KEY,
    "Custom CA bundle",
    FieldType.PATH,
    required=False,
    help="Only when the server's certificate is signed by your organisation's own CA: that CA's PEM file. "
    "Certificates are always verified.",
    page="where",
)


class FormPage(QWizardPage):
    """A page whose form is rebuilt from the spec when the system changes."""

    def __init__(self, wizard: ConnectorWizard) -> None:
        super().__init__(wizard)
        self._wizard = wizard
        self.form: FieldForm | None = None
        self.page_layout = QVBoxLayout(self)
        self.form_host = QVBoxLayout()
        self.page_layout.addLayout(self.form_host)

    def _replace_form(self, fields: list[ConfigField], *, stored_secrets: tuple[str, ...] = ()) -> FieldForm:
        if self.form is not None:
            self.form_host.removeWidget(self.form)
            self.form.deleteLater()
        self.form = FieldForm(fields, self, stored_secrets=stored_secrets)
        self.form_host.addWidget(self.form)
        return self.form

    def options(self, auth_mode: str) -> dict[str, Any]:
        return {} if self.form is None else self.form.options(auth_mode)


class WherePage(FormPage):
    def __init__(self, wizard: ConnectorWizard) -> None:
        super().__init__(wizard)
        self.setTitle("Where is it?")
        self.setSubTitle("The address of your instance; paste it from the browser, the wizard tidies it up.")
        self.url_feedback = QLabel(self)
        self.url_feedback.setObjectName("urlFeedback")
        self.url_feedback.setWordWrap(True)
        self.suggestion_button = QPushButton(self)
        self.suggestion_button.setObjectName("useSuggestionButton")
        self.suggestion_button.hide()
        self.suggestion_button.clicked.connect(self._use_suggestion)
        self._suggestion: str | None = None
        self.error_label = error_label(self, "whereError")
        self.page_layout.addWidget(self.url_feedback)
        self.page_layout.addWidget(self.suggestion_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.page_layout.addWidget(self.error_label)
        self.page_layout.addStretch(1)

    def build(self, spec: ConnectorSpec) -> None:
        declared = {f.key: f for f in spec.fields}
        fields = [declared.get(BASE_URL_KEY, URL_FIELD)]
        fields += [f for f in spec.fields if f.page == "where" and f.key not in (BASE_URL_KEY, CA_BUNDLE_KEY)]
        fields.append(declared.get(CA_BUNDLE_KEY, CA_FIELD))
        form = self._replace_form(fields)
        form.editors[BASE_URL_KEY].changed.connect(self._url_edited)
        form.changed.connect(self.completeChanged.emit)
        self._url_edited()

    @property
    def url_edit(self) -> QLineEdit:
        assert self.form is not None
        widget = self.form.editors[BASE_URL_KEY].input
        assert isinstance(widget, QLineEdit)
        return widget

    def base_url(self) -> str:
        return self.url_edit.text().strip()

    def ca_bundle(self) -> str | None:
        assert self.form is not None
        value = self.form.editors[CA_BUNDLE_KEY].value()
        return str(value) if value else None

    def set_ca_bundle(self, path: str) -> None:
        assert self.form is not None
        self.form.editors[CA_BUNDLE_KEY].set_value(path)

    def options(self, auth_mode: str) -> dict[str, Any]:
        values = super().options(auth_mode)
        values.pop(BASE_URL_KEY, None)
        values.pop(CA_BUNDLE_KEY, None)
        return values

    def isComplete(self) -> bool:
        return self.form is not None and bool(self.base_url())

    def _url_edited(self) -> None:
        self.url_feedback.clear()
        self.suggestion_button.hide()
        self.error_label.hide()

    def _use_suggestion(self) -> None:
        if self._suggestion:
            self.url_edit.setText(self._suggestion)
            self.validatePage()

    def validatePage(self) -> bool:
        spec = self._wizard.spec
        assert spec is not None and self.form is not None
        check = check_base_url(self.base_url(), spec.type)
        notes = [f"Changed: {', '.join(check.changes)}." if check.changes else ""]
        notes += [f"Note: {warning}." for warning in check.warnings]
        if not check.ok:
            self.url_feedback.setText(" ".join(n for n in notes if n))
            self.error_label.setText(check.problem or "")
            self.error_label.show()
            self._suggestion = check.suggestion
            if check.suggestion:
                self.suggestion_button.setText(f"Use {check.suggestion}")
                self.suggestion_button.show()
            return False
        self.url_edit.setText(check.url)  # clears the feedback: set it after
        self.url_feedback.setText(
            " ".join(n for n in [f"Runbook Desk will connect to {check.url}.", *notes] if n)
        )
        ca_bundle = self.ca_bundle()
        if ca_bundle and not os.path.isfile(ca_bundle):
            self.error_label.setText(f"The CA bundle {ca_bundle} does not exist or is not a file.")
            self.error_label.show()
            return False
        missing = self.form.missing(self._wizard.auth_page.auth_mode())
        if missing:
            self.error_label.setText(f"Fill in: {', '.join(missing)}.")
            self.error_label.show()
            return False
        return True


class AuthPage(FormPage):
    def __init__(self, wizard: ConnectorWizard) -> None:
        super().__init__(wizard)
        self.setTitle("How does Runbook Desk sign in?")
        self.setSubTitle(
            "Nothing is stored yet. When you finish, secrets go to the OS keychain, never into the database."
        )
        self.mode_combo = QComboBox(self)
        self.mode_combo.setObjectName("authMode")
        self.mode_help = QLabel(self)
        self.mode_help.setWordWrap(True)
        mode_row = QFormLayout()
        mode_row.addRow("Sign in with:", self.mode_combo)
        mode_row.addRow("", self.mode_help)
        self.page_layout.insertLayout(0, mode_row)
        self.error_label = error_label(self, "authError")
        self.consent_panel = ConsentPanel(self)  # "Sign in…" for the browser sign-in (issue 17)
        self.page_layout.addWidget(self.consent_panel)
        self.page_layout.addWidget(self.error_label)
        self.page_layout.addStretch(1)
        self._spec: ConnectorSpec | None = None
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)

    def build(self, spec: ConnectorSpec, stored_secrets: tuple[str, ...]) -> None:
        self._spec = spec
        self._replace_form([f for f in spec.fields if f.page == "auth"], stored_secrets=stored_secrets)
        self.mode_combo.blockSignals(True)
        self.mode_combo.clear()
        for mode in spec.auth_modes:
            self.mode_combo.addItem(mode.label, mode.key)
        self.mode_combo.blockSignals(False)
        self.mode_combo.setEnabled(len(spec.auth_modes) > 1)
        self._mode_changed()

    def auth_mode(self) -> str:
        value = self.mode_combo.currentData()
        return str(value) if value else ""

    def set_auth_mode(self, auth_mode: str) -> None:
        index = self.mode_combo.findData(auth_mode)
        if index >= 0:
            self.mode_combo.setCurrentIndex(index)

    def secrets(self) -> dict[str, str]:
        return {} if self.form is None else self.form.secrets(self.auth_mode())

    def _mode_changed(self, *_args: object) -> None:
        mode = self.auth_mode()
        if self.form is not None:
            self.form.set_auth_mode(mode)
        helps = {m.key: m.help for m in self._spec.auth_modes} if self._spec else {}
        self.mode_help.setText(helps.get(mode, ""))
        self.error_label.hide()
        self._wizard.apply_auth_mode(mode)
        self.consent_panel.apply_auth_mode(mode)

    def wizard_draft(self) -> ConnectorDraft:
        """The draft as the pages hold it now (the sign-in needs the URL, client id and secret)."""
        return self._wizard.draft()

    def validatePage(self) -> bool:
        assert self.form is not None
        missing = self.form.missing(self.auth_mode(), self._wizard.stored_secret_fields())
        if missing:
            self.error_label.setText(f"Fill in: {', '.join(missing)}.")
            self.error_label.show()
            return False
        self.error_label.hide()
        return True
