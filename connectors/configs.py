"""Connector configs in the store: create, list, get, update, remove; their secrets go to the OS keychain.

``connector_configs.config_json`` holds what is safe in a database file that gets copied, backed up and
attached to support tickets: the base URL, the auth mode, the non-secret options, the CA bundle path and the
*key* of the config's keychain entries (:mod:`connectors.secrets`), plus the names of the secret fields
stored there. Secret values never reach it: an option whose field is marked secret is refused.

Creation, changes, removal and every connection test (:func:`check_config`, :func:`record_check`) are
audited (field names only for secrets, never values; a test's message redacted). Removal keeps the config's
sync runs (their config id nulled, the name they ran under kept). Functions hand back frozen
:class:`ConfigRow` objects, never ORM instances, so rows can cross threads (the scheduler, Qt).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from connectors.base import (
    CheckResult,
    ConfigField,
    ConnectorSettings,
    ConnectorSpec,
    FieldType,
    diagnose,
)
from connectors.errors import ConfigurationError, ConnectorError
from connectors.oauth_consent.connector import CONSENT_AUTH_MODE, ConsentCapable, revoke_stored_tokens
from connectors.registry import connector_class
from connectors.secrets import (
    delete_secrets,
    load_secrets,
    new_keychain_key,
    redacted_excerpt,
    store_secrets,
)
from core.store.connector_secrets import forget_secrets, record_secrets_stored, record_secrets_used
from core.store.models import BASE_URL_KEY, ConnectorConfig, SyncRun, Tenant, Ticket, utcnow
from core.store.repository import current_actor, record_audit
from core.store.tenancy import TenantSession
from core.store.tickets import instance_of, move_to_instance

# Keys of config_json besides the options. The base URL's is the store's: it names the records' instance.
BASE_URL = BASE_URL_KEY
AUTH_MODE = "auth_mode"
OPTIONS = "options"
CA_BUNDLE = "ca_bundle"
KEYCHAIN_KEY = "keychain_key"
SECRET_FIELDS = "secret_fields"

DEFAULT_FREQUENCY_MINUTES = 5
# Keys naming a ConnectorSettings attribute rather than an option, should a spec declare them as fields.
_SETTINGS_KEYS = frozenset({BASE_URL, CA_BUNDLE})


class ConfigNotFoundError(ConfigurationError):
    pass


@dataclass(frozen=True, slots=True)
class ConfigRow:
    id: int
    connector_type: str
    name: str
    base_url: str
    auth_mode: str
    options: Mapping[str, Any]
    ca_bundle: str | None
    keychain_key: str
    secret_fields: tuple[str, ...]
    is_active: bool
    sync_frequency_minutes: int
    last_sync_at: datetime | None
    last_successful_sync_at: datetime | None
    consecutive_failures: int

    def public_dict(self) -> dict[str, Any]:
        """For ``--json`` and the audit trail: no secret, just which secret fields are set."""
        return {
            "id": self.id,
            "type": self.connector_type,
            "name": self.name,
            "base_url": self.base_url,
            "auth_mode": self.auth_mode,
            "options": dict(self.options),
            "ca_bundle": self.ca_bundle,
            "secret_fields": list(self.secret_fields),
            "is_active": self.is_active,
            "sync_frequency_minutes": self.sync_frequency_minutes,
            "last_sync_at": self.last_sync_at.isoformat() if self.last_sync_at else None,
            "last_successful_sync_at": (
                self.last_successful_sync_at.isoformat() if self.last_successful_sync_at else None
            ),
            "consecutive_failures": self.consecutive_failures,
        }


def config_row(config: ConnectorConfig) -> ConfigRow:
    data = config.config_json or {}
    return ConfigRow(
        id=config.id,
        connector_type=config.connector_type,
        name=config.name,
        base_url=str(data.get(BASE_URL, "")),
        auth_mode=str(data.get(AUTH_MODE, "")),
        options=dict(data.get(OPTIONS) or {}),
        ca_bundle=data.get(CA_BUNDLE),
        keychain_key=str(data.get(KEYCHAIN_KEY, "")),
        secret_fields=tuple(data.get(SECRET_FIELDS) or ()),
        is_active=config.is_active,
        sync_frequency_minutes=config.sync_frequency_minutes,
        last_sync_at=config.last_sync_at,
        last_successful_sync_at=config.last_successful_sync_at,
        consecutive_failures=config.consecutive_failures,
    )


# --- validation ----------------------------------------------------------------------------------------


def resolve_auth_mode(spec: ConnectorSpec, name: str, auth_mode: str | None) -> str:
    known = [mode.key for mode in spec.auth_modes]
    if auth_mode is None:
        if not known:
            return ""
        return known[0]
    if auth_mode not in known:
        raise ConfigurationError(
            name, f"unknown auth mode {auth_mode!r} for {spec.type} (known: {', '.join(known)})"
        )
    return auth_mode


def coerce_option(name: str, config_field: ConfigField, value: Any) -> Any:
    """Options typed on the command line arrive as text; store them as the field's type."""
    if value is None or value == "":
        return None
    if config_field.type is FieldType.INTEGER and not isinstance(value, int):
        try:
            return int(str(value).strip())
        except ValueError:
            raise ConfigurationError(name, f"option {config_field.key!r} must be a whole number") from None
    if config_field.type is FieldType.BOOLEAN and not isinstance(value, bool):
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(name, f"option {config_field.key!r} must be true or false")
    if config_field.type is FieldType.CHOICE and config_field.choices:
        allowed = [choice for choice, _label in config_field.choices]
        if str(value) not in allowed:
            raise ConfigurationError(
                name, f"option {config_field.key!r} must be one of {', '.join(allowed)} (got {value!r})"
            )
        return str(value)
    return value


def validate_options(
    spec: ConnectorSpec, name: str, auth_mode: str, options: Mapping[str, Any]
) -> dict[str, Any]:
    """Known, non-secret, typed options, with the spec's defaults filled in; required ones present."""
    known = {config_field.key: config_field for config_field in spec.fields}
    cleaned: dict[str, Any] = {}
    for key, value in options.items():
        config_field = known.get(key)
        if config_field is None:
            names = ", ".join(sorted(k for k, f in known.items() if not f.secret)) or "none"
            raise ConfigurationError(name, f"unknown option {key!r} for {spec.type} (known: {names})")
        if config_field.secret:
            raise ConfigurationError(
                name,
                f"{key!r} is a secret: it is read from a prompt or RUNBOOK_DESK_SECRET_{key.upper()}, "
                "never from an option, so it never lands in the database or the shell history",
            )
        cleaned[key] = coerce_option(name, config_field, value)
    for config_field in spec.fields:
        if (
            config_field.secret
            or config_field.key in _SETTINGS_KEYS
            or not config_field.applies_to(auth_mode)
        ):
            continue
        if cleaned.get(config_field.key) in (None, "") and config_field.default is not None:
            cleaned[config_field.key] = config_field.default
        if config_field.required and cleaned.get(config_field.key) in (None, ""):
            raise ConfigurationError(
                name, f"the option {config_field.key!r} ({config_field.label}) is required"
            )
    return {key: value for key, value in cleaned.items() if value is not None}


def required_secrets(spec: ConnectorSpec, auth_mode: str) -> tuple[str, ...]:
    return tuple(f.key for f in spec.fields if f.secret and f.required and f.applies_to(auth_mode))


def _instance(name: str, base_url: str) -> str:
    """The instance a base URL reaches (core.store.tickets.instance_of), as a configuration error if none."""
    try:
        return instance_of(base_url)
    except ValueError as exc:
        raise ConfigurationError(name, f"the URL names no instance: {exc}") from None


def _check_base_url(name: str, base_url: str) -> str:
    base_url = base_url.strip()
    if not base_url.startswith(("https://", "http://")):
        raise ConfigurationError(name, f"the URL must start with https:// (got {base_url!r})")
    return base_url.rstrip("/")


# --- CRUD ----------------------------------------------------------------------------------------------


def create_config(
    sessions: sessionmaker[TenantSession],
    *,
    connector_type: str,
    name: str,
    base_url: str,
    auth_mode: str | None = None,
    options: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    ca_bundle: str | None = None,
    sync_frequency_minutes: int = DEFAULT_FREQUENCY_MINUTES,
    is_active: bool = True,
    actor: str | None = None,
) -> ConfigRow:
    """Validate, store the secrets in the keychain, then commit the row (both or neither).

    The row is flushed first (a duplicate name fails before anything touches the keychain); if the
    keychain refuses, the transaction rolls back; if the commit fails after the keychain write, the entries
    are deleted again.
    """
    spec = connector_class(connector_type).spec
    name = name.strip()
    if not name:
        raise ConfigurationError(connector_type, "the connector needs a name")
    mode = resolve_auth_mode(spec, name, auth_mode)
    cleaned = validate_options(spec, name, mode, options or {})
    # A spec may list the CA bundle as a field (the wizard's file picker); it is a setting, not an option.
    ca_bundle = cleaned.pop(CA_BUNDLE, None) or ca_bundle
    cleaned.pop(BASE_URL, None)
    secret_values = {k: v for k, v in (secrets or {}).items() if v}
    allowed_secrets = set(spec.secret_keys(mode))
    unknown = sorted(set(secret_values) - allowed_secrets)
    if unknown:
        raise ConfigurationError(
            name, f"{', '.join(unknown)}: not a secret of {spec.type} with auth {mode!r}"
        )
    missing = [key for key in required_secrets(spec, mode) if key not in secret_values]
    if missing:
        raise ConfigurationError(name, f"missing secret(s): {', '.join(missing)}")
    if sync_frequency_minutes < 1:
        raise ConfigurationError(name, "the sync frequency must be at least 1 minute")
    url = _check_base_url(name, base_url)
    _instance(name, url)
    stored = False
    keychain_key = ""
    try:
        with sessions.begin() as session:
            if session.scalar(select(ConnectorConfig.id).where(ConnectorConfig.name == name)) is not None:
                raise ConfigurationError(name, "a connector with this name exists already")
            keychain_key = new_keychain_key(_tenant_slug(session))
            config = ConnectorConfig(
                tenant_id=session.tenant_id,
                connector_type=spec.type,
                name=name,
                config_json={
                    BASE_URL: url,
                    AUTH_MODE: mode,
                    OPTIONS: cleaned,
                    CA_BUNDLE: ca_bundle,
                    KEYCHAIN_KEY: keychain_key,
                    SECRET_FIELDS: sorted(secret_values),
                },
                is_active=is_active,
                sync_frequency_minutes=sync_frequency_minutes,
            )
            session.add(config)
            session.flush()
            store_secrets(name, keychain_key, secret_values)
            stored = True
            row = config_row(config)
            record_audit(
                session,
                actor=actor or current_actor(),
                action="connector.create",
                entity_type="connector_config",
                entity_id=config.id,
                after=row.public_dict(),
            )
            # When and by whom, never the value: the age behind the rotation reminder (issue 17).
            record_secrets_stored(
                session,
                config_id=config.id,
                connector_name=name,
                fields=sorted(secret_values),
                actor=actor or current_actor(),
                now=utcnow(),
            )
    except IntegrityError as exc:
        if stored:
            delete_secrets(name, keychain_key, secret_values)
        raise ConfigurationError(name, "a connector with this name exists already") from exc
    return row


def list_configs(session: TenantSession, *, active_only: bool = False) -> list[ConfigRow]:
    query = select(ConnectorConfig).order_by(ConnectorConfig.name)
    if active_only:
        query = query.where(ConnectorConfig.is_active.is_(True))
    return [config_row(c) for c in session.scalars(query)]


def get_config(session: TenantSession, name_or_id: str | int) -> ConfigRow:
    return config_row(_load(session, name_or_id))


def _load(session: TenantSession, name_or_id: str | int) -> ConnectorConfig:
    if isinstance(name_or_id, int):
        config = session.get(ConnectorConfig, name_or_id)
    else:
        config = session.scalar(select(ConnectorConfig).where(ConnectorConfig.name == name_or_id))
    # session.get bypasses nothing here: the tenant criteria apply, and a row of another tenant is refused.
    if config is None or config.tenant_id != session.tenant_id:
        raise ConfigNotFoundError(str(name_or_id), "no such connector (see `runbook-desk connectors list`)")
    return config


def update_config(
    sessions: sessionmaker[TenantSession],
    name_or_id: str | int,
    *,
    name: str | None = None,
    base_url: str | None = None,
    auth_mode: str | None = None,
    options: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    ca_bundle: str | None = None,
    is_active: bool | None = None,
    sync_frequency_minutes: int | None = None,
    actor: str | None = None,
) -> ConfigRow:
    """Change what is given; ``options`` are merged (a None value removes one); secrets are replaced."""
    with sessions.begin() as session:
        config = _load(session, name_or_id)
        before = config_row(config)
        spec = connector_class(config.connector_type).spec
        new_name = name.strip() if name is not None else before.name
        mode = resolve_auth_mode(spec, new_name, auth_mode) if auth_mode is not None else before.auth_mode
        merged = dict(before.options)
        for key, value in (options or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        cleaned = validate_options(spec, new_name, mode, merged)
        secret_fields = set(before.secret_fields)
        if secrets:
            unknown = sorted(set(secrets) - set(spec.secret_keys()))
            if unknown:
                raise ConfigurationError(new_name, f"{', '.join(unknown)}: not a secret of {spec.type}")
            store_secrets(new_name, before.keychain_key, secrets)
            secret_fields |= {k for k, v in secrets.items() if v}
            secret_fields -= {k for k, v in secrets.items() if not v}
            record_secrets_stored(
                session,
                config_id=config.id,
                connector_name=new_name,
                fields=[k for k, v in secrets.items() if v],
                actor=actor or current_actor(),
                now=utcnow(),
            )
            forget_secrets(session, config_id=config.id, fields=[k for k, v in secrets.items() if not v])
        config.name = new_name
        if sync_frequency_minutes is not None:
            if sync_frequency_minutes < 1:
                raise ConfigurationError(new_name, "the sync frequency must be at least 1 minute")
            config.sync_frequency_minutes = sync_frequency_minutes
        if is_active is not None:
            config.is_active = is_active
        new_url = _check_base_url(new_name, base_url) if base_url is not None else before.base_url
        moved = 0
        if _instance(new_name, new_url) != _instance(new_name, before.base_url):
            # Same connector, new address: its tickets follow it rather than being read again as twins.
            moved = move_to_instance(session, config.id, _instance(new_name, new_url))
        config.config_json = {
            BASE_URL: new_url,
            AUTH_MODE: mode,
            OPTIONS: cleaned,
            CA_BUNDLE: ca_bundle if ca_bundle is not None else before.ca_bundle,
            KEYCHAIN_KEY: before.keychain_key,
            SECRET_FIELDS: sorted(secret_fields),
        }
        session.flush()
        after = config_row(config)
        record_audit(
            session,
            actor=actor or current_actor(),
            action="connector.update",
            entity_type="connector_config",
            entity_id=config.id,
            before=before.public_dict(),
            after=after.public_dict()
            | {"secrets_changed": sorted(secrets or {})}
            | ({"tickets_moved": moved} if moved else {}),
        )
    return after


def set_active(
    sessions: sessionmaker[TenantSession], name_or_id: str | int, active: bool, *, actor: str | None = None
) -> ConfigRow:
    """Pause (False) or resume (True) scheduled syncs; "sync now" works either way."""
    return update_config(sessions, name_or_id, is_active=active, actor=actor)


@dataclass(frozen=True, slots=True)
class RemoveResult:
    config: ConfigRow
    tickets_purged: int
    tickets_kept: int
    keychain_problem: str | None  # set when the row is gone but its keychain entries could not be deleted
    sync_runs_kept: int = 0  # its run history, kept under the config's name
    revoke_problem: str | None = None  # a browser sign-in whose tokens the provider did not revoke


def remove_config(
    sessions: sessionmaker[TenantSession],
    name_or_id: str | int,
    *,
    purge_tickets: bool = False,
    actor: str | None = None,
    revoke_transport: httpx.BaseTransport | None = None,
) -> RemoveResult:
    """Delete the config and its cursor, optionally the tickets it brought; its sync runs stay.

    Kept tickets and the runs are detached explicitly (the database's ON DELETE SET NULL would do it too);
    each run still names the connector it ran for (``sync_runs.connector_name``). The keychain
    entries are deleted after the commit: a keychain that refuses must not stop the analyst from removing a
    connector, so that problem is returned (and audited) instead of raised.
    """
    with sessions.begin() as session:
        config = _load(session, name_or_id)
        row = config_row(config)
        owned = Ticket.connector_config_id == config.id
        purged = kept = 0
        if purge_tickets:
            purged = _rowcount(session.execute(delete(Ticket).where(owned)))
        else:
            kept = _rowcount(session.execute(update(Ticket).where(owned).values(connector_config_id=None)))
        runs_kept = _rowcount(
            session.execute(
                update(SyncRun)
                .where(SyncRun.connector_config_id == config.id)
                .values(connector_config_id=None)
                .execution_options(synchronize_session=False)
            )
        )
        session.delete(config)
        session.flush()
        record_audit(
            session,
            actor=actor or current_actor(),
            action="connector.remove",
            entity_type="connector_config",
            entity_id=row.id,
            before=row.public_dict(),
            after={"tickets_purged": purged, "tickets_kept": kept, "sync_runs_kept": runs_kept},
        )
    # A browser sign-in's refresh token is revoked at the provider before its keychain entry goes (after the
    # commit, like the keychain: an unreachable provider must not stop the removal; it is reported instead).
    revoke_problem = _revoke_consent(row, revoke_transport)
    if revoke_problem is not None:
        with sessions.begin() as session:
            record_audit(
                session,
                actor=actor or current_actor(),
                action="connector.remove.revoke_failed",
                entity_type="connector_config",
                entity_id=row.id,
                after={"problem": redacted_excerpt(revoke_problem)},
            )
    problem: str | None = None
    try:
        delete_secrets(row.name, row.keychain_key, row.secret_fields)
    except ConnectorError as exc:
        problem = str(exc)
        with sessions.begin() as session:
            record_audit(
                session,
                actor=actor or current_actor(),
                action="connector.remove.keychain_failed",
                entity_type="connector_config",
                entity_id=row.id,
                after={"problem": problem, "keychain_key": row.keychain_key},
            )
    return RemoveResult(row, purged, kept, problem, runs_kept, revoke_problem)


def _revoke_consent(row: ConfigRow, transport: httpx.BaseTransport | None) -> str | None:
    """Revoke a browser sign-in's tokens where the provider can (None: done, or nothing to do)."""
    if row.auth_mode != CONSENT_AUTH_MODE or not row.keychain_key:
        return None
    connector = connector_class(row.connector_type)
    if not hasattr(connector, "consent_provider"):
        return None
    capable: ConsentCapable = connector  # type: ignore[assignment]  # checked just above
    try:
        settings = settings_for(row)
    except ConnectorError as exc:
        return f"not revoked: {exc}"
    return revoke_stored_tokens(capable, settings, transport=transport)


async def check_config(
    sessions: sessionmaker[TenantSession],
    config: ConfigRow,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    actor: str | None = None,
) -> CheckResult:
    """The stored connector's connection test (reachability, TLS, sign-in, read permission), audited.

    A test that cannot start (a locked keychain, an unreadable CA bundle) is a result too, and audited as
    one; a cancelled test is audited as cancelled before the cancellation goes on.
    """
    result: CheckResult | None = None
    loaded: list[str] = []  # the secret fields read from the keychain for this test (issue 17: "used")
    try:
        result = await _check(config, transport, loaded)
        return result
    finally:
        record_check(
            sessions,
            connector_type=config.connector_type,
            name=config.name,
            base_url=config.base_url,
            result=result,
            config_id=config.id,
            actor=actor,
        )
        if loaded:
            with sessions.begin() as session:
                record_secrets_used(
                    session,
                    config_id=config.id,
                    connector_name=config.name,
                    fields=loaded,
                    via="check",
                    actor=actor or current_actor(),
                    now=utcnow(),
                )


async def _check(
    config: ConfigRow, transport: httpx.AsyncBaseTransport | None, loaded: list[str] | None = None
) -> CheckResult:
    try:
        settings = settings_for(config)
        if loaded is not None:
            loaded.extend(settings.secrets)
        connector = connector_class(config.connector_type).create(settings, transport=transport)
    except ConnectorError as exc:
        return diagnose(exc)
    try:
        return await connector.check()
    finally:
        await connector.close()


def record_check(
    sessions: sessionmaker[TenantSession],
    *,
    connector_type: str,
    name: str,
    base_url: str,
    result: CheckResult | None,
    config_id: int | None = None,
    actor: str | None = None,
) -> None:
    """Audit one connection test: who ran it, of which connector (``config_id`` None: a draft not saved
    yet, the wizard's), and its outcome (None: it did not finish). The message is redacted and cut."""
    outcome: dict[str, Any] = {"ok": False, "problem": "cancelled", "message": ""}
    if result is not None:
        outcome = {
            "ok": result.ok,
            "problem": result.problem.value,
            "message": redacted_excerpt(result.message),
        }
        if result.write is not None:  # may it create incidents? The Alerts page offers none found read-only
            outcome["write"] = result.write.access.value
    with sessions.begin() as session:
        record_audit(
            session,
            actor=actor or current_actor(),
            action="connector.check",
            entity_type="connector_config",
            entity_id=config_id,
            after={"name": name, "type": connector_type, "base_url": base_url} | outcome,
        )


def settings_for(config: ConfigRow) -> ConnectorSettings:
    """The connector's settings with its secrets loaded from the keychain (and registered for redaction)."""
    spec = connector_class(config.connector_type).spec
    wanted = sorted(set(config.secret_fields) | set(spec.secret_keys(config.auth_mode)))
    secrets = load_secrets(config.name, config.keychain_key, wanted) if config.keychain_key else {}
    return ConnectorSettings(
        name=config.name,
        base_url=config.base_url,
        auth_mode=config.auth_mode,
        options=dict(config.options),
        secrets=secrets,
        ca_bundle=config.ca_bundle,
        keychain_key=config.keychain_key,
    )


def _rowcount(result: Result[Any]) -> int:
    """Rows a bulk DELETE / UPDATE touched: Session.execute returns a CursorResult for DML, typed Result."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"expected a CursorResult, got {type(result).__name__}")
    return result.rowcount


def _tenant_slug(session: TenantSession) -> str:
    tenant = session.get(Tenant, session.tenant_id)
    return tenant.slug if tenant is not None else str(session.tenant_id)
