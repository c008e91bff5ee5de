"""Text preparation: cleaners drop noise and keep every identifier that names a problem."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.matching.text import (
    CHUNK_MAX_WORDS,
    CHUNK_OVERLAP_WORDS,
    Section,
    adf_to_text,
    html_to_text,
    jira_wiki_to_text,
    lexical_terms,
    looks_like_html,
    prepare_ticket_text,
    split_runbook_sections,
    split_servicenow_journal,
    strip_email_noise,
    strip_servicenow_journal,
)

RUNBOOK_DIR = Path(__file__).resolve().parents[2] / "resources" / "demo" / "runbooks"

IDENTIFIERS = [
    "0x80070005",
    "ORA-12541",
    "AADSTS50076",
    "lnx-app-07.corp.example.com",
    "KB0012345",
    "10.20.30.40",
    "v2.14.1",
]
IDENTIFIER_LINE = (
    "Errors 0x80070005, ORA-12541 and AADSTS50076 on lnx-app-07.corp.example.com (10.20.30.40), "
)
IDENTIFIER_LINE += "client v2.14.1, see KB0012345."

OUTLOOK_HTML = """<html><head><meta charset="utf-8"><style>p.MsoNormal{margin:0} .x{color:red}</style>
<title>RE: VPN</title><!--[if gte mso 9]><xml><o:OfficeDocumentSettings/></xml><![endif]--></head>
<body lang="EN-US"><div>
<p class="MsoNormal">CAUTION: This email originated from outside the organization. Do not click links.</p>
<p class="MsoNormal">Hi team,</p>
<p class="MsoNormal">Since this morning I get error&nbsp;<b>0x80070005</b> when connecting to
<a href="https://x">lnx-app-07.corp.example.com</a> (10.20.30.40) with client v2.14.1.<br>
The DB reports ORA-12541 &amp; sign-in fails with AADSTS50076. KB0012345 did not help.</p>
<p class="MsoNormal">Thanks,</p>
<p class="MsoNormal">John Smith<br>Senior Accountant | Finance<br>+1 555 0100</p>
<p class="MsoNormal">[cid:image001.png@01DA1234.5678]</p>
<div style="border:none;border-top:solid #E1E1E1 1.0pt"><p class="MsoNormal"><b>From:</b> IT Service Desk
&lt;it@corp.example.com&gt;<br><b>Sent:</b> Monday, November 20, 2026 9:00 AM<br><b>To:</b> John Smith<br>
<b>Subject:</b> RE: VPN</p></div>
<p class="MsoNormal">Please restart your laptop and try the printer queue again.</p>
<p>CONFIDENTIALITY NOTICE: This e-mail is confidential.</p>
</div><script>alert("never")</script></body></html>"""

GMAIL_HTML = """<div dir="ltr">Teams sign-in fails with AADSTS50076 since the MFA change.<div><br></div>
<div>-- <br>Jane Doe<br>Service Desk</div></div><br><div class="gmail_quote"><div dir="ltr"
class="gmail_attr">On Mon, Nov 20, 2026 at 10:15 AM John Smith
&lt;<a href="mailto:john@x.com">john@x.com</a>&gt; wrote:<br></div>
<blockquote class="gmail_quote">Did you re-register the authenticator app?<br>
It should work.</blockquote></div>"""


class TestHtml:
    def test_outlook_email_keeps_identifiers_and_drops_noise(self) -> None:
        text = strip_email_noise(html_to_text(OUTLOOK_HTML))
        for identifier in IDENTIFIERS:
            assert identifier in text
        for noise in ("alert", "MsoNormal", "CAUTION", "Hi team", "John Smith", "Senior Accountant"):
            assert noise not in text
        for noise in ("restart your laptop", "CONFIDENTIALITY", "cid:", "RE: VPN", "&nbsp;", "&amp;"):
            assert noise not in text
        assert "0x80070005 when connecting" in text  # &nbsp; became a plain space

    def test_entities_blocks_and_whitespace(self) -> None:
        html = "<p>A&nbsp;&lt;b&gt;  &amp;\n\n  B</p><ul><li>one</li><li>two</li></ul><table><tr><td>x</td>"
        html += "<td>y</td></tr></table><pre>line 1\n  line 2</pre>"
        text = html_to_text(html)
        assert text.split("\n") == ["A <b> & B", "", "- one", "- two", "", "x y", "", "line 1", "line 2"]

    def test_gmail_reply_chain_and_signature_removed(self) -> None:
        text = html_to_text(GMAIL_HTML)
        assert "> Did you re-register" in text  # blockquote became quoted lines
        assert strip_email_noise(text) == "Teams sign-in fails with AADSTS50076 since the MFA change."

    def test_unclosed_head_does_not_swallow_body(self) -> None:
        assert html_to_text("<html><head><title>t</title><p>Disk full on lnx-app-07</p>") == (
            "Disk full on lnx-app-07"
        )

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("<p>hello</p>", True),
            ("line<br>next", True),
            ("<!DOCTYPE html><html>", True),
            ("ping <hostname> then List<String> and <null>", False),
            ("a < b > c", False),
        ],
    )
    def test_looks_like_html(self, text: str, expected: bool) -> None:
        assert looks_like_html(text) is expected


class TestEmailNoise:
    def test_original_message_and_closing(self) -> None:
        text = f"""Hello,

{IDENTIFIER_LINE}

Regards
Alice Example
Finance

-----Original Message-----
From: Service Desk <it@corp.example.com>
Sent: Tuesday, 21 November 2026 08:00
Subject: printer toner
Please replace the toner."""
        assert strip_email_noise(text) == IDENTIFIER_LINE

    def test_on_wrote_wrapped_over_two_lines(self) -> None:
        text = (
            "Still broken: ORA-12541.\n\nOn Mon, Nov 20, 2026 at 10:15 AM John Smith <\njohn@x.com> wrote:\n"
        )
        text += "> did you restart the listener?\n> thanks"
        assert strip_email_noise(text) == "Still broken: ORA-12541."

    def test_forward_at_the_top_keeps_the_forwarded_body(self) -> None:
        text = """-----Original Message-----
From: Alice <alice@corp.example.com>
Sent: Tuesday, 21 November 2026 08:00
To: Service Desk; Bob;
 Carol
Subject: Outlook crashes

Outlook crashes on start with 0x80070005.
Thanks,
Alice"""
        assert strip_email_noise(text) == "Outlook crashes on start with 0x80070005."

    def test_only_quoted_text_falls_back_to_the_quote(self) -> None:
        text = "On Mon, 20 Nov 2026, Bob wrote:\n> printer is offline\n> since v2.14.1"
        assert strip_email_noise(text) == "printer is offline\nsince v2.14.1"

    def test_closing_followed_by_real_content_is_kept(self) -> None:
        text = "The backup failed with ORA-12541.\nThanks\n"
        text += (
            "PS: it also failed yesterday at 02:00 with the same code and the retry failed as well, twice."
        )
        assert strip_email_noise(text) == text.strip()

    def test_stacked_closings_are_all_cut(self) -> None:
        """A forwarded or answered ticket gains a second closing; both versions must read the same (found by
        tests/core/test_confidence_consistency.py: 0.104 vs 0.082 for one ticket)."""
        body = "Hi team,\n\ncurl: (6) Could not resolve host: reports.corp.example.com"
        once = f"{body}\n\nKind regards,\nEmma"
        twice = f"Hi team,\n\n{once}\n\nThanks,\nBob"
        assert strip_email_noise(twice) == strip_email_noise(once) == body.split("\n\n", 1)[1]

    def test_thanks_for_sentence_is_not_a_closing(self) -> None:
        text = "Printer broken.\nThanks for checking the logs yesterday\nJohn"
        assert strip_email_noise(text) == text

    @pytest.mark.parametrize(
        "footer",
        [
            "Thanks, John\nIT Department\nSent from my iPhone",
            "-- \nJohn Smith\nphone 555",
            "Kind regards,\nJohn",
            "Best regards\n\nJohn Smith | Accountant\n+44 20 7946 0000",
            "This e-mail and any attachments are confidential and intended solely for the addressee.\nMore.",
            "If you are not the intended recipient, delete it.",
        ],
    )
    def test_signatures_and_disclaimers(self, footer: str) -> None:
        assert strip_email_noise(f"{IDENTIFIER_LINE}\n\n{footer}") == IDENTIFIER_LINE


class TestServiceNowJournal:
    JOURNAL = """2026-11-20 10:15:02 - John Smith (Work notes)
Restarted vpnagent, error 0x80070005 persists.

2026-11-20 09:00:00 - Jane Doe (Additional comments)
reply from: jane@corp.example.com
User reports VPN down since v2.14.1.

-----Original Message-----
From: Service Desk
Sent: Monday
old quoted stuff

20/11/2026 08:00:00 AM - Jane Doe (Comments)
Older entry with AADSTS50076"""

    def test_headers_removed_notes_kept(self) -> None:
        text = strip_servicenow_journal(self.JOURNAL)
        assert "John Smith" not in text
        assert "Work notes" not in text
        assert "reply from" not in text
        assert "2026-11-20" not in text
        for identifier in ("0x80070005", "v2.14.1", "AADSTS50076"):
            assert identifier in text

    def test_entries_are_cleaned_one_by_one(self) -> None:
        assert len(split_servicenow_journal(self.JOURNAL)) == 3
        text = prepare_ticket_text("VPN down", self.JOURNAL)
        # The forwarded mail inside the second entry is cut, the third (older) entry survives.
        assert "old quoted stuff" not in text
        assert "Older entry with AADSTS50076" in text


class TestJiraWiki:
    MARKUP = r"""h1. Login fails with *AADSTS50076*

User _cannot_ sign in; see [KB0012345|https://kb.corp/KB0012345] and [~jdoe]. {color:red}Urgent{color}.
||Host||IP||
|lnx-app-07.corp.example.com|10.20.30.40|
* first bullet with ORA-12541
** nested *bold* item
# numbered v2.14.1
{quote}It worked yesterday{quote}
{code:java}
if (x * y > 0 && self.__init__) { throw new Error("0x80070005"); }
{code}
{noformat}
*not bold* _not italic_ [not|link]
{noformat}
Use {{ipconfig /flushdns}} then !screenshot.png|thumbnail! check.
----
bq. quoted line"""

    def test_markup_stripped_and_code_kept_verbatim(self) -> None:
        lines = jira_wiki_to_text(self.MARKUP).split("\n")
        assert lines == [
            "Login fails with AADSTS50076",
            "",
            "User cannot sign in; see KB0012345 and jdoe. Urgent.",
            "Host IP",
            "lnx-app-07.corp.example.com 10.20.30.40",
            "first bullet with ORA-12541",
            "nested bold item",
            "numbered v2.14.1",
            "",
            "It worked yesterday",
            "",
            'if (x * y > 0 && self.__init__) { throw new Error("0x80070005"); }',
            "",
            "*not bold* _not italic_ [not|link]",
            "",
            "Use ipconfig /flushdns then check.",
            "",
            "quoted line",
        ]

    def test_placeholder_lookalikes_in_input_are_harmless(self) -> None:
        assert jira_wiki_to_text("a \ue0007\ue001 {code}x{code}") == "a 7\nx"

    def test_hyphens_underscores_and_stars_inside_words_survive(self) -> None:
        text = "ORA-12541 on lnx-app-07 -p 1521 file_name_here *.log SELECT * FROM t"
        assert jira_wiki_to_text(text) == text


def _adf_paragraph(*nodes: dict[str, object]) -> dict[str, object]:
    return {"type": "paragraph", "content": list(nodes)}


def _adf_text(text: str, **extra: object) -> dict[str, object]:
    return {"type": "text", "text": text, **extra}


class TestAdf:
    DOC: dict[str, object] = {  # noqa: RUF012 - a fixture document, never mutated
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "heading", "attrs": {"level": 2}, "content": [_adf_text("Error")]},
            _adf_paragraph(
                _adf_text("Sign-in fails with "),
                _adf_text("AADSTS50076", marks=[{"type": "code"}]),
                _adf_text(" on "),
                {"type": "inlineCard", "attrs": {"url": "https://portal.example.com"}},
                {"type": "hardBreak"},
                {"type": "mention", "attrs": {"id": "1", "text": "@Jane Doe"}},
                _adf_text(" please check", marks=[{"type": "strong"}]),
            ),
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [_adf_paragraph(_adf_text("lnx-app-07.corp.example.com"))],
                    },
                    {
                        "type": "listItem",
                        "content": [
                            _adf_paragraph(
                                _adf_text("since "), {"type": "date", "attrs": {"timestamp": "1795132800000"}}
                            )
                        ],
                    },
                ],
            },
            {
                "type": "codeBlock",
                "attrs": {"language": "bash"},
                "content": [_adf_text("$ sqlplus\nORA-12541: TNS:no listener")],
            },
            {
                "type": "table",
                "content": [
                    {
                        "type": "tableRow",
                        "content": [
                            {"type": "tableHeader", "content": [_adf_paragraph(_adf_text("KB"))]},
                            {"type": "tableCell", "content": [_adf_paragraph(_adf_text("KB0012345"))]},
                        ],
                    }
                ],
            },
            {"type": "mediaSingle", "content": [{"type": "media", "attrs": {"id": "abc", "type": "file"}}]},
            {
                "type": "panel",
                "content": [
                    _adf_paragraph(_adf_text("v2.14.1 "), {"type": "emoji", "attrs": {"shortName": ":)"}})
                ],
            },
            {"type": "someFutureNode", "content": [_adf_text("future text 0x80070005")]},
        ],
    }

    def test_document_to_text(self) -> None:
        assert adf_to_text(self.DOC).split("\n") == [
            "Error",
            "",
            "Sign-in fails with AADSTS50076 on https://portal.example.com",
            "Jane Doe please check",
            "",
            "lnx-app-07.corp.example.com",
            "",
            "since 2026-11-20",
            "",
            "$ sqlplus",
            "ORA-12541: TNS:no listener",
            "",
            "KB KB0012345",
            "",
            "v2.14.1",
            "",
            "future text 0x80070005",
        ]

    def test_malformed_nodes_are_skipped(self) -> None:
        doc = {
            "type": "doc",
            "content": [None, "text", {"type": "paragraph", "content": "oops"}, _adf_text("ok")],
        }
        assert adf_to_text(doc) == "ok"


class TestPrepareTicketText:
    def test_fields_in_order_with_html_description(self) -> None:
        text = prepare_ticket_text(
            "  VPN  won't connect ", OUTLOOK_HTML, category="Network / VPN", configuration_item="vpn-gw-01"
        )
        lines = text.split("\n")
        assert lines[:3] == ["VPN won't connect", "Category: Network / VPN", "Configuration item: vpn-gw-01"]
        for identifier in IDENTIFIERS:
            assert identifier in text
        assert "John Smith" not in text

    def test_subject_repeated_in_body_is_dropped(self) -> None:
        text = prepare_ticket_text(
            "RE: FW: [EXTERNAL] Printer offline", "Printer offline\nQueue PRN-04 is offline."
        )
        assert text == "Printer offline\nQueue PRN-04 is offline."

    def test_empty_parts(self) -> None:
        assert prepare_ticket_text("Disk full", None) == "Disk full"
        assert prepare_ticket_text("Disk full", "", category=" ", configuration_item=None) == "Disk full"

    def test_explicit_jira_markup(self) -> None:
        text = prepare_ticket_text("Login", "h2. Error\n*AADSTS50076*", markup="jira_wiki")
        assert text == "Login\nError\nAADSTS50076"

    def test_plain_text_angle_brackets_are_not_html(self) -> None:
        text = prepare_ticket_text("SSH", "ssh <user>@lnx-app-07.corp.example.com fails: Permission denied")
        assert "<user>@lnx-app-07.corp.example.com" in text


class TestRunbookSections:
    def test_demo_runbook_sections(self) -> None:
        markdown = (RUNBOOK_DIR / "oracle-listener-ora-12541.md").read_text(encoding="utf-8")
        sections = split_runbook_sections(markdown, "Oracle ORA-12541 TNS:no listener / listener down")
        assert [section.name for section in sections] == [
            "Title",
            "Symptoms",
            "Diagnosis",
            "Resolution steps",
            "Verification",
            "Rollback",
        ]
        assert sections[0] == Section("Title", "Oracle ORA-12541 TNS:no listener / listener down")
        diagnosis = sections[2].text
        # Inline code content kept (placeholders like <host> included), markup gone.
        assert "lsnrctl status LISTENER" in diagnosis
        assert "$ORACLE_BASE/diag/tnslsnr/<host>/listener/trace/listener.log" in diagnosis
        assert "`" not in diagnosis
        assert not re.search(r"(?m)^\s*(?:\d+\.|-|#+)\s", diagnosis)
        assert "title:" not in " ".join(section.text for section in sections)  # front matter dropped

    @pytest.mark.parametrize("path", sorted(RUNBOOK_DIR.glob("*.md")), ids=lambda path: path.stem)
    def test_every_demo_runbook_splits_cleanly(self, path: Path) -> None:
        sections = split_runbook_sections(path.read_text(encoding="utf-8"), path.stem)
        names = [section.name for section in sections]
        assert names[0] == "Title"
        assert "Symptoms" in names
        for section in sections:
            assert section.text.strip()
            assert "**" not in section.text
            assert "```" not in section.text
            assert not re.search(r"(?m)^#{1,6}\s", section.text)
            assert len(section.text.split()) <= CHUNK_MAX_WORDS

    def test_document_heading_code_fences_and_subheadings(self) -> None:
        markdown = """# Disk full on Linux

Applies to all RHEL hosts.

## Diagnosis

```bash
# this is a shell comment, not a heading
df -h /var
```

### Step details
Check **/var/log** with `du -sh /var/log/*`.

## Resolution steps
1. Run `logrotate -f /etc/logrotate.conf`.
2. See [the KB](https://kb.example.com/KB0012345) and ![diagram](d.png).

| Host | Disk |
|------|------|
| lnx-app-07 | 98% |
"""
        sections = split_runbook_sections(markdown, "Linux disk full")
        assert sections == [
            Section("Title", "Linux disk full"),
            Section("Overview", "Disk full on Linux\nApplies to all RHEL hosts."),
            Section(
                "Diagnosis",
                "# this is a shell comment, not a heading\ndf -h /var\n\nStep details\n"
                "Check /var/log with du -sh /var/log/*.",
            ),
            Section(
                "Resolution steps",
                "Run logrotate -f /etc/logrotate.conf.\nSee the KB and diagram.\n\nHost Disk\nlnx-app-07 98%",
            ),
        ]

    def test_setext_headings_and_emphasis_inside_words(self) -> None:
        markdown = (
            "Symptoms\n--------\nThe *service* my_service_name fails.\n\nFix\n---\nRestart __it__.\n***"
        )
        assert split_runbook_sections(markdown, "T") == [
            Section("Title", "T"),
            Section("Symptoms", "The service my_service_name fails."),
            Section("Fix", "Restart it."),
        ]

    def test_long_section_is_chunked_with_overlap(self) -> None:
        words = [f"word{i}" for i in range(450)]
        markdown = "## Resolution steps\n" + " ".join(words)
        sections = split_runbook_sections(markdown, "Long")
        chunks = [section for section in sections if section.name == "Resolution steps"]
        assert len(chunks) >= 3
        assert [(chunk.part, chunk.parts) for chunk in chunks] == [
            (i, len(chunks)) for i in range(1, len(chunks) + 1)
        ]
        assert chunks[1].label == f"Resolution steps (2/{len(chunks)})"
        chunk_words = [chunk.text.split() for chunk in chunks]
        assert all(len(chunk) <= CHUNK_MAX_WORDS for chunk in chunk_words)
        for previous, following in itertools.pairwise(chunk_words):
            assert previous[-CHUNK_OVERLAP_WORDS:] == following[:CHUNK_OVERLAP_WORDS]
        covered = {word for chunk in chunk_words for word in chunk}
        assert covered == set(words)

    def test_empty_runbook(self) -> None:
        assert split_runbook_sections("", "Only a title") == [Section("Title", "Only a title")]


class TestLexicalTerms:
    def test_identifiers_are_single_terms(self) -> None:
        terms = lexical_terms(IDENTIFIER_LINE)
        for identifier in IDENTIFIERS:
            assert identifier.lower() in terms
        assert "and" not in terms
        assert "on" not in terms

    def test_stop_words_punctuation_and_duplicates(self) -> None:
        assert lexical_terms(
            "Hi team, the VPN won't connect... VPN error: ORA-12541! user's max_seq_length"
        ) == [
            "team",
            "vpn",
            "connect",
            "vpn",
            "error",
            "ora-12541",
            "user",
            "max_seq_length",
        ]

    def test_empty(self) -> None:
        assert lexical_terms("") == []
        assert lexical_terms("the a of -- !!") == []


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_cleaners_never_raise_on_arbitrary_text(text: str) -> None:
    for cleaned in (
        html_to_text(text),
        strip_email_noise(text),
        strip_servicenow_journal(text),
        jira_wiki_to_text(text),
        prepare_ticket_text(text, text),
    ):
        assert isinstance(cleaned, str)
    for section in split_runbook_sections(text, "t"):
        assert section.text
    assert all(term and term == term.casefold() for term in lexical_terms(text))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([*IDENTIFIERS, "the", "server", "failed", "\n", "*", "_"]), max_size=40))
def test_identifiers_survive_jira_and_markdown(tokens: list[str]) -> None:
    text = " ".join(tokens)
    for identifier in IDENTIFIERS:
        if identifier in tokens:
            assert identifier in jira_wiki_to_text(text)
            assert identifier in " ".join(section.text for section in split_runbook_sections(text, "t"))
