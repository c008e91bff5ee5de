"""The review queue's filters: text, decision, source, severity, confidence range and a date range.

What the analyst sets here becomes one :class:`~core.workflow.review.QueueFilters`; the query itself runs in
the core. Choices that are one click (a combo) ask for a reload at once (``changed``); typing and spinning
(``edited``) let the page wait until the analyst pauses.

The decision combo holds both halves of the work: the tickets still to decide (all, or one analysis
decision) and, below a separator, the decided ones (approved, rejected, all decided), so a decided ticket
can always be found again. Each choice shows its count.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time

from PySide6.QtCore import QDate, Signal
from PySide6.QtWidgets import QComboBox, QDateEdit, QHBoxLayout, QLineEdit, QSpinBox, QWidget

from core.queries import TicketFacets
from core.store.models import AnalysisDecision
from core.workflow.review import DECIDED_STATUSES, DECISION_ORDER, QueueFilters, ReviewStatus
from desktop.pages.review.models import DECISION_LABELS, STATUS_LABELS
from desktop.widgets.dates import python_date


class QueueFilterBar(QWidget):
    changed = Signal()  # reload now
    edited = Signal()  # reload once the analyst pauses

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._facets = TicketFacets((), (), ())
        self.search_edit = QLineEdit(self)
        self.search_edit.setObjectName("reviewSearch")
        self.search_edit.setPlaceholderText("Filter by number, title or description")
        self.search_edit.setClearButtonEnabled(True)
        self.decision_combo = QComboBox(self)
        self.decision_combo.setObjectName("reviewDecisionFilter")
        self.decision_combo.addItem(STATUS_LABELS[ReviewStatus.TO_DECIDE], None)
        for decision in DECISION_ORDER:
            self.decision_combo.addItem(DECISION_LABELS[decision], decision.value)
        self.decision_combo.insertSeparator(self.decision_combo.count())
        for status in DECIDED_STATUSES:
            self.decision_combo.addItem(STATUS_LABELS[status], status.value)
        self.decision_combo.setToolTip("Tickets to decide, or those already decided")
        self.source_combo = QComboBox(self)
        self.source_combo.setObjectName("reviewSourceFilter")
        self.source_combo.addItem("All sources", None)
        self.severity_combo = QComboBox(self)
        self.severity_combo.setObjectName("reviewSeverityFilter")
        self.severity_combo.addItem("All severities", None)
        self.confidence_min = QSpinBox(self)
        self.confidence_min.setObjectName("reviewConfidenceMin")
        self.confidence_max = QSpinBox(self)
        self.confidence_max.setObjectName("reviewConfidenceMax")
        for spin, value, prefix in ((self.confidence_min, 0, "≥ "), (self.confidence_max, 100, "≤ ")):
            spin.setRange(0, 100)
            spin.setValue(value)
            spin.setPrefix(prefix)
            spin.setSuffix(" %")
            spin.setToolTip("Confidence of the best match")
        self.date_field_combo = QComboBox(self)
        self.date_field_combo.setObjectName("reviewDateField")
        self.date_field_combo.addItem("Any date", None)
        self.date_field_combo.addItem("Created", "created")
        self.date_field_combo.addItem("Updated", "updated")
        today = QDate.currentDate()
        self.date_from = QDateEdit(today.addMonths(-1), self)
        self.date_from.setObjectName("reviewDateFrom")
        self.date_to = QDateEdit(today, self)
        self.date_to.setObjectName("reviewDateTo")
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setEnabled(False)
            edit.setVisible(False)  # until a date field is chosen: 220 px the bar needs only then (issue 16)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search_edit, 2)
        for widget in (
            self.decision_combo,
            self.source_combo,
            self.severity_combo,
            self.confidence_min,
            self.confidence_max,
            self.date_field_combo,
            self.date_from,
            self.date_to,
        ):
            layout.addWidget(widget)

        self.search_edit.textChanged.connect(lambda _text: self.edited.emit())
        self.search_edit.returnPressed.connect(self.changed.emit)
        for combo in (self.decision_combo, self.source_combo, self.severity_combo):
            combo.currentIndexChanged.connect(lambda _index: self.changed.emit())
        for spin in (self.confidence_min, self.confidence_max):
            spin.valueChanged.connect(lambda _value: self.edited.emit())
        self.date_field_combo.currentIndexChanged.connect(self._on_date_field_changed)
        for edit in (self.date_from, self.date_to):
            edit.dateChanged.connect(lambda _date: self.edited.emit())

    def filters(self) -> QueueFilters:
        choice = self.decision_combo.currentData()
        decision = choice if choice in set(AnalysisDecision) else None
        status = ReviewStatus(choice) if choice in set(ReviewStatus) else ReviewStatus.TO_DECIDE
        source = self.source_combo.currentData()
        severity = self.severity_combo.currentData()
        low, high = self.confidence_min.value(), self.confidence_max.value()
        date_field = self.date_field_combo.currentData()
        date_from = date_to = None
        if date_field:
            local = datetime.now().astimezone().tzinfo
            date_from = datetime.combine(python_date(self.date_from.date()), time.min, local)
            # Inclusive of the "to" day: the query's upper bound is exclusive, so take the next midnight.
            date_to = datetime.combine(python_date(self.date_to.date().addDays(1)), time.min, local)
        return QueueFilters(
            decisions=frozenset({AnalysisDecision(decision)}) if decision else frozenset(),
            source_systems=frozenset({source}) if source else frozenset(),
            severities=frozenset({severity}) if severity else frozenset(),
            confidence_min=low / 100 if low > 0 else None,
            confidence_max=high / 100 if high < 100 else None,
            date_field=date_field or "updated",
            date_from=date_from,
            date_to=date_to,
            text=self.search_edit.text().strip(),
            status=status,
        )

    def _on_date_field_changed(self) -> None:
        enabled = bool(self.date_field_combo.currentData())
        self.date_from.setEnabled(enabled)
        self.date_to.setEnabled(enabled)
        self.date_from.setVisible(enabled)
        self.date_to.setVisible(enabled)
        self.changed.emit()

    def set_facets(self, facets: TicketFacets) -> None:
        """Offer the sources and severities the queue has; the current choice stays if it still exists."""
        if facets == self._facets:
            return
        self._facets = facets
        for combo, values in (
            (self.source_combo, facets.source_systems),
            (self.severity_combo, facets.severities),
        ):
            chosen = combo.currentData()
            combo.blockSignals(True)  # refilling is not a filter change; no reload loop
            try:
                while combo.count() > 1:
                    combo.removeItem(1)
                for value in values:
                    combo.addItem(value, value)
                combo.setCurrentIndex(max(0, combo.findData(chosen)) if chosen else 0)
            finally:
                combo.blockSignals(False)

    def show_counts(self, counts: dict[AnalysisDecision, int]) -> None:
        """Each decision's count beside its name in the decision filter (the tickets still to decide)."""
        self.decision_combo.setItemText(
            0, f"{STATUS_LABELS[ReviewStatus.TO_DECIDE]} ({sum(counts.values()):,})"
        )
        for position, decision in enumerate(DECISION_ORDER, start=1):
            self.decision_combo.setItemText(
                position, f"{DECISION_LABELS[decision]} ({counts.get(decision, 0):,})"
            )

    def show_status_counts(self, counts: Mapping[ReviewStatus, int]) -> None:
        """The decided tickets' counts beside approved, rejected and all decided."""
        for status in DECIDED_STATUSES:
            position = self.decision_combo.findData(status.value)
            self.decision_combo.setItemText(position, f"{STATUS_LABELS[status]} ({counts.get(status, 0):,})")
