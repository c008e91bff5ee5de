"""Dates between Qt's date widgets and Python: ``QDate.toPython()`` is typed as returning ``object``."""

from __future__ import annotations

from datetime import date

from PySide6.QtCore import QDate


def python_date(qdate: QDate) -> date:
    return date(qdate.year(), qdate.month(), qdate.day())
