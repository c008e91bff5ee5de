"""Streaming readers for CSV, JSON and JSONL files, with encoding and delimiter detection.

Every reader yields :class:`SourceRecord` (a place in the file plus a flat ``{column: value}`` dict) or a
:class:`RecordError` for a record it could not read, and keeps going where the format allows it. Problems that
make the whole file unreadable (empty, undecodable, not JSON at all) raise :class:`ImportFailedError` before
anything is written.

Encoding: a first pass over the bytes checks UTF-8 incrementally (flat memory); if that fails the file is
read as Windows-1252, which is what Excel on Windows writes, unless it contains bytes cp1252 leaves undefined,
in which case the file is refused with the offset of the first bad byte.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import ijson

from core.errors import ImportFailedError

CHUNK_BYTES = 1 << 20
CSV_DELIMITERS = (",", ";", "\t", "|")
# Arrays of records under these top-level keys: ServiceNow JSON export / Table API, Jira search, ours.
JSON_ARRAY_KEYS = ("records", "result", "issues", "tickets", "runbooks", "items", "data")
# A description pasted from a log can be long; the csv module's 128 KiB default would reject it.
csv.field_size_limit(16 * 1024 * 1024)


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


def detect_encoding(path: Path) -> str:
    with path.open("rb") as raw:
        head = raw.read(4)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        bad = _first_bad_offset(path, "utf-16")
        if bad is not None:
            raise ImportFailedError(
                f"{path.name}: invalid UTF-16 at byte offset {bad}; save it as UTF-8 and retry"
            )
        return "utf-16"
    utf8_bad = _first_bad_offset(path, "utf-8")
    if utf8_bad is None:
        return "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    cp1252_bad = _first_bad_offset(path, "cp1252")
    if cp1252_bad is not None:
        raise ImportFailedError(
            f"{path.name}: not UTF-8 (bad byte at offset {utf8_bad}) nor Windows-1252 "
            f"(undefined byte at offset {cp1252_bad}); save it as UTF-8 and retry"
        )
    return "cp1252"


class ByteReader(Protocol):
    """What ijson reads: bytes on demand (a buffered file, or the re-encoder below)."""

    def read(self, size: int = -1, /) -> bytes: ...


class TextSource:
    """An open file plus how far into it we are, for progress. Text for CSV/JSONL, UTF-8 bytes for ijson."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        if self.size == 0:
            raise ImportFailedError(f"{path.name}: the file is empty")
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
    """Presents a cp1252/UTF-16 text stream as UTF-8 bytes for ijson."""

    def __init__(self, text: IO[str]) -> None:
        self._text = text
        self._pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._pending) < size:
            chunk = self._text.read(CHUNK_BYTES)
            if not chunk:
                break
            self._pending += chunk.encode("utf-8")
        if size < 0:
            size = len(self._pending)
        data, self._pending = self._pending[:size], self._pending[size:]
        return data


def sniff_delimiter(header_line: str) -> str:
    """The candidate splitting the header into the most columns (csv.Sniffer guesses wrong on short files)."""
    counts = {d: header_line.count(d) for d in CSV_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def read_csv_header(source: TextSource) -> tuple[list[str], csv.DictReader[str]]:
    first_line = source.text.readline()
    if not first_line.strip():
        raise ImportFailedError(f"{source.path.name}: the first line is empty; expected a header row")
    delimiter = sniff_delimiter(first_line)
    header = next(csv.reader([first_line], delimiter=delimiter))
    header = [name.strip() for name in header]
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise ImportFailedError(
            f"{source.path.name}: duplicate column names in the header: {', '.join(dupes)}"
        )
    reader = csv.DictReader(source.text, fieldnames=header, delimiter=delimiter, restkey="\x00extra")
    return header, reader


def iter_csv(source: TextSource, reader: csv.DictReader[str]) -> Iterator[SourceRecord | RecordError]:
    """Rows of a CSV file after its header, located by the physical line each row starts on."""
    header_lines = 1  # read before the DictReader existed, so its line_num does not count it
    while True:
        start = reader.line_num + header_lines + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RecordError(f"line {start}", f"unreadable CSV: {exc}")
            continue
        extra = row.pop("\x00extra", None)
        if extra is not None and any(str(v).strip() for v in extra):
            yield RecordError(
                f"line {start}",
                f"{len(reader.fieldnames or []) + len(extra)} fields but the header has "
                f"{len(reader.fieldnames or [])} (an unquoted delimiter?)",
            )
            continue
        if all(v is None or not str(v).strip() for v in row.values()):
            continue  # blank line
        cells = {k: v for k, v in row.items() if v is not None}
        yield SourceRecord(f"line {start}", cells, cells)


def iter_jsonl(source: TextSource) -> Iterator[SourceRecord | RecordError]:
    for number, line in enumerate(source.text, start=1):
        if not line.strip():
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
            raise ImportFailedError(f"{source.path.name}: the file holds only whitespace")
        if not char.isspace():
            break
    if char == "[":
        return "item"
    if char != "{":
        raise ImportFailedError(f"{source.path.name}: not JSON (starts with {char!r}); expected [ or {{")
    return ""


def iter_json(source: TextSource) -> Iterator[SourceRecord | RecordError]:
    prefix = _json_array_prefix(source) or _find_wrapped_array(source)
    number = 0
    try:
        for number, value in enumerate(ijson.items(source.utf8_bytes(), prefix, use_float=True), start=1):
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
        raise ImportFailedError(f"{source.path.name}: malformed JSON before any record: {exc}") from exc
    raise ImportFailedError(
        f"{source.path.name}: a JSON object with no array of records "
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
