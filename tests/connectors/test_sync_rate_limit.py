"""A sync stores the lowest rate-limit reading its pages carried, and the alert rule reads it from there."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from connectors.configs import create_config
from connectors.sync import run_sync
from connectors.testing.fake_system import InjectedFailure
from connectors.testing.standard_suite import SleepRecorder
from core.analytics.health_alerts import AlertRule, evaluate_alerts
from core.store.models import SyncRun
from core.store.tenancy import TenantSession
from tests.connectors.tiny_connector import FakeTiny

START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def metered(fake: FakeTiny, remaining: list[int], limit: int = 1000) -> httpx.MockTransport:
    """The fake's answers with ``X-RateLimit-*`` headers, ``remaining`` consumed one per request."""

    def handle(request: httpx.Request) -> httpx.Response:
        response = fake.handle(request)
        if remaining:
            response.headers["X-RateLimit-Remaining"] = str(remaining.pop(0))
            response.headers["X-RateLimit-Limit"] = str(limit)
        return response

    return httpx.MockTransport(handle)


def latest_run(sessions: sessionmaker[TenantSession]) -> SyncRun:
    with sessions() as session:
        return session.scalars(select(SyncRun).order_by(SyncRun.id.desc()).limit(1)).one()


def test_sync_run_keeps_the_lowest_reading_and_the_alert_follows(
    tiny: FakeTiny, sessions: sessionmaker[TenantSession]
) -> None:
    for number in range(1, 13):
        tiny.add_ticket(tiny.new_ticket(number, START + timedelta(minutes=number)))
    settings = tiny.settings()
    config = create_config(
        sessions,
        connector_type="tiny",
        name=settings.name,
        base_url=settings.base_url,
        secrets=dict(settings.secrets),
        actor="test",
    )

    def sync(transport: httpx.MockTransport) -> None:
        asyncio.run(
            run_sync(sessions, config.id, transport=transport, page_size=5, sleep=SleepRecorder(), full=True)
        )

    sync(metered(tiny, [300, 60, 240]))  # three pages; the middle one was the closest to the limit
    run = latest_run(sessions)
    assert (run.rate_limit_remaining, run.rate_limit_limit) == (60, 1000)
    with sessions.begin() as session:
        raised = evaluate_alerts(session, START).raised
    assert [(a.rule, a.value) for a in raised] == [(AlertRule.RATE_LIMIT, 0.06)]

    tiny.fail_next(InjectedFailure(status=401, message="token revoked"))  # a failed sync still records it
    sync(metered(tiny, [900]))
    assert (latest_run(sessions).rate_limit_remaining, latest_run(sessions).rate_limit_limit) == (900, 1000)
    with sessions.begin() as session:
        changes = evaluate_alerts(session, START)
    assert [a.rule for a in changes.cleared] == [AlertRule.RATE_LIMIT]

    sync(tiny.transport())  # no headers at all
    assert latest_run(sessions).rate_limit_limit is None
