"""The text of an article's attachments (PDF, DOCX, TXT), for the index, when the analyst opts in.

Attachments are whatever people uploaded: scanned PDFs, encrypted ones, Word files renamed, zip bombs. So
:func:`extract_attachment_text` never raises: a file it cannot read gives ``text=None`` and an ``error`` that
names the file and says why, which the connector writes into the article's attachment text as a note. Every
read has an end: the input is capped at ``max_bytes``, a DOCX's uncompressed ``word/document.xml`` at
:data:`MAX_UNCOMPRESSED_BYTES` (checked on the zip directory and again while reading), PDF pages at
:data:`MAX_PDF_PAGES`, and the text returned at :data:`MAX_TEXT_CHARS`.

PDF text comes from pypdf (pure Python, maintained, no system libraries to bundle). DOCX is read with
``zipfile`` and ``xml.etree`` (``w:p`` paragraphs of ``word/document.xml``, ``w:t`` runs, tabs and breaks):
python-docx would add lxml for the one thing needed. TXT is UTF-8 (a BOM dropped), undecodable bytes
replaced.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from dataclasses import dataclass
from xml.etree import ElementTree

from pypdf import PdfReader
from pypdf.errors import PyPdfError

MAX_UNCOMPRESSED_BYTES = 50_000_000
MAX_PDF_PAGES = 500
MAX_TEXT_CHARS = 1_000_000
SUPPORTED_SUFFIXES = (".pdf", ".docx", ".txt")

_WORD = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True, slots=True)
class AttachmentText:
    """One attachment's text, or why there is none (``error`` names the file)."""

    name: str
    text: str | None
    error: str | None = None


class _Unreadable(Exception):
    """Why a file cannot be read; becomes :attr:`AttachmentText.error`."""


def extract_attachment_text(name: str, data: bytes, *, max_bytes: int = 10_000_000) -> AttachmentText:
    """The text of ``name`` (by its suffix); never raises (see the module docstring)."""
    suffix = name.lower().rpartition(".")[2]
    if len(data) > max_bytes:
        return AttachmentText(
            name, None, f"{name}: not read, {len(data):,} bytes is over the {max_bytes:,}-byte cap"
        )
    try:
        if suffix == "pdf":
            text = _pdf_text(data)
        elif suffix == "docx":
            text = _docx_text(data)
        elif suffix == "txt":
            text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
        else:
            raise _Unreadable(f"files of type .{suffix} are not indexed (PDF, DOCX and TXT are)")
    except _Unreadable as exc:
        return AttachmentText(name, None, f"{name}: not read, {exc}")
    text = _BLANK_LINES.sub("\n\n", text.replace("\r\n", "\n").replace("\x00", "")).strip()
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS] + f"\n\n(cut at {MAX_TEXT_CHARS:,} characters)"
    return AttachmentText(name, text)


def _pdf_text(data: bytes) -> str:
    # pypdf logs a WARNING per malformed object it works around; one broken upload must not flood the log.
    pypdf_log = logging.getLogger("pypdf")
    level = pypdf_log.level
    pypdf_log.setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                if not reader.decrypt(""):
                    raise _Unreadable("the PDF is password-protected")
            except (NotImplementedError, PyPdfError) as exc:
                raise _Unreadable(f"the PDF is encrypted ({exc})") from exc
        pages = []
        for number, page in enumerate(reader.pages):
            if number >= MAX_PDF_PAGES:
                pages.append(f"(only the first {MAX_PDF_PAGES} pages were read)")
                break
            pages.append(page.extract_text() or "")
    except _Unreadable:
        raise
    except (PyPdfError, ValueError, TypeError, KeyError, OSError, RecursionError, AttributeError) as exc:
        raise _Unreadable(f"the PDF is damaged or not a PDF ({type(exc).__name__}: {exc})") from exc
    finally:
        pypdf_log.setLevel(level)
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise _Unreadable("the PDF has no text layer (a scan needs OCR, which is not done)")
    return text


def _docx_text(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            try:
                info = archive.getinfo("word/document.xml")
            except KeyError as exc:
                raise _Unreadable("the DOCX has no word/document.xml (not a Word document)") from exc
            if info.file_size > MAX_UNCOMPRESSED_BYTES:
                raise _Unreadable(
                    f"its document.xml unpacks to {info.file_size:,} bytes, over the "
                    f"{MAX_UNCOMPRESSED_BYTES:,}-byte cap (a zip bomb?)"
                )
            with archive.open(info) as member:
                xml = member.read(MAX_UNCOMPRESSED_BYTES + 1)  # the directory's size can lie
            if len(xml) > MAX_UNCOMPRESSED_BYTES:
                raise _Unreadable(
                    f"its document.xml unpacks to over {MAX_UNCOMPRESSED_BYTES:,} bytes (a zip bomb?)"
                )
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise _Unreadable(f"the DOCX is damaged or not a zip archive ({exc})") from exc
    try:
        # expat fetches no external entity and (2.4.1+) caps entity amplification
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise _Unreadable(f"its document.xml is not well-formed XML ({exc})") from exc
    paragraphs = []
    for paragraph in root.iter(f"{_WORD}p"):
        parts = []
        for node in paragraph.iter():
            if node.tag == f"{_WORD}t" and node.text:
                parts.append(node.text)
            elif node.tag == f"{_WORD}tab":
                parts.append("\t")
            elif node.tag in (f"{_WORD}br", f"{_WORD}cr"):
                parts.append("\n")
        paragraphs.append("".join(parts))
    return "\n".join(paragraphs)
