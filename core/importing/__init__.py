"""Bulk import of tickets and runbooks from files (roadmap: Phase 2.2, Batch Analysis Tool).

Streaming throughout: rows are read, normalised and upserted in batches, each batch its own transaction, so a
100k-row export never sits in memory and an interrupted import keeps what it committed (re-running it is
idempotent: unchanged rows are detected by content hash and left alone).
"""

from core.importing.runbooks import import_runbooks
from core.importing.summary import ImportSummary, RejectedRow
from core.importing.tickets import import_tickets

__all__ = ["ImportSummary", "RejectedRow", "import_runbooks", "import_tickets"]
