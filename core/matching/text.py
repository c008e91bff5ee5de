"""Turn tickets and runbooks into the plain text the matcher embeds and the lexical search counts.

Everything here is a pure function over ``str`` (plus one ``dict`` for Jira's ADF) and imports only the
standard library (and :mod:`core.monitoring.alert_text`, which does too), so importers, the matcher and
tests can call it without paying for the model.

The cleaners remove what two tickets about *different* problems have in common (greetings, quoted reply
chains, signatures, legal footers, journal headers, markup) because that shared noise pulls unrelated tickets
together in embedding space. They must never touch what identifies a problem: error codes (``0x80070005``,
``ORA-12541``, ``AADSTS50076``), hostnames (``lnx-app-07.corp.example.com``), KB numbers, IP addresses and
versions. The regular expressions below are written so that ``-``, ``.`` and ``_`` inside a word are never
treated as markup, and the tests pin those tokens down.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, Literal

from core.monitoring.alert_text import alert_lexical_text, prepare_alert_text

if TYPE_CHECKING:
    from core.store.models import Ticket

__all__ = [
    "CHUNK_MAX_WORDS",
    "CHUNK_MAX_WORD_PIECES",
    "CHUNK_OVERLAP_WORDS",
    "ENGLISH_STOP_WORDS",
    "INTRO_SECTION_NAME",
    "TITLE_SECTION_NAME",
    "Markup",
    "Section",
    "adf_to_text",
    "html_to_text",
    "jira_wiki_to_text",
    "lexical_terms",
    "looks_like_html",
    "normalise_whitespace",
    "prepare_ticket_text",
    "split_runbook_sections",
    "split_servicenow_journal",
    "strip_email_noise",
    "strip_servicenow_journal",
    "ticket_lexical_text",
    "ticket_text",
]

# all-MiniLM-L6-v2 reads at most 256 word pieces (including [CLS] and [SEP]) and silently drops the rest, so a
# chunk must fit in that window. 200 whitespace words is the nominal size, but runbook text averages 1.8
# pieces per word (commands, paths, error codes), so chunks are also capped by a conservative estimate of
# their word-piece count (see ``_estimated_word_pieces``), leaving a margin below 256 for estimate error.
CHUNK_MAX_WORDS = 200
CHUNK_MAX_WORD_PIECES = 230
# Words repeated at the start of the next chunk, so a step cut in half is still whole in one of them.
CHUNK_OVERLAP_WORDS = 30

TITLE_SECTION_NAME = "Title"
INTRO_SECTION_NAME = "Overview"

# ----------------------------------------------------------------------------------------------------------
# Whitespace
# ----------------------------------------------------------------------------------------------------------

_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_HORIZONTAL_SPACE = re.compile(r"[ \t\f\v\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")


def normalise_whitespace(text: str) -> str:
    """Collapse runs of spaces, keep single line breaks and at most one blank line.

    Line structure is kept on purpose: the email and journal cleaners work line by line, and a blank line is
    the only paragraph boundary plain text has. Non-breaking and zero-width spaces (Outlook and Teams paste
    them everywhere) would otherwise glue words together or split them for the tokeniser.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _ZERO_WIDTH.sub("", text)
    text = _HORIZONTAL_SPACE.sub(" ", text)
    lines = [line.strip() for line in text.split("\n")]
    return _MANY_BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


# ----------------------------------------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------------------------------------

# Elements whose text is never content: code, styles, Outlook's <xml> settings blocks, <title> (a copy of the
# subject at best, "Untitled" at worst).
_SKIP_ELEMENTS = frozenset({"script", "style", "template", "noscript", "title", "xml", "head"})
_HEAD_CONTENT = frozenset({"base", "link", "meta", "noscript", "script", "style", "template", "title", "xml"})
# Block elements end a line; "paragraph" elements also leave a blank line, like a mail client's plain-text
# rendering, so paragraphs stay visible in the text shown to analysts.
_PARAGRAPH_ELEMENTS = frozenset(
    {"blockquote", "dl", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "ol", "p", "pre", "table", "ul"}
)
_LINE_ELEMENTS = frozenset(
    {
        "address", "article", "aside", "body", "caption", "dd", "details", "div", "dt", "fieldset",
        "figcaption", "footer", "form", "header", "html", "li", "main", "nav", "section", "summary", "tbody",
        "tfoot", "thead", "tr",
    }
)  # fmt: skip
_CELL_ELEMENTS = frozenset({"td", "th"})
_HTML_HINT = re.compile(
    r"<(?:/?(?:p|div|br|span|table|tr|td|li|ul|ol|html|body|b|i|strong|em|a|font|h[1-6]|blockquote|pre)\b"
    r"[^>]*>|!DOCTYPE)",
    re.IGNORECASE,
)


class _TextExtractor(HTMLParser):
    """Collects visible text; block elements become line breaks, table cells become spaces.

    ``<blockquote>`` lines are prefixed with ``> `` so an HTML reply chain ends up looking like a plain-text
    one and ``strip_email_noise`` can drop it; the decision to drop is not taken here because outside email
    a blockquote may be content.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skip_stack: list[str] = []
        self._pre_depth = 0
        self._quote_depth = 0
        self._trailing_newlines = 2  # the start of the text counts as the start of a paragraph
        self._pending_bullet = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_stack == ["head"] and tag not in _HEAD_CONTENT:
            # Browsers close an unclosed <head> at the first body element; so must we, or the body is lost.
            self._skip_stack.clear()
        if tag in _SKIP_ELEMENTS:
            self._skip_stack.append(tag)
            return
        if self._skip_stack:
            return
        if tag == "blockquote":
            self._quote_depth += 1
        elif tag == "pre":
            self._pre_depth += 1
        elif tag == "li":
            self._pending_bullet = True
        self._boundary(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._skip_stack:
            if tag in self._skip_stack:
                # Also closes anything mis-nested inside the element.
                del self._skip_stack[len(self._skip_stack) - 1 - self._skip_stack[::-1].index(tag) :]
            return
        if tag == "blockquote" and self._quote_depth:
            self._quote_depth -= 1
        elif tag == "pre" and self._pre_depth:
            self._pre_depth -= 1
        if tag != "br":
            self._boundary(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self._skip_stack:
            self._boundary(tag)

    def _boundary(self, tag: str) -> None:
        if tag == "br":
            self._emit_newlines(1)
        elif tag in _PARAGRAPH_ELEMENTS:
            self._ensure_newlines(2)
        elif tag in _LINE_ELEMENTS:
            self._ensure_newlines(1)
        elif tag in _CELL_ELEMENTS and not self._trailing_newlines:
            self._parts.append(" ")

    def handle_data(self, data: str) -> None:
        if self._skip_stack == ["head"] and data.strip():
            self._skip_stack.clear()
        if self._skip_stack:
            return
        if not self._pre_depth:
            data = re.sub(r"\s+", " ", data)
            if self._trailing_newlines:
                data = data.lstrip(" ")
        if not data:
            return
        prefix = "> " * self._quote_depth
        if self._trailing_newlines:
            data = prefix + ("- " if self._pending_bullet else "") + data
            self._pending_bullet = False
        if prefix:
            data = data.replace("\n", "\n" + prefix)
        self._parts.append(data)
        stripped = data.rstrip("\n" + prefix)
        self._trailing_newlines = data[len(stripped) :].count("\n")

    def _ensure_newlines(self, count: int) -> None:
        if self._trailing_newlines < count:
            self._emit_newlines(count - self._trailing_newlines)

    def _emit_newlines(self, count: int) -> None:
        self._parts.append("\n" * count)
        self._trailing_newlines += count

    def text(self) -> str:
        return "".join(self._parts)


def looks_like_html(text: str) -> bool:
    """True when the text contains common HTML tags.

    Plain-text tickets often contain angle brackets (``<hostname>``, ``<null>``, ``List<String>``), so only
    real tag names count, never a bare ``<...>``.
    """
    return _HTML_HINT.search(text) is not None


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment or email body, with entities decoded and block structure as lines.

    Uses the standard library parser so packaging needs nothing extra; it never raises on broken HTML, which
    is the normal state of HTML written by mail clients.
    """
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = parser.text()
    # A "> " prefix left on an empty line is noise.
    text = re.sub(r"(?m)^(?:> ?)+$", "", text)
    return normalise_whitespace(text)


# ----------------------------------------------------------------------------------------------------------
# Email noise
# ----------------------------------------------------------------------------------------------------------

_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(?:original message|forwarded message|weitergeleitete nachricht|ursprüngliche nachricht)"
    r"\s*-{2,}\s*$",
    re.IGNORECASE,
)
_OUTLOOK_SEPARATOR = re.compile(r"^\s*_{10,}\s*$")
_HEADER_FROM = re.compile(r"^\s*\*?(?:from|von)\s*:\*?\s+\S", re.IGNORECASE)
_HEADER_OTHER = re.compile(r"^\s*\*?(?:sent|date|to|subject|cc|gesendet|datum|an|betreff)\s*:", re.IGNORECASE)
_ON_WROTE_START = re.compile(r"^\s*(?:on|am|le)\s+\S.*\d", re.IGNORECASE)
_ON_WROTE_END = re.compile(r"(?:wrote|schrieb|a écrit)\s*:\s*$", re.IGNORECASE)
_QUOTE_LINE = re.compile(r"^\s*>")
_SIGNATURE_DASHES = re.compile(r"^\s*--\s*$")
_MOBILE_FOOTER = re.compile(
    r"^\s*(?:sent from my \w+.*|sent from (?:outlook|mail) for \w+.*|get outlook for \w+.*)$", re.IGNORECASE
)
# The closing phrase is matched case-insensitively, the optional name on the same line ("Thanks, John")
# only as capitalised words, so "Thanks for checking the logs" is not taken for a closing.
_CLOSING = re.compile(
    r"^\s*(?i:thanks|thank you|thanks again|many thanks|thx|cheers|regards|best regards|kind regards|"
    r"warm regards|best wishes|best|br|sincerely|yours sincerely|mit freundlichen grüßen|viele grüße|"
    r"cordialement)"
    r"(?:\s*[,.!]?\s*[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*){0,2})?\s*[,.!]?\s*$"
)
# A closing only cuts when what follows looks like a signature: a few short lines.
_MAX_SIGNATURE_LINES = 8
_MAX_SIGNATURE_LINE_WORDS = 10
_DISCLAIMER_START = re.compile(
    r"^\s*(?:\*+\s*)?(?:confidentiality notice|disclaimer\s*:|legal disclaimer|"
    r"this (?:e-?mail|message|communication)(?: and any (?:files|attachments)[^.]*?)? "
    r"(?:is|are|may be|contains?|may contain) (?:confidential|intended|privileged|strictly)|"
    r"the information (?:contained )?in this (?:e-?mail|message|communication)|"
    r"if you are not the intended recipient|"
    r"this e-?mail has been scanned)",
    re.IGNORECASE,
)
_BANNER = re.compile(
    r"^\W*(?:external (?:e-?mail|sender)|caution|warning)\W*.*"
    r"(?:originated|came|was sent|is) from outside.*$"
    r"|^\W*external (?:e-?mail|sender)\W*$"
    r"|^\s*please consider the environment before printing.*$",
    re.IGNORECASE,
)
_GREETING = re.compile(
    r"^\s*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|hallo|guten (?:morgen|tag)|bonjour)\b"
    r"[^.!?\n]{0,30}[,.!:]?\s*$",
    re.IGNORECASE,
)
_INLINE_IMAGE = re.compile(r"\[cid:[^\]]*\]|\[image:[^\]]*\]", re.IGNORECASE)


def _reply_marker_length(lines: Sequence[str], index: int) -> int:
    """Number of lines of the reply/forward marker starting at ``index``; 0 when there is none.

    A marker is ``-----Original Message-----`` or Outlook's ``____`` rule, each with the header block that
    follows; a bare ``From:`` block followed closely by ``Sent:``/``Date:``/``To:``/``Subject:``; or
    ``On <date>, X wrote:``, which Gmail wraps over two lines when the address is long.
    """
    line = lines[index]
    following = lines[index + 1] if index + 1 < len(lines) else ""
    if _ORIGINAL_MESSAGE.match(line) or (_OUTLOOK_SEPARATOR.match(line) and _HEADER_FROM.match(following)):
        return 1 + _header_block_length(lines, index + 1)
    if _HEADER_FROM.match(line) and any(_HEADER_OTHER.match(nxt) for nxt in lines[index + 1 : index + 5]):
        return _header_block_length(lines, index)
    if _ON_WROTE_START.match(line):
        if _ON_WROTE_END.search(line):
            return 1
        if len(line) < 120 and _ON_WROTE_END.search(following):
            return 2
    return 0


def _header_block_length(lines: Sequence[str], start: int) -> int:
    """Consecutive ``From:``/``Sent:``/``To:``... lines (a wrapped recipient list continues a header)."""
    end = start
    while end < len(lines) and (
        _HEADER_FROM.match(lines[end])
        or _HEADER_OTHER.match(lines[end])
        or (end > start and lines[end].strip() and lines[end - 1].rstrip().endswith(";"))
    ):
        end += 1
    return end - start


def _is_signature(lines: Sequence[str]) -> bool:
    content = [line for line in lines if line.strip()]
    return len(content) <= _MAX_SIGNATURE_LINES and all(
        len(line.split()) <= _MAX_SIGNATURE_LINE_WORDS for line in content
    )


def strip_email_noise(text: str) -> str:
    """Drop what a mail client adds around the part a person wrote.

    Removes greetings ("Hi team,"), everything from the first reply/forward marker on
    (``-----Original Message-----``, an Outlook ``From:/Sent:`` header block, ``On <date>, X wrote:``),
    quoted ``>`` lines, "this email originated from outside" banners, ``Sent from my iPhone``, inline-image
    placeholders, a ``-- `` signature, a closing like ``Thanks,\\nName`` or ``Regards`` followed only by a
    short signature, and legal disclaimers from their first line to the end.

    Two cases would otherwise lose the whole problem statement, so they are handled on purpose: a ticket
    whose body *starts* with a forwarded message (the forwarded text is the content; only its header goes),
    and a closing such as "Thanks" followed by more real text (a closing cuts only when at most a few short
    lines follow it). If the cleaning still leaves nothing, the text is returned with only quote markers and
    headers removed.
    """
    lines = normalise_whitespace(_INLINE_IMAGE.sub(" ", text)).split("\n")
    kept: list[str] = []
    index = 0
    while index < len(lines):
        marker = _reply_marker_length(lines, index)
        if marker:
            if any(line.strip() for line in kept):
                break
            index += marker  # a forward at the very top: its body is the ticket
            continue
        line = lines[index]
        index += 1
        if _QUOTE_LINE.match(line) or _BANNER.match(line) or _MOBILE_FOOTER.match(line):
            continue
        if _GREETING.match(line) and len(line.split()) <= 4:
            continue
        if _SIGNATURE_DASHES.match(line) or _DISCLAIMER_START.match(line):
            break
        kept.append(line)

    # Closings stack when a ticket is forwarded or answered ("Kind regards, Emma" then "Thanks, Bob"): each
    # is cut while what follows it is only a signature, so both versions of a ticket read the same.
    cut = True
    while cut:
        cut = False
        for position in range(len(kept) - 1, 0, -1):
            if _CLOSING.match(kept[position]):
                if _is_signature(kept[position + 1 :]):
                    kept = kept[:position]
                    cut = True
                break
    cleaned = normalise_whitespace("\n".join(kept))
    if cleaned or not text.strip():
        return cleaned
    return _unquote(lines)


def _unquote(lines: Sequence[str]) -> str:
    """Fallback for a body that is nothing but a quoted message: keep the quoted text, drop the markers."""
    kept: list[str] = []
    index = 0
    while index < len(lines):
        marker = _reply_marker_length(lines, index)
        if marker:
            index += marker
            continue
        kept.append(re.sub(r"^\s*(?:>\s?)+", "", lines[index]))
        index += 1
    return normalise_whitespace("\n".join(kept))


# ----------------------------------------------------------------------------------------------------------
# ServiceNow journal
# ----------------------------------------------------------------------------------------------------------

_JOURNAL_HEADER = re.compile(
    r"^\s*(?:\d{4}-\d{2}-\d{2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4})\s+\d{1,2}:\d{2}(?::\d{2})?"
    r"(?:\s*[AaPp][Mm])?(?:\s+[A-Z]{2,5})?\s+-\s+.{1,120}?\s*"
    r"\((?:work notes?|additional comments|comments|customer comments|internal notes?|close notes|"
    r"resolution notes)\)\s*$",
    re.IGNORECASE,
)
_JOURNAL_REPLY_FROM = re.compile(r"^\s*reply from:\s*\S+@\S+\s*$", re.IGNORECASE)


def split_servicenow_journal(text: str) -> list[str]:
    """The entries of a ServiceNow journal, headers removed, in the order they appear (newest first).

    Text before the first header (a description the importer concatenated in front) is the first entry.
    Text with no journal header at all is a single entry.
    """
    entries: list[list[str]] = [[]]
    for line in normalise_whitespace(text).split("\n"):
        if _JOURNAL_HEADER.match(line):
            entries.append([])
        elif not _JOURNAL_REPLY_FROM.match(line):
            entries[-1].append(line)
    cleaned = (normalise_whitespace("\n".join(entry)) for entry in entries)
    return [entry for entry in cleaned if entry]


def strip_servicenow_journal(text: str) -> str:
    """Remove ServiceNow journal entry headers and keep the notes themselves.

    Headers like ``2026-11-20 10:15:02 - John Smith (Work notes)`` repeat a date and an agent name in every
    entry; embedded, they make every ticket handled by the same agent look alike. The ``reply from:`` line
    that ServiceNow adds to e-mailed comments goes too. Entries are separated by a blank line.
    """
    return "\n\n".join(split_servicenow_journal(text))


# ----------------------------------------------------------------------------------------------------------
# Jira wiki markup
# ----------------------------------------------------------------------------------------------------------

_PLACEHOLDER = "\ue000{}\ue001"
_PLACEHOLDER_RE = re.compile("\ue000(\\d+)\ue001")
_JIRA_BLOCK = re.compile(r"\{(code|noformat)(?::[^}]*)?\}(.*?)\{\1\}", re.IGNORECASE | re.DOTALL)
_JIRA_BLOCK_MACRO = re.compile(
    r"\{(?:quote|panel|info|note|tip|warning|expand|section|column|toc)(?::[^}]*)?\}", re.IGNORECASE
)
_JIRA_INLINE_MACRO = re.compile(r"\{(?:color|anchor|status)(?::[^}]*)?\}", re.IGNORECASE)
_JIRA_MONOSPACE = re.compile(r"\{\{(.+?)\}\}")
_JIRA_HEADING = re.compile(r"^\s*h[1-6]\.\s*", re.MULTILINE)
_JIRA_BQ = re.compile(r"^\s*bq\.\s*", re.MULTILINE)
_JIRA_IMAGE = re.compile(r"!([^\s!|]+\.(?:png|jpe?g|gif|bmp|svg|webp))(?:\|[^!\n]*)?!", re.IGNORECASE)
_JIRA_LINK = re.compile(r"\[([^\[\]|\n]*)\|([^\[\]\n]+)\]")
_JIRA_BARE_LINK = re.compile(r"\[(?:~|\^)?([^\[\]|\n]+)\]")
_JIRA_LIST = re.compile(r"^\s*[*#-]+\s+", re.MULTILINE)
_JIRA_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_JIRA_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_JIRA_CITATION = re.compile(r"\?\?(.+?)\?\?")
_JIRA_RULE = re.compile(r"^\s*-{4,}\s*$", re.MULTILINE)
_JIRA_ESCAPE = re.compile(r"\\([*_{}\[\]\-+^~?!|#])")


def _protect(pattern: re.Pattern[str], text: str, stash: list[str], group: int, *, block: bool) -> str:
    """Replace matches with numbered placeholders so later rules cannot rewrite code."""
    around = "\n" if block else ""

    def keep(match: re.Match[str]) -> str:
        stash.append(match.group(group).strip("\n"))
        return around + _PLACEHOLDER.format(len(stash) - 1) + around

    return pattern.sub(keep, text)


def _without_placeholder_marks(text: str) -> str:
    """Input can never contain our private-use placeholder marks, or restoring would pick the wrong text."""
    return text.replace("\ue000", "").replace("\ue001", "")


def _restore(text: str, stash: Sequence[str]) -> str:
    return _PLACEHOLDER_RE.sub(lambda match: stash[int(match.group(1))], text)


def _jira_table_row(line: str) -> str:
    stripped = line.strip()
    if not stripped.startswith("|"):
        return line
    cells = [cell.strip() for cell in re.split(r"\|\|?", stripped.strip("|"))]
    return " ".join(cell for cell in cells if cell)


def jira_wiki_to_text(markup: str) -> str:
    """Plain text of Jira Server/Data Center wiki markup.

    ``{code}`` and ``{noformat}`` bodies are kept verbatim and shielded from the other rules, because stack
    traces and commands are full of ``*``, ``_`` and ``|`` and carry the error codes that matter most.
    Strikethrough (``-text-``) is deliberately not interpreted: hyphens inside ``ORA-12541`` or
    ``lnx-app-07`` must survive.
    """
    stash: list[str] = []
    text = _without_placeholder_marks(markup).replace("\r\n", "\n")
    text = _protect(_JIRA_BLOCK, text, stash, 2, block=True)
    text = _protect(_JIRA_MONOSPACE, text, stash, 1, block=False)
    text = _JIRA_BLOCK_MACRO.sub("\n", text)
    text = _JIRA_INLINE_MACRO.sub("", text)
    text = _JIRA_IMAGE.sub(" ", text)
    text = _JIRA_HEADING.sub("", text)
    text = _JIRA_BQ.sub("", text)
    text = _JIRA_RULE.sub("", text)
    text = _JIRA_LINK.sub(lambda match: match.group(1).strip() or match.group(2).strip(), text)
    text = _JIRA_BARE_LINK.sub(r"\1", text)
    text = "\n".join(_jira_table_row(line) for line in text.split("\n"))
    text = _JIRA_LIST.sub("", text)
    text = _JIRA_BOLD.sub(r"\1", text)
    text = _JIRA_ITALIC.sub(r"\1", text)
    text = _JIRA_CITATION.sub(r"\1", text)
    text = text.replace("\\\\", "\n")
    text = _JIRA_ESCAPE.sub(r"\1", text)
    return normalise_whitespace(_restore(text, stash))


# ----------------------------------------------------------------------------------------------------------
# Atlassian Document Format (Jira Cloud)
# ----------------------------------------------------------------------------------------------------------

_ADF_BLOCK_NODES = frozenset(
    {
        "paragraph", "heading", "blockquote", "codeBlock", "bulletList", "orderedList", "listItem", "panel",
        "rule", "table", "tableRow", "mediaSingle", "mediaGroup", "expand", "nestedExpand", "taskList",
        "taskItem", "decisionList", "decisionItem", "layoutSection", "layoutColumn", "blockCard",
        "bodiedExtension", "embedCard",
    }
)  # fmt: skip
_ADF_CELL_NODES = frozenset({"tableHeader", "tableCell"})
# Jira Cloud nests at most a few levels; the guard only stops a malicious or looping document.
_ADF_MAX_DEPTH = 100


def _adf_inline(node: Mapping[str, Any]) -> str:
    node_type = node.get("type")
    attrs = node.get("attrs")
    attrs = attrs if isinstance(attrs, Mapping) else {}
    if node_type == "text":
        return str(node.get("text", ""))
    if node_type == "hardBreak":
        return "\n"
    if node_type in {"mention", "status"}:
        return str(attrs.get("text") or "").lstrip("@")
    if node_type == "emoji":
        return ""
    if node_type in {"inlineCard", "blockCard", "embedCard"}:
        return str(attrs.get("url") or "")
    if node_type == "date":
        timestamp = str(attrs.get("timestamp") or "")
        if timestamp.isdigit():
            return datetime.fromtimestamp(int(timestamp) / 1000, tz=UTC).date().isoformat()
        return timestamp
    return ""


def _adf_walk(node: Any, parts: list[str], depth: int, *, in_cell: bool = False) -> None:
    if depth > _ADF_MAX_DEPTH or not isinstance(node, Mapping):
        return
    node_type = node.get("type")
    if node_type in {"media", "extension", "inlineExtension", "placeholder"}:
        return
    # Paragraphs inside a table cell stay on the row's line, so a row reads as one line of text.
    is_block = node_type in _ADF_BLOCK_NODES and not (in_cell and node_type == "paragraph")
    in_cell = in_cell or node_type in _ADF_CELL_NODES
    if is_block:
        parts.append("\n")
    elif node_type in _ADF_CELL_NODES:
        parts.append(" ")
    if node_type in {"expand", "nestedExpand"}:
        attrs = node.get("attrs")
        if isinstance(attrs, Mapping) and attrs.get("title"):
            parts.append(f"{attrs['title']}\n")
    parts.append(_adf_inline(node))
    content = node.get("content")
    if isinstance(content, list):
        for child in content:
            _adf_walk(child, parts, depth + 1, in_cell=in_cell)
    if is_block:
        parts.append("\n")
    elif node_type in _ADF_CELL_NODES:
        parts.append(" ")


def adf_to_text(doc: Mapping[str, Any]) -> str:
    """Plain text of a Jira Cloud Atlassian Document Format document (the JSON ``description`` field).

    Marks (bold, links, code) carry no words of their own and are ignored; mentions keep the display name,
    cards keep their URL and dates become ISO dates. Unknown node types are walked through rather than
    dropped, so a new Atlassian node type loses its formatting, not its text.
    """
    parts: list[str] = []
    _adf_walk(doc, parts, 0)
    return normalise_whitespace("".join(parts))


# ----------------------------------------------------------------------------------------------------------
# Tickets
# ----------------------------------------------------------------------------------------------------------

Markup = Literal["auto", "plain", "html", "jira_wiki"]

# "RE: FW: [EXTERNAL] VPN down" -> "VPN down": mail-created tickets carry the mail subject as their title.
_SUBJECT_PREFIX = re.compile(
    r"^(?:\s*(?:(?:re|fw|fwd|aw|wg|tr|sv|vs)(?:\[\d+\])?\s*:"
    r"|\[(?:external|extern|ext)\]|\*\*\*external\*\*\*))+\s*",
    re.IGNORECASE,
)


def prepare_ticket_text(
    title: str,
    description: str | None,
    category: str | None = None,
    configuration_item: str | None = None,
    *,
    markup: Markup = "auto",
) -> str:
    """The text a ticket is embedded and matched by.

    Title first: the model reads only the first 256 word pieces, and the title is the densest statement of
    the problem (mail prefixes such as ``RE:``/``FW:``/``[EXTERNAL]`` removed). Category and configuration
    item follow as labelled lines because they are short and tell the model the domain ("Network / VPN")
    that descriptions often leave implicit. The description is cleaned of markup, journal headers and email
    noise. ``markup="auto"`` only recognises HTML (Jira wiki and ADF
    cannot be told from plain text reliably; their importers convert them first with ``jira_wiki_to_text`` or
    ``adf_to_text`` and pass ``markup="plain"``).
    """
    body = description or ""
    if markup == "html" or (markup == "auto" and looks_like_html(body)):
        body = html_to_text(body)
    elif markup == "jira_wiki":
        body = jira_wiki_to_text(body)
    else:
        body = normalise_whitespace(html.unescape(body) if markup == "auto" else body)
    # Each journal entry is its own email at worst: cleaning the whole text at once would cut every older
    # entry at the first "-----Original Message-----".
    body = "\n\n".join(
        cleaned for entry in split_servicenow_journal(body) if (cleaned := strip_email_noise(entry))
    )

    clean_title = _SUBJECT_PREFIX.sub("", normalise_whitespace(title).replace("\n", " "))
    lines = [clean_title] if clean_title else []
    if category and category.strip():
        lines.append(f"Category: {normalise_whitespace(category)}")
    if configuration_item and configuration_item.strip():
        lines.append(f"Configuration item: {normalise_whitespace(configuration_item)}")
    if body:
        # Email-created tickets repeat the subject as the first line of the body.
        first, _, rest = body.partition("\n")
        if clean_title and first.strip().casefold() == clean_title.casefold():
            body = rest.strip()
        if body:
            lines.append(body)
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Runbooks
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Section:
    """One embeddable piece of a runbook.

    ``name`` is the heading the text came from ("Resolution steps"). A heading whose text is too long for the
    model becomes several sections with the same ``name``; ``part`` (1-based) and ``parts`` tell them apart so
    the UI can say "Resolution steps (2/3)" and the store can key chunks by position.
    """

    name: str
    text: str
    part: int = 1
    parts: int = 1

    @property
    def label(self) -> str:
        """Name for display: the heading, with "(part/parts)" when the section was split."""
        return self.name if self.parts == 1 else f"{self.name} ({self.part}/{self.parts})"


_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_ATX_HEADING = re.compile(r"^\s{0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_MD_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)")
_MD_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_MD_LINK_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+\S+.*$", re.MULTILINE)
_MD_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^>\s]+)>", re.IGNORECASE)
_MD_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_MD_HTML_TAG = re.compile(
    r"</?(?:br|p|div|span|kbd|sup|sub|b|i|u|em|strong|code|pre|details|summary|img|a|hr|table|thead|tbody|"
    r"tr|td|th|ul|ol|li|font|mark|small|del|ins|s)\b[^>]*>",
    re.IGNORECASE,
)
_MD_BLOCKQUOTE = re.compile(r"^\s{0,3}(?:>\s?)+", re.MULTILINE)
_MD_ADMONITION = re.compile(
    r"^\s*\[!(?:note|tip|important|warning|caution)\]\s*$", re.IGNORECASE | re.MULTILINE
)
_MD_LIST = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+(?:\[[ xX]\]\s+)?", re.MULTILINE)
_MD_RULE = re.compile(r"^\s{0,3}(?:(?:-\s*){3,}|(?:\*\s*){3,}|(?:_\s*){3,})$", re.MULTILINE)
_MD_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$", re.MULTILINE)
_MD_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_MD_EMPHASIS_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_MD_EMPHASIS_UNDERSCORE = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_MD_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")


def ticket_text(ticket: Ticket) -> str:
    """A stored ticket's text as it is embedded and matched (:func:`prepare_ticket_text` of its fields).

    A monitoring incident (kind ``alert``) is half machine text: its embedded text is prepared by
    :func:`core.monitoring.alert_text.prepare_alert_text` instead (rule expressions reduced to their words).
    """
    if ticket.kind == "alert":
        return prepare_alert_text(
            ticket.title, ticket.description, ticket.category, ticket.configuration_item
        )
    return prepare_ticket_text(ticket.title, ticket.description, ticket.category, ticket.configuration_item)


def ticket_lexical_text(ticket: Ticket) -> str:
    """The text a stored ticket's lexical (BM25) search is made of: :func:`ticket_text`, except that an
    alert incident keeps its raw rule expressions searchable
    (:func:`core.monitoring.alert_text.alert_lexical_text`)."""
    if ticket.kind == "alert":
        return alert_lexical_text(
            ticket.title, ticket.description, ticket.category, ticket.configuration_item
        )
    return ticket_text(ticket)


def _markdown_table_row(line: str) -> str:
    stripped = line.strip()
    if stripped.startswith("|") and stripped.endswith("|") and len(stripped) > 1:
        return " ".join(cell.strip() for cell in stripped.strip("|").split("|") if cell.strip())
    return line


def _strip_markdown(markdown: str) -> str:
    """Plain text of a Markdown fragment; code content is kept, markup characters go."""
    stash: list[str] = []
    lines_out: list[str] = []
    fence: str | None = None
    for line in _without_placeholder_marks(markdown).split("\n"):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * len(match.group(1))
            continue
        if fence is not None:
            if line.strip().startswith(fence) and set(line.strip()) <= {fence[0]}:
                fence = None
                continue
            stash.append(line)
            lines_out.append(_PLACEHOLDER.format(len(stash) - 1))
            continue
        heading = _ATX_HEADING.match(line)
        if heading:
            # A sub-heading kept inside its section: its words stay, its marker goes.
            lines_out.append(heading.group(2) or "")
        elif lines_out and lines_out[-1].strip() and _SETEXT_UNDERLINE.match(line):
            continue
        else:
            lines_out.append(line)
    text = "\n".join(lines_out)

    def keep_code(match: re.Match[str]) -> str:
        stash.append(match.group(2).strip())
        return _PLACEHOLDER.format(len(stash) - 1)

    text = _MD_CODE_SPAN.sub(keep_code, text)
    text = _MD_HTML_COMMENT.sub(" ", text)
    text = _MD_LINK_DEFINITION.sub("", text)
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_REF_LINK.sub(r"\1", text)
    text = _MD_AUTOLINK.sub(r"\1", text)
    text = _MD_HTML_TAG.sub(" ", text)
    text = _MD_BLOCKQUOTE.sub("", text)
    text = _MD_ADMONITION.sub("", text)
    text = "\n".join(
        _markdown_table_row(line) for line in text.split("\n") if not _MD_TABLE_SEPARATOR.match(line)
    )
    text = _MD_RULE.sub("", text)
    text = _MD_LIST.sub("", text)
    text = _MD_STRONG.sub(r"\2", text)
    text = _MD_EMPHASIS_STAR.sub(r"\1", text)
    text = _MD_EMPHASIS_UNDERSCORE.sub(r"\1", text)
    text = _MD_STRIKE.sub(r"\1", text)
    text = html.unescape(text)
    return normalise_whitespace(_restore(text, stash))


@dataclass(slots=True)
class _Heading:
    line: int
    level: int
    text: str
    underline: bool  # setext headings occupy two lines


def _find_headings(lines: Sequence[str]) -> list[_Heading]:
    """ATX (``## x``) and setext (underlined) headings outside fenced code blocks.

    Fences matter: a ``# comment`` in a shell snippet is not a heading.
    """
    headings: list[_Heading] = []
    fence: str | None = None
    for index, line in enumerate(lines):
        match = _FENCE.match(line)
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
            elif line.strip().startswith(fence) and set(line.strip()) <= {fence[0]}:
                fence = None
            continue
        if fence is not None:
            continue
        atx = _ATX_HEADING.match(line)
        if atx:
            headings.append(_Heading(index, len(atx.group(1)), (atx.group(2) or "").strip(), False))
            continue
        setext = _SETEXT_UNDERLINE.match(line)
        if (
            setext
            and index > 0
            and lines[index - 1].strip()
            and not _ATX_HEADING.match(lines[index - 1])
            and not _MD_LIST.match(lines[index - 1])
            and (not headings or headings[-1].line != index - 1)
        ):
            level = 1 if setext.group(1).startswith("=") else 2
            headings.append(_Heading(index - 1, level, lines[index - 1].strip(), True))
    return headings


_PIECE_RUNS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+|[^\W\d_]+|[^\w\s]|_")


def _estimated_word_pieces(word: str) -> int:
    """Conservative estimate of how many WordPiece tokens the model's tokenizer makes of one word.

    Rules fitted against the real tokenizer on the demo runbooks and on command-heavy text: CamelCase parts
    are separate runs; a run of up to 5 ASCII letters is one piece, longer runs one per 4 letters; digits one
    per 2; punctuation one each; non-ASCII letters one each (the vocabulary is English). On the demo
    runbooks (1.8 real pieces per word) the worst 100-word window had 1.02 real pieces per estimated one; on
    prose it over-counts by about a quarter, which only makes chunks shorter than they could be.
    """
    pieces = 0
    for run in _PIECE_RUNS.findall(word):
        if run[0].isdigit():
            pieces += -(-len(run) // 2)
        elif not run.isascii() and run[0].isalpha():
            pieces += len(run)
        elif run[0].isalpha():
            pieces += 1 if len(run) <= 5 else -(-len(run) // 4)
        else:
            pieces += 1
    return max(pieces, 1)


def _chunk_words(words: Sequence[str]) -> list[list[str]]:
    """Windows of at most CHUNK_MAX_WORDS words / CHUNK_MAX_WORD_PIECES estimated pieces, overlapping."""
    costs = [_estimated_word_pieces(word) for word in words]
    chunks: list[list[str]] = []
    start = 0
    while start < len(words):
        end = start
        budget = 0
        while (
            end < len(words)
            and end - start < CHUNK_MAX_WORDS
            and budget + costs[end] <= CHUNK_MAX_WORD_PIECES
        ):
            budget += costs[end]
            end += 1
        if end == start:  # one absurd "word" (a base64 blob) larger than the budget: take it alone
            end = start + 1
        chunks.append(list(words[start:end]))
        if end >= len(words):
            break
        overlap = min(CHUNK_OVERLAP_WORDS, (end - start) // 2)
        start = end - overlap
    return chunks


def _chunk_section(name: str, text: str) -> list[Section]:
    words = text.split()
    if not words:
        return []
    chunks = _chunk_words(words)
    if len(chunks) == 1:
        return [Section(name, text)]
    return [Section(name, " ".join(chunk), part, len(chunks)) for part, chunk in enumerate(chunks, start=1)]


def split_runbook_sections(markdown: str, title: str) -> list[Section]:
    """Split a Markdown runbook into embeddable sections: the title, then one or more per heading.

    Why split at all: a ticket usually matches one part of a runbook (its symptoms, or one error message in
    the diagnosis), and one vector for a whole runbook blurs that signal. Why chunk: all-MiniLM-L6-v2 reads
    at most 256 word pieces and ignores the rest, so a long "Resolution steps" would be embedded by its first
    ~140 words only (runbook text averages 1.8 pieces per word). Sections longer than ``CHUNK_MAX_WORDS``
    words or ``CHUNK_MAX_WORD_PIECES`` estimated word pieces become several ``Section`` objects that share
    the heading name and overlap by ``CHUNK_OVERLAP_WORDS`` words, so a step cut at a boundary is whole in
    one of them.

    The split level is the highest heading level used, except that a single top-level heading at the start
    is the document's own title (``# VPN cannot connect`` followed by ``## Symptoms``...) and the split goes
    one level down. Deeper headings stay inside their section as text. Text before the first heading becomes
    an "Overview" section. Headings inside fenced code are ignored, YAML front matter is dropped, and all
    Markdown markup is stripped while code content is kept.
    """
    body = _FRONT_MATTER.sub("", markdown.replace("\r\n", "\n").replace("\r", "\n"), count=1)
    lines = body.split("\n")
    headings = _find_headings(lines)

    sections: list[Section] = []
    clean_title = normalise_whitespace(_strip_markdown(title)).replace("\n", " ")
    if clean_title:
        sections.append(Section(TITLE_SECTION_NAME, clean_title))

    levels = sorted({heading.level for heading in headings})
    split_level = levels[0] if levels else 0
    title_heading: _Heading | None = None
    top = [heading for heading in headings if heading.level == split_level]
    if len(top) == 1 and len(levels) > 1 and not "\n".join(lines[: top[0].line]).strip():
        title_heading = top[0]
        split_level = levels[1]
    boundaries = [heading for heading in headings if heading.level == split_level]

    def text_between(start: int, end: int) -> str:
        return _strip_markdown("\n".join(lines[start:end]))

    intro_start = 0
    intro_parts: list[str] = []
    if title_heading is not None:
        intro_start = title_heading.line + (2 if title_heading.underline else 1)
        heading_text = _strip_markdown(title_heading.text)
        if heading_text and heading_text.casefold() != clean_title.casefold():
            # A document heading that differs from the catalogue title still describes the runbook.
            intro_parts.append(heading_text)
    intro_parts.append(text_between(intro_start, boundaries[0].line if boundaries else len(lines)))
    sections.extend(_chunk_section(INTRO_SECTION_NAME, normalise_whitespace("\n".join(intro_parts))))
    for position, heading in enumerate(boundaries):
        start = heading.line + (2 if heading.underline else 1)
        end = boundaries[position + 1].line if position + 1 < len(boundaries) else len(lines)
        name = _strip_markdown(heading.text)
        if not name or name.casefold() == clean_title.casefold():
            name = INTRO_SECTION_NAME
        sections.extend(_chunk_section(name, text_between(start, end)))
    return sections


# ----------------------------------------------------------------------------------------------------------
# Lexical terms
# ----------------------------------------------------------------------------------------------------------

# A term is a run of word characters joined by ".", "-", "@", "'" (between two word characters), so
# "lnx-app-07.corp.example.com", "ORA-12541", "v2.14.1", "10.20.30.40", "jdoe@corp.com" and "max_seq_length"
# stay whole, while trailing sentence punctuation ("...failed.") is not part of the term.
_TERM = re.compile(r"\w+(?:[.\-@'’]\w+)*")

_STOP_WORDS_TEXT = """
    a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
    during each either else etc even ever every few for from further get gets getting got had hadn't has
    hasn't have haven't having he he'd he'll he's her here here's hers herself him himself his how how's i
    i'd i'll i'm i've ie if in into is isn't it it's its itself just let's like may me might more most
    mustn't my myself neither no nor not now of off on once only or other ought our ours ourselves out over
    own per please same shall shan't she she'd she'll she's should shouldn't so some such than that that's
    the their theirs them themselves then there there's these they they'd they'll they're they've this those
    though through thus to too under until up upon us very via was wasn't we we'd we'll we're we've were
    weren't what what's when when's where where's whether which while who who's whom why why's will with
    within without won't would wouldn't yet you you'd you'll you're you've your yours yourself yourselves
    hi hello dear thanks thank regards cheers kindly e.g i.e
"""
ENGLISH_STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


def lexical_terms(text: str) -> list[str]:
    """Lower-cased terms for BM25 and for showing which terms a ticket and a runbook share.

    Keeps error codes, dotted names, hostnames, IPs and versions as single terms (splitting
    ``lnx-app-07.corp.example.com`` into "lnx", "app", "07", "corp"... would make every server match every
    other). Drops English stop words, ticket greetings and one-character terms. Duplicates are kept, in
    order, because BM25 needs term frequencies; callers wanting "shared terms" take a set.
    """
    terms: list[str] = []
    for match in _TERM.finditer(text.casefold()):
        term = match.group().replace("’", "'")
        if term.endswith("'s"):
            term = term[:-2]
        if len(term) < 2 or term in ENGLISH_STOP_WORDS or (term.isdigit() and len(term) < 3):
            continue
        terms.append(term)
    return terms
