"""Article bodies as clean Markdown: headings, numbered steps, code blocks and tables kept, tag soup gone.

ServiceNow Knowledge ``text`` and ServiceDesk Plus solutions are HTML (entities, inline styles, ``<span>``
nests); Confluence's storage format is XHTML with ``ac:`` macros, which
:func:`confluence_storage_to_markdown` rewrites to plain HTML first. The conversion is markdownify's (on
BeautifulSoup's parser), with ATX headings and fenced code; what it cannot know (a script, a style sheet)
is dropped before. Inputs are capped: an article body beyond :data:`MAX_HTML_CHARS` is cut (and says so),
so a hostile page cannot make the sync parse megabytes of markup.

Confluence storage format (the ``body.storage`` of the REST API) is XHTML whose macros are ``ac:`` and
``ri:`` elements. BeautifulSoup's ``html.parser`` keeps them as tags named ``ac:structured-macro`` and reads
CDATA sections as text, so each macro is rewritten into the plain HTML it stands for, innermost first, and
markdownify does the rest:

- ``code`` / ``noformat`` (CDATA ``ac:plain-text-body``, ``language`` parameter) -> a fenced code block;
- ``info`` / ``note`` / ``warning`` / ``tip`` / ``panel`` -> a blockquote led by a bold label (and title);
- ``expand`` / ``details`` / layouts / any macro with an ``ac:rich-text-body`` -> that body (an expand's
  title as a bold line); ``status`` -> its title in brackets; ``jira`` -> the issue key; other
  body-less macros (``toc``, ``children``, ``anchor``) -> their plain-text body as code, else nothing;
- ``ac:link`` -> its link body, else the page title (``ri:page``), the attachment's file name, the user
  (``@user``) or a Markdown link (``ri:url``); ``ac:image`` -> "(image: file name)";
- ``ac:emoticon`` -> its emoji shortname when it has one (``:warning:``), else nothing;
- ``ac:task-list`` -> ``- [ ]`` / ``- [x]`` items.

Whatever ``ac:`` / ``ri:`` element is left after that is unwrapped (its text kept) or, for parameters and
placeholders, dropped: raw macro tags never reach the Markdown.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Tag
from markdownify import ATX, MarkdownConverter

MAX_HTML_CHARS = 2_000_000
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACES = re.compile(r"[ \t]+\n")
_DROPPED_TAGS = ("script", "style", "noscript", "iframe", "object", "embed", "head")
_LANGUAGE_CLASS = re.compile(r"^(?:language|lang|brush)-([\w+#.-]+)$")


def _code_language(pre: Tag) -> str:
    """The language of a ``<pre>``: ``data-language`` (set for Confluence code macros), else a
    ``language-x`` class on it or its ``<code>``; "" when none."""
    language = pre.get("data-language")
    if isinstance(language, str) and language.strip():
        return language.strip().lower()
    code = pre.find("code")
    for element in (pre, code):
        if isinstance(element, Tag):
            for css_class in element.get_attribute_list("class"):
                match = _LANGUAGE_CLASS.match(css_class or "")
                if match:
                    return match.group(1).lower()
    return ""


class _Converter(MarkdownConverter):
    """markdownify's converter with our defaults: ATX headings, ``-`` bullets, fenced code blocks."""

    def __init__(self) -> None:
        super().__init__(
            heading_style=ATX,
            bullets="-",
            code_language="",
            code_language_callback=_code_language,
            escape_underscores=False,
        )

    def escape(self, text: str, parent_tags: set[str]) -> str:
        """Also keep a literal ``<`` (an HTML ``&lt;``) a character: left bare, a Markdown viewer reads
        ``<fail>`` as a tag and shows nothing. Code spans and blocks are not escaped (markdownify passes
        their text by), so ``grep <fail>`` stays as written there."""
        escaped = super().escape(text, parent_tags)  # type: ignore[misc]  # its stubs omit escape()
        return str(escaped).replace("<", "&lt;")


def html_to_markdown(markup: str) -> str:
    """Clean Markdown of an HTML article body (see the module docstring)."""
    if not markup.strip():
        return ""
    cut = len(markup) > MAX_HTML_CHARS
    return _soup_to_markdown(BeautifulSoup(markup[:MAX_HTML_CHARS], "html.parser"), cut=cut)


def confluence_storage_to_markdown(xhtml: str) -> str:
    """Clean Markdown of a Confluence storage-format body: its ``ac:`` macros rewritten to HTML first (see
    the module docstring), then converted as :func:`html_to_markdown` does."""
    if not xhtml.strip():
        return ""
    cut = len(xhtml) > MAX_HTML_CHARS
    soup = BeautifulSoup(xhtml[:MAX_HTML_CHARS], "html.parser")
    _rewrite_confluence(soup)
    return _soup_to_markdown(soup, cut=cut)


def _soup_to_markdown(soup: BeautifulSoup, *, cut: bool) -> str:
    for tag in soup.find_all(_DROPPED_TAGS):
        tag.decompose()
    text = _Converter().convert_soup(soup)
    text = _TRAILING_SPACES.sub("\n", text.replace("\r\n", "\n").replace("\xa0", " "))
    text = _BLANK_LINES.sub("\n\n", text).strip()
    if cut:
        text += f"\n\n*(The article was cut at {MAX_HTML_CHARS:,} characters of markup.)*"
    return text


# ----------------------------------------------------------------------------------------------------------
# Confluence storage format: macros to plain HTML
# ----------------------------------------------------------------------------------------------------------

_CODE_MACROS = frozenset({"code", "noformat"})
_PANEL_LABELS = {"info": "Info", "note": "Note", "warning": "Warning", "tip": "Tip", "panel": ""}
_MACRO_TAGS = ("ac:structured-macro", "ac:macro")  # ac:macro: the pre-4.0 form still found in old pages
_DROPPED_CONFLUENCE = ("ac:parameter", "ac:placeholder", "ac:default-parameter")


def _param(macro: Tag, name: str) -> str:
    for parameter in macro.find_all("ac:parameter", recursive=False):
        if parameter.get("ac:name") == name:
            return parameter.get_text().strip()
    return ""


def _child(element: Tag, name: str) -> Tag | None:
    found = element.find(name, recursive=False)
    return found if isinstance(found, Tag) else None


def _rewrite_confluence(soup: BeautifulSoup) -> None:
    """Rewrite every macro, link, image, emoticon and task list of ``soup`` in place, innermost first."""
    for macro in reversed(soup.find_all(_MACRO_TAGS)):
        _rewrite_macro(soup, macro)
    for link in reversed(soup.find_all("ac:link")):
        link.replace_with(_link_text(link))
    for image in soup.find_all("ac:image"):
        name = _resource_name(image)
        image.replace_with(f"(image: {name})" if name else "")
    for emoticon in soup.find_all("ac:emoticon"):
        shortname = str(emoticon.get("ac:emoji-shortname") or "").strip()
        emoticon.replace_with(shortname)
    for task_list in reversed(soup.find_all("ac:task-list")):
        task_list.replace_with(_task_list(soup, task_list))
    for time in soup.find_all("time"):
        stamp = time.get("datetime")
        if isinstance(stamp, str) and not time.get_text().strip():
            time.replace_with(stamp)
    for leftover in soup.find_all(_DROPPED_CONFLUENCE):
        leftover.decompose()
    for leftover in soup.find_all(lambda tag: tag.name.startswith(("ac:", "ri:", "at:"))):
        leftover.unwrap()


def _rewrite_macro(soup: BeautifulSoup, macro: Tag) -> None:
    name = str(macro.get("ac:name") or "").strip().lower()
    body = _child(macro, "ac:rich-text-body")
    if name in _CODE_MACROS:
        plain = _child(macro, "ac:plain-text-body")
        pre = soup.new_tag("pre")
        language = _param(macro, "language")
        if language:
            pre["data-language"] = language
        code = soup.new_tag("code")
        code.string = (plain.get_text() if plain is not None else "").strip("\n")
        pre.append(code)
        macro.replace_with(pre)
        return
    if name in _PANEL_LABELS:
        label = _PANEL_LABELS[name]
        title = _param(macro, "title")
        heading = ": ".join(part for part in (label, title) if part)
        quote = soup.new_tag("blockquote")
        if heading:
            lead = soup.new_tag("p")
            strong = soup.new_tag("strong")
            strong.string = heading
            lead.append(strong)
            quote.append(lead)
        if body is not None:
            quote.extend(list(body.contents))
        macro.replace_with(quote)
        return
    if name == "status":
        title = _param(macro, "title")
        macro.replace_with(f"[{title}]" if title else "")
        return
    if name == "jira":  # a single-issue macro names the issue; a JQL table macro has nothing to keep
        macro.replace_with(_param(macro, "key"))
        return
    if body is None:  # toc, children, jira, anchor, attachments...: nothing an article's reader can use
        plain = _child(macro, "ac:plain-text-body")
        if plain is not None and plain.get_text().strip():
            pre = soup.new_tag("pre")
            code = soup.new_tag("code")
            code.string = plain.get_text().strip("\n")
            pre.append(code)
            macro.replace_with(pre)
        else:
            macro.decompose()
        return
    container = soup.new_tag("div")
    title = _param(macro, "title") if name == "expand" else ""
    if title:
        lead = soup.new_tag("p")
        strong = soup.new_tag("strong")
        strong.string = title
        lead.append(strong)
        container.append(lead)
    container.extend(list(body.contents))
    macro.replace_with(container)


def _resource_name(element: Tag) -> str:
    """The file, page, user or URL an ``ac:link`` / ``ac:image`` points at, as a person names it."""
    attachment = element.find("ri:attachment")
    if isinstance(attachment, Tag):
        return str(attachment.get("ri:filename") or "").strip()
    page = element.find("ri:page") or element.find("ri:blog-post")
    if isinstance(page, Tag):
        return str(page.get("ri:content-title") or "").strip()
    url = element.find("ri:url")
    if isinstance(url, Tag):
        return str(url.get("ri:value") or "").strip()
    return ""


def _link_text(link: Tag) -> str | Tag:
    """What an ``ac:link`` reads as: its own body, else the name of what it points at."""
    body = _child(link, "ac:plain-text-link-body") or _child(link, "ac:link-body")
    text = " ".join(body.get_text().split()) if body is not None else ""
    user = link.find("ri:user")
    url = link.find("ri:url")
    target = _resource_name(link)
    if isinstance(url, Tag) and target:
        anchor = BeautifulSoup("", "html.parser").new_tag("a", href=target)
        anchor.string = text or target
        return anchor
    if text:
        return text
    if isinstance(user, Tag):
        return "@user"
    anchor_name = str(link.get("ac:anchor") or "").strip()
    return target or anchor_name


def _task_list(soup: BeautifulSoup, task_list: Tag) -> Tag:
    items = soup.new_tag("ul")
    for task in task_list.find_all("ac:task", recursive=False):
        status = _child(task, "ac:task-status")
        done = status is not None and status.get_text().strip().lower() == "complete"
        body = _child(task, "ac:task-body")
        item = soup.new_tag("li")
        item.append("[x] " if done else "[ ] ")
        if body is not None:
            item.extend(list(body.contents))
        items.append(item)
    return items
