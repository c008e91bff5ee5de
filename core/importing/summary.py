"""What an import reports back: counts, every rejected row with its place and reason."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

MAX_REJECTED_DETAILS = 1000


def display_name(name: str | PurePath) -> str:
    """A file name as it can be printed and stored: bytes that are not UTF-8 shown as ``\\xff``.

    POSIX file names are bytes; Python hands the undecodable ones over as lone surrogates, which neither
    SQLite nor a UTF-8 terminal accepts (one such name stopped a folder import with ``UnicodeEncodeError``).
    """
    text = str(name)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    return text


@dataclass(frozen=True, slots=True)
class RejectedRow:
    file: str
    location: str  # "line 12" for CSV/JSONL/Markdown, "record 7" for a JSON array
    reason: str

    def __str__(self) -> str:
        return f"{self.file}, {self.location}: {self.reason}"


@dataclass
class ImportSummary:
    file: str
    kind: str  # "tickets" or "runbooks"
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected_count: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    encoding: str | None = None
    format: str | None = None
    preset: str | None = None
    elapsed_s: float = 0.0

    def reject(self, row: RejectedRow) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_REJECTED_DETAILS:
            self.rejected.append(row)

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged + self.rejected_count

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "kind": self.kind,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected_count,
            "rejected_rows": [
                {"file": r.file, "location": r.location, "reason": r.reason} for r in self.rejected
            ],
            "encoding": self.encoding,
            "format": self.format,
            "preset": self.preset,
            "elapsed_s": round(self.elapsed_s, 3),
        }

    def headline(self) -> str:
        return (
            f"{self.file}: {self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.rejected_count} rejected"
        )
