"""Ticket import from CSV, JSON and JSONL exports (ServiceNow, Jira, or any file with a mapping).

Rows become :class:`~core.store.tickets.TicketValues`, the type connectors produce too, and are written by
the same :func:`~core.store.tickets.upsert_tickets`: a ticket imported from an export and read again from
the API is one row. A file does not say which instance it came from; ``instance`` (``--instance``) does,
else the identity rule in :mod:`core.store.models` decides.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy.orm import sessionmaker

from core.errors import ImportFailedError, OperationCancelledError
from core.importing.limits import ImportLimits
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
from core.importing.summary import ImportSummary, RejectedRow, display_name
from core.progress import NO_PROGRESS, Progress
from core.settings import load_settings
from core.store.repository import audited_attempt, current_actor, record_audit
from core.store.tenancy import TenantSession
from core.store.tickets import (
    MAX_TITLE,
    RESOLVED_STATES,
    TicketChanges,
    TicketValues,
    import_instance,
    instance_of,
    upsert_tickets,
)
from core.workflow.outcome_inference import infer_from_changes

BATCH_SIZE = 500
FILE_PROGRESS_STEPS = 1000  # progress of a ticket import: thousandths of the file read


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
    raise ImportFailedError(
        f"{display_name(path.name)}: cannot tell the format from the extension; pass --format"
    )


def _records(
    source: TextSource, fmt: str, limits: ImportLimits
) -> tuple[list[str] | None, Iterator[SourceRecord | RecordError]]:
    if fmt == "csv":
        layout = read_csv_header(source)
        return layout.header, iter_csv(source, layout)
    if fmt == "jsonl":
        return None, iter_jsonl(source, max_depth=limits.json_max_depth)
    return None, iter_json(source, max_depth=limits.json_max_depth)


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


@audited_attempt("import.tickets", entity_type="ticket", details=("path",))
def import_tickets(
    sessions: sessionmaker[TenantSession],
    path: Path,
    *,
    fmt: str | None = None,
    mapping: Mapping[str, str] | None = None,
    source_system: str | None = None,
    source_tz: tzinfo = UTC,
    instance: str | None = None,
    progress: Progress = NO_PROGRESS,
    batch_size: int = BATCH_SIZE,
    actor: str | None = None,
    limits: ImportLimits | None = None,
) -> ImportSummary:
    """Stream ``path`` into the tenant's tickets; each batch is one transaction.

    Whole-file problems (unreadable, empty, a required column missing, an instance that must be named and
    was not) raise ImportFailedError before any write. Row problems are reported in the summary with file,
    line and reason; good rows are kept. ``instance`` names the instance the file was exported from.
    Progress is the share of the file read, in :data:`FILE_PROGRESS_STEPS`; a cancel between batches is
    audited like a finished import, then raises :class:`~core.errors.OperationCancelledError` (the batches
    committed before it stay). ``limits`` defaults to the tenant's :class:`ImportLimits` setting.
    """
    started = time.perf_counter()
    path = Path(path)
    file_label = display_name(path.name)
    if not path.is_file():
        raise ImportFailedError(f"{display_name(path)}: no such file")
    file_format = detect_format(path, fmt)
    try:
        told_instance = instance_of(instance) if instance else None
    except ValueError as exc:
        raise ImportFailedError(f"--instance {instance}: {exc}") from None
    if limits is None:
        with sessions() as session:
            limits = load_settings(session, ImportLimits)
    summary = ImportSummary(file=file_label, kind="tickets", format=file_format)
    with TextSource(path) as source:
        summary.encoding = source.encoding
        header, records = _records(source, file_format, limits)
        resolved: ColumnMapping | None = None
        if header is not None:
            resolved = resolve_mapping(
                header, file_label=file_label, explicit=mapping, default_source_system=source_system
            )
            _check_instance(sessions, resolved.source_system, told_instance)
        batch: list[TicketValues] = []
        done = 0
        stopped = False

        def flush() -> None:
            nonlocal batch
            if not batch:
                return
            changes = TicketChanges()
            with sessions.begin() as session:
                inserted, updated, unchanged = upsert_tickets(
                    session, batch, instance=told_instance, changes=changes
                )
                # A re-imported export carries the tickets' later history: outcomes of linked runbooks.
                infer_from_changes(session, changes)
            summary.inserted += inserted
            summary.updated += updated
            summary.unchanged += unchanged
            batch = []
            steps = round(source.fraction * FILE_PROGRESS_STEPS)
            progress.report(steps, FILE_PROGRESS_STEPS, f"{done:,} tickets read")

        for record in records:
            if isinstance(record, RecordError):
                summary.reject(RejectedRow(file_label, record.location, record.reason))
                continue
            if resolved is None:  # JSON: the first record's keys decide the mapping
                resolved = resolve_mapping(
                    record.fields,
                    file_label=file_label,
                    explicit=mapping,
                    default_source_system=source_system,
                )
                _check_instance(sessions, resolved.source_system, told_instance)
            try:
                batch.append(to_ticket_values(record.fields, resolved, source_tz, record.raw))
            except ValueError as exc:
                summary.reject(RejectedRow(file_label, record.location, str(exc)))
                continue
            done += 1
            if len(batch) >= batch_size:
                flush()
                if progress.cancelled:
                    stopped = True
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
            | {"cancelled": stopped, "at": datetime.now(UTC).isoformat()},
        )
    if stopped:
        raise OperationCancelledError(f"ticket import cancelled after {done:,} rows; those stay imported")
    progress.report(FILE_PROGRESS_STEPS, FILE_PROGRESS_STEPS, f"{done:,} tickets read")
    return summary


def _check_instance(sessions: sessionmaker[TenantSession], source_system: str, told: str | None) -> None:
    """Refuse a file whose instance must be named before its first row is written (rows naming another
    system in a ``source_system`` column are checked when their batch is written)."""
    if told is None:
        with sessions() as session:
            import_instance(session, source_system, None)
