"""Issue 17, credential rotation (core side): each connector secret's stored / used / rotated dates, its age,
the tenant's rotation period and the health alert that reminds of it. Real SQLite; no keychain is needed
here (the values are not the store's business: :mod:`tests.connectors.test_secret_rotation` covers them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.analytics.health_alerts import RULE_TITLES, AlertChanges, AlertRule, evaluate_alerts
from core.settings import load_settings, save_settings
from core.store.connector_secrets import (
    DEFAULT_ROTATION_DAYS,
    SecretAge,
    SecretSettings,
    forget_secrets,
    record_secret_rotated,
    record_secrets_stored,
    record_secrets_used,
    secret_ages,
)
from core.store.models import AuditEvent, ConnectorConfig, ConnectorSecret
from core.store.tenancy import TenantSession

STORED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def add_config(
    sessions: sessionmaker[TenantSession],
    name: str = "prod",
    fields: tuple[str, ...] = ("password",),
    *,
    created: datetime = STORED,
    record: bool = True,
) -> int:
    """A config whose ``fields`` are in the keychain (as connectors.configs keeps it), stored ``created``."""
    with sessions.begin() as session:
        config = ConnectorConfig(
            connector_type="servicenow",
            name=name,
            config_json={"secret_fields": sorted(fields), "keychain_key": f"default/{name}"},
            created_at=created,
        )
        session.add(config)
        session.flush()
        if record:
            record_secrets_stored(
                session, config_id=config.id, connector_name=name, fields=fields, actor="ana", now=created
            )
        return config.id


def ages(sessions: sessionmaker[TenantSession], now: datetime) -> list[SecretAge]:
    with sessions() as session:
        return list(secret_ages(session, now))


def evaluate(sessions: sessionmaker[TenantSession], now: datetime) -> AlertChanges:
    with sessions.begin() as session:
        return evaluate_alerts(session, now)


def audit(
    sessions: sessionmaker[TenantSession], prefix: str = "secret."
) -> list[tuple[str, dict[str, object]]]:
    with sessions() as session:
        return [
            (event.action, dict(event.after or {}))
            for event in session.scalars(
                select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.id)
            )
        ]


def test_storing_records_when_and_who_and_audits_names_only(sessions: sessionmaker[TenantSession]) -> None:
    config_id = add_config(sessions, fields=("password", "client_secret"))
    (client_secret, password) = ages(sessions, STORED + timedelta(hours=3))
    assert (password.field, password.stored_at, password.stored_by, password.recorded) == (
        "password",
        STORED,
        "ana",
        True,
    )
    assert (password.age_days, password.due, password.label()) == (0, False, "password · stored today")
    assert client_secret.field == "client_secret"
    assert audit(sessions) == [
        ("secret.stored", {"name": "prod", "field": "client_secret"}),
        ("secret.stored", {"name": "prod", "field": "password"}),
    ]
    with sessions() as session:
        assert {(r.connector_config_id, r.field) for r in session.scalars(select(ConnectorSecret))} == {
            (config_id, "password"),
            (config_id, "client_secret"),
        }


def test_the_age_label_says_when_a_rotation_is_due(sessions: sessionmaker[TenantSession]) -> None:
    add_config(sessions)
    assert ages(sessions, STORED + timedelta(days=1))[0].label() == "password · 1 day old"
    (young,) = ages(sessions, STORED + timedelta(days=89, hours=23))
    assert (young.age_days, young.due) == (89, False)
    (on_the_day,) = ages(sessions, STORED + timedelta(days=90))
    assert (on_the_day.age_days, on_the_day.due) == (90, True)
    (old,) = ages(sessions, STORED + timedelta(days=97, hours=5))
    assert (old.age_days, old.rotation_days, old.due) == (97, DEFAULT_ROTATION_DAYS, True)
    assert old.label() == "password · 97 days old, rotate due"
    assert old.as_dict()["rotation_due"] is True


def test_a_reminder_is_raised_after_the_period_and_cleared_by_the_rotation(
    sessions: sessionmaker[TenantSession],
) -> None:
    config_id = add_config(sessions)
    assert evaluate(sessions, STORED + timedelta(days=89)).raised == ()

    day_97 = STORED + timedelta(days=97)
    (raised,) = evaluate(sessions, day_97).raised
    assert (raised.rule, raised.subject, raised.value, raised.threshold) == (
        AlertRule.SECRET_AGE,
        f"connector:{config_id}:secret:password",
        97.0,
        90.0,
    )
    assert raised.message == "The password of connector “prod” is 97 days old (rotate every 90 days)."
    assert raised.title == RULE_TITLES[AlertRule.SECRET_AGE]
    later = evaluate(sessions, day_97 + timedelta(days=2))  # still true: refreshed, not raised again
    assert later.raised == () and [a.value for a in later.active] == [99.0]

    rotated_at = day_97 + timedelta(days=3)
    with sessions.begin() as session:
        record_secret_rotated(
            session, config_id=config_id, connector_name="prod", field="password", actor="ana", now=rotated_at
        )
    changes = evaluate(sessions, rotated_at + timedelta(minutes=1))
    assert [a.rule for a in changes.cleared] == [AlertRule.SECRET_AGE] and changes.active == ()
    assert ages(sessions, rotated_at + timedelta(hours=1))[0].label() == "password · rotated today"
    (age,) = ages(sessions, rotated_at + timedelta(days=10))
    assert (age.age_days, age.changed_at, age.rotated_at, age.stored_at) == (
        10,
        rotated_at,
        rotated_at,
        STORED,
    )
    assert audit(sessions)[-1] == ("secret.rotated", {"name": "prod", "field": "password"})
    assert [action for action, _ in audit(sessions, "alert.")] == ["alert.raised", "alert.cleared"]


def test_the_rotation_period_is_a_tenant_setting(sessions: sessionmaker[TenantSession]) -> None:
    add_config(sessions)
    with sessions() as session:
        assert load_settings(session, SecretSettings) == SecretSettings(secret_rotation_days=90)
    with sessions.begin() as session:
        save_settings(session, SecretSettings(secret_rotation_days=30), actor="ana")
    (age,) = ages(sessions, STORED + timedelta(days=31))
    assert (age.rotation_days, age.due) == (30, True)
    assert [a.rule for a in evaluate(sessions, STORED + timedelta(days=31)).raised] == [AlertRule.SECRET_AGE]
    assert audit(sessions, "settings.secrets") == [("settings.secrets", {"secret_rotation_days": 30})]
    for wrong in (0, 4000):
        with pytest.raises(ValueError, match="rotation period must be between 1 and 3650 days"):
            SecretSettings(secret_rotation_days=wrong)


def test_a_use_updates_last_used_once_and_audits_one_row(sessions: sessionmaker[TenantSession]) -> None:
    config_id = add_config(sessions, fields=("password", "client_secret"))
    used_at = STORED + timedelta(days=2)
    with sessions.begin() as session:
        written = record_secrets_used(
            session,
            config_id=config_id,
            connector_name="prod",
            fields=("password", "client_secret"),
            via="sync",
            actor="scheduler",
            now=used_at,
            run_id=7,
        )
        assert written  # SQLite: the one analyst is the admin
        assert not record_secrets_used(
            session,
            config_id=config_id,
            connector_name="prod",
            fields=(),
            via="check",
            actor="a",
            now=used_at,
        )
    assert {age.field: age.last_used_at for age in ages(sessions, used_at)} == {
        "password": used_at,
        "client_secret": used_at,
    }
    assert audit(sessions, "secret.used") == [
        ("secret.used", {"name": "prod", "fields": ["client_secret", "password"], "via": "sync", "run_id": 7})
    ]


def test_secrets_stored_before_the_table_existed_age_from_the_config(
    sessions: sessionmaker[TenantSession],
) -> None:
    """An upgraded workspace has no rows: the reminder still comes, counted from the connector's creation."""
    config_id = add_config(sessions, "legacy", record=False)
    (age,) = ages(sessions, STORED + timedelta(days=120))
    assert (age.recorded, age.age_days, age.stored_by) == (False, 120, "")
    assert age.label() == "password · 120 days old (since the connector was added), rotate due"
    assert [a.subject for a in evaluate(sessions, STORED + timedelta(days=120)).raised] == [
        f"connector:{config_id}:secret:password"
    ]
    with sessions.begin() as session:  # its first rotation makes its row
        record_secret_rotated(
            session,
            config_id=config_id,
            connector_name="legacy",
            field="password",
            actor="ana",
            now=STORED + timedelta(days=121),
        )
    (age,) = ages(sessions, STORED + timedelta(days=121))
    assert (age.recorded, age.age_days, age.stored_at) == (True, 0, STORED)


def test_a_cleared_field_is_forgotten_and_a_new_value_restarts_the_age(
    sessions: sessionmaker[TenantSession],
) -> None:
    config_id = add_config(sessions, fields=("password", "client_secret"))
    with sessions.begin() as session:
        forget_secrets(session, config_id=config_id, fields=["client_secret"])
        config = session.get(ConnectorConfig, config_id)
        assert config is not None
        config.config_json = {**config.config_json, "secret_fields": ["password"]}
        record_secrets_stored(
            session,
            config_id=config_id,
            connector_name="prod",
            fields=["password"],
            actor="bob",
            now=STORED + timedelta(days=50),
        )
    (age,) = ages(sessions, STORED + timedelta(days=100))
    assert (age.field, age.age_days, age.stored_by, age.due) == ("password", 50, "bob", False)
    with sessions() as session:
        assert session.scalars(select(ConnectorSecret.field)).all() == ["password"]


def test_removing_the_connector_removes_its_secret_rows(sessions: sessionmaker[TenantSession]) -> None:
    config_id = add_config(sessions)
    with sessions.begin() as session:
        session.delete(session.get(ConnectorConfig, config_id))
    with sessions() as session:
        assert session.scalars(select(ConnectorSecret)).all() == []
    assert ages(sessions, STORED) == []
