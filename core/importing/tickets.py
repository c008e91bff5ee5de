"""Ticket import from CSV, JSON and JSONL exports (ServiceNow, Jira, or any file with a mapping)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import sessionmaker

from core.errors import ImportFailedError
from core.importing.mapping import (
    ColumnMapping,
    parse_datetime,
    parse_kind,
    parse_severity,
    resolve_mapping,
    text_value,
)
from core.importing.readers import (
    RecordError,
    SourceRecord,
    TextSource,
    iter_csv,
    iter_json,
    iter_jsonl,
    read_csv_header,
)
from core.importing.summary import CancelCheck, ImportSummary, ProgressCallback, RejectedRow
from core.store.models import Ticket, TicketKind
from core.store.repository import current_actor, record_audit
from core.store.tenancy import TenantSession

BATCH_SIZE = 500
RESOLVED_STATES = {"resolved", "closed", "done", "closed complete", "closed skipped", "cancelled", "canceled"}
MAX_TITLE = 1000


@dataclass(frozen=True, slots=True)
class TicketValues:
    """A normalised ticket as read from a file, before it meets the database."""

    external_id: str
    source_system: str
    title: str
    description: str
    status: str | None
    severity: str | None
    assignee: str | None
    kind: TicketKind
    category: str | None
    configuration_item: str | None
    resolution_notes: str | None
    resolved_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    source_url: str | None
    raw_payload: dict[str, Any]

    @property
    def content_hash(self) -> str:
        encoded = json.dumps(_columns(self), sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def detect_format(path: Path, explicit: str | None = None) -> str:
    if explicit:
        if explicit not in ("csv", "json", "jsonl"):
            raise ImportFailedError(f"unknown format '{explicit}' (use csv, json or jsonl)")
        return explicit
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    raise ImportFailedError(f"{path.name}: cannot tell the format from the extension; pass --format")


def _records(source: TextSource, fmt: str) -> tuple[list[str] | None, Iterator[SourceRecord | RecordError]]:
    if fmt == "csv":
        header, reader = read_csv_header(source)
        return header, iter_csv(source, reader)
    if fmt == "jsonl":
        return None, iter_jsonl(source)
    return None, iter_json(source)


def to_ticket_values(
    fields: Mapping[str, Any], mapping: ColumnMapping, source_tz: tzinfo, raw: Mapping[str, Any] | None = None
) -> TicketValues:
    """Raises ValueError with a reason naming the column when the row cannot become a ticket."""

    def get(field: str) -> str | None:
        column = mapping.columns.get(field)
        return text_value(fields.get(column)) if column else None

    def get_date(field: str) -> datetime | None:
        try:
            return parse_datetime(get(field), source_tz)
        except ValueError as exc:
            raise ValueError(f"{mapping.columns[field]}: {exc}") from None

    external_id = get("external_id")
    if not external_id:
        raise ValueError(f"{mapping.columns['external_id']} is empty")
    title = get("title")
    if not title:
        raise ValueError(f"{mapping.columns['title']} is empty")
    status = get("status")
    created_at = get_date("created_at")
    updated_at = get_date("updated_at") or created_at
    resolved_at = get_date("resolved_at")
    if resolved_at is None and status and status.lower() in RESOLVED_STATES:
        # Exports without a resolution time: the last update is the closest honest estimate (MTTR uses it).
        resolved_at = updated_at
    return TicketValues(
        external_id=external_id,
        source_system=get("source_system") or mapping.source_system,
        title=title[:MAX_TITLE],
        description=get("description") or "",
        status=status,
        severity=parse_severity(get("severity")),
        assignee=get("assignee"),
        kind=parse_kind(get("kind")),
        category=get("category"),
        configuration_item=get("configuration_item"),
        resolution_notes=get("resolution_notes"),
        resolved_at=resolved_at,
        created_at=created_at,
        updated_at=updated_at,
        source_url=get("source_url"),
        raw_payload=dict(raw if raw is not None else fields),
    )


def upsert_tickets(
    session: TenantSession, batch: list[TicketValues], *, connector_config_id: int | None = None
) -> tuple[int, int, int]:
    """Insert new tickets, update changed ones, leave identical ones alone; (inserted, updated, unchanged).

    Keyed on (external_id, source_system) within the session's tenant; the content hash decides "changed".
    Uses ORM bulk INSERT / bulk UPDATE by primary key: per-object unit-of-work bookkeeping made a 100k import
    several times slower. The caller owns the transaction; connectors' sync reuses this and passes
    ``connector_config_id``, stamped on every row it reads, changed or not (so removing a connector can
    purge them); file imports leave it alone.
    """
    by_key: dict[tuple[str, str], TicketValues] = {}
    for values in batch:  # the same ticket twice in one batch: the later row wins
        by_key[(values.source_system, values.external_id)] = values
    existing: dict[tuple[str, str], tuple[int, str, int | None]] = {}
    for system in {key[0] for key in by_key}:
        ids = [key[1] for key in by_key if key[0] == system]
        query = select(Ticket.id, Ticket.external_id, Ticket.content_hash, Ticket.connector_config_id).where(
            Ticket.source_system == system, Ticket.external_id.in_(ids)
        )
        existing.update(
            {
                (system, external_id): (pk, digest, owner)
                for pk, external_id, digest, owner in session.execute(query)
            }
        )
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    unchanged = len(batch) - len(by_key)
    source = {} if connector_config_id is None else {"connector_config_id": connector_config_id}
    for key, values in by_key.items():
        content_hash = values.content_hash
        found = existing.get(key)
        if found is None:
            inserts.append(
                _columns(values) | {"tenant_id": session.tenant_id, "content_hash": content_hash} | source
            )
        elif found[1] == content_hash:
            unchanged += 1
            if source and found[2] != connector_config_id:  # a connector re-reading a ticket adopts it
                updates.append({"id": found[0], **source})
        else:
            updates.append(_columns(values) | {"id": found[0], "content_hash": content_hash} | source)
    if inserts:  # Core executemany: the ORM bulk path issued ~1 statement per 2 rows on SQLite
        session.execute(insert(Ticket.__table__), inserts)
    if updates:
        session.execute(update(Ticket), updates)
    return len(inserts), len(updates), unchanged


def _columns(values: TicketValues) -> dict[str, Any]:
    return {name: getattr(values, name) for name in _TICKET_VALUE_NAMES}


_TICKET_VALUE_NAMES = tuple(f.name for f in dataclasses.fields(TicketValues))


def import_tickets(
    sessions: sessionmaker[TenantSession],
    path: Path,
    *,
    fmt: str | None = None,
    mapping: Mapping[str, str] | None = None,
    source_system: str | None = None,
    source_tz: tzinfo = UTC,
    progress: ProgressCallback | None = None,
    cancelled: CancelCheck | None = None,
    batch_size: int = BATCH_SIZE,
    actor: str | None = None,
) -> ImportSummary:
    """Stream ``path`` into the tenant's tickets; each batch is one transaction.

    Whole-file problems (unreadable, empty, a required column missing) raise ImportFailedError before any
    write. Row problems are reported in the summary with file, line and reason; good rows are kept.
    """
    started = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise ImportFailedError(f"{path}: no such file")
    file_format = detect_format(path, fmt)
    summary = ImportSummary(file=path.name, kind="tickets", format=file_format)
    with TextSource(path) as source:
        summary.encoding = source.encoding
        header, records = _records(source, file_format)
        resolved: ColumnMapping | None = None
        if header is not None:
            resolved = resolve_mapping(
                header, file_label=path.name, explicit=mapping, default_source_system=source_system
            )
        batch: list[TicketValues] = []
        done = 0

        def flush() -> None:
            nonlocal batch
            if not batch:
                return
            with sessions.begin() as session:
                inserted, updated, unchanged = upsert_tickets(session, batch)
            summary.inserted += inserted
            summary.updated += updated
            summary.unchanged += unchanged
            batch = []
            if progress:
                progress(done, source.fraction)

        for record in records:
            if isinstance(record, RecordError):
                summary.reject(RejectedRow(path.name, record.location, record.reason))
                continue
            if resolved is None:  # JSON: the first record's keys decide the mapping
                resolved = resolve_mapping(
                    record.fields, file_label=path.name, explicit=mapping, default_source_system=source_system
                )
            try:
                batch.append(to_ticket_values(record.fields, resolved, source_tz, record.raw))
            except ValueError as exc:
                summary.reject(RejectedRow(path.name, record.location, str(exc)))
                continue
            done += 1
            if len(batch) >= batch_size:
                flush()
                if cancelled and cancelled():
                    summary.cancelled = True
                    break
        else:
            flush()
        summary.preset = resolved.preset if resolved else None
    summary.elapsed_s = time.perf_counter() - started
    with sessions.begin() as session:
        record_audit(
            session,
            actor=actor or current_actor(),
            action="import.tickets",
            entity_type="ticket",
            entity_id=None,
            after={k: v for k, v in summary.as_dict().items() if k != "rejected_rows"}
            | {"at": datetime.now(UTC).isoformat()},
        )
    if progress:
        progress(done, 1.0)
    return summary
