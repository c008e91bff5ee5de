"""What the connector wizard and the Connectors page run on worker threads: plain functions, rows out.

The queries behind the page live in :mod:`connectors.runs` and :mod:`connectors.configs`; the functions here
only open a session for them on the worker.

The wizard's test and preview (awaited on the GUI loop, :mod:`desktop.dialogs.connector_wizard.probes`)
build a connector from a :class:`ConnectorDraft` (what the analyst typed, with typed secrets only: in edit
mode :func:`draft_settings` reads the stored ones from the keychain, off the GUI thread, because a keychain
may block on an unlock prompt). Saving goes through :mod:`connectors.configs`, the same validation
and keychain handling as the CLI, plus the first sync's start date (:mod:`connectors.onboarding`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import sessionmaker

from connectors.base import ConnectorSettings
from connectors.configs import (
    ConfigRow,
    RemoveResult,
    create_config,
    remove_config,
    set_active,
    update_config,
)
from connectors.errors import ConnectorError
from connectors.onboarding import set_first_sync_start
from connectors.registry import connector_class
from connectors.runs import HISTORY_LIMIT, ConnectorOverviewRow, SyncRunRow, connector_overview, sync_history
from connectors.secrets import load_secrets
from core.store.tenancy import TenantSession


@dataclass(frozen=True)
class ConnectorDraft:
    """A connector as the wizard holds it before (or instead of) saving it."""

    connector_type: str
    name: str
    base_url: str
    auth_mode: str
    options: Mapping[str, Any]
    secrets: Mapping[str, str] = field(default_factory=dict)  # typed in this wizard; never logged
    ca_bundle: str | None = None
    sync_frequency_minutes: int = 5
    first_sync_start: datetime | None = None
    existing_id: int | None = None  # edit mode
    keychain_key: str = ""  # edit mode: where the secrets not typed again are
    stored_secret_fields: tuple[str, ...] = ()

    def __repr__(self) -> str:  # like ConnectorSettings: a secret never reaches a log through repr()
        return (
            f"ConnectorDraft(type={self.connector_type!r}, name={self.name!r}, base_url={self.base_url!r}, "
            f"auth_mode={self.auth_mode!r}, options={dict(self.options)!r}, "
            f"secrets=<{len(self.secrets)} hidden>, existing_id={self.existing_id!r})"
        )


def draft_settings(draft: ConnectorDraft) -> ConnectorSettings:
    """The settings a connector needs: typed secrets, else (edit mode) the stored ones from the keychain."""
    secrets = dict(draft.secrets)
    missing = [key for key in draft.stored_secret_fields if key not in secrets]
    if missing and draft.keychain_key:
        secrets = load_secrets(draft.name, draft.keychain_key, missing) | secrets
    return ConnectorSettings(
        name=draft.name,
        base_url=draft.base_url,
        auth_mode=draft.auth_mode,
        options=dict(draft.options),
        secrets=secrets,
        ca_bundle=draft.ca_bundle or None,
        keychain_key=draft.keychain_key,
    )


@dataclass(frozen=True, slots=True)
class SaveOutcome:
    config: ConfigRow | None
    problem: str | None = None


def save_job(sessions: sessionmaker[TenantSession], draft: ConnectorDraft, actor: str) -> SaveOutcome:
    """The wizard's Finish: save, turning a refusal we can explain (a duplicate name, a locked keychain) into
    text for the wizard's page; anything else is a bug and goes to the task's error handler."""
    try:
        return SaveOutcome(save_connector(sessions, draft, actor))
    except ConnectorError as exc:
        return SaveOutcome(None, str(exc))


def save_connector(sessions: sessionmaker[TenantSession], draft: ConnectorDraft, actor: str) -> ConfigRow:
    """Create (secrets to the keychain, audited) or update the config; a new one gets its first-sync start."""
    if draft.existing_id is None:
        row = create_config(
            sessions,
            connector_type=draft.connector_type,
            name=draft.name,
            base_url=draft.base_url,
            auth_mode=draft.auth_mode,
            options=draft.options,
            secrets=draft.secrets,
            ca_bundle=draft.ca_bundle or None,
            sync_frequency_minutes=draft.sync_frequency_minutes,
            actor=actor,
        )
        if draft.first_sync_start is not None:
            set_first_sync_start(sessions, row.id, draft.first_sync_start, actor=actor)
        return row
    spec = connector_class(draft.connector_type).spec
    # update_config merges options: every option the draft does not set is removed explicitly.
    options: dict[str, Any] = {f.key: None for f in spec.fields if not f.secret}
    options.update(draft.options)
    return update_config(
        sessions,
        draft.existing_id,
        name=draft.name,
        base_url=draft.base_url,
        auth_mode=draft.auth_mode,
        options=options,
        secrets={key: value for key, value in draft.secrets.items() if value} or None,
        ca_bundle=draft.ca_bundle or "",
        sync_frequency_minutes=draft.sync_frequency_minutes,
        actor=actor,
    )


# --- the Connectors page --------------------------------------------------------------------------------


def load_overview(sessions: sessionmaker[TenantSession]) -> tuple[ConnectorOverviewRow, ...]:
    with sessions() as session:
        return connector_overview(session)


def load_history(
    sessions: sessionmaker[TenantSession], config_id: int, limit: int = HISTORY_LIMIT
) -> tuple[SyncRunRow, ...]:
    """The config's runs, newest first."""
    with sessions() as session:
        return sync_history(session, config_id, limit)


def delete_connector(
    sessions: sessionmaker[TenantSession], config_id: int, purge_tickets: bool, actor: str
) -> RemoveResult:
    return remove_config(sessions, config_id, purge_tickets=purge_tickets, actor=actor)


def set_connector_active(
    sessions: sessionmaker[TenantSession], config_id: int, active: bool, actor: str
) -> ConfigRow:
    return set_active(sessions, config_id, active, actor=actor)
