"""Tenant settings: one section per concern, older workspaces' flat keys still read, unknown keys kept."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from core.settings import AlertSettings, GapSettings, Thresholds, load_settings, save_settings
from core.store.models import AuditEvent, Tenant
from core.store.tenancy import TenantSession


def stored(sessions: sessionmaker[TenantSession]) -> dict[str, Any]:
    with sessions() as session:
        tenant = session.get(Tenant, session.tenant_id)
        assert tenant is not None
        return dict(tenant.settings)


def store_raw(sessions: sessionmaker[TenantSession], settings: dict[str, Any]) -> None:
    """Write ``tenants.settings`` as an older (or newer) version of the app left it."""
    with sessions.begin() as session:
        tenant = session.get(Tenant, session.tenant_id)
        assert tenant is not None
        tenant.settings = settings


def test_a_new_tenant_reads_the_defaults(sessions: sessionmaker[TenantSession]) -> None:
    with sessions() as session:
        assert load_settings(session, Thresholds) == Thresholds()
        assert load_settings(session, GapSettings) == GapSettings()
        assert load_settings(session, AlertSettings) == AlertSettings()


def test_older_flat_keys_are_read_and_moved_into_their_section_on_save(
    sessions: sessionmaker[TenantSession],
) -> None:
    store_raw(
        sessions,
        {
            "threshold_existing": 0.8,
            "threshold_partial": 0.6,
            "alert_sync_failures": 7,
            "alert_rate_limit_ratio": 0.25,
            "gap_analysis": {"min_cluster_size": 4},
            "team_mode": {"owner": "ops"},  # not ours: kept as it is
        },
    )
    with sessions() as session:
        assert load_settings(session, Thresholds) == Thresholds(existing=0.8, partial=0.6)
        assert load_settings(session, AlertSettings) == AlertSettings(sync_failures=7, rate_limit_ratio=0.25)
        assert load_settings(session, GapSettings).min_cluster_size == 4

    with sessions.begin() as session:
        save_settings(session, Thresholds(existing=0.75, partial=0.6))
    after = stored(sessions)
    assert after["thresholds"] == {"existing": 0.75, "partial": 0.6}
    assert "threshold_existing" not in after and "threshold_partial" not in after
    # Saving one section leaves the others, and keys no section knows, alone.
    assert after["alert_sync_failures"] == 7 and after["team_mode"] == {"owner": "ops"}
    with sessions() as session:
        assert load_settings(session, AlertSettings).sync_failures == 7


def test_a_section_wins_over_flat_keys_and_keeps_keys_it_does_not_know(
    sessions: sessionmaker[TenantSession],
) -> None:
    store_raw(
        sessions,
        {"threshold_existing": 0.9, "thresholds": {"existing": 0.6, "partial": 0.4, "hysteresis": 0.02}},
    )
    with sessions() as session:
        assert load_settings(session, Thresholds) == Thresholds(existing=0.6, partial=0.4)
    with sessions.begin() as session:
        save_settings(session, Thresholds(existing=0.65, partial=0.4))
    assert stored(sessions)["thresholds"] == {"existing": 0.65, "partial": 0.4, "hysteresis": 0.02}


def test_gap_weights_add_to_the_defaults_in_lower_case(sessions: sessionmaker[TenantSession]) -> None:
    store_raw(sessions, {"gap_analysis": {"severity_weights": {"HIGH": 10}, "seed": "7"}})
    with sessions() as session:
        settings = load_settings(session, GapSettings)
    assert settings.weight("high") == 10.0 and settings.weight("critical") == 8.0
    assert settings.seed == 7


def test_a_stored_value_that_is_no_number_names_its_key(sessions: sessionmaker[TenantSession]) -> None:
    store_raw(sessions, {"alerts": {"unlinked_count": "many"}})
    with sessions() as session, pytest.raises(ValueError, match=r"alerts\.unlinked_count: 'many'"):
        load_settings(session, AlertSettings)
    store_raw(sessions, {"thresholds": {"existing": 0.3, "partial": 0.6}})
    with sessions() as session, pytest.raises(ValueError, match="thresholds must satisfy"):
        load_settings(session, Thresholds)


def test_saving_is_audited_only_when_an_actor_is_named(sessions: sessionmaker[TenantSession]) -> None:
    with sessions.begin() as session:
        save_settings(session, GapSettings(min_cluster_size=3))
        save_settings(session, GapSettings(min_cluster_size=4), actor="ana")
    with sessions() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action.like("settings.%"))).all()
    assert [(e.action, e.actor) for e in events] == [("settings.gap_analysis", "ana")]
    assert events[0].before is not None and events[0].before["min_cluster_size"] == 3
    assert events[0].after is not None and events[0].after["min_cluster_size"] == 4
