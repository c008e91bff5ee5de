"""What a monitoring connector hands the sync: one :class:`AlertEvent` per record it read.

A record is the source's unit with an id and an update time (a Zabbix problem, a Datadog event or monitor
state, a SolarWinds active alert), so the sync engine pages, resumes and counts it like a ticket. Events that
are the same alert firing again share a :func:`fingerprint`: source + monitor/trigger id + host/CI + the
title with its numbers and quoted values taken out, so "CPU at 93%" and "CPU at 97%" on one host are one
alert (the deduplication in :mod:`core.monitoring.ingest`).
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from core.store.models import AlertStatus


class Severity(enum.StrEnum):
    """The one severity scale the app shows; each connector maps its vendor's onto it."""

    CRITICAL = "critical"
    HIGH = "high"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse: for sorting and for an incident's worst alert."""
        return _RANKS[self]


_RANKS = {Severity.INFO: 0, Severity.WARNING: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


def severity_rank(value: str) -> int:
    """The rank of a stored severity string (an unknown one ranks lowest)."""
    try:
        return Severity(value).rank
    except ValueError:
        return -1


# Numbers (with units and decimals), and quoted or bracketed values: what changes between two firings.
_VOLATILE = re.compile(
    r"""(?x)
    "[^"]*" | '[^']*'                 # quoted values
    | \b\d+(?:[.,]\d+)*(?:\s*%|\s*(?:[kmgt]i?b|ms|s|m|h|d)\b)?   # numbers with an optional unit
""",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")


def normalised_title(title: str) -> str:
    """The title as the fingerprint sees it: lower case, numbers and quoted values out, spaces collapsed."""
    return _SPACES.sub(" ", _VOLATILE.sub(" ", title.casefold())).strip()


def fingerprint(source_system: str, monitor_id: str, host: str | None, title: str) -> str:
    """The deduplication key of an alert (see the module docstring); a hex SHA-256."""
    key = "\x1f".join((source_system, monitor_id, (host or "").casefold(), normalised_title(title)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One monitoring record, normalised; times aware UTC.

    ``status`` is the record's state now: a problem that has recovered since comes back (updated) as
    RESOLVED with ``resolved_at``. ``firing`` says whether the record is the alert firing (a problem, a
    trigger) or only a change of its state (an acknowledgement, a reset): only a firing is counted.
    ``recovers`` names the external id of an earlier event this one ends, for a source that sends a
    separate recovery record naming its problem.
    """

    external_id: str
    source_system: str
    monitor_id: str  # the trigger / monitor / alert definition that fires
    title: str
    message: str  # the human text, raw: shown unchanged
    severity: Severity
    status: AlertStatus
    occurred_at: datetime
    updated_at: datetime | None  # the source's update time: the sync cursor
    host: str | None = None
    service: str | None = None
    expression: str | None = None  # the raw rule (trigger expression, monitor query, SWQL condition)
    tags: tuple[str, ...] = ()
    resolved_at: datetime | None = None
    recovers: str | None = None
    # False for a record of a state change alone (an acknowledgement, a reset, a recovery record): it changes
    # its alert's state but is not one more occurrence of it.
    firing: bool = True
    source_url: str | None = None
    raw_payload: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.source_system, self.monitor_id, self.host, self.title)

    @property
    def content_hash(self) -> str:
        values = asdict(self)
        encoded = json.dumps(values, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()
