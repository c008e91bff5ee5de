"""When each connector secret was stored, last used and rotated, and how old it is: never its value.

The values live in the OS keychain (:mod:`connectors.secrets`); the store keeps one ``connector_secrets`` row
per connector and secret field (issue 17) so an administrator can see how old each credential is and be
reminded to rotate it. Three events write it, each on the audit trail with the connector's name and the
field's name only (the value, in any encoding, never reaches a row):

* ``secret.stored``: the wizard or ``connectors add`` put a value in the keychain (``stored_at``,
  ``stored_by``). Typing a new value in the wizard's edit mode stores it again: its age starts over.
* ``secret.used``: a sync or a connection test read it (``last_used_at``). One row per sync run, not one per
  HTTP request, so a sync every five minutes adds one UPDATE and one audit row, nothing per page.
* ``secret.rotated``: the rotate action replaced it after a connection test passed with the new value
  (``rotated_at``; :mod:`connectors.secret_lifecycle`). ``secret.rotate_failed`` records a refused attempt.

A secret's age runs from the later of ``stored_at`` and ``rotated_at``. Configs that stored their secrets
before this table existed have no row; their age is measured from the config's creation, the latest moment
the secret can have been stored without a row saying so (``SecretAge.recorded`` is False), so the reminder
reaches old installations too rather than never.

Team mode: ``connector_secrets`` is admin-write in PostgreSQL (:data:`core.store.team_schema.WRITE_ROLE`),
like the configs. Storing and rotating need the admin role anyway. Marking a secret used does not: a login
without the admin role skips the ``last_used_at`` update (checked with :func:`core.store.team.has_role`, so
the transaction is not aborted by the database's refusal) and still writes the ``secret.used`` audit row,
which any member may insert. ``last_used_at`` is therefore "last used by an administrator's desktop or the
headless scheduler", which is where syncs run (``sync_runs`` is admin-write too).

The rotation reminder is a tenant setting, :class:`SecretSettings` (``secret_rotation_days``, 90 days by
default); the health alert ``secret_age`` (:mod:`core.analytics.health_alerts`) is raised when a secret gets
older and cleared by its rotation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import select, update

from core.settings import SettingsSection, load_settings
from core.store.models import ConnectorConfig, ConnectorSecret, TeamRole
from core.store.repository import record_audit
from core.store.team import has_role
from core.store.tenancy import TenantSession

__all__ = [
    "ACTION_ROTATED",
    "ACTION_ROTATE_FAILED",
    "ACTION_STORED",
    "ACTION_USED",
    "DEFAULT_ROTATION_DAYS",
    "SecretAge",
    "SecretSettings",
    "forget_secrets",
    "record_rotate_failed",
    "record_secret_rotated",
    "record_secrets_stored",
    "record_secrets_used",
    "secret_ages",
]

ACTION_STORED = "secret.stored"
ACTION_USED = "secret.used"
ACTION_ROTATED = "secret.rotated"
ACTION_ROTATE_FAILED = "secret.rotate_failed"
ENTITY = "connector_config"  # the audit rows are about the connector; the field is in ``after``

DEFAULT_ROTATION_DAYS = 90
MAX_ROTATION_DAYS = 3650
# The key of config_json listing the stored secret fields (connectors.configs.SECRET_FIELDS): read here
# rather than imported, core does not import connectors.
_SECRET_FIELDS_KEY = "secret_fields"


@dataclass(frozen=True, slots=True)
class SecretSettings(SettingsSection):
    """The tenant's credential rotation period: a secret older than this raises a reminder."""

    SECTION: ClassVar[str] = "secrets"

    secret_rotation_days: int = DEFAULT_ROTATION_DAYS

    def __post_init__(self) -> None:
        if not 1 <= self.secret_rotation_days <= MAX_ROTATION_DAYS:
            raise ValueError(
                f"the rotation period must be between 1 and {MAX_ROTATION_DAYS} days, "
                f"got {self.secret_rotation_days}"
            )


# --- recording ---------------------------------------------------------------------------------------


def record_secrets_stored(
    session: TenantSession,
    *,
    config_id: int,
    connector_name: str,
    fields: Iterable[str],
    actor: str,
    now: datetime,
) -> None:
    """The keychain now holds new values of ``fields`` (in the caller's transaction, after the write)."""
    rows = _rows_by_field(session, config_id)
    for field in sorted(set(fields)):
        row = rows.get(field)
        if row is None:
            session.add(
                ConnectorSecret(
                    tenant_id=session.tenant_id,
                    connector_config_id=config_id,
                    field=field,
                    stored_at=now,
                    stored_by=actor,
                )
            )
        else:
            row.stored_at, row.stored_by = now, actor
        _audit(session, actor, ACTION_STORED, config_id, {"name": connector_name, "field": field})


def forget_secrets(session: TenantSession, *, config_id: int, fields: Iterable[str]) -> None:
    """The analyst cleared these fields (their keychain entries are gone): their rows go too."""
    rows = _rows_by_field(session, config_id)
    for field in set(fields):
        if field in rows:
            session.delete(rows[field])


def record_secrets_used(
    session: TenantSession,
    *,
    config_id: int,
    connector_name: str,
    fields: Sequence[str],
    via: str,
    actor: str,
    now: datetime,
    run_id: int | None = None,
) -> bool:
    """A sync (``via="sync"``, its ``run_id``) or a connection test read ``fields`` from the keychain.

    One UPDATE for all fields and one audit row. Returns whether ``last_used_at`` was written: False for a
    login without the admin role in team mode (see the module docstring), which still leaves the audit row.
    """
    if not fields:
        return False
    details: dict[str, Any] = {"name": connector_name, "fields": sorted(fields), "via": via}
    if run_id is not None:
        details["run_id"] = run_id
    _audit(session, actor, ACTION_USED, config_id, details)
    if not has_role(session, TeamRole.ADMIN):
        return False
    session.execute(
        update(ConnectorSecret)
        .where(ConnectorSecret.connector_config_id == config_id, ConnectorSecret.field.in_(fields))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return True


def record_secret_rotated(
    session: TenantSession,
    *,
    config_id: int,
    connector_name: str,
    field: str,
    actor: str,
    now: datetime,
    check: dict[str, Any] | None = None,
) -> None:
    """The keychain holds the rotated value of ``field``, which passed ``check`` (its outcome, redacted)."""
    row = _rows_by_field(session, config_id).get(field)
    if row is None:  # stored before this table existed: its first row says when it was rotated
        created = session.scalar(select(ConnectorConfig.created_at).where(ConnectorConfig.id == config_id))
        row = ConnectorSecret(
            tenant_id=session.tenant_id,
            connector_config_id=config_id,
            field=field,
            stored_at=created or now,
            stored_by="",
        )
        session.add(row)
    row.rotated_at = now
    details: dict[str, Any] = {"name": connector_name, "field": field}
    if check is not None:
        details["check"] = check
    _audit(session, actor, ACTION_ROTATED, config_id, details)


def record_rotate_failed(
    session: TenantSession,
    *,
    config_id: int,
    connector_name: str,
    field: str,
    actor: str,
    check: dict[str, Any],
) -> None:
    """A rotation was refused (the new value failed its test): the old value stays, the attempt is kept."""
    _audit(
        session,
        actor,
        ACTION_ROTATE_FAILED,
        config_id,
        {"name": connector_name, "field": field, "check": check},
    )


def _rows_by_field(session: TenantSession, config_id: int) -> dict[str, ConnectorSecret]:
    query = select(ConnectorSecret).where(ConnectorSecret.connector_config_id == config_id)
    return {row.field: row for row in session.scalars(query)}


def _audit(session: TenantSession, actor: str, action: str, config_id: int, after: dict[str, Any]) -> None:
    record_audit(session, actor=actor, action=action, entity_type=ENTITY, entity_id=config_id, after=after)


# --- ages ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecretAge:
    """One stored secret's dates and age as plain data (safe to hand to the GUI thread)."""

    config_id: int
    connector_name: str
    field: str
    changed_at: datetime  # stored or rotated, whichever is later: what the age runs from
    stored_at: datetime
    stored_by: str
    rotated_at: datetime | None
    last_used_at: datetime | None
    recorded: bool  # False: stored before Runbook Desk recorded it (age from the connector's creation)
    age_days: int
    rotation_days: int

    @property
    def due(self) -> bool:
        return self.age_days >= self.rotation_days

    def label(self) -> str:
        """``password · 97 days old, rotate due``: what the Connectors page and the CLI show."""
        rotated = self.rotated_at is not None and self.changed_at == self.rotated_at
        age = (
            f"{'rotated' if rotated else 'stored'} today"
            if self.age_days == 0
            else f"{_days(self.age_days)} old"
        )
        text = f"{self.field} · {age}"
        if not self.recorded:
            text += " (since the connector was added)"
        return f"{text}, rotate due" if self.due else text

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "age_days": self.age_days,
            "rotation_due": self.due,
            "rotation_days": self.rotation_days,
            "stored_at": self.stored_at.isoformat(),
            "stored_by": self.stored_by,
            "rotated_at": self.rotated_at.isoformat() if self.rotated_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "recorded": self.recorded,
        }


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count:,} days"


def secret_ages(
    session: TenantSession, now: datetime, *, rotation_days: int | None = None
) -> tuple[SecretAge, ...]:
    """Every stored secret of the tenant's connectors, by connector name and field.

    The secrets are those the config lists as stored (``config_json``'s ``secret_fields``): a row left for a
    field the analyst cleared since is not shown. ``rotation_days`` defaults to the tenant's setting.
    """
    days = rotation_days or load_settings(session, SecretSettings).secret_rotation_days
    rows: dict[tuple[int, str], ConnectorSecret] = {
        (row.connector_config_id, row.field): row for row in session.scalars(select(ConnectorSecret))
    }
    ages: list[SecretAge] = []
    configs = session.execute(
        select(
            ConnectorConfig.id, ConnectorConfig.name, ConnectorConfig.config_json, ConnectorConfig.created_at
        ).order_by(ConnectorConfig.name)
    ).all()
    for config_id, name, config_json, created_at in configs:
        for field in sorted((config_json or {}).get(_SECRET_FIELDS_KEY) or ()):
            row = rows.get((config_id, field))
            if row is None:
                stored_at, stored_by, rotated_at, last_used_at = created_at, "", None, None
            else:
                stored_at, stored_by = row.stored_at, row.stored_by
                rotated_at, last_used_at = row.rotated_at, row.last_used_at
            changed_at = max(stored_at, rotated_at) if rotated_at is not None else stored_at
            ages.append(
                SecretAge(
                    config_id=config_id,
                    connector_name=name,
                    field=str(field),
                    changed_at=changed_at,
                    stored_at=stored_at,
                    stored_by=stored_by,
                    rotated_at=rotated_at,
                    last_used_at=last_used_at,
                    recorded=row is not None,
                    age_days=max(0, (now - changed_at) // timedelta(days=1)),
                    rotation_days=days,
                )
            )
    return tuple(ages)
