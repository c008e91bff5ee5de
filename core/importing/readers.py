"""Streaming readers for CSV, JSON and JSONL files, with encoding and delimiter detection.

Every reader yields :class:`SourceRecord` (a place in the file plus a flat ``{column: value}`` dict) or a
:class:`RecordError` for a record it could not read, and keeps going where the format allows it. Problems that
make the whole file unreadable (empty, undecodable, not JSON at all) raise :class:`ImportFailedError` before
anything is written.

Encoding: a first pass over the bytes checks UTF-8 incrementally (flat memory); if that fails the file is
read as Windows-1252, which is what Excel on Windows writes, unless it contains bytes cp1252 leaves undefined,
in which case the file is refused with the offset of the first bad byte. UTF-16 is recognised by its byte
order mark, or without one by the NUL bytes that ASCII text has in every other place (Windows tools write it
so); read as UTF-8 it would hold NULs and match no column.

Hostile input (issue 18): a CSV quote left open would swallow the lines after it as one field, so the line
where it opened is rejected and the lines after it are read again as rows; a JSON record nested deeper than a
limit is rejected before anything recurses over it, and the records after it are read.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import ijson

from core.errors import ImportFailedError
from core.importing.summary import display_name

CHUNK_BYTES = 1 << 20
UTF16_SNIFF_BYTES = 1024  # enough for a header row
DEFAULT_JSON_MAX_DEPTH = 64  # core.importing.limits.ImportLimits.json_max_depth
CSV_DELIMITERS = (",", ";", "\t", "|")
# Arrays of records under these top-level keys: ServiceNow JSON export / Table API, Jira search, ours.
JSON_ARRAY_KEYS = ("records", "result", "issues", "tickets", "runbooks", "items", "data")
# A description pasted from a log can be long; the csv module's 128 KiB default would reject it. A record of
# several lines longer than this is taken for a quote left open (see _LineFeed).
MAX_RECORD_CHARS = 16 * 1024 * 1024
csv.field_size_limit(MAX_RECORD_CHARS)


@dataclass(frozen=True, slots=True)
class SourceRecord:
    location: str
    fields: dict[str, Any]  # flattened for mapping (see flatten)
    raw: dict[str, Any]  # as the source wrote it, kept for provenance


@dataclass(frozen=True, slots=True)
class RecordError:
    location: str
    reason: str


class CountingReader(io.RawIOBase):
    """Counts bytes read so progress can be reported as a share of the file while streaming."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position = self._raw.seek(offset, whence)
        self.bytes_read = position
        return position

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def _first_bad_offset(path: Path, encoding: str) -> int | None:
    """Offset of the first byte ``encoding`` cannot decode, or None; streams the file in chunks."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with path.open("rb") as raw:
        try:
            while chunk := raw.read(CHUNK_BYTES):
                decoder.decode(chunk)
                offset += len(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return max(0, offset + exc.start)
    return None


def _first_bad_offset_in(data: bytes, encoding: str) -> int | None:
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def bomless_utf16(head: bytes) -> str | None:
    """``utf-16-le``/``utf-16-be`` when ``head`` is UTF-16 written without a byte order mark, else None.

    Mostly-ASCII text (a CSV header, Markdown) in UTF-16 has a NUL in every other byte: the odd ones for
    little-endian, the even ones for big-endian. Other text has almost no NULs at all.
    """
    if b"\x00" not in head:
        return None
    pairs = len(head) // 2
    if pairs < 2:
        return None
    nul_even = head[0 : pairs * 2 : 2].count(0)
    nul_odd = head[1 : pairs * 2 : 2].count(0)
    if nul_odd >= 0.3 * pairs and nul_even <= 0.05 * pairs:
        return "utf-16-le"
    if nul_even >= 0.3 * pairs and nul_odd <= 0.05 * pairs:
        return "utf-16-be"
    return None


def _choose_encoding(head: bytes, first_bad_offset: Callable[[str], int | None], label: str) -> str:
    """The encoding rules of this module, over a file or over bytes in memory."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        bad = first_bad_offset("utf-16")
        if bad is not None:
            raise ImportFailedError(
                f"{label}: invalid UTF-16 at byte offset {bad}; save it as UTF-8 and retry"
            )
        return "utf-16"
    utf16 = bomless_utf16(head[:UTF16_SNIFF_BYTES])
    if utf16 is not None:
        bad = first_bad_offset(utf16)
        if bad is not None:
            raise ImportFailedError(
                f"{label}: looks like {utf16.upper()} without a byte order mark, but byte offset {bad} is "
                "not valid UTF-16; save it as UTF-8 and retry"
            )
        return utf16
    utf8_bad = first_bad_offset("utf-8")
    if utf8_bad is None:
        return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    cp1252_bad = first_bad_offset("cp1252")
    if cp1252_bad is not None:
        raise ImportFailedError(
            f"{label}: not UTF-8 (bad byte at offset {utf8_bad}) nor Windows-1252 "
            f"(undefined byte at offset {cp1252_bad}); save it as UTF-8 and retry"
        )
    return "cp1252"


def detect_encoding(path: Path) -> str:
    with path.open("rb") as raw:
        head = raw.read(UTF16_SNIFF_BYTES)
    return _choose_encoding(head, lambda encoding: _first_bad_offset(path, encoding), display_name(path.name))


def decode_text(data: bytes, label: str) -> str:
    """A small file already read (one Markdown runbook), decoded by the rules of :func:`detect_encoding`."""
    encoding = _choose_encoding(data[:UTF16_SNIFF_BYTES], lambda enc: _first_bad_offset_in(data, enc), label)
    return data.decode(encoding)


class ByteReader(Protocol):
    """What ijson reads: bytes on demand (a buffered file, or the re-encoder below)."""

    def read(self, size: int = -1, /) -> bytes: ...


class TextSource:
    """An open file plus how far into it we are, for progress. Text for CSV/JSONL, UTF-8 bytes for ijson."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        if self.size == 0:
            raise ImportFailedError(f"{display_name(path.name)}: the file is empty")
        self.encoding = detect_encoding(path)
        self._counter = CountingReader(path.open("rb"))
        self._buffer = io.BufferedReader(self._counter)
        self.text = io.TextIOWrapper(self._buffer, encoding=self.encoding, newline="")

    @property
    def fraction(self) -> float:
        return min(1.0, self._counter.bytes_read / self.size)

    def utf8_bytes(self) -> ByteReader:
        """The file from its start as UTF-8 bytes (ijson parses bytes; text input is deprecated there)."""
        self.text.seek(0)
        if self.encoding == "utf-8":
            return self._buffer
        if self.encoding == "utf-8-sig":
            self._buffer.read(len(codecs.BOM_UTF8))
            return self._buffer
        return _Utf8Reencoder(self.text)

    def close(self) -> None:
        self.text.close()

    def __enter__(self) -> TextSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class _Utf8Reencoder(io.RawIOBase):
    """Presents a cp1252/UTF-16 text stream as UTF-8 bytes for ijson.

    ``readinto`` is what ijson's C backend calls on a raw stream (``read`` alone left it the base class's
    ``NotImplementedError``, so no cp1252 or UTF-16 JSON file could be imported).
    """

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self._pending = bytearray()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        while len(self._pending) < size:
            chunk = self._text.read(CHUNK_BYTES)
            if not chunk:
                break
            self._pending += chunk.encode("utf-8")
        count = min(size, len(self._pending))
        buffer[:count] = self._pending[:count]
        del self._pending[:count]
        return count


def sniff_delimiter(header_line: str) -> str:
    """The candidate splitting the header into the most columns (csv.Sniffer guesses wrong on short files)."""
    counts = {d: header_line.count(d) for d in CSV_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


@dataclass(frozen=True, slots=True)
class CsvLayout:
    header: list[str]
    delimiter: str


def read_csv_header(source: TextSource) -> CsvLayout:
    first_line = source.text.readline()
    name = display_name(source.path.name)
    if not first_line.strip():
        raise ImportFailedError(f"{name}: the first line is empty; expected a header row")
    delimiter = sniff_delimiter(first_line)
    header = next(csv.reader([first_line], delimiter=delimiter))
    header = [column.strip() for column in header]
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise ImportFailedError(f"{name}: duplicate column names in the header: {', '.join(dupes)}")
    return CsvLayout(header, delimiter)


class _RecordTooLong(Exception):
    """Raised by :class:`_LineFeed` when an open quote has run past :data:`MAX_RECORD_CHARS`."""


class _LineFeed:
    """The file's lines for the csv module, keeping the lines of the record being read so they can be re-read.

    When a quote left open makes a record of several lines that is no valid row, only the line where it
    opened is rejected and the lines after it are handed back (:meth:`give_back`), so the rows among them are
    read again as rows. Lines are numbered from 1 in the file; handed-back lines are a suffix of those handed
    out, so one counter numbers them all. Only the current record's lines are held, at most
    :data:`MAX_RECORD_CHARS` of them once it runs over more than one line: the file itself is streamed.
    """

    def __init__(self, text: IO[str], first_number: int) -> None:
        self._file = iter(text)
        self._pending: deque[str] = deque()
        self._chars = 0
        self.next_number = first_number
        self.lines: list[str] = []  # of the current record
        self.ran_out = False  # the current record reached the end of the file

    def start_record(self) -> None:
        self.lines = []
        self._chars = 0
        self.ran_out = False

    def give_back(self, lines: list[str]) -> None:
        self._pending.extendleft(reversed(lines))
        self.next_number -= len(lines)

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        if self._pending:
            line = self._pending.popleft()
        else:
            try:
                line = next(self._file)
            except StopIteration:
                self.ran_out = True
                raise
        self.next_number += 1
        self.lines.append(line)
        self._chars += len(line)
        if self._chars > MAX_RECORD_CHARS and len(self.lines) > 1:
            raise _RecordTooLong(f"its quoted field ran past {MAX_RECORD_CHARS:,} characters")
        return line


def _span(start: int, end: int) -> str:
    return f"line {start}" if end <= start else f"lines {start}-{end}"


def _lenient_row(line: str, delimiter: str) -> list[str] | None:
    """One line parsed the forgiving way (``"x" ,`` reads as ``x ``), or None if even that fails."""
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return None


def iter_csv(source: TextSource, layout: CsvLayout) -> Iterator[SourceRecord | RecordError]:
    """Rows of a CSV file after its header, located by the physical line(s) each row was read from.

    A quoted field may run over several lines (ServiceNow exports multi-line descriptions); the record it
    makes is a row when its quotes close and it has the header's number of fields. Otherwise the quote was
    left open by mistake: that line alone is rejected ("unterminated quote") and the lines after it are read
    again, so one broken row costs one row, not every row up to the next quote (issue 18). Every line of the
    file thus ends in exactly one row, one rejection or nowhere (blank). A line whose quote is merely badly
    closed (``"x" ,``) is read leniently as before.
    """
    header, width = layout.header, len(layout.header)
    feed = _LineFeed(source.text, first_number=2)  # line 1 is the header
    reader = csv.reader(feed, delimiter=layout.delimiter, strict=True)
    while True:
        start = feed.next_number
        feed.start_record()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except (csv.Error, _RecordTooLong) as exc:
            end = feed.next_number - 1
            if end == start and not feed.ran_out and isinstance(exc, csv.Error):
                lenient = _lenient_row(feed.lines[0], layout.delimiter)
                if lenient is None:
                    yield RecordError(f"line {start}", f"unreadable CSV: {exc}")
                    continue
                cells = lenient
            else:
                if feed.ran_out:
                    why = "it runs to the end of the file"
                elif isinstance(exc, _RecordTooLong):
                    why = str(exc)
                else:
                    why = f"the CSV parser stopped at line {end} ({exc})"
                yield _unterminated_quote(feed, start, end, why)
                continue
        else:
            end = feed.next_number - 1
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        if end > start and len(cells) != width:
            why = f"lines {start}-{end} read as one row of {len(cells)} fields, but the header has {width}"
            yield _unterminated_quote(feed, start, end, why)
            continue
        if len(cells) > width and any(cell.strip() for cell in cells[width:]):
            yield RecordError(
                f"line {start}", f"{len(cells)} fields but the header has {width} (an unquoted delimiter?)"
            )
            continue
        fields = dict(zip(header, cells, strict=False))
        yield SourceRecord(_span(start, end), fields, fields)


def _unterminated_quote(feed: _LineFeed, start: int, end: int, why: str) -> RecordError:
    """Rejects the line where the quote opened and hands the lines it swallowed back to be read again."""
    feed.give_back(feed.lines[1:])
    again = f"; line {start + 1} on is read again" if end > start else ""
    return RecordError(f"line {start}", f"unterminated quote: {why}{again}")


_JSON_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def json_text_too_deep(text: str, max_depth: int) -> bool:
    """Whether JSON text nests lists/objects deeper than ``max_depth``, found without parsing it.

    Brackets are counted first (C speed): a line with no more opening brackets than the limit cannot be too
    deep, which is every normal record. Only other lines are scanned, skipping brackets inside strings.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return False
    depth = 0
    for match in _JSON_STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > max_depth:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


def json_value_too_deep(value: Any, max_depth: int) -> bool:
    """Whether a parsed value nests deeper than ``max_depth`` (the record itself is level 1); no recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > max_depth:
                    return True
                stack.append((child, depth + 1))
    return False


def _too_deep(max_depth: int) -> str:
    return (
        f"nested more than {max_depth} levels deep (lists or objects inside one another); "
        "the limit is the import_limits.json_max_depth setting"
    )


def iter_jsonl(
    source: TextSource, *, max_depth: int = DEFAULT_JSON_MAX_DEPTH
) -> Iterator[SourceRecord | RecordError]:
    for number, line in enumerate(source.text, start=1):
        if not line.strip():
            continue
        if json_text_too_deep(line, max_depth):
            yield RecordError(f"line {number}", _too_deep(max_depth))
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RecordError(f"line {number}", f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(value, dict):
            yield RecordError(f"line {number}", f"expected a JSON object, found {type(value).__name__}")
            continue
        yield SourceRecord(f"line {number}", flatten(value), value)


def _json_array_prefix(source: TextSource) -> str:
    """'item' for a top-level array, '' for an object (the wrapped array is found next)."""
    source.text.seek(0)
    while True:
        char = source.text.read(1)
        if not char:
            raise ImportFailedError(f"{display_name(source.path.name)}: the file holds only whitespace")
        if not char.isspace():
            break
    if char == "[":
        return "item"
    if char != "{":
        raise ImportFailedError(
            f"{display_name(source.path.name)}: not JSON (starts with {char!r}); expected [ or {{"
        )
    return ""


def iter_json(
    source: TextSource, *, max_depth: int = DEFAULT_JSON_MAX_DEPTH
) -> Iterator[SourceRecord | RecordError]:
    """Records of a JSON array. ijson's C backend builds a deep record without recursing, so its depth is
    checked once built, before anything (flattening, storing) recurses over it."""
    prefix = _json_array_prefix(source) or _find_wrapped_array(source)
    number = 0
    try:
        for number, value in enumerate(ijson.items(source.utf8_bytes(), prefix, use_float=True), start=1):
            if isinstance(value, (dict, list)) and json_value_too_deep(value, max_depth):
                yield RecordError(f"record {number}", _too_deep(max_depth))
                continue
            if not isinstance(value, dict):
                yield RecordError(f"record {number}", f"expected a JSON object, found {type(value).__name__}")
                continue
            yield SourceRecord(f"record {number}", flatten(value), value)
    except ijson.JSONError as exc:
        yield RecordError(f"record {number + 1}", f"malformed JSON, nothing after this point was read: {exc}")


def _find_wrapped_array(source: TextSource) -> str:
    try:
        for prefix, event, value in ijson.parse(source.utf8_bytes()):
            if prefix == "" and event == "map_key" and value in JSON_ARRAY_KEYS:
                return f"{value}.item"
            if prefix.count(".") == 0 and event == "start_array" and prefix:
                return f"{prefix}.item"
    except ijson.JSONError as exc:
        raise ImportFailedError(
            f"{display_name(source.path.name)}: malformed JSON before any record: {exc}"
        ) from exc
    raise ImportFailedError(
        f"{display_name(source.path.name)}: a JSON object with no array of records "
        f"(looked for {', '.join(JSON_ARRAY_KEYS)})"
    )


def flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"fields": {"summary": "x"}} -> {"fields.summary": "x", "summary": "x"}.

    Nested keys are also offered under their last name when unambiguous, so one alias list matches a Jira
    REST issue (``fields.summary``) and a flat export (``summary``) alike. Display-value objects
    (ServiceNow ``{"display_value", "value"}``, Jira ``{"name"}``/``{"displayName"}``) stay whole; the mapping
    reduces them. Atlassian Document Format documents (``{"type": "doc"}``) also stay whole.
    """
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, dict) and not _is_leaf_object(item):
            for sub_key, sub_value in flatten(item, f"{name}.").items():
                flat[sub_key] = sub_value
        else:
            flat[name] = item
    if not prefix:
        for name, item in list(flat.items()):
            short = name.rsplit(".", 1)[-1]
            if short != name and short not in flat:
                flat[short] = item
    return flat


def _is_leaf_object(item: dict[str, Any]) -> bool:
    return item.get("type") == "doc" or bool(
        {"display_value", "displayName", "name", "value"} & item.keys() and len(item) <= 8
    )
