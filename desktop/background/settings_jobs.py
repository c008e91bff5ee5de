"""Saving a tenant's settings off the GUI thread: a small write, but a long import holding the SQLite write
lock must not freeze the dialog that saves it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy.orm import sessionmaker

from core.settings import SettingsSection, save_settings
from core.store.tenancy import TenantSession

S = TypeVar("S", bound=SettingsSection)


def save_tenant_settings(sessions: sessionmaker[TenantSession], value: S, actor: str | None) -> S:
    """Store ``value`` (audited when ``actor`` is given); returns it for the dialog to hand on."""
    with sessions.begin() as session:
        save_settings(session, value, actor=actor)
    return value


def save_tenant_sections(
    sessions: sessionmaker[TenantSession], values: Sequence[SettingsSection], actor: str | None
) -> tuple[SettingsSection, ...]:
    """Store several sections in one transaction (each audited): the dialog's Save is all or nothing."""
    with sessions.begin() as session:
        for value in values:
            save_settings(session, value, actor=actor)
    return tuple(values)
