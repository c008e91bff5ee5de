"""Saving a tenant's settings off the GUI thread: a small write, but a long import holding the SQLite write
lock must not freeze the dialog that saves it."""

from __future__ import annotations

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
