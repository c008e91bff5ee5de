"""Article bodies as clean Markdown: headings, numbered steps, code blocks and tables kept, tag soup gone.

ServiceNow Knowledge ``text`` and ServiceDesk Plus solutions are HTML (entities, inline styles, ``<span>``
nests); Confluence's storage format is XHTML with ``ac:`` macros, which
:func:`confluence_storage_to_markdown` rewrites to plain HTML first. The conversion is markdownify's (on
BeautifulSoup's parser), with ATX headings and fenced code; what it cannot know (a script, a style sheet)
is dropped before. Inputs are capped: an article body beyond :data:`MAX_HTML_CHARS` is cut (and says so),
so a hostile page cannot make the sync parse megabytes of markup.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup
from markdownify import ATX, MarkdownConverter

MAX_HTML_CHARS = 2_000_000
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACES = re.compile(r"[ \t]+\n")
_DROPPED_TAGS = ("script", "style", "noscript", "iframe", "object", "embed", "head")


class _Converter(MarkdownConverter):
    """markdownify's converter with our defaults: ATX headings, ``-`` bullets, fenced code blocks."""

    def __init__(self) -> None:
        super().__init__(heading_style=ATX, bullets="-", code_language="", escape_underscores=False)


def html_to_markdown(markup: str) -> str:
    """Clean Markdown of an HTML article body (see the module docstring)."""
    if not markup.strip():
        return ""
    cut = len(markup) > MAX_HTML_CHARS
    soup = BeautifulSoup(markup[:MAX_HTML_CHARS], "html.parser")
    for tag in soup.find_all(_DROPPED_TAGS):
        tag.decompose()
    text = _Converter().convert_soup(soup)
    text = _TRAILING_SPACES.sub("\n", text.replace("\r\n", "\n").replace("\xa0", " "))
    text = _BLANK_LINES.sub("\n\n", text).strip()
    if cut:
        text += f"\n\n*(The article was cut at {MAX_HTML_CHARS:,} characters of markup.)*"
    return text
