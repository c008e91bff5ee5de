"""Runbook import from a folder of Markdown files (YAML front matter) or a CSV/JSON file.

Each runbook's re-import key is its ``external_ref``: the file's path relative to the imported folder, or
the ``id``/``slug`` column of a CSV/JSON row (its title when there is none). A changed runbook gets a new
revision; an unchanged one is left alone, so re-importing a folder is free and never duplicates.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.errors import ImportFailedError
from core.importing.mapping import text_value
from core.importing.readers import (
    RecordError,
    SourceRecord,
    TextSource,
    detect_encoding,
    iter_csv,
    iter_json,
    iter_jsonl,
    read_csv_header,
)
from core.importing.summary import ImportSummary, RejectedRow
from core.progress import NO_PROGRESS, Progress, raise_if_cancelled
from core.store.models import Runbook, RunbookSource, RunbookStatus
from core.store.repository import add_revision, current_actor, record_audit
from core.store.tenancy import TenantSession

FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*\r?\n?", re.DOTALL)
H1 = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "external_ref": ("external_ref", "id", "slug", "number", "key"),
    "title": ("title", "name", "short_description", "subject"),
    "body": ("body", "content", "markdown", "text", "steps", "description"),
    "tags": ("tags", "labels", "keywords"),
    "service": ("service", "category", "area"),
    "status": ("status", "state", "workflow_state"),
}
STATUS_WORDS = {
    "draft": RunbookStatus.DRAFT,
    "in_review": RunbookStatus.IN_REVIEW,
    "in review": RunbookStatus.IN_REVIEW,
    "review": RunbookStatus.IN_REVIEW,
    "approved": RunbookStatus.APPROVED,
    "published": RunbookStatus.APPROVED,
    "retired": RunbookStatus.RETIRED,
    "outdated": RunbookStatus.RETIRED,
    "archived": RunbookStatus.RETIRED,
}


@dataclass(frozen=True, slots=True)
class RunbookValues:
    external_ref: str
    title: str
    body: str
    tags: tuple[str, ...]
    service: str | None
    status: RunbookStatus

    @property
    def content_hash(self) -> str:
        material = [self.title, self.body, list(self.tags), self.service, self.status.value]
        return hashlib.sha256(json.dumps(material, ensure_ascii=False).encode("utf-8")).hexdigest()


def parse_status(value: Any, default: RunbookStatus) -> RunbookStatus:
    text = text_value(value)
    if text is None:
        return default
    status = STATUS_WORDS.get(text.strip().lower())
    if status is None:
        raise ValueError(f"unknown status {text!r} (use draft, in_review, approved or retired)")
    return status


def parse_tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else re.split(r"[,;]", str(value))
    return tuple(dict.fromkeys(str(t).strip().lower() for t in items if str(t).strip()))


def parse_markdown(text: str, fallback_title: str, ref: str, default: RunbookStatus) -> RunbookValues:
    """Front matter (optional) + Markdown body. Raises ValueError naming the front-matter line on bad YAML."""
    meta: dict[str, Any] = {}
    body = text
    match = FRONT_MATTER.match(text)
    if match:
        try:
            loaded = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 2}" if mark is not None else ""
            raise ValueError(f"invalid YAML front matter{where}: {getattr(exc, 'problem', exc)}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ValueError("front matter must be a mapping of keys (title:, tags:, service:)")
        meta = loaded or {}
        body = text[match.end() :]
    body = body.strip()
    title = text_value(meta.get("title"))
    if not title:
        heading = H1.search(body)
        title = heading.group(1).strip() if heading else fallback_title
    if not body:
        raise ValueError("the runbook has no body")
    return RunbookValues(
        external_ref=ref,
        title=title,
        body=body,
        tags=parse_tags(meta.get("tags")),
        service=text_value(meta.get("service") or meta.get("category")),
        status=parse_status(meta.get("status"), default),
    )


def _markdown_records(
    folder: Path, default: RunbookStatus
) -> Iterator[tuple[str, RunbookValues | RejectedRow]]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".md", ".markdown") and p.is_file())
    if not files:
        raise ImportFailedError(f"{folder}: no Markdown (.md) files in this folder")
    for file in files:
        ref = file.relative_to(folder).as_posix()
        try:
            if file.stat().st_size == 0:
                raise ValueError("the file is empty")
            text = file.read_text(encoding=detect_encoding(file))
            yield (
                ref,
                parse_markdown(
                    text, file.stem.replace("-", " ").replace("_", " ").capitalize(), ref, default
                ),
            )
        except (ImportFailedError, ValueError) as exc:  # one bad file never stops the folder
            yield ref, RejectedRow(ref, "line 1", str(exc))


def _pick(fields: Mapping[str, Any], field: str) -> Any:
    lowered = {k.strip().lower(): v for k, v in fields.items()}
    for alias in COLUMN_ALIASES[field]:
        if alias in lowered and text_value(lowered[alias]) is not None:
            return lowered[alias]
    return None


def _table_records(path: Path, default: RunbookStatus) -> Iterator[tuple[str, RunbookValues | RejectedRow]]:
    with TextSource(path) as source:
        records: Iterator[SourceRecord | RecordError]
        suffix = path.suffix.lower()
        if suffix == ".csv":
            header, reader = read_csv_header(source)
            lowered = {h.lower() for h in header}
            for needed in ("title", "body"):
                if not lowered & set(COLUMN_ALIASES[needed]):
                    raise ImportFailedError(
                        f"{path.name}: no column for required field '{needed}' "
                        f"(looked for: {', '.join(COLUMN_ALIASES[needed])}); columns are: {', '.join(header)}"
                    )
            records = iter_csv(source, reader)
        elif suffix in (".jsonl", ".ndjson"):
            records = iter_jsonl(source)
        elif suffix == ".json":
            records = iter_json(source)
        else:
            raise ImportFailedError(f"{path.name}: runbooks import from a folder of .md files, .csv or .json")
        for record in records:
            if isinstance(record, RecordError):
                yield record.location, RejectedRow(path.name, record.location, record.reason)
                continue
            try:
                title = text_value(_pick(record.fields, "title"))
                body = text_value(_pick(record.fields, "body"))
                if not title:
                    raise ValueError("title is empty")
                if not body:
                    raise ValueError("body is empty")
                ref = text_value(_pick(record.fields, "external_ref")) or title
                yield (
                    record.location,
                    RunbookValues(
                        external_ref=ref,
                        title=title,
                        body=body,
                        tags=parse_tags(_pick(record.fields, "tags")),
                        service=text_value(_pick(record.fields, "service")),
                        status=parse_status(_pick(record.fields, "status"), default),
                    ),
                )
            except ValueError as exc:
                yield record.location, RejectedRow(path.name, record.location, str(exc))


def upsert_runbook(
    session: TenantSession, values: RunbookValues, *, author: str, source: RunbookSource
) -> str:
    """'inserted', 'updated' or 'unchanged'. A change makes a new revision and an audit event."""
    runbook = session.scalar(select(Runbook).where(Runbook.external_ref == values.external_ref))
    content_hash = values.content_hash
    if runbook is not None and runbook.content_hash == content_hash:
        return "unchanged"
    before = None if runbook is None else {"title": runbook.title, "revision": runbook.current_revision}
    if runbook is None:
        runbook = Runbook(tenant_id=session.tenant_id, external_ref=values.external_ref, source=source)
        session.add(runbook)
    runbook.title = values.title
    runbook.body = values.body
    runbook.tags = list(values.tags)
    runbook.service = values.service
    runbook.status = values.status
    runbook.content_hash = content_hash
    add_revision(session, runbook, author)
    session.flush()
    record_audit(
        session,
        actor=author,
        action="runbook.import" if before is None else "runbook.reimport",
        entity_type="runbook",
        entity_id=runbook.id,
        before=before,
        after={"title": runbook.title, "revision": runbook.current_revision, "status": runbook.status.value},
    )
    return "inserted" if before is None else "updated"


def import_runbooks(
    sessions: sessionmaker[TenantSession],
    path: Path,
    *,
    default_status: RunbookStatus = RunbookStatus.APPROVED,
    progress: Progress = NO_PROGRESS,
    actor: str | None = None,
) -> ImportSummary:
    """Import a folder of Markdown runbooks or a CSV/JSON/JSONL file; one transaction per runbook.

    ``default_status`` applies when a runbook does not state its own: runbooks a team already uses are
    approved by default so matching can link to them at once. A cancel between runbooks raises
    :class:`~core.errors.OperationCancelledError`; the runbooks imported before it stay.
    """
    started = time.perf_counter()
    path = Path(path)
    if not path.exists():
        raise ImportFailedError(f"{path}: no such file or folder")
    author = actor or current_actor()
    is_folder = path.is_dir()
    summary = ImportSummary(
        file=path.name, kind="runbooks", format="markdown" if is_folder else path.suffix[1:]
    )
    records = _markdown_records(path, default_status) if is_folder else _table_records(path, default_status)
    done = 0
    for _location, item in records:
        if isinstance(item, RejectedRow):
            summary.reject(item)
            continue
        with sessions.begin() as session:
            outcome = upsert_runbook(session, item, author=author, source=RunbookSource.IMPORTED)
        setattr(summary, outcome, getattr(summary, outcome) + 1)
        done += 1
        progress.report(done, None, f"{done:,} runbooks")
        raise_if_cancelled(progress, "runbook import")
    summary.elapsed_s = time.perf_counter() - started
    return summary
