"""Forms generated from a connector's declared config schema (:class:`connectors.base.ConfigField`).

One editor per field type, so a new connector gets its wizard pages by declaring fields, never by writing
widgets: text and URL fields are line edits, secrets are masked line edits (in edit mode empty, with a
"stored" placeholder: a stored secret is replaced only when typed again), choices are combo boxes, integers
line edits that accept digits, booleans check boxes, paths a line edit with a file picker, multi-line fields
small plain-text edits. Fields limited to some auth modes are shown only for those.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QIntValidator, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from connectors.base import ConfigField, FieldType

STORED_PLACEHOLDER = "stored in the keychain; type to replace"
MULTILINE_ROWS = 3


class FieldEditor(QObject):
    """The widgets of one field: ``label`` for the form's left column, ``container`` for the right."""

    changed = Signal()

    def __init__(self, config_field: ConfigField, parent: QWidget, *, stored: bool = False) -> None:
        super().__init__(parent)
        self.field = config_field
        self.stored = stored  # a secret kept in the keychain (edit mode)
        optional = "" if config_field.required else " (optional)"
        self.label = QLabel(f"{config_field.label}{optional}:", parent)
        self.container = QWidget(parent)
        layout = QVBoxLayout(self.container)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.input = self._build_input(config_field, self.container)
        self.input.setObjectName(f"field_{config_field.key}")
        if config_field.help:
            self.input.setToolTip(config_field.help)
        layout.addWidget(self._with_picker(self.input) if config_field.type is FieldType.PATH else self.input)
        if config_field.help:
            help_label = QLabel(config_field.help, self.container)
            help_label.setWordWrap(True)
            help_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
            layout.addWidget(help_label)
        self.label.setBuddy(self.input)
        self.set_value(config_field.default)

    def _build_input(self, config_field: ConfigField, parent: QWidget) -> QWidget:
        kind = config_field.type
        if kind is FieldType.CHOICE:
            combo = QComboBox(parent)
            for value, label in config_field.choices:
                combo.addItem(label, value)
            combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
            return combo
        if kind is FieldType.BOOLEAN:
            check = QCheckBox(parent)
            check.toggled.connect(lambda _c: self.changed.emit())
            return check
        if kind is FieldType.MULTILINE:
            text = QPlainTextEdit(parent)
            text.setPlaceholderText(config_field.placeholder)
            text.setTabChangesFocus(True)
            text.setFixedHeight(text.fontMetrics().lineSpacing() * MULTILINE_ROWS + 12)
            text.textChanged.connect(self.changed.emit)
            return text
        line = QLineEdit(parent)
        line.setPlaceholderText(config_field.placeholder)
        if kind is FieldType.SECRET:
            line.setEchoMode(QLineEdit.EchoMode.Password)
            if self.stored:
                line.setPlaceholderText(STORED_PLACEHOLDER)
        elif kind is FieldType.INTEGER:
            line.setValidator(QIntValidator(0, 2_000_000_000, line))
        line.textChanged.connect(lambda _t: self.changed.emit())
        return line

    def _with_picker(self, line: QWidget) -> QWidget:
        row = QWidget(self.container)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(line, 1)
        self.browse_button = QToolButton(row)
        self.browse_button.setText("Browse…")
        self.browse_button.clicked.connect(self.choose_file)
        layout.addWidget(self.browse_button)
        return row

    def choose_file(self) -> None:
        file_name, _ = QFileDialog.getOpenFileName(
            self.container, self.field.label, "", "PEM files (*.pem *.crt *.cer);;All files (*)"
        )
        if file_name:
            self.set_value(file_name)

    def value(self) -> Any:
        widget = self.input
        if isinstance(widget, QComboBox):
            return widget.currentData()
        if isinstance(widget, QCheckBox):
            return widget.isChecked()
        if isinstance(widget, QPlainTextEdit):
            return widget.toPlainText().strip()
        assert isinstance(widget, QLineEdit)
        if self.field.type is FieldType.SECRET:
            return widget.text()  # a password may start or end with a space
        text = widget.text().strip()
        if self.field.type is FieldType.INTEGER:
            return int(text) if text else None
        return text

    def set_value(self, value: Any) -> None:
        widget = self.input
        if isinstance(widget, QComboBox):
            index = widget.findData(value)
            widget.setCurrentIndex(index if index >= 0 else 0)
        elif isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, QPlainTextEdit):
            widget.setPlainText("" if value is None else str(value))
        else:
            assert isinstance(widget, QLineEdit)
            widget.setText("" if value is None else str(value))

    def is_empty(self) -> bool:
        return self.value() in (None, "")


class FieldForm(QWidget):
    """A form over some of a spec's fields; :meth:`set_auth_mode` shows the fields of that mode only."""

    changed = Signal()

    def __init__(
        self,
        fields: Sequence[ConfigField],
        parent: QWidget | None = None,
        *,
        stored_secrets: Collection[str] = (),
    ) -> None:
        super().__init__(parent)
        self.form_layout = QFormLayout(self)
        self.form_layout.setContentsMargins(0, 0, 0, 0)
        self.form_layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.editors: dict[str, FieldEditor] = {}
        for config_field in fields:
            editor = FieldEditor(config_field, self, stored=config_field.key in stored_secrets)
            editor.changed.connect(self.changed.emit)
            self.form_layout.addRow(editor.label, editor.container)
            self.editors[config_field.key] = editor
        self._auth_mode: str | None = None

    def set_auth_mode(self, auth_mode: str) -> None:
        self._auth_mode = auth_mode
        for editor in self.editors.values():
            self.form_layout.setRowVisible(editor.container, editor.field.applies_to(auth_mode))

    def applicable(self, auth_mode: str) -> list[FieldEditor]:
        return [editor for editor in self.editors.values() if editor.field.applies_to(auth_mode)]

    def options(self, auth_mode: str) -> dict[str, Any]:
        """The non-secret values of this auth mode's fields (empty ones as None)."""
        return {
            editor.field.key: None if editor.is_empty() else editor.value()
            for editor in self.applicable(auth_mode)
            if not editor.field.secret
        }

    def secrets(self, auth_mode: str) -> dict[str, str]:
        """The secrets typed for this auth mode (a stored one not typed again is absent)."""
        return {
            editor.field.key: editor.value()
            for editor in self.applicable(auth_mode)
            if editor.field.secret and not editor.is_empty()
        }

    def missing(self, auth_mode: str, stored_secrets: Collection[str] = ()) -> list[str]:
        """Labels of required fields left empty (a secret stored in the keychain counts as given)."""
        return [
            editor.field.label
            for editor in self.applicable(auth_mode)
            if editor.field.required
            and editor.is_empty()
            and editor.field.default in (None, "")
            and not (editor.field.secret and editor.field.key in stored_secrets)
        ]

    def set_values(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            editor = self.editors.get(key)
            if editor is not None and not editor.field.secret:
                editor.set_value(value)
