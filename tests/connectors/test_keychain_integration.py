"""The real OS keychain (Secret Service via gnome-keyring), as CI runs it; skipped unless asked for.

CI (``.ci/run``) starts a private D-Bus session with an unlocked gnome-keyring and sets
``RUNBOOK_DESK_KEYCHAIN_TESTS=1``. Locally: ``make test-keychain``.
"""

from __future__ import annotations

import os
import uuid

import keyring
import pytest
from sqlalchemy.orm import sessionmaker

from connectors.configs import create_config, get_config, remove_config, settings_for
from connectors.secrets import (
    SERVICE_NAME,
    delete_secrets,
    keychain_backend_name,
    load_secrets,
    store_secrets,
)
from core.store.tenancy import TenantSession
from tests.connectors.tiny_connector import FakeTiny

pytestmark = [
    pytest.mark.keychain,
    pytest.mark.skipif(
        os.environ.get("RUNBOOK_DESK_KEYCHAIN_TESTS") != "1",
        reason="needs an unlocked Secret Service: set RUNBOOK_DESK_KEYCHAIN_TESTS=1 (CI does, see .ci/run)",
    ),
]


@pytest.fixture
def real_keychain() -> keyring.backend.KeyringBackend:
    """The Secret Service backend (conftest's autouse fixture puts the memory one back afterwards)."""
    from keyring.backends import SecretService

    backend = SecretService.Keyring()
    keyring.set_keyring(backend)
    return backend


def test_the_backend_is_secret_service(real_keychain: keyring.backend.KeyringBackend) -> None:
    assert keychain_backend_name() == "SecretService.Keyring"


def test_set_get_delete_round_trip(real_keychain: keyring.backend.KeyringBackend) -> None:
    key = f"ci/{uuid.uuid4().hex}"
    secret = f"pw-{uuid.uuid4().hex}"
    store_secrets("ci", key, {"password": secret})
    try:
        assert real_keychain.get_password(SERVICE_NAME, f"{key}/password") == secret
        assert load_secrets("ci", key, ["password", "absent"]) == {"password": secret}
    finally:
        delete_secrets("ci", key, ["password"])
    assert load_secrets("ci", key, ["password"]) == {}


def test_a_connector_config_keeps_its_secret_in_the_keychain(
    real_keychain: keyring.backend.KeyringBackend, tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    row = create_config(
        sessions,
        connector_type="tiny",
        name="ci",
        base_url=tiny.base_url,
        secrets={"token": token},
        actor="ci",
    )
    try:
        with sessions() as session:
            assert settings_for(get_config(session, row.id)).secrets == {"token": token}
    finally:
        result = remove_config(sessions, row.id, actor="ci")
    assert result.keychain_problem is None
    assert real_keychain.get_password(SERVICE_NAME, f"{row.keychain_key}/token") is None
