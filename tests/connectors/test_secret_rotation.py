"""Issue 17, credential rotation (connector side): a secret is marked used once per sync, a rotation tests the
new value against the system before it replaces the old one, and the audit trail never holds a value in any
encoding. Real SQLite, the in-memory keychain, the local fake ServiceNow (its ``password`` is what the
server accepts: changing it is the administrator changing the password in ServiceNow) and the tiny fake
for the CLI."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import keyring
import keyring.errors
import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.base import CheckProblem, CheckResult, ConnectorSettings
from connectors.configs import ConfigRow, check_config, create_config, get_config
from connectors.errors import ConfigurationError, CredentialStoreError
from connectors.rotation import RotationResult, rotate_secret
from connectors.runs import connector_overview
from connectors.secrets import SERVICE_NAME, entry_name
from connectors.sync import SyncReport, run_sync
from connectors.testing.standard_suite import SleepRecorder
from core.store.models import AuditEvent, ConnectorSecret
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from desktop.cli.main import EXIT_ERROR, EXIT_OK, main
from tests.connectors.fake_servicenow import FakeServiceNow
from tests.connectors.tiny_connector import GOOD_TOKEN, FakeTiny
from tests.helpers.memory_keyring import MemoryKeyring

START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
NEW_PASSWORD = "sn-NEW/pa$$ w0rd+&=?"  # a slash, a plus, spaces: every encoding of it differs


@pytest.fixture
def fake() -> FakeServiceNow:
    system = FakeServiceNow()
    for number in range(1, 13):
        system.add_ticket(system.new_ticket(number, START + timedelta(minutes=number)))
    return system


def add(sessions: sessionmaker[TenantSession], fake: FakeServiceNow, name: str = "prod") -> ConfigRow:
    settings = fake.settings()
    return create_config(
        sessions,
        connector_type="servicenow",
        name=name,
        base_url=fake.base_url,
        options=settings.options,
        secrets=settings.secrets,
        actor="ana",
    )


def stored_value(ring: MemoryKeyring, config: ConfigRow, field: str = "password") -> str | None:
    return ring.get_password(SERVICE_NAME, entry_name(config.keychain_key, field))


def sync(
    sessions: sessionmaker[TenantSession], fake: FakeServiceNow, config: ConfigRow, **kw: Any
) -> SyncReport:
    kw.setdefault("actor", "ana")
    return asyncio.run(
        run_sync(sessions, config.id, transport=fake.transport(), page_size=5, sleep=SleepRecorder(), **kw)
    )


def rotate(
    sessions: sessionmaker[TenantSession], fake: FakeServiceNow, config: ConfigRow, value: str, **kw: Any
) -> RotationResult:
    kw.setdefault("transport", fake.transport())
    return asyncio.run(rotate_secret(sessions, config.name, "password", value, actor="ana", **kw))


def trail(sessions: sessionmaker[TenantSession], prefix: str = "secret.") -> list[AuditEvent]:
    with sessions() as session:
        query = select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id)
        return list(session.scalars(query))


def secret_row(sessions: sessionmaker[TenantSession], config: ConfigRow) -> ConnectorSecret:
    with sessions() as session:
        row = session.scalar(select(ConnectorSecret).where(ConnectorSecret.connector_config_id == config.id))
        assert row is not None
        session.expunge(row)
        return row


# --- used ----------------------------------------------------------------------------------------------


def test_a_sync_marks_its_secrets_used_once_whatever_its_page_count(
    sessions: sessionmaker[TenantSession], fake: FakeServiceNow
) -> None:
    config = add(sessions, fake)
    report = sync(sessions, fake, config, clock=lambda: START + timedelta(hours=1))
    assert report.ok and report.pages == 3 and report.requests_sent >= 3
    (used,) = trail(sessions, "secret.used")
    assert used.after == {"name": "prod", "fields": ["password"], "via": "sync", "run_id": report.run_id}
    assert used.entity_id == config.id and used.actor == "ana"
    assert secret_row(sessions, config).last_used_at == START + timedelta(hours=1)

    second = sync(sessions, fake, config, clock=lambda: START + timedelta(hours=2))
    assert [e.after["run_id"] for e in trail(sessions, "secret.used")] == [report.run_id, second.run_id]
    assert secret_row(sessions, config).last_used_at == START + timedelta(hours=2)


def test_a_connection_test_marks_them_used_too(
    sessions: sessionmaker[TenantSession], fake: FakeServiceNow
) -> None:
    config = add(sessions, fake)
    result = asyncio.run(check_config(sessions, config, transport=fake.transport(), actor="ana"))
    assert result.ok
    (used,) = trail(sessions, "secret.used")
    assert used.after == {"name": "prod", "fields": ["password"], "via": "check"}
    assert secret_row(sessions, config).last_used_at is not None


# --- rotate --------------------------------------------------------------------------------------------


def test_rotation_keeps_the_old_value_until_the_new_one_passes_the_test(
    sessions: sessionmaker[TenantSession], fake: FakeServiceNow, memory_keyring: MemoryKeyring
) -> None:
    config = add(sessions, fake)
    old_password = fake.password
    fake.password = NEW_PASSWORD  # the administrator changed it in ServiceNow: only the new one works now
    assert not sync(sessions, fake, config).ok

    typo = rotate(sessions, fake, config, NEW_PASSWORD + "x")
    assert (typo.rotated, typo.check.problem) == (False, CheckProblem.AUTHENTICATION)
    assert typo.headline().startswith("prod: the password was not rotated, the old one stays: ")
    assert stored_value(memory_keyring, config) == old_password
    assert secret_row(sessions, config).rotated_at is None
    (refused,) = trail(sessions, "secret.rotate_failed")
    assert refused.after is not None
    assert (refused.after["field"], refused.after["check"]["problem"]) == ("password", "authentication")

    rotated_at = START + timedelta(days=100)
    done = rotate(sessions, fake, config, NEW_PASSWORD, clock=lambda: rotated_at)
    assert (done.rotated, done.check.ok, done.rotated_at) == (True, True, rotated_at)
    assert done.headline() == "prod: the password was rotated; the connection test passed."
    assert stored_value(memory_keyring, config) == NEW_PASSWORD
    assert secret_row(sessions, config).rotated_at == rotated_at
    (audited,) = trail(sessions, "secret.rotated")
    assert audited.after is not None and audited.actor == "ana"
    assert (audited.after["name"], audited.after["field"], audited.after["check"]["ok"]) == (
        "prod",
        "password",
        True,
    )
    assert sync(sessions, fake, config).ok  # the next sync signs in with the new one


def test_a_failed_commit_puts_the_old_value_back(
    sessions: sessionmaker[TenantSession], fake: FakeServiceNow, memory_keyring: MemoryKeyring
) -> None:
    config = add(sessions, fake)
    old_password = fake.password
    fake.password = NEW_PASSWORD

    def note_rotation(session: Session, _context: object) -> None:
        if any(isinstance(obj, ConnectorSecret) and obj.rotated_at for obj in session.dirty | session.new):
            session.info["rotation_flushed"] = True

    def refuse(session: Session) -> None:
        # After the keychain write: the rotation's transaction fails at its commit.
        if session.info.get("rotation_flushed"):
            raise RuntimeError("disk full")

    event.listen(TenantSession, "after_flush", note_rotation)
    event.listen(TenantSession, "before_commit", refuse)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            rotate(sessions, fake, config, NEW_PASSWORD)
    finally:
        event.remove(TenantSession, "before_commit", refuse)
        event.remove(TenantSession, "after_flush", note_rotation)
    assert stored_value(memory_keyring, config) == old_password
    assert secret_row(sessions, config).rotated_at is None
    assert trail(sessions, "secret.rotated") == []


class _RefusesWrites(MemoryKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")


def test_a_keychain_that_refuses_the_write_leaves_nothing_recorded(
    sessions: sessionmaker[TenantSession], fake: FakeServiceNow, memory_keyring: MemoryKeyring
) -> None:
    config = add(sessions, fake)
    refusing = _RefusesWrites()
    refusing.entries = dict(memory_keyring.entries)
    keyring.set_keyring(refusing)
    fake.password = NEW_PASSWORD
    with pytest.raises(CredentialStoreError, match="keychain is locked"):
        rotate(sessions, fake, config, NEW_PASSWORD)
    assert secret_row(sessions, config).rotated_at is None
    assert trail(sessions, "secret.rotated") == []


def test_rotation_refuses_what_there_is_nothing_to_rotate(
    sessions: sessionmaker[TenantSession], fake: FakeServiceNow
) -> None:
    config = add(sessions, fake)
    with pytest.raises(ConfigurationError, match="no stored secret 'client_secret' to rotate"):
        asyncio.run(rotate_secret(sessions, config.id, "client_secret", "x-y-z-1"))
    with pytest.raises(ConfigurationError, match="the new password is empty"):
        asyncio.run(rotate_secret(sessions, config.id, "password", ""))
    with pytest.raises(ConfigurationError, match="no such connector"):
        asyncio.run(rotate_secret(sessions, "nope", "password", "x-y-z-1"))
    assert fake.requests == []  # nothing was sent


def test_the_overview_carries_each_secrets_age(
    sessions: sessionmaker[TenantSession], fake: FakeServiceNow
) -> None:
    add(sessions, fake)
    with sessions() as session:
        (row,) = connector_overview(session)
    assert [age.label() for age in row.secrets] == ["password · stored today"]


# --- never the value -----------------------------------------------------------------------------------


def encodings(value: str, username: str) -> set[str]:
    """The forms a secret travels in: raw, base64 (alone, as Basic ``user:secret``), URL- and JSON-encoded."""
    forms = {
        value,
        base64.b64encode(value.encode()).decode(),
        base64.b64encode(f"{username}:{value}".encode()).decode(),
        base64.urlsafe_b64encode(value.encode()).decode(),
        quote(value, safe=""),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        json.dumps(value).replace("/", "\\/")[1:-1],
    }
    return {form for form in forms if form}


def test_no_secret_reaches_the_audit_trail_or_the_database_in_any_encoding(
    sessions: sessionmaker[TenantSession], fake: FakeServiceNow, workspace: Workspace
) -> None:
    old_password = fake.password
    bad_value = "wrong/Pässwort+ 42&x=1"

    async def echoing_check(settings: ConnectorSettings) -> CheckResult:
        """A server that echoes the credentials it refused (some do, in an error page)."""
        value = settings.secrets["password"]
        basic = base64.b64encode(f"{fake.username}:{value}".encode()).decode()
        return CheckResult(
            CheckProblem.AUTHENTICATION,
            f"401: password {value!r} refused; Authorization: Basic {basic}; "
            f'form password={quote_plus(value)}; body {{"password": {json.dumps(value)}}}',
        )

    config = add(sessions, fake)
    assert sync(sessions, fake, config).ok
    assert asyncio.run(check_config(sessions, config, transport=fake.transport())).ok
    fake.password = NEW_PASSWORD
    assert not rotate(sessions, fake, config, bad_value, check=echoing_check).rotated
    assert rotate(sessions, fake, config, NEW_PASSWORD).rotated
    assert sync(sessions, fake, get_config_row(sessions, config.id)).ok

    with sessions() as session:
        rows = [
            json.dumps([e.actor, e.action, e.entity_type, e.entity_id, e.before, e.after], ensure_ascii=False)
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]
        rows += [
            json.dumps([s.field, s.stored_by, str(s.stored_at), str(s.rotated_at)])
            for s in session.scalars(select(ConnectorSecret))
        ]
    actions = {json.loads(row)[1] for row in rows if json.loads(row)[1].startswith("secret.")}
    assert {"secret.stored", "secret.used", "secret.rotate_failed", "secret.rotated"} <= actions
    failed = next(json.loads(row) for row in rows if json.loads(row)[1] == "secret.rotate_failed")
    assert failed[5]["check"]["message"].startswith("401: password '***' refused; Authorization: ***")
    text = "\n".join(rows)
    database = b"".join(path.read_bytes() for path in Path(workspace.root).glob("*.sqlite3*"))
    for secret in (old_password, bad_value, NEW_PASSWORD):
        for form in encodings(secret, fake.username):
            assert form not in text, f"an encoding of a secret is on the audit trail: {form!r}"
            assert form.encode() not in database, f"an encoding of a secret is in the database: {form!r}"


def get_config_row(sessions: sessionmaker[TenantSession], config_id: int) -> ConfigRow:
    with sessions() as session:
        return get_config(session, config_id)


# --- the CLI -------------------------------------------------------------------------------------------

OLD_TOKEN = "tiny-token-OLD-0000"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def ws(
    tiny: FakeTiny, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    """A workspace with the tiny connector added with a token the server no longer accepts."""
    folder = str(tmp_path / "ws")
    monkeypatch.setenv("RUNBOOK_DESK_SECRET_TOKEN", OLD_TOKEN)
    code, _, err = run(
        capsys,
        "connectors",
        "add",
        "tiny",
        "--name",
        "Tiny prod",
        "--url",
        tiny.base_url,
        "--workspace",
        folder,
    )
    assert (code, err) == (EXIT_OK, "")
    monkeypatch.delenv("RUNBOOK_DESK_SECRET_TOKEN")
    return folder


def keychain_tokens(ring: MemoryKeyring) -> list[str]:
    return [value for (service, _user), value in ring.entries.items() if service == SERVICE_NAME]


def test_cli_rotate_reads_the_value_from_stdin_and_keeps_the_old_one_on_failure(
    ws: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    memory_keyring: MemoryKeyring,
) -> None:
    code, out, _ = run(capsys, "connectors", "list", "--workspace", ws)
    assert code == EXIT_OK and out.rstrip().endswith("; token · stored today")

    monkeypatch.setattr("sys.stdin", io.StringIO("tiny-token-TYPO-99\n"))
    code, out, err = run(capsys, "connectors", "rotate", "Tiny prod", "--field", "token", "--workspace", ws)
    assert (code, out) == (EXIT_ERROR, "")
    assert "runbook-desk: error: Tiny prod: the token was not rotated, the old one stays:" in err
    assert "tiny-token-TYPO-99" not in err
    assert keychain_tokens(memory_keyring) == [OLD_TOKEN]

    monkeypatch.setattr("sys.stdin", io.StringIO(GOOD_TOKEN + "\n"))  # --field: the only one stored
    code, out, err = run(capsys, "connectors", "rotate", "Tiny prod", "--workspace", ws, "--json")
    assert (code, err) == (EXIT_OK, "")
    assert json.loads(out) == {
        "name": "Tiny prod",
        "field": "token",
        "rotated": True,
        "problem": "ok",
        "message": "Tiny prod: connected and allowed to read",
        "hint": "",
    }
    assert keychain_tokens(memory_keyring) == [GOOD_TOKEN]
    assert run(capsys, "connectors", "sync", "Tiny prod", "--workspace", ws)[0] == EXIT_OK

    code, out, _ = run(capsys, "connectors", "list", "--workspace", ws, "--json")
    (listed,) = json.loads(out)
    (age,) = listed["secrets"]
    assert (age["field"], age["age_days"], age["rotation_due"]) == ("token", 0, False)
    assert age["rotated_at"] is not None and age["last_used_at"] is not None


def test_cli_rotate_takes_the_environment_and_never_an_argument(
    ws: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    memory_keyring: MemoryKeyring,
) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["connectors", "rotate", "Tiny prod", "--value", GOOD_TOKEN, "--workspace", ws])
    assert refused.value.code == 2
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run(capsys, "connectors", "rotate", "Tiny prod", "--workspace", ws)
    assert code == EXIT_ERROR and "no new token: set RUNBOOK_DESK_SECRET_TOKEN" in err
    code, _, err = run(capsys, "connectors", "rotate", "Tiny prod", "--field", "password", "--workspace", ws)
    assert code == EXIT_ERROR and "no stored secret 'password' to rotate (stored: token)" in err

    monkeypatch.setenv("RUNBOOK_DESK_SECRET_TOKEN", GOOD_TOKEN)
    code, out, err = run(capsys, "connectors", "rotate", "Tiny prod", "--workspace", ws)
    assert (code, err) == (EXIT_OK, "")
    assert out.strip() == "Tiny prod: the token was rotated; the connection test passed."
    assert keychain_tokens(memory_keyring) == [GOOD_TOKEN]
