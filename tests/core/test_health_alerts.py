"""Each alert rule raised once while its condition holds, cleared when it ends, recorded (rows and audit);
the rate-limit reading the HTTP client takes from ``X-RateLimit-*`` headers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from connectors.http import RateLimitReading, create_client, rate_limit_reading
from core.analytics.health_alerts import (
    SYSTEM_ACTOR,
    AlertChanges,
    AlertRule,
    active_alerts,
    alert_history,
    evaluate_alerts,
)
from core.importing.demo import demo_data_dir
from core.importing.tickets import import_tickets
from core.settings import AlertSettings, Thresholds, load_settings, save_settings
from core.store.models import (
    Analysis,
    AnalysisDecision,
    AuditEvent,
    ConnectorConfig,
    HealthAlert,
    LinkDecision,
    Runbook,
    SyncRun,
    SyncStatus,
    Ticket,
    TicketRunbookLink,
)
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def unlinked_raised(changes: AlertChanges) -> list[float | None]:
    """The values of the unlinked-volume alerts raised (the tickets' low confidence may raise another)."""
    return [a.value for a in changes.raised if a.rule is AlertRule.UNLINKED_VOLUME]


def evaluate(sessions: sessionmaker[TenantSession], now: datetime = NOW, **kwargs: object) -> AlertChanges:
    with sessions.begin() as session:
        return evaluate_alerts(session, now, **kwargs)  # type: ignore[arg-type]


def alert_rows(sessions: sessionmaker[TenantSession]) -> list[tuple[str, str, bool]]:
    with sessions() as session:
        return [
            (alert.rule, alert.subject, alert.cleared_at is None)
            for alert in session.scalars(select(HealthAlert).order_by(HealthAlert.id))
        ]


def audit_trail(sessions: sessionmaker[TenantSession]) -> list[tuple[str, int | None, str]]:
    with sessions() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action.like("alert.%")))
        return [(event.action, event.entity_id, event.actor) for event in events]


def add_config(sessions: sessionmaker[TenantSession], name: str = "prod-sn", failures: int = 0) -> int:
    with sessions.begin() as session:
        config = ConnectorConfig(connector_type="servicenow", name=name, consecutive_failures=failures)
        session.add(config)
        session.flush()
        return config.id


def set_failures(sessions: sessionmaker[TenantSession], config_id: int, failures: int) -> None:
    with sessions.begin() as session:
        config = session.get(ConnectorConfig, config_id)
        assert config is not None
        config.consecutive_failures = failures


def add_tickets(
    sessions: sessionmaker[TenantSession],
    count: int,
    *,
    ingested: datetime,
    confidence: float = 0.3,
    analysed: bool = True,
    prefix: str = "T",
    created: datetime | Literal["ingested"] | None = "ingested",
    connector: int | None = None,
) -> list[int]:
    """Tickets as a file import stores them; by default created in the source when ingested (new work)."""
    with sessions.begin() as session:
        tickets = [
            Ticket(
                external_id=f"{prefix}{n}",
                source_system="servicenow",
                title=f"ticket {n}",
                content_hash=f"{prefix}{n}",
                created_at=ingested if created == "ingested" else created,
                ingested_at=ingested,
                connector_config_id=connector,
            )
            for n in range(count)
        ]
        session.add_all(tickets)
        session.flush()
        if analysed:
            add_analyses(session, tickets, confidence)
        return [t.id for t in tickets]


def add_analyses(session: TenantSession, tickets: Iterable[Ticket], confidence: float = 0.3) -> None:
    session.add_all(
        Analysis(
            ticket_id=t.id,
            decision=AnalysisDecision.GENERATE_RUNBOOK,
            confidence=confidence,
            model_id="m",
            threshold_existing=0.7,
            threshold_partial=0.5,
            ticket_content_hash=t.content_hash,
        )
        for t in tickets
    )


# --- settings -------------------------------------------------------------------------------------------


def test_settings_default_round_trip_and_are_audited(sessions: sessionmaker[TenantSession]) -> None:
    with sessions() as session:
        assert load_settings(session, AlertSettings) == AlertSettings()
    changed = AlertSettings(sync_failures=5, unlinked_count=10, unlinked_window_hours=6, rate_limit_ratio=0.2)
    with sessions.begin() as session:
        save_settings(session, changed, actor="ana")
    with sessions() as session:
        assert load_settings(session, AlertSettings) == changed
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "settings.alerts")).one()
    assert event.actor == "ana"
    assert event.after is not None
    assert event.before is not None and event.before["sync_failures"] == 3
    assert event.after["sync_failures"] == 5


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sync_failures", 0, "at least 1"),
        ("unlinked_window_hours", 0, "longer than 0"),
        ("confidence_samples", 3, "at least 10"),
        ("rate_limit_ratio", 1.0, "between 0 and 100"),
    ],
)
def test_settings_refuse_nonsense(field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AlertSettings(**{field: value})  # type: ignore[arg-type]


# --- each rule: raised once, refreshed, cleared, recorded -----------------------------------------------


def test_sync_failures_alert_is_raised_once_and_cleared(sessions: sessionmaker[TenantSession]) -> None:
    config_id = add_config(sessions, failures=2)
    assert evaluate(sessions).raised == ()

    set_failures(sessions, config_id, 3)  # the sync engine's own alert count
    first = evaluate(sessions)
    assert [(a.rule, a.subject) for a in first.raised] == [
        (AlertRule.SYNC_FAILURES, f"connector:{config_id}")
    ]
    assert first.raised[0].message == "Connector “prod-sn” failed 3 syncs in a row (alert at 3)."
    assert first.active == first.raised

    set_failures(sessions, config_id, 4)
    later = NOW + timedelta(minutes=5)
    second = evaluate(sessions, later)
    assert (second.raised, second.cleared) == ((), ())  # still the same condition: no second alert
    assert second.active[0].id == first.raised[0].id
    assert second.active[0].message.startswith("Connector “prod-sn” failed 4 syncs")
    assert (second.active[0].raised_at, second.active[0].checked_at) == (NOW, later)

    set_failures(sessions, config_id, 0)  # a successful sync
    third = evaluate(sessions, later + timedelta(minutes=5))
    assert [a.id for a in third.cleared] == [first.raised[0].id]
    assert third.cleared[0].cleared_at == later + timedelta(minutes=5)
    assert third.active == ()

    set_failures(sessions, config_id, 3)  # failing again is a new occurrence
    fourth = evaluate(sessions, later + timedelta(minutes=10))
    assert len(fourth.raised) == 1
    assert fourth.raised[0].id != first.raised[0].id
    assert alert_rows(sessions) == [
        ("sync_failures", f"connector:{config_id}", False),
        ("sync_failures", f"connector:{config_id}", True),
    ]
    alert_ids = [first.raised[0].id, fourth.raised[0].id]
    assert audit_trail(sessions) == [
        ("alert.raised", alert_ids[0], SYSTEM_ACTOR),
        ("alert.cleared", alert_ids[0], SYSTEM_ACTOR),
        ("alert.raised", alert_ids[1], SYSTEM_ACTOR),
    ]
    with sessions() as session:
        assert [a.id for a in alert_history(session)] == list(reversed(alert_ids))


def test_sync_failure_threshold_comes_from_settings(sessions: sessionmaker[TenantSession]) -> None:
    add_config(sessions, failures=3)
    with sessions.begin() as session:
        save_settings(session, AlertSettings(sync_failures=5), actor="ana")
    assert evaluate(sessions).raised == ()
    assert len(evaluate(sessions, settings=AlertSettings(sync_failures=2)).raised) == 1


def test_unlinked_volume_alert(sessions: sessionmaker[TenantSession]) -> None:
    settings = AlertSettings(unlinked_count=2, unlinked_window_hours=24)
    recent = add_tickets(sessions, 3, ingested=NOW - timedelta(hours=1))
    add_tickets(sessions, 5, ingested=NOW - timedelta(hours=30), prefix="OLD")  # outside the window
    add_tickets(sessions, 5, ingested=NOW - timedelta(hours=2), analysed=False, prefix="NEW")  # not analysed
    changes = evaluate(sessions, settings=settings)
    assert [(a.rule, a.subject, a.value) for a in changes.raised] == [
        (AlertRule.UNLINKED_VOLUME, "tenant", 3.0)
    ]
    assert changes.raised[0].message == (
        "3 tickets arrived in the last 24 h without a runbook link (alert above 2)."
    )
    assert evaluate(sessions, settings=settings).raised == ()

    with sessions.begin() as session:  # an analyst links one: 2 left, not above 2
        runbook = Runbook(title="VPN")
        session.add(runbook)
        session.flush()
        session.add(
            TicketRunbookLink(
                ticket_id=recent[0], runbook_id=runbook.id, decision=LinkDecision.LINKED, reviewed_at=NOW
            )
        )
    cleared = evaluate(sessions, settings=settings)
    assert [a.rule for a in cleared.cleared] == [AlertRule.UNLINKED_VOLUME]


def test_unlinked_volume_alert_clears_when_the_window_moves_on(sessions: sessionmaker[TenantSession]) -> None:
    settings = AlertSettings(unlinked_count=2, unlinked_window_hours=24)
    add_tickets(sessions, 3, ingested=NOW - timedelta(hours=1))
    assert len(evaluate(sessions, settings=settings).raised) == 1
    assert len(evaluate(sessions, NOW + timedelta(hours=24), settings=settings).cleared) == 1


def test_a_demo_sized_import_of_past_tickets_raises_no_unlinked_volume_alert(
    sessions: sessionmaker[TenantSession],
) -> None:
    # Issue 16: importing the demo raised "191 tickets arrived in the last 24 h without a runbook link".
    summary = import_tickets(sessions, demo_data_dir() / "tickets.csv", actor="demo-setup")
    now = datetime.now(UTC)
    with sessions.begin() as session:
        tickets = list(session.scalars(select(Ticket)))
        add_analyses(session, tickets)
    assert summary.inserted == len(tickets) > 300
    assert all(t.ingested_at >= now - timedelta(minutes=5) for t in tickets)  # all "in the window"
    assert unlinked_raised(evaluate(sessions, now)) == []


def test_a_file_import_counts_by_when_the_source_created_its_tickets(
    sessions: sessionmaker[TenantSession],
) -> None:
    settings = AlertSettings(unlinked_count=50, unlinked_window_hours=24)
    imported = NOW - timedelta(minutes=10)
    add_tickets(sessions, 300, ingested=imported, created=NOW - timedelta(days=20), prefix="HIST")
    add_tickets(sessions, 100, ingested=imported, created=None, prefix="UNDATED")  # says nothing: not counted
    assert unlinked_raised(evaluate(sessions, settings=settings)) == []

    add_tickets(sessions, 51, ingested=imported, created=NOW - timedelta(hours=3), prefix="TODAY")
    assert unlinked_raised(evaluate(sessions, settings=settings)) == [51.0]


def add_finished_run(
    sessions: sessionmaker[TenantSession], config_id: int, finished: datetime, status: SyncStatus
) -> None:
    with sessions.begin() as session:
        session.add(
            SyncRun(
                connector_config_id=config_id,
                status=status,
                started_at=finished - timedelta(minutes=30),
                finished_at=finished,
            )
        )


def test_a_first_sync_raises_no_unlinked_volume_alert_but_the_same_volume_by_later_syncs_does(
    sessions: sessionmaker[TenantSession],
) -> None:
    settings = AlertSettings(unlinked_count=50, unlinked_window_hours=24)
    config_id = add_config(sessions, "jira-cloud")
    first_done = NOW - timedelta(hours=6)
    # A first attempt that failed after storing some pages, then the first sync that finished: both the
    # backfill of the system's history, created in the source today or not.
    add_finished_run(sessions, config_id, first_done - timedelta(hours=2), SyncStatus.FAILED)
    add_tickets(sessions, 100, ingested=first_done - timedelta(hours=2, minutes=10), connector=config_id)
    add_tickets(sessions, 200, ingested=first_done - timedelta(minutes=10), connector=config_id, prefix="B")
    add_finished_run(sessions, config_id, first_done, SyncStatus.SUCCEEDED)
    assert unlinked_raised(evaluate(sessions, settings=settings)) == []

    # Later syncs bring new tickets, whatever their source creation time says: those are new work.
    for hour in range(1, 6):
        add_tickets(
            sessions,
            60,
            ingested=first_done + timedelta(hours=hour),
            created=None,
            connector=config_id,
            prefix=f"INC{hour}-",
        )
        add_finished_run(sessions, config_id, first_done + timedelta(hours=hour), SyncStatus.SUCCEEDED)
    assert unlinked_raised(evaluate(sessions, settings=settings)) == [300.0]


def test_a_connector_still_in_its_first_sync_raises_no_unlinked_volume_alert(
    sessions: sessionmaker[TenantSession],
) -> None:
    config_id = add_config(sessions, "servicedesk")
    add_run(sessions, config_id, None, finished=False)  # its committed pages are already stored
    add_tickets(sessions, 300, ingested=NOW - timedelta(minutes=5), connector=config_id)
    assert unlinked_raised(evaluate(sessions, settings=AlertSettings(unlinked_count=50))) == []


def test_low_confidence_alert_compares_the_rolling_mean_with_the_review_threshold(
    sessions: sessionmaker[TenantSession],
) -> None:
    settings = AlertSettings(confidence_samples=10)
    add_tickets(sessions, 9, ingested=NOW, confidence=0.45, prefix="A")
    assert evaluate(sessions, settings=settings).raised == ()  # 9 analyses: too few to judge
    add_tickets(sessions, 1, ingested=NOW, confidence=0.45, prefix="B")
    changes = evaluate(sessions, settings=settings)
    assert [(a.rule, a.threshold) for a in changes.raised] == [(AlertRule.LOW_CONFIDENCE, 0.5)]
    assert changes.raised[0].value == pytest.approx(0.45)
    assert changes.raised[0].message == (
        "The average confidence of the last 10 analyses is 0.45, below the review threshold 0.50."
    )

    with sessions.begin() as session:  # a lower review threshold: 0.45 is fine now
        save_settings(session, Thresholds(existing=0.7, partial=0.4))
    assert len(evaluate(sessions, settings=settings).cleared) == 1
    with sessions.begin() as session:
        save_settings(session, Thresholds(existing=0.7, partial=0.5))
    assert len(evaluate(sessions, settings=settings).raised) == 1

    # Ten newer, better analyses: the last ten average 0.9 (the rolling window moved past the bad ones).
    add_tickets(sessions, 10, ingested=NOW, confidence=0.9, prefix="C")
    assert [a.rule for a in evaluate(sessions, settings=settings).cleared] == [AlertRule.LOW_CONFIDENCE]


def add_run(
    sessions: sessionmaker[TenantSession],
    config_id: int,
    reading: tuple[int, int] | None,
    *,
    finished: bool = True,
) -> None:
    with sessions.begin() as session:
        session.add(
            SyncRun(
                connector_config_id=config_id,
                status=SyncStatus.SUCCEEDED if finished else SyncStatus.RUNNING,
                finished_at=NOW if finished else None,
                rate_limit_remaining=reading[0] if reading else None,
                rate_limit_limit=reading[1] if reading else None,
            )
        )


def test_rate_limit_alert_follows_the_latest_finished_sync(sessions: sessionmaker[TenantSession]) -> None:
    config_id = add_config(sessions, "jira-cloud")
    quiet_id = add_config(sessions, "quiet")
    add_run(sessions, config_id, (40, 100))
    add_run(sessions, quiet_id, None)
    assert evaluate(sessions).raised == ()

    add_run(sessions, config_id, (8, 100))
    changes = evaluate(sessions)
    assert [(a.rule, a.subject, a.value) for a in changes.raised] == [
        (AlertRule.RATE_LIMIT, f"connector:{config_id}", 0.08)
    ]
    assert changes.raised[0].message == (
        "Connector “jira-cloud” had 8 of 100 API requests left in its last sync (8%; alert at 10% or less)."
    )
    add_run(sessions, config_id, (90, 100), finished=False)  # still running: not yet a reading
    assert evaluate(sessions).cleared == ()
    add_run(sessions, config_id, (10, 100))  # exactly at the threshold: still approaching
    assert evaluate(sessions).active[0].value == pytest.approx(0.10)
    add_run(sessions, config_id, None)  # a sync without headers says nothing is close
    assert [a.rule for a in evaluate(sessions).cleared] == [AlertRule.RATE_LIMIT]


def test_several_conditions_at_once_and_only_this_tenant(
    sessions: sessionmaker[TenantSession], workspace: Workspace
) -> None:
    config_id = add_config(sessions, failures=3)
    add_run(sessions, config_id, (0, 50))
    workspace.ensure_tenant("other")
    other = workspace.session_factory("other")
    add_config(other, failures=9)
    changes = evaluate(sessions)
    assert sorted(a.rule for a in changes.raised) == [AlertRule.RATE_LIMIT, AlertRule.SYNC_FAILURES]
    assert evaluate(other).raised[0].value == 9.0
    with sessions() as session:
        assert len(active_alerts(session)) == 2


def test_the_store_refuses_a_second_active_alert_for_one_condition(
    sessions: sessionmaker[TenantSession],
) -> None:
    def alert(cleared: datetime | None) -> HealthAlert:
        return HealthAlert(rule="sync_failures", subject="connector:1", message="m", cleared_at=cleared)

    with sessions.begin() as session:
        session.add_all([alert(NOW), alert(NOW), alert(None)])  # cleared ones may repeat
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(alert(None))


# --- the rate-limit reading of the HTTP client ---------------------------------------------------------


def answers(*header_sets: dict[str, str], status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    queue = list(header_sets)

    def handle(_request: httpx.Request) -> httpx.Response:
        headers = queue.pop(0)
        code = 429 if headers.get("X-Test-Status") == "429" else status
        return httpx.Response(code, json={"ok": True}, headers=headers)

    return handle


async def _no_sleep(_seconds: float) -> None:
    return None


def test_http_client_keeps_the_last_and_the_lowest_rate_limit_reading() -> None:
    handler = answers(
        {"X-RateLimit-Remaining": "40", "X-RateLimit-Limit": "100"},
        {
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Limit": "100",
            "Retry-After": "1",
            "X-Test-Status": "429",
        },
        {"X-RateLimit-Remaining": "7", "X-RateLimit-Limit": "100"},
        {},
    )
    http = create_client(
        "Acme", "https://acme.example.com", transport=httpx.MockTransport(handler), sleep=_no_sleep
    )

    async def go() -> None:
        try:
            assert http.rate_limit is None
            await http.get_json("/a")
            assert http.rate_limit == http.lowest_rate_limit == RateLimitReading(40, 100)
            await http.get_json("/b")  # a 429 (0 left), retried: the retry answers 7 of 100
            await http.get_json("/c")  # no headers: the readings stay
        finally:
            await http.aclose()

    asyncio.run(go())
    assert http.rate_limit == RateLimitReading(7, 100)
    assert http.lowest_rate_limit == RateLimitReading(0, 100)
    assert http.lowest_rate_limit.ratio == 0.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-ratelimit-remaining": "12", "x-ratelimit-limit": "600"}, RateLimitReading(12, 600)),
        ({"RateLimit-Remaining": "5", "RateLimit-Limit": "100, 100;w=60"}, RateLimitReading(5, 100)),
        ({"X-RateLimit-Remaining": "50"}, None),  # no limit: no ratio
        ({"X-RateLimit-Remaining": "soon", "X-RateLimit-Limit": "100"}, None),
        ({"X-RateLimit-Remaining": "3", "X-RateLimit-Limit": "0"}, None),
        ({"X-RateLimit-Remaining": "300", "X-RateLimit-Limit": "100"}, RateLimitReading(100, 100)),
    ],
)
def test_rate_limit_headers(headers: dict[str, str], expected: RateLimitReading | None) -> None:
    assert rate_limit_reading(httpx.Response(200, headers=headers)) == expected
