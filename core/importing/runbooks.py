"""Runbook import from a folder of Markdown files (YAML front matter) or a CSV/JSON file.

Each runbook's re-import key is its ``external_ref``: the file's path relative to the imported folder, or
the ``id``/``slug`` column of a CSV/JSON row (its title when there is none). A changed runbook gets a new
revision; an unchanged one is left alone, so re-importing a folder is free and never duplicates.

A folder is input from anywhere (issue 18), so one bad file is rejected by name and the others are imported:

- Links are followed only while they stay inside the folder: ``ln -s /etc/passwd rb/passwd.md`` once made
  ``/etc/passwd`` an approved, searchable runbook. A linked folder is never entered (a link inside the folder
  points at files imported from their real place); one pointing outside is reported.
- A file name that is not UTF-8 is reported (shown with ``\\x..`` escapes); it cannot be stored or printed.
- Front matter is YAML without anchors or aliases (a 617-byte alias bomb expanded to 1.6 GB), of bounded
  size and nesting; tags, title and service are bounded too.
- One runbook is bounded in bytes and in sections (:class:`~core.importing.limits.ImportLimits`): a 20 MB
  file became 25,559 sections that the next analysis embedded for over ten minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.errors import ImportFailedError
from core.importing.limits import ImportLimits
from core.importing.mapping import text_value
from core.importing.readers import (
    RecordError,
    SourceRecord,
    TextSource,
    decode_text,
    iter_csv,
    iter_json,
    iter_jsonl,
    read_csv_header,
)
from core.importing.summary import ImportSummary, RejectedRow, display_name
from core.matching.rematch import REASON_IMPORTED, request_rematch
from core.matching.text import split_runbook_sections
from core.progress import NO_PROGRESS, Progress, raise_if_cancelled
from core.settings import load_settings
from core.store.models import Runbook, RunbookSource, RunbookStatus
from core.store.repository import add_revision, current_actor, record_audit
from core.store.tenancy import TenantSession

MARKDOWN_SUFFIXES = (".md", ".markdown")
TITLE_MAX_CHARS = 500  # the size of the runbooks.title column
SERVICE_MAX_CHARS = 200  # the size of the runbooks.service column
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


class RunbookRejectedError(ValueError):
    """One runbook refused, with the place in its file (a ValueError without one is placed at line 1)."""

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(reason)
        self.location = location


class _FrontMatterLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type hints
    """PyYAML's SafeLoader refusing anchors and aliases, and nesting deeper than ``max_depth``.

    Aliases are what a YAML bomb multiplies (nine aliases of nine aliases of ...); front matter names a
    title, tags and a service and never needs one. The composer recurses per level, so depth is bounded too.
    """

    def __init__(self, stream: str, max_depth: int) -> None:
        super().__init__(stream)
        self._max_depth = max_depth
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor}) are not allowed in front matter", event.start_mark
            )
        if getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, f"anchors (&{event.anchor}) are not allowed in front matter", event.start_mark
            )
        if not isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested more than {self._max_depth} levels deep (import_limits.front_matter_max_depth)",
                    event.start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_front_matter(text: str, limits: ImportLimits) -> Any:
    """The YAML of a front matter block, by :class:`_FrontMatterLoader`; raises yaml.YAMLError."""
    loader = _FrontMatterLoader(text, limits.front_matter_max_depth)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


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


# Splitting a runbook into sections costs ~0.75 ms, which made importing the 2,503 runbooks of the retrieval
# bench 45 % slower; a bound that costs one regular expression spares it for all but long runbooks. Why it
# holds: past the title, the overview and one section per heading line, every section is a further chunk of a
# section, and a chunk moves on by ~100 characters at the least (the worst measured on adversarial text, a
# 100-piece word between one-piece words, was 103); 20 leaves a factor of five.
_CHARS_PER_EXTRA_SECTION = 20
_HEADING_LIKE = re.compile(r"^[^\S\n]*(?:#|=+[^\S\n]*$|-+[^\S\n]*$)", re.MULTILINE)


def most_sections(body: str) -> int:
    """An upper bound of ``len(split_runbook_sections(body, title))`` without splitting."""
    text = body.replace("\r", "\n") if "\r" in body else body  # the splitter reads a lone CR as a line break
    return 2 + len(_HEADING_LIKE.findall(text)) + len(text) // _CHARS_PER_EXTRA_SECTION


def check_limits(values: RunbookValues, limits: ImportLimits) -> None:
    """Refuse a runbook bigger than the limits allow; raises ValueError saying which limit and by how much."""
    if len(values.title) > TITLE_MAX_CHARS:
        raise ValueError(f"the title is {len(values.title):,} characters; the limit is {TITLE_MAX_CHARS:,}")
    if values.service is not None and len(values.service) > SERVICE_MAX_CHARS:
        raise ValueError(
            f"the service is {len(values.service):,} characters; the limit is {SERVICE_MAX_CHARS:,}"
        )
    if len(values.tags) > limits.max_tags:
        raise ValueError(
            f"{len(values.tags):,} tags; the limit is {limits.max_tags:,} (import_limits.max_tags)"
        )
    longest = max(values.tags, key=len, default="")
    if len(longest) > limits.tag_max_chars:
        raise ValueError(
            f"a tag of {len(longest):,} characters ({longest[:30]!r}...); the limit is "
            f"{limits.tag_max_chars:,} (import_limits.tag_max_chars)"
        )
    body_bytes = len(values.body.encode("utf-8", "surrogatepass"))
    if body_bytes > limits.runbook_max_bytes:
        raise ValueError(
            f"the body is {body_bytes:,} bytes; the limit is {limits.runbook_max_bytes:,} "
            "(import_limits.runbook_max_bytes): split it into several runbooks"
        )
    if most_sections(values.body) <= limits.runbook_max_sections:
        return
    sections = len(split_runbook_sections(values.body, values.title))
    if sections > limits.runbook_max_sections:
        raise ValueError(
            f"{sections:,} sections to index; the limit is {limits.runbook_max_sections:,} "
            "(import_limits.runbook_max_sections): split it into several runbooks"
        )


def parse_markdown(
    text: str,
    fallback_title: str,
    ref: str,
    default: RunbookStatus,
    limits: ImportLimits | None = None,
) -> RunbookValues:
    """Front matter (optional) + Markdown body, within ``limits`` (defaults when None).

    Raises :class:`RunbookRejectedError` naming the front-matter line on bad YAML, ValueError otherwise.
    """
    limits = limits or ImportLimits()
    meta: dict[str, Any] = {}
    body = text
    match = FRONT_MATTER.match(text)
    if match:
        front = match.group(1)
        front_bytes = len(front.encode("utf-8", "surrogatepass"))
        if front_bytes > limits.front_matter_max_bytes:
            raise RunbookRejectedError(
                "front matter",
                f"the front matter is {front_bytes:,} bytes; the limit is {limits.front_matter_max_bytes:,} "
                "(import_limits.front_matter_max_bytes)",
            )
        try:
            loaded = load_front_matter(front, limits)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 2 if mark is not None else 1
            where = f" at line {line}" if mark is not None else ""
            raise RunbookRejectedError(
                f"line {line}", f"invalid YAML front matter{where}: {getattr(exc, 'problem', exc)}"
            ) from None
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
    values = RunbookValues(
        external_ref=ref,
        title=title,
        body=body,
        tags=parse_tags(meta.get("tags")),
        service=text_value(meta.get("service") or meta.get("category")),
        status=parse_status(meta.get("status"), default),
    )
    check_limits(values, limits)
    return values


def _link_target(link: Path) -> Path | None:
    """Where a link ends up after every hop, or None when it leads nowhere (broken, or a loop)."""
    try:
        return link.resolve(strict=True)
    except (OSError, RuntimeError):  # RuntimeError: a loop of links (Python < 3.13)
        return None


def _markdown_files(folder: Path) -> list[tuple[str, Path | RejectedRow]]:
    """Every Markdown file under ``folder`` (by path relative to it) with the file to read, or why not.

    ``os.walk`` lists a linked folder without entering it. A linked file is read from its target only when
    that stays inside the folder; any other link is reported, as is a folder that cannot be listed.
    """
    root = folder.resolve()
    found: list[tuple[str, Path | RejectedRow]] = []

    def relative(path: Path) -> str:
        return path.relative_to(root).as_posix() if path != root else "."

    def skip(path: Path, what: str, reason: str) -> None:
        ref = relative(path)
        found.append((ref, RejectedRow(display_name(ref), what, reason)))

    def unlistable(exc: OSError) -> None:
        skip(Path(exc.filename) if exc.filename else root, "folder", f"cannot be listed: {exc.strerror}")

    for dirpath, dirnames, filenames in os.walk(root, onerror=unlistable):
        here = Path(dirpath)
        for name in dirnames:
            linked = here / name
            if linked.is_symlink():
                target = _link_target(linked)
                if target is not None and not target.is_relative_to(root):
                    skip(
                        linked, "folder", f"a link to {display_name(target)}, outside the folder: not entered"
                    )
        for name in filenames:
            if not name.lower().endswith(MARKDOWN_SUFFIXES):
                continue
            file = here / name
            if file.is_symlink():
                target = _link_target(file)
                if target is None:
                    skip(file, "file", "a broken link (or a loop of links): not followed")
                elif not target.is_relative_to(root):
                    skip(file, "file", f"a link to {display_name(target)}, outside the folder: not followed")
                else:
                    found.append((relative(file), target))
            else:
                found.append((relative(file), file))
    return sorted(found, key=lambda item: item[0])


def _read_runbook_file(path: Path, limits: ImportLimits) -> bytes:
    """The bytes of one regular file of at most ``limits.runbook_max_bytes``.

    Opened without following a link (a file swapped for one after the folder was listed) and without
    blocking (a FIFO named ``x.md`` would wait for a writer forever), then checked to be a regular file.
    """
    flags = (
        os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    )
    with open(os.open(path, flags), "rb", closefd=True) as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise RunbookRejectedError("file", "not a regular file")
        if info.st_size > limits.runbook_max_bytes:
            raise RunbookRejectedError("file", _too_big(info.st_size, limits))
        data = handle.read(limits.runbook_max_bytes + 1)
    if len(data) > limits.runbook_max_bytes:  # it grew while we read
        raise RunbookRejectedError("file", _too_big(len(data), limits))
    if not data:
        raise RunbookRejectedError("file", "the file is empty")
    return data


def _too_big(size: int, limits: ImportLimits) -> str:
    return (
        f"the file is {size:,} bytes; the limit for one runbook is {limits.runbook_max_bytes:,} "
        "(import_limits.runbook_max_bytes): split it into several runbooks"
    )


def _markdown_records(
    folder: Path, default: RunbookStatus, limits: ImportLimits
) -> Iterator[tuple[str, RunbookValues | RejectedRow]]:
    files = _markdown_files(folder)
    if not files:
        raise ImportFailedError(f"{display_name(folder)}: no Markdown (.md) files in this folder")
    for ref, file in files:
        if isinstance(file, RejectedRow):
            yield ref, file
            continue
        shown = display_name(ref)
        if shown != ref:
            yield (
                ref,
                RejectedRow(shown, "file", "the file name is not valid UTF-8: rename the file to import it"),
            )
            continue
        try:
            text = decode_text(_read_runbook_file(file, limits), shown)
            fallback_title = Path(ref).stem.replace("-", " ").replace("_", " ").capitalize()
            yield ref, parse_markdown(text, fallback_title, ref, default, limits)
        except RunbookRejectedError as exc:
            yield ref, RejectedRow(shown, exc.location, str(exc))
        except (ImportFailedError, ValueError) as exc:  # one bad file never stops the folder
            yield ref, RejectedRow(shown, "line 1", str(exc))
        except OSError as exc:  # unreadable (permissions), or swapped for a link since it was listed
            yield ref, RejectedRow(shown, "file", f"cannot be read: {exc.strerror or exc}")


def _pick(fields: Mapping[str, Any], field: str) -> Any:
    lowered = {k.strip().lower(): v for k, v in fields.items()}
    for alias in COLUMN_ALIASES[field]:
        if alias in lowered and text_value(lowered[alias]) is not None:
            return lowered[alias]
    return None


def _table_records(
    path: Path, default: RunbookStatus, limits: ImportLimits
) -> Iterator[tuple[str, RunbookValues | RejectedRow]]:
    name = display_name(path.name)
    with TextSource(path) as source:
        records: Iterator[SourceRecord | RecordError]
        suffix = path.suffix.lower()
        if suffix == ".csv":
            layout = read_csv_header(source)
            lowered = {h.lower() for h in layout.header}
            for needed in ("title", "body"):
                if not lowered & set(COLUMN_ALIASES[needed]):
                    raise ImportFailedError(
                        f"{name}: no column for required field '{needed}' "
                        f"(looked for: {', '.join(COLUMN_ALIASES[needed])}); "
                        f"columns are: {', '.join(layout.header)}"
                    )
            records = iter_csv(source, layout)
        elif suffix in (".jsonl", ".ndjson"):
            records = iter_jsonl(source, max_depth=limits.json_max_depth)
        elif suffix == ".json":
            records = iter_json(source, max_depth=limits.json_max_depth)
        else:
            raise ImportFailedError(f"{name}: runbooks import from a folder of .md files, .csv or .json")
        for record in records:
            if isinstance(record, RecordError):
                yield record.location, RejectedRow(name, record.location, record.reason)
                continue
            try:
                title = text_value(_pick(record.fields, "title"))
                body = text_value(_pick(record.fields, "body"))
                if not title:
                    raise ValueError("title is empty")
                if not body:
                    raise ValueError("body is empty")
                ref = text_value(_pick(record.fields, "external_ref")) or title
                values = RunbookValues(
                    external_ref=ref,
                    title=title,
                    body=body,
                    tags=parse_tags(_pick(record.fields, "tags")),
                    service=text_value(_pick(record.fields, "service")),
                    status=parse_status(_pick(record.fields, "status"), default),
                )
                check_limits(values, limits)
                yield record.location, values
            except ValueError as exc:
                yield record.location, RejectedRow(name, record.location, str(exc))


def upsert_runbook(
    session: TenantSession, values: RunbookValues, *, author: str, source: RunbookSource
) -> str:
    """'inserted', 'updated' or 'unchanged'. A change makes a new revision and an audit event."""
    runbook = session.scalar(select(Runbook).where(Runbook.external_ref == values.external_ref))
    content_hash = values.content_hash
    if runbook is not None and runbook.content_hash == content_hash:
        return "unchanged"
    before = None if runbook is None else {"title": runbook.title, "revision": runbook.current_revision}
    was_approved = runbook is not None and runbook.status == RunbookStatus.APPROVED
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
    if was_approved or runbook.status == RunbookStatus.APPROVED:  # matching sees the change: re-match
        request_rematch(session, [runbook.id], REASON_IMPORTED, author)
    return "inserted" if before is None else "updated"


def import_runbooks(
    sessions: sessionmaker[TenantSession],
    path: Path,
    *,
    default_status: RunbookStatus = RunbookStatus.APPROVED,
    progress: Progress = NO_PROGRESS,
    actor: str | None = None,
    limits: ImportLimits | None = None,
) -> ImportSummary:
    """Import a folder of Markdown runbooks or a CSV/JSON/JSONL file; one transaction per runbook.

    ``default_status`` applies when a runbook does not state its own: runbooks a team already uses are
    approved by default so matching can link to them at once. A cancel between runbooks raises
    :class:`~core.errors.OperationCancelledError`; the runbooks imported before it stay. ``limits``
    defaults to the tenant's :class:`ImportLimits` setting.
    """
    started = time.perf_counter()
    path = Path(path)
    if not path.exists():
        raise ImportFailedError(f"{display_name(path)}: no such file or folder")
    author = actor or current_actor()
    if limits is None:
        with sessions() as session:
            limits = load_settings(session, ImportLimits)
    is_folder = path.is_dir()
    summary = ImportSummary(
        file=display_name(path.name), kind="runbooks", format="markdown" if is_folder else path.suffix[1:]
    )
    records = (
        _markdown_records(path, default_status, limits)
        if is_folder
        else _table_records(path, default_status, limits)
    )
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
