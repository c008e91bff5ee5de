"""From a source row's columns to our ticket fields: column presets, dates, priorities, kinds.

A preset is recognised from the header (a ServiceNow list export has ``number`` and ``short_description``; a
Jira CSV export has ``Issue key`` and ``Summary``); otherwise the generic aliases apply. An explicit mapping
(``--map title=Subject``) wins over both. Column names compare case- and space-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from core.errors import ImportFailedError
from core.store.models import TicketKind

TICKET_FIELDS = (
    "external_id",
    "title",
    "description",
    "status",
    "severity",
    "assignee",
    "kind",
    "category",
    "configuration_item",
    "resolution_notes",
    "resolved_at",
    "created_at",
    "updated_at",
    "source_url",
    "source_system",
)
REQUIRED_TICKET_FIELDS = ("external_id", "title")

# Aliases in order of preference; the first present column wins.
GENERIC_ALIASES: dict[str, tuple[str, ...]] = {
    "external_id": (
        "external_id",
        "number",
        "issue key",
        "key",
        "ticket id",
        "incident id",
        "request id",
        "id",
    ),
    "title": ("title", "short_description", "summary", "subject", "name"),
    "description": ("description", "details", "body", "rendered description"),
    "status": ("status", "state", "incident_state"),
    "severity": ("severity", "priority", "impact", "urgency"),
    "assignee": ("assignee", "assigned_to", "assigned to", "owner"),
    "kind": ("kind", "sys_class_name", "issue type", "issuetype", "type", "ticket type"),
    "category": ("category", "component/s", "components", "subcategory"),
    "configuration_item": ("configuration_item", "cmdb_ci", "configuration item", "ci", "service", "host"),
    "resolution_notes": ("resolution_notes", "close_notes", "resolution notes", "resolution_note", "comment"),
    "resolved_at": ("resolved_at", "resolved", "closed_at", "resolution date", "resolutiondate"),
    "created_at": ("created_at", "sys_created_on", "created", "opened_at", "created date", "creation date"),
    "updated_at": ("updated_at", "sys_updated_on", "updated", "last updated", "modified", "last modified"),
    "source_url": ("source_url", "url", "link", "self"),
    "source_system": ("source_system",),
}


@dataclass(frozen=True)
class Preset:
    name: str
    source_system: str
    signature: tuple[str, ...]  # columns that identify the export
    aliases: Mapping[str, tuple[str, ...]]


PRESETS = (
    Preset(
        "servicenow",
        "servicenow",
        ("number", "short_description"),
        {
            "external_id": ("number",),
            "title": ("short_description",),
            "severity": ("priority", "severity", "impact"),
            "status": ("state", "incident_state", "status"),
        },
    ),
    Preset(
        "jira",
        "jira",
        ("issue key", "summary"),
        {
            "external_id": ("issue key",),
            "title": ("summary",),
            "severity": ("priority",),
            # Jira's "Resolution" is a verdict ("Fixed", "Duplicate"), not notes: it stays in the raw payload.
            "resolution_notes": ("resolution notes", "comment"),
        },
    ),
    Preset(
        "jira-rest",
        "jira",
        ("key", "fields.summary"),
        {"external_id": ("key",), "title": ("fields.summary",), "severity": ("fields.priority",)},
    ),
)

SEVERITY_WORDS = {
    # ServiceNow priorities "1 - Critical" .. "5 - Planning"
    "1": "critical",
    "2": "high",
    "3": "medium",
    "4": "low",
    "5": "planning",
    "critical": "critical",
    "high": "high",
    "moderate": "medium",
    "medium": "medium",
    "low": "low",
    "planning": "planning",
    # Jira
    "blocker": "critical",
    "highest": "critical",
    "major": "medium",
    "minor": "low",
    "lowest": "planning",
    "trivial": "planning",
    # Remedy / others
    "urgent": "critical",
    "p1": "critical",
    "p2": "high",
    "p3": "medium",
    "p4": "low",
    "p5": "planning",
}

KIND_WORDS = {
    "incident": TicketKind.INCIDENT,
    "bug": TicketKind.INCIDENT,
    "change": TicketKind.CHANGE,
    "change_request": TicketKind.CHANGE,
    "change request": TicketKind.CHANGE,
    "request": TicketKind.REQUEST,
    "sc_req_item": TicketKind.REQUEST,
    "sc_request": TicketKind.REQUEST,
    "service request": TicketKind.REQUEST,
    "task": TicketKind.REQUEST,
    "problem": TicketKind.PROBLEM,
    "alert": TicketKind.ALERT,
    "event": TicketKind.ALERT,
    "em_alert": TicketKind.ALERT,
}

DATE_FORMATS = (
    "%d/%b/%y %I:%M %p",  # Jira CSV: 13/Nov/26 9:15 AM
    "%d/%b/%Y %I:%M %p",
    "%d/%b/%y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
)


def _norm(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower())


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column feeds each ticket field."""

    preset: str
    source_system: str
    columns: Mapping[str, str]  # ticket field -> source column (original spelling)

    def describe(self) -> str:
        return ", ".join(f"{f}<-{c}" for f, c in self.columns.items())


def detect_preset(columns: Iterable[str]) -> Preset | None:
    present = {_norm(c) for c in columns}
    for preset in PRESETS:
        if all(sig in present for sig in preset.signature):
            return preset
    return None


def resolve_mapping(
    columns: Iterable[str],
    *,
    file_label: str,
    explicit: Mapping[str, str] | None = None,
    default_source_system: str | None = None,
) -> ColumnMapping:
    """Decide the mapping from a header, or fail naming the missing field and the columns seen."""
    column_list = list(columns)
    by_norm = {_norm(c): c for c in column_list}
    preset = detect_preset(column_list)
    mapping: dict[str, str] = {}
    for field in TICKET_FIELDS:
        aliases = (preset.aliases.get(field, ()) if preset else ()) + GENERIC_ALIASES[field]
        for alias in aliases:
            if alias in by_norm:
                mapping[field] = by_norm[alias]
                break
    for field, column in (explicit or {}).items():
        if field not in TICKET_FIELDS:
            raise ImportFailedError(
                f"--map {field}={column}: unknown field (known: {', '.join(TICKET_FIELDS)})"
            )
        if _norm(column) not in by_norm:
            raise ImportFailedError(f"{file_label}: --map {field}={column}: no such column")
        mapping[field] = by_norm[_norm(column)]
    for field in REQUIRED_TICKET_FIELDS:
        if field not in mapping:
            looked = ", ".join(GENERIC_ALIASES[field])
            raise ImportFailedError(
                f"{file_label}: no column for required field '{field}' (looked for: {looked}); "
                f"columns are: {', '.join(column_list[:30])}; map one with --map {field}=COLUMN"
            )
    source_system = default_source_system or (preset.source_system if preset else "import")
    return ColumnMapping(preset.name if preset else "generic", source_system, mapping)


def text_value(value: Any) -> str | None:
    """A cell or JSON value as text; display-value objects reduced to what a person would read."""
    if value is None:
        return None
    if isinstance(value, dict):
        if value.get("type") == "doc":
            from core.matching.text import adf_to_text

            return adf_to_text(value) or None
        for key in ("display_value", "displayName", "name", "value"):
            if key in value:
                return text_value(value[key])
        return None
    if isinstance(value, list):
        parts = [t for t in (text_value(v) for v in value) if t]
        return ", ".join(parts) or None
    text = str(value).replace("\r\n", "\n").replace("\r", "\n").strip()
    return text or None


def parse_severity(value: str | None) -> str | None:
    if value is None:
        return None
    key = _norm(value)
    head = re.split(r"\s*[-:]\s*", key, maxsplit=1)[0]
    return SEVERITY_WORDS.get(head) or SEVERITY_WORDS.get(key) or key


def parse_kind(value: str | None) -> TicketKind:
    if value is None:
        return TicketKind.INCIDENT
    return KIND_WORDS.get(_norm(value), TicketKind.INCIDENT)


def parse_datetime(value: str | None, source_tz: tzinfo = UTC) -> datetime | None:
    """ISO 8601 (ServiceNow's default display format included) or a known export format.

    Times without an offset are taken in ``source_tz`` (exports carry the exporting user's time zone).
    Raises ValueError naming the value when nothing fits.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if re.fullmatch(r"\d{12,13}", text):  # epoch milliseconds (Jira/Zabbix APIs)
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in DATE_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(f"unrecognised date {text!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=source_tz)
    return parsed.astimezone(UTC)
