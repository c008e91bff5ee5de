"""Rotating a connector secret: the new value is tested before it replaces the old one (issue 17).

The order is what makes a failed rotation harmless:

1. the new value is registered with the log redaction (:func:`connectors.secrets.register_secret`) before any
   request carries it, so neither a log line nor the test's error text can show it;
2. the connector's own ``check()`` runs with the new value *in memory* (the other secrets from the keychain):
   the keychain still holds the old value, so a refused value changes nothing there and a sync that
   starts meanwhile keeps working with the old one;
3. only when the test passed, one transaction records ``rotated_at`` and the ``secret.rotated`` audit row,
   writes the new value to the keychain, and commits. Should the commit fail after the keychain write, the
   old value is put back: the keychain and the audit trail never disagree about which value is in use.

A refused value is audited too (``secret.rotate_failed``, with the test's redacted message). Neither row
holds the value or any encoding of it: the connector's name, the field's name and the test's outcome only.

Rotating needs the admin role in team mode (the database refuses the ``connector_secrets`` write otherwise);
:func:`rotate_secret` says so before it sends anything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.orm import sessionmaker

from connectors.base import CheckResult, ConnectorSettings, diagnose
from connectors.configs import ConfigRow, get_config, settings_for
from connectors.errors import ConfigurationError, ConnectorError
from connectors.registry import connector_class
from connectors.secrets import load_secrets, redacted_excerpt, register_secret, store_secrets
from core.store.connector_secrets import record_rotate_failed, record_secret_rotated
from core.store.models import TeamRole, utcnow
from core.store.repository import current_actor
from core.store.team import require_role
from core.store.tenancy import TenantSession

# How the new value is tested: the connector's check with these settings. Tests may pass their own.
SecretCheck = Callable[[ConnectorSettings], Awaitable[CheckResult]]


@dataclass(frozen=True, slots=True)
class RotationResult:
    """What the rotate action tells the analyst: rotated or not, and the test's words either way."""

    connector_name: str
    field: str
    rotated: bool
    check: CheckResult
    rotated_at: datetime | None = None

    def headline(self) -> str:
        if self.rotated:
            return f"{self.connector_name}: the {self.field} was rotated; the connection test passed."
        return (
            f"{self.connector_name}: the {self.field} was not rotated, the old one stays: "
            f"{redacted_excerpt(self.check.message)}"
        )


def connector_check(connector_type: str, transport: httpx.AsyncBaseTransport | None = None) -> SecretCheck:
    """The connector's own connection test (reachability, TLS, sign-in, read access) for given settings."""

    async def check(settings: ConnectorSettings) -> CheckResult:
        try:
            connector = connector_class(connector_type).create(settings, transport=transport)
        except ConnectorError as exc:  # an unreadable CA bundle
            return diagnose(exc)
        try:
            return await connector.check()
        finally:
            await connector.close()

    return check


async def rotate_secret(
    sessions: sessionmaker[TenantSession],
    connector: str | int,
    field: str,
    new_value: str,
    *,
    check: SecretCheck | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    actor: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> RotationResult:
    """Test ``new_value`` as the ``field`` secret of ``connector`` (name or id); keep it only if it works.

    Raises :class:`~connectors.errors.ConfigurationError` for a field the connector has not stored (there is
    nothing to rotate: the wizard's Edit sets it), an empty value, or no such connector;
    :class:`~core.errors.PermissionDeniedError` for a login without the admin role. A value the test
    refuses is a result (``rotated`` False, the check's diagnosis), not an exception.
    """
    who = actor or current_actor()
    with sessions() as session:
        config = get_config(session, connector)
        require_role(session, TeamRole.ADMIN, f"rotating a secret of {config.name}")
    if not new_value:
        raise ConfigurationError(config.name, f"the new {field} is empty")
    if field not in config.secret_fields:
        stored = ", ".join(config.secret_fields) or "none"
        raise ConfigurationError(config.name, f"no stored secret {field!r} to rotate (stored: {stored})")
    register_secret(new_value)  # before any request or message can carry it
    settings = settings_for(config)
    trial = ConnectorSettings(
        name=settings.name,
        base_url=settings.base_url,
        auth_mode=settings.auth_mode,
        options=settings.options,
        secrets={**settings.secrets, field: new_value},
        ca_bundle=settings.ca_bundle,
    )
    result = await (check or connector_check(config.connector_type, transport))(trial)
    outcome = _outcome(result)
    if not result.ok:
        with sessions.begin() as session:
            record_rotate_failed(
                session,
                config_id=config.id,
                connector_name=config.name,
                field=field,
                actor=who,
                check=outcome,
            )
        return RotationResult(config.name, field, False, result)
    now = clock()
    _replace(sessions, config, field, new_value, who, now, outcome)
    return RotationResult(config.name, field, True, result, now)


def _replace(
    sessions: sessionmaker[TenantSession],
    config: ConfigRow,
    field: str,
    new_value: str,
    actor: str,
    now: datetime,
    outcome: dict[str, Any],
) -> None:
    """Record, write the keychain, commit; put the old value back if the commit fails after the write."""
    old_value = load_secrets(config.name, config.keychain_key, [field]).get(field, "")
    written = False
    try:
        with sessions.begin() as session:
            get_config(session, config.id)  # removed meanwhile: refused before the keychain is touched
            record_secret_rotated(
                session,
                config_id=config.id,
                connector_name=config.name,
                field=field,
                actor=actor,
                now=now,
                check=outcome,
            )
            session.flush()  # a refusal by the database (team mode: the role) comes before the keychain write
            store_secrets(config.name, config.keychain_key, {field: new_value})
            written = True
    except BaseException:
        if written:
            store_secrets(config.name, config.keychain_key, {field: old_value})
        raise


def _outcome(result: CheckResult) -> dict[str, Any]:
    """The test's outcome as the audit trail keeps it: redacted (the new value is registered) and cut."""
    return {"ok": result.ok, "problem": result.problem.value, "message": redacted_excerpt(result.message)}
