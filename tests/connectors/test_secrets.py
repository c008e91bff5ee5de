"""Secrets live in the keychain only (not in the SQLite file, logs or errors); no keychain is explained."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import keyring
import keyring.backends.fail
import keyring.core
import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from connectors.configs import (
    create_config,
    get_config,
    list_configs,
    remove_config,
    settings_for,
    update_config,
)
from connectors.errors import ConfigurationError, CredentialStoreError
from connectors.secrets import (
    REDACTOR,
    SERVICE_NAME,
    delete_secrets,
    load_secrets,
    register_secret,
    store_secrets,
)
from connectors.sync import run_sync
from connectors.testing.fake_system import InjectedFailure
from connectors.testing.standard_suite import SleepRecorder
from core.store.models import AuditEvent, ConnectorConfig
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from tests.connectors.tiny_connector import GOOD_TOKEN, FakeTiny
from tests.helpers.memory_keyring import LockedKeyring, MemoryKeyring


def add_tiny(sessions: sessionmaker[TenantSession], token: str = GOOD_TOKEN) -> int:
    return create_config(
        sessions,
        connector_type="tiny",
        name="Tiny prod",
        base_url=FakeTiny.base_url,
        secrets={"token": token},
        options={"queue": "ops"},
        actor="test",
    ).id


def test_the_env_var_selects_our_backend_when_keyring_initialises() -> None:
    keyring.core.init_backend()  # what the first keyring.get_keyring() of a process does
    assert isinstance(keyring.get_keyring(), MemoryKeyring)


def test_round_trip_one_entry_per_field(memory_keyring: MemoryKeyring) -> None:
    store_secrets("c", "default/abc", {"password": "s3cret-pw", "client_secret": "cs-123456"})
    assert set(memory_keyring.entries) == {
        (SERVICE_NAME, "default/abc/password"),
        (SERVICE_NAME, "default/abc/client_secret"),
    }
    assert load_secrets("c", "default/abc", ["password", "client_secret", "missing"]) == {
        "password": "s3cret-pw",
        "client_secret": "cs-123456",
    }
    store_secrets("c", "default/abc", {"password": ""})  # cleared in the form: entry removed
    delete_secrets("c", "default/abc", ["password", "client_secret"])
    delete_secrets("c", "default/abc", ["password"])  # already gone: fine
    assert memory_keyring.entries == {}


def test_config_json_holds_the_key_not_the_secret(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession], memory_keyring: MemoryKeyring
) -> None:
    config_id = add_tiny(sessions)
    with sessions() as session:
        config = session.get_one(ConnectorConfig, config_id)
        data = dict(config.config_json)
        row = get_config(session, config_id)
    assert GOOD_TOKEN not in repr(data)
    assert data["keychain_key"].startswith("default/") and data["secret_fields"] == ["token"]
    assert memory_keyring.entries == {(SERVICE_NAME, f"{data['keychain_key']}/token"): GOOD_TOKEN}
    assert settings_for(row).secrets == {"token": GOOD_TOKEN}
    assert GOOD_TOKEN not in repr(settings_for(row))


def test_the_sqlite_file_and_the_logs_never_hold_a_secret(
    tiny: FakeTiny,
    sessions: sessionmaker[TenantSession],
    workspace: Workspace,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    config_id = add_tiny(sessions)
    tiny.add_ticket(tiny.new_ticket(1, datetime(2026, 6, 1, tzinfo=UTC)))
    # A server that echoes the credential back in its error body (some do).
    tiny.fail_next(InjectedFailure(403, message=f"token {GOOD_TOKEN} lacks the itil role"))
    report = asyncio.run(run_sync(sessions, config_id, transport=tiny.transport(), sleep=SleepRecorder()))
    assert report.error is not None and "***" in report.error and GOOD_TOKEN not in report.error
    logging.getLogger("connectors.sync").info("request headers: {'Authorization': 'Bearer %s'}", GOOD_TOKEN)
    assert asyncio.run(run_sync(sessions, config_id, transport=tiny.transport(), sleep=SleepRecorder())).ok
    update_config(sessions, config_id, options={"queue": "noc"}, secrets={"token": GOOD_TOKEN}, actor="t")
    remove_config(sessions, config_id, actor="test")

    assert "Authorization': '***'" in caplog.text
    assert GOOD_TOKEN not in caplog.text
    workspace.engine.dispose()
    stored = b"".join(path.read_bytes() for path in workspace.root.glob("runbook-desk.sqlite3*"))
    assert b"Tiny prod" in stored  # the scan reads real content (the audit trail names the connector)
    assert GOOD_TOKEN.encode() not in stored


def test_the_filter_masks_known_values_and_authorization_headers(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("hunter2-long")
    register_secret("abc")  # too short to mask without garbling every line
    logger = logging.getLogger("connectors.anything")
    logger.addFilter(REDACTOR)
    try:
        with caplog.at_level(logging.INFO, logger="connectors.anything"):
            logger.info("login with %s", "hunter2-long")
            logger.info("Authorization: Basic dXNlcjpwYXNz")
            logger.info("proxy-authorization=Negotiate abcdef, next")
            try:
                raise ValueError("password hunter2-long refused")
            except ValueError:
                logger.exception("failed")
    finally:
        logger.removeFilter(REDACTOR)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[:3] == ["login with ***", "Authorization: ***", "proxy-authorization=***, next"]
    assert "hunter2-long" not in caplog.text
    assert "password *** refused" in caplog.text


def test_no_keychain_is_a_clear_error_and_nothing_is_stored(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession], no_keychain: keyring.backends.fail.Keyring
) -> None:
    with pytest.raises(CredentialStoreError) as raised:
        add_tiny(sessions)
    message = str(raised.value)
    assert message.startswith("Tiny prod: cannot store the secret 'token': no OS keychain is available")
    assert (
        "gnome-keyring" in message
        and "KWallet" in message
        and "never stores secrets in a plain file" in message
    )
    assert isinstance(raised.value.__cause__, keyring.errors.NoKeyringError)
    with sessions() as session:
        assert list_configs(session) == []  # the row was rolled back with the failed keychain write


def test_a_sync_without_keychain_fails_with_the_keychain_message(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    config_id = add_tiny(sessions)
    keyring.set_keyring(keyring.backends.fail.Keyring())
    report = asyncio.run(run_sync(sessions, config_id, transport=tiny.transport()))
    assert report.error is not None and "no OS keychain is available" in report.error
    assert tiny.requests == []


def test_a_locked_keychain_says_unlock(tiny: FakeTiny, sessions: sessionmaker[TenantSession]) -> None:
    keyring.set_keyring(LockedKeyring())
    with pytest.raises(CredentialStoreError, match="the OS keychain is locked; unlock it"):
        add_tiny(sessions)


def test_a_secret_is_refused_as_an_option(tiny: FakeTiny, sessions: sessionmaker[TenantSession]) -> None:
    with pytest.raises(ConfigurationError, match="'token' is a secret"):
        create_config(
            sessions,
            connector_type="tiny",
            name="Tiny prod",
            base_url=FakeTiny.base_url,
            options={"token": GOOD_TOKEN},
        )
    with pytest.raises(ConfigurationError, match="missing secret"):
        create_config(sessions, connector_type="tiny", name="Tiny prod", base_url=FakeTiny.base_url)


def test_removal_deletes_the_keychain_entries_and_is_audited(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession], memory_keyring: MemoryKeyring
) -> None:
    config_id = add_tiny(sessions)
    result = remove_config(sessions, config_id, actor="ana")
    assert result.keychain_problem is None
    assert memory_keyring.entries == {}
    with sessions() as session:
        actions = list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions == ["connector.create", "secret.stored", "connector.remove"]


def test_removal_works_even_when_the_keychain_refuses(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    config_id = add_tiny(sessions)
    keyring.set_keyring(LockedKeyring())
    result = remove_config(sessions, config_id, actor="ana")
    assert result.keychain_problem is not None and "locked" in result.keychain_problem
    with sessions() as session:
        assert list_configs(session) == []
