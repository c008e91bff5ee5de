"""The review page's ``O``: did the linked runbook fix the ticket? Three answers, each on a number key.

``O`` then ``1`` (resolved it), ``2`` (partly) or ``3`` (did not help) records the outcome without reaching
for the mouse; Esc asks nothing. The page opens this dialog only when a runbook is linked to the ticket, and
writes the answer on a worker (:mod:`desktop.background.outcome_jobs`).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPushButton, QVBoxLayout, QWidget

from core.store.models import OutcomeKind

# The answers in key order: (key, outcome, button text).
OUTCOME_CHOICES: tuple[tuple[Qt.Key, OutcomeKind, str], ...] = (
    (Qt.Key.Key_1, OutcomeKind.RESOLVED, "&1  Resolved it"),
    (Qt.Key.Key_2, OutcomeKind.PARTLY, "&2  Partly"),
    (Qt.Key.Key_3, OutcomeKind.FAILED, "&3  Did not help"),
)
OUTCOME_WORDS = {
    OutcomeKind.RESOLVED: "resolved it",
    OutcomeKind.PARTLY: "partly helped",
    OutcomeKind.FAILED: "did not help",
}


class OutcomeDialog(QDialog):
    """Asks whether ``runbook_title`` fixed ``ticket_label``; :meth:`chosen` is the answer once accepted."""

    def __init__(self, ticket_label: str, runbook_title: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("outcomeDialog")
        self.setWindowTitle("Runbook outcome")
        self._chosen: OutcomeKind | None = None
        subject = f"“{runbook_title}”" if runbook_title else "the linked runbook"
        self.label = QLabel(f"Did {subject} fix {ticket_label}?", self)
        self.label.setObjectName("outcomeQuestion")
        self.label.setWordWrap(True)
        hint = QLabel("Press 1, 2 or 3; Esc to leave it unanswered.", self)
        hint.setObjectName("outcomeHint")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        buttons.rejected.connect(self.reject)
        self.buttons: dict[OutcomeKind, QPushButton] = {}
        self._by_key: dict[Qt.Key, OutcomeKind] = {}
        for key, outcome, text in OUTCOME_CHOICES:
            button = QPushButton(text, self)
            button.setObjectName(f"outcome-{outcome.value}")
            button.setAutoDefault(False)  # Enter must not pick an answer the analyst did not choose
            button.clicked.connect(self._chooser(outcome))
            buttons.addButton(button, QDialogButtonBox.ButtonRole.ActionRole)
            self.buttons[outcome] = button
            self._by_key[key] = outcome
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(hint)
        layout.addWidget(buttons)
        self.buttons[OutcomeKind.RESOLVED].setFocus(Qt.FocusReason.OtherFocusReason)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """A bare 1, 2 or 3 (the keypad's too) answers; the buttons pass digits up to the dialog."""
        outcome = self._by_key.get(Qt.Key(event.key()))
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if outcome is not None and modifiers == Qt.KeyboardModifier.NoModifier:
            self._chooser(outcome)()
            return
        super().keyPressEvent(event)

    def _chooser(self, outcome: OutcomeKind) -> Callable[[], None]:
        def choose() -> None:
            self._chosen = outcome
            self.accept()

        return choose

    def chosen(self) -> OutcomeKind | None:
        return self._chosen
