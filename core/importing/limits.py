"""How big one imported thing may be: a tenant setting, so a team with unusual runbooks can raise a limit.

Why limits at all: a file is input from anywhere. A 617-byte YAML alias bomb expanded to 1.6 GB, a 20 MB
runbook became 25,559 sections that the first analysis embedded for over ten minutes, and 10,000 levels of
JSON nesting ended an import with a ``RecursionError``. Each limit turns one such file, row or record into a
rejection that names it and says which limit it met; the rest of the import goes on.

The defaults leave room: the demo runbooks are at most 3 KB and 7 sections, and the largest of the 2,503
Hadoop issues of ``bench/retrieval.py`` is 74 KB and 184 sections.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

from core.settings import SettingsSection

__all__ = ["ImportLimits"]


@dataclass(frozen=True, slots=True)
class ImportLimits(SettingsSection):
    """Stored as the tenant settings section ``import_limits`` (:func:`core.settings.load_settings`)."""

    SECTION: ClassVar[str] = "import_limits"

    runbook_max_bytes: int = 1024 * 1024  # one Markdown file, or one row's body
    runbook_max_sections: int = 500  # what the matcher embeds: headings and ~200-word chunks
    front_matter_max_bytes: int = 16 * 1024
    front_matter_max_depth: int = 16  # lists and maps inside one another
    max_tags: int = 50
    tag_max_chars: int = 100
    json_max_depth: int = 64  # one ticket or runbook record of a JSON/JSONL file

    def __post_init__(self) -> None:
        for spec in fields(self):
            if getattr(self, spec.name) < 1:
                raise ValueError(f"{self.SECTION}.{spec.name} must be at least 1")
