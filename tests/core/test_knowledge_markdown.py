"""Article bodies as Markdown: golden Confluence storage-format pages, and the macro rules one by one."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.knowledge.markdown import MAX_HTML_CHARS, confluence_storage_to_markdown, html_to_markdown

GOLDEN = Path(__file__).parent / "golden"
CONFLUENCE_PAGES = sorted(path.stem for path in GOLDEN.glob("confluence_*.xhtml"))


def macro(name: str, inner: str = "") -> str:
    return f'<ac:structured-macro ac:name="{name}" ac:schema-version="1">{inner}</ac:structured-macro>'


def param(name: str, value: str) -> str:
    return f'<ac:parameter ac:name="{name}">{value}</ac:parameter>'


def rich(html: str) -> str:
    return f"<ac:rich-text-body>{html}</ac:rich-text-body>"


def test_there_are_golden_pages() -> None:
    assert CONFLUENCE_PAGES == ["confluence_legacy_layout", "confluence_links_tasks", "confluence_runbook"]


@pytest.mark.parametrize("stem", CONFLUENCE_PAGES)
def test_golden_confluence_page(stem: str) -> None:
    xhtml = (GOLDEN / f"{stem}.xhtml").read_text(encoding="utf-8")
    expected = (GOLDEN / f"{stem}.md").read_text(encoding="utf-8")
    markdown = confluence_storage_to_markdown(xhtml)
    assert markdown + "\n" == expected
    for raw in ("ac:", "ri:", "<![CDATA[", "]]>", "<p>", "<span"):
        assert raw not in markdown


def test_a_code_macro_is_a_fenced_block_with_its_language_and_its_text_untouched() -> None:
    body = macro(
        "code",
        param("language", "Bash") + "<ac:plain-text-body><![CDATA[a <b> && c\n  d]]></ac:plain-text-body>",
    )
    assert confluence_storage_to_markdown(body) == "```bash\na <b> && c\n  d\n```"


def test_a_code_macro_without_language_or_body() -> None:
    assert (
        confluence_storage_to_markdown(
            macro("code", "<ac:plain-text-body><![CDATA[x = 1]]></ac:plain-text-body>")
        )
        == "```\nx = 1\n```"
    )
    assert (
        confluence_storage_to_markdown("<p>before</p>" + macro("code") + "<p>after</p>") == "before\n\nafter"
    )


@pytest.mark.parametrize(
    ("name", "label"), [("info", "Info"), ("note", "Note"), ("warning", "Warning"), ("tip", "Tip")]
)
def test_panels_are_blockquotes_led_by_their_label(name: str, label: str) -> None:
    body = macro(name, rich("<p>Body <em>text</em>.</p>"))
    assert confluence_storage_to_markdown(body) == f"> **{label}**\n>\n> Body *text*."


def test_a_panel_title_joins_its_label_and_a_plain_panel_shows_only_its_title() -> None:
    assert confluence_storage_to_markdown(macro("note", param("title", "Careful") + rich("<p>x</p>"))) == (
        "> **Note: Careful**\n>\n> x"
    )
    assert confluence_storage_to_markdown(macro("panel", rich("<p>x</p>"))) == "> x"


def test_nested_macros_are_rewritten_innermost_first() -> None:
    inner = macro(
        "code", param("language", "sql") + "<ac:plain-text-body><![CDATA[SELECT 1;]]></ac:plain-text-body>"
    )
    body = macro("expand", param("title", "More") + rich(macro("warning", rich(f"<p>Run:</p>{inner}"))))
    assert (
        confluence_storage_to_markdown(body)
        == "**More**\n\n> **Warning**\n>\n> Run:\n>\n> ```sql\n> SELECT 1;\n> ```"
    )


def test_unknown_macros_keep_their_rich_body_or_vanish_never_raw_tags() -> None:
    body = (
        "<p>a</p>"
        + macro("excerpt", param("hidden", "false") + rich("<p>kept <strong>body</strong></p>"))
        + macro("children", param("depth", "2"))
        + macro("gadget-x", '<ac:parameter ac:name="url">https://x</ac:parameter>')
        + "<p>b</p>"
    )
    assert confluence_storage_to_markdown(body) == "a\n\nkept **body**\n\nb"


@pytest.mark.parametrize(
    ("link", "text"),
    [
        ('<ac:link><ri:page ri:content-title="Reset MFA" /></ac:link>', "Reset MFA"),
        (
            '<ac:link><ri:page ri:content-title="Reset MFA" ri:space-key="IT" />'
            "<ac:plain-text-link-body><![CDATA[reset it]]></ac:plain-text-link-body></ac:link>",
            "reset it",
        ),
        (
            '<ac:link><ri:blog-post ri:content-title="Q3 outage review" ri:posting-day="2026/01/02" />'
            "</ac:link>",
            "Q3 outage review",
        ),
        ('<ac:link><ri:attachment ri:filename="runbook.pdf" /></ac:link>', "runbook.pdf"),
        (
            '<ac:link><ri:attachment ri:filename="a.pdf"><ri:page ri:content-title="Other" />'
            "</ri:attachment></ac:link>",
            "a.pdf",
        ),
        ('<ac:link ac:anchor="step-3" />', "step-3"),
        ('<ac:link><ri:user ri:userkey="8a7f808a" /></ac:link>', "@user"),
        (
            '<ac:link><ri:url ri:value="https://status.example.com" /></ac:link>',
            "<https://status.example.com>",
        ),
    ],
)
def test_links_read_as_their_text_or_target(link: str, text: str) -> None:
    assert confluence_storage_to_markdown(f"<p>See {link}.</p>") == f"See {text}."


def test_emoticons_become_their_shortname_or_nothing() -> None:
    body = (
        '<p>Done <ac:emoticon ac:name="tick" ac:emoji-shortname=":white_check_mark:" /> ok '
        '<ac:emoticon ac:name="smile" /></p>'
    )
    assert confluence_storage_to_markdown(body) == "Done :white_check_mark: ok"


def test_task_lists_become_checkboxes() -> None:
    body = (
        "<ac:task-list><ac:task><ac:task-id>1</ac:task-id><ac:task-status>complete</ac:task-status>"
        "<ac:task-body>one</ac:task-body></ac:task><ac:task><ac:task-id>2</ac:task-id>"
        "<ac:task-status>incomplete</ac:task-status><ac:task-body>two <strong>b</strong></ac:task-body>"
        "</ac:task>"
        "</ac:task-list>"
    )
    assert confluence_storage_to_markdown(body) == "- [x] one\n- [ ] two **b**"


def test_images_become_their_file_name_or_url() -> None:
    body = (
        '<p><ac:image><ri:attachment ri:filename="net.png" /></ac:image> '
        '<ac:image><ri:url ri:value="https://cdn.example.com/x.png" /></ac:image></p>'
    )
    assert confluence_storage_to_markdown(body) == "(image: net.png) (image: https://cdn.example.com/x.png)"


def test_headings_numbered_steps_and_tables_survive() -> None:
    body = (
        "<h3>Fix</h3><ol><li>one</li><li>two</li></ol>"
        "<table><tbody><tr><th>Host</th><th>Port</th></tr><tr><td>db1</td><td>5432</td></tr></tbody></table>"
    )
    assert (
        confluence_storage_to_markdown(body)
        == "### Fix\n\n1. one\n2. two\n\n| Host | Port |\n| --- | --- |\n| db1 | 5432 |"
    )


def test_empty_and_oversized_bodies() -> None:
    assert confluence_storage_to_markdown("  \n ") == ""
    huge = "<p>" + "x" * (MAX_HTML_CHARS + 10) + "</p>"
    assert confluence_storage_to_markdown(huge).endswith(
        f"*(The article was cut at {MAX_HTML_CHARS:,} characters of markup.)*"
    )


def test_html_code_blocks_keep_a_language_class() -> None:
    html = '<pre><code class="language-python">print(1)</code></pre><pre class="brush-sql">SELECT 1</pre>'
    assert html_to_markdown(html) == "```python\nprint(1)\n```\n\n```sql\nSELECT 1\n```"


def test_an_escaped_angle_bracket_stays_a_character_outside_code_and_as_written_inside() -> None:
    """``&lt;fail&gt;`` left bare as ``<fail>`` would be read as a tag by a Markdown viewer and vanish."""
    markdown = html_to_markdown(
        "<p>If the log says &lt;fail&gt;, run <code>grep &lt;fail&gt; app.log</code>.</p>"
        "<pre>if a &lt; b &amp;&amp; c &gt; d</pre>"
    )
    assert markdown == "If the log says &lt;fail>, run `grep <fail> app.log`.\n\n```\nif a < b && c > d\n```"
