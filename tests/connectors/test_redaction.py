"""Issue 18, item 1: a secret reaches no output in any encoding, even when a server echoes the request.

A hostile or careless server that echoes the request into its error body hands back the credentials as
base64 (a Basic header, of ``user:secret``), URL-encoded (a login form), JSON-escaped (a request body) or
raw. Whatever it echoes must not reach stderr, ``--json`` output, ``sync_runs.error_text``, the audit trail,
any file of the workspace (the SQLite file and its WAL included) or the log. The end-to-end tests run the
real CLI and the real ServiceNow, Jira and Remedy connectors against an echoing server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qsl, quote, quote_plus

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from connectors.configs import create_config
from connectors.errors import ConfigurationError
from connectors.secrets import (
    MAX_STORED_TEXT,
    REDACTED,
    REDACTOR,
    SecretRedactingFilter,
    redact_text,
    redacted_excerpt,
    register_secret,
)
from connectors.sync import run_sync
from connectors.testing.standard_suite import SleepRecorder
from core.store.models import AuditEvent, SyncRun
from core.store.tenancy import TenantSession
from desktop.cli.main import EXIT_ERROR, EXIT_OK, main
from tests.connectors.tiny_connector import GOOD_TOKEN, FakeTiny, TinyConnector

USER = "svc.runbook@acme.example"
REMEDY_PASSWORD = "E/Secr3t+E2e&pw=x"  # the issue's own: its form encoding is E%2FSecr3t%2BE2e%26pw%3Dx
# JSON escapes the quote and the backslash, and (ASCII-only JSON) the umlauts; URL-encoding differs between
# quote and quote_plus on the space and the slash.
SERVICENOW_PASSWORD = 'pä"ss\\wörd/42+ x'
JIRA_TOKEN = "ATATT3xFfGF0+e2e/tok3n=="


def b64(data: str, *, urlsafe: bool = False) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(data.encode("utf-8")).decode("ascii")


def encodings(secret: str, user: str = USER) -> dict[str, str]:
    """Every form of ``secret`` the issue names, each computed here independently of the code under test."""
    forms = {
        "raw": secret,
        "quote": quote(secret, safe=""),
        "quote keeping /": quote(secret),
        "quote_plus (form)": quote_plus(secret),
        "JSON, ASCII only": json.dumps(secret)[1:-1],
        "JSON, UTF-8": json.dumps(secret, ensure_ascii=False)[1:-1],
    }
    for urlsafe in (False, True):
        alphabet = "URL-safe " if urlsafe else ""
        for label, text in (("secret", secret), ("user:secret", f"{user}:{secret}")):
            encoded = b64(text, urlsafe=urlsafe)
            forms[f"{alphabet}base64 of {label}"] = encoded
            forms[f"{alphabet}base64 of {label}, no padding"] = encoded.rstrip("=")
    return forms


def leaks(text: str, secret: str, user: str = USER) -> list[str]:
    return [name for name, form in encodings(secret, user).items() if form in text]


# --- the redactor ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [REMEDY_PASSWORD, SERVICENOW_PASSWORD, JIRA_TOKEN, GOOD_TOKEN])
@pytest.mark.parametrize("user", [USER, "a", "ab", "abc"])  # every byte offset of the secret, mod 3
def test_every_encoding_is_masked_wherever_it_stands(secret: str, user: str) -> None:
    redactor = SecretRedactingFilter()
    redactor.register(secret)
    for name, form in encodings(secret, user).items():
        for text in (
            form,
            f"server said: {form}.",
            f'{{"headers": [["authorization", "Basic {form}"]], "x": 1}}',
            f"<td>{form}</td>",
        ):
            redacted = redactor.redact(text)
            assert leaks(redacted, secret, user) == [], (name, text, redacted)
            assert REDACTED in redacted


def test_the_issues_form_body_is_masked_and_the_rest_of_the_line_kept() -> None:
    redactor = SecretRedactingFilter()
    redactor.register(REMEDY_PASSWORD)
    body = "username=svc.runbook&password=E%2FSecr3t%2BE2e%26pw%3Dx&authType=AR"
    assert redactor.redact(f"login refused: {body}") == (
        "login refused: username=svc.runbook&password=***&authType=AR"
    )


def test_a_whole_basic_header_goes_user_name_included() -> None:
    """The base64 run around the secret is masked whole: its edges would give away bits of the secret."""
    redactor = SecretRedactingFilter()
    redactor.register(JIRA_TOKEN)
    header = b64(f"{USER}:{JIRA_TOKEN}")
    assert redactor.redact(f"echo: {header} end") == "echo: *** end"


def test_ordinary_text_is_left_alone() -> None:
    redactor = SecretRedactingFilter()
    for secret in (REMEDY_PASSWORD, SERVICENOW_PASSWORD, JIRA_TOKEN, GOOD_TOKEN):
        redactor.register(secret)
    line = (
        'HTTP Request: GET https://acme.service-now.com/api/now/table/incident?sysparm_limit=200 "HTTP/1.1 '
        '200 OK"; sync Acme: synced: 120 new, 3 updated, 0 unchanged; ZXhhbXBsZQ== is base64 of "example"'
    )
    assert redactor.redact(line) == line


def test_the_log_filter_masks_every_encoding(caplog: pytest.LogCaptureFixture) -> None:
    register_secret(REMEDY_PASSWORD)
    logger = logging.getLogger("connectors.redaction_test")
    logger.addFilter(REDACTOR)
    try:
        with caplog.at_level(logging.INFO, logger="connectors.redaction_test"):
            for form in encodings(REMEDY_PASSWORD).values():
                logger.info("server echoed %s", form)
            try:
                raise ValueError(f"refused {b64(USER + ':' + REMEDY_PASSWORD)}")
            except ValueError:
                logger.exception("login failed")
    finally:
        logger.removeFilter(REDACTOR)
    assert len(caplog.records) == len(encodings(REMEDY_PASSWORD)) + 1
    assert leaks(caplog.text, REMEDY_PASSWORD) == []
    assert caplog.text.count("server echoed ***") == len(encodings(REMEDY_PASSWORD))


def test_an_excerpt_is_redacted_before_it_is_cut() -> None:
    """Cut first, and half a base64 form would no longer match: a cut never meets a secret's encoding."""
    register_secret(REMEDY_PASSWORD)
    encoded = b64(f"{USER}:{REMEDY_PASSWORD}")
    text = "x" * (MAX_STORED_TEXT - 11) + " " + encoded + " and more" * 1_000
    excerpt = redacted_excerpt(text)
    assert len(excerpt) == MAX_STORED_TEXT and excerpt.endswith("…")
    assert encoded[:8] not in excerpt and REDACTED in excerpt
    assert redacted_excerpt("short") == "short"


# --- the sync engine ---------------------------------------------------------------------------------------


def test_a_huge_connector_message_is_stored_cut_and_redacted(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HTTP layer cuts a server's words; a connector's own message (here one quoting what it sent) is
    cut by the engine, after redaction, before the store, the report and the audit trail get it."""
    config = create_config(
        sessions,
        connector_type="tiny",
        name="Tiny prod",
        base_url=tiny.base_url,
        secrets={"token": GOOD_TOKEN},
        actor="test",
    )
    said = f"query refused; it carried Bearer {b64(GOOD_TOKEN)} " + "and so on " * 50_000

    def refusing_streams(self: TinyConnector, since: object, page_size: int | None) -> list[object]:
        raise ConfigurationError(self.name, said)

    monkeypatch.setattr(TinyConnector, "streams", refusing_streams)
    report = asyncio.run(run_sync(sessions, config.id, transport=tiny.transport(), sleep=SleepRecorder()))
    assert not report.ok and report.error is not None
    with sessions() as session:
        stored = session.scalars(select(SyncRun.error_text)).one()
        audited = session.scalars(select(AuditEvent.after).where(AuditEvent.action == "connector.sync")).one()
    assert stored == report.error == audited["error"]
    assert len(stored) == MAX_STORED_TEXT and "it carried Bearer ***" in stored
    assert leaks(stored, GOOD_TOKEN) == []


# --- the CLI against an echoing server --------------------------------------------------------------------


class _EchoHandler(BaseHTTPRequestHandler):
    """Answers every request 401 with the credentials it received, rendered the way ``mode`` says."""

    mode: ClassVar[str] = "header"

    def do_GET(self) -> None:
        self._echo()

    def do_POST(self) -> None:
        self._echo()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads the CLI's output, not the server's."""

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        authorization = self.headers.get("Authorization", "")
        user, password = "", ""
        if authorization.startswith("Basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode("utf-8").partition(":")
        fields = dict(parse_qsl(body))
        password = fields.get("password", password)
        user = fields.get("username", user)
        texts = {
            # Unlabelled, so no "Authorization:" pattern can save the day: only the encodings can.
            "header": f"seen: {json.dumps([['authorization', authorization]])} body: {body}",
            "base64": f"seen: {b64(password)} {b64(password).rstrip('=')} "
            f"{b64(f'{user}:{password}', urlsafe=True).rstrip('=')}",
            "urlencoded": f"seen: {quote(password, safe='')} {quote_plus(password)} {quote(password)}",
            "json": f"seen: {json.dumps({'p': password})} {json.dumps({'p': password}, ensure_ascii=False)}",
            "raw": f"seen: {password}",
        }
        payload = texts[self.mode].encode("utf-8")
        self.send_response(401)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        _EchoHandler.mode = "header"


@dataclass(frozen=True)
class Case:
    connector: str
    secret_field: str
    secret: str
    options: tuple[str, ...]


CASES = [
    Case("servicenow", "password", SERVICENOW_PASSWORD, (f"username={USER}",)),
    Case("jira", "api_token", JIRA_TOKEN, (f"email={USER}",)),
    Case("remedy", "password", REMEDY_PASSWORD, (f"username={USER}",)),
]


@pytest.mark.parametrize("case", CASES, ids=[case.connector for case in CASES])
def test_an_echoing_server_gets_no_secret_into_any_output(
    case: Case,
    echo_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    workspace = tmp_path / "ws"
    monkeypatch.setenv(f"RUNBOOK_DESK_SECRET_{case.secret_field.upper()}", case.secret)
    options = [arg for option in case.options for arg in ("--option", option)]
    add = ["connectors", "add", case.connector, "--name", "Echo", "--url", echo_url, *options]
    assert main([*add, "--workspace", str(workspace)]) == EXIT_OK
    printed: list[str] = []
    for mode in ("header", "base64", "urlencoded", "json", "raw"):
        _EchoHandler.mode = mode
        for command in ("check", "sync"):
            for as_json in ((), ("--json",)):
                argv = ["connectors", command, "Echo", "--workspace", str(workspace), *as_json]
                assert main(argv) == EXIT_ERROR, (mode, command)
                out, err = capsys.readouterr()
                printed.append(out + err)
                assert "seen: " in out + err, (mode, command, out, err)  # the echo itself got through
                assert leaks(out + err, case.secret) == [], (mode, command, out + err)
    assert any(REDACTED in text for text in printed)
    assert leaks(caplog.text, case.secret) == []
    assert leaks(redact_text(caplog.text), case.secret) == []
    stored = b"".join(path.read_bytes() for path in workspace.rglob("*") if path.is_file())
    assert b"seen: " in stored  # the scan reads what the runs and the audit trail kept of the echo
    for name, form in encodings(case.secret).items():
        assert form.encode("utf-8") not in stored, name
