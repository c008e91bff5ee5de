"""Issue 17: all connector activity is on the audit trail, and no secret ever is.

One ServiceNow connector (basic auth, its local fake) lives a whole life: created with a password, its first
sync start set, checked, synced, a write-back posted, the password changed on the server (a failing check
and sync), rotated in the app, changed, removed. Every step leaves its row; then every audit row, every
column of it, is searched for both passwords in each form they take on the wire (raw, URL-encoded, JSON-
escaped, base64 alone and as ``user:password``), and the chain of those rows verified.
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from connectors.configs import ConfigRow, check_config, create_config, remove_config, update_config
from connectors.onboarding import set_first_sync_start
from connectors.sync import SyncReport, run_sync
from connectors.testing.standard_suite import SleepRecorder
from connectors.writes import drain_writebacks
from core.store.audit_chain import export_jsonl, verify
from core.store.models import AuditEvent, RunbookStatus, Ticket
from core.store.tenancy import TenantSession
from core.workflow.review import approve
from core.workflow.runbooks import create_runbook
from tests.connectors.fake_servicenow import FakeServiceNow
from tests.connectors.test_redaction import encodings

# Characters that every encoding writes differently: slash, plus, percent, ampersand, quote, space, umlaut.
PASSWORD = 'Sn/pä"ss+w%rd&=1 x'
ROTATED = "R0tated/pa$$+w0rd=="


def check(sessions: sessionmaker[TenantSession], fake: FakeServiceNow, row: ConfigRow) -> bool:
    return asyncio.run(check_config(sessions, row, transport=fake.transport(), actor="ana")).ok


def sync(sessions: sessionmaker[TenantSession], fake: FakeServiceNow, row: ConfigRow) -> SyncReport:
    return asyncio.run(
        run_sync(sessions, row.id, transport=fake.transport(), sleep=SleepRecorder(), actor="ana")
    )


def trail(sessions: sessionmaker[TenantSession]) -> list[AuditEvent]:
    with sessions() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def test_a_connectors_whole_life_is_audited_without_its_secrets(
    sessions: sessionmaker[TenantSession],
) -> None:
    fake = FakeServiceNow()
    fake.password = PASSWORD
    fake.generate(3, start=datetime(2026, 5, 1, tzinfo=UTC))
    row = create_config(
        sessions,
        connector_type="servicenow",
        name="SN prod",
        base_url=fake.base_url,
        auth_mode="basic",
        options={"username": fake.username, "write_back": True},
        secrets={"password": PASSWORD},
        actor="ana",
    )
    assert set_first_sync_start(sessions, row.id, datetime(2026, 4, 1, tzinfo=UTC), actor="ana")
    assert check(sessions, fake, row)
    synced = sync(sessions, fake, row)
    assert synced.ok and synced.new == 3

    with sessions.begin() as session:
        ticket_id = session.scalars(select(Ticket.id).order_by(Ticket.id)).first()
        assert ticket_id is not None
        runbook_id = create_runbook(
            session,
            title="Disk usage above 90%",
            body="Clean /var.",
            tags="disk",
            service=None,
            actor="ana",
            status=RunbookStatus.APPROVED,
        )
        approve(session, ticket_id, runbook_id, 0.9, "ana")
    posted = asyncio.run(drain_writebacks(sessions, transport=fake.transport(), actor="ana"))
    assert posted.written == 1

    fake.password = ROTATED  # changed on the server first: the app's password stops working
    assert not check(sessions, fake, row)
    assert not sync(sessions, fake, row).ok
    row = update_config(
        sessions, row.id, secrets={"password": ROTATED}, options={"page_size": 50}, actor="ana"
    )
    assert check(sessions, fake, row)
    remove_config(sessions, row.id, actor="ana")

    rows = trail(sessions)
    connector_actions = [
        r.action for r in rows if r.action.startswith(("connector.", "writeback.")) and r.actor == "ana"
    ]
    for expected in (
        "connector.create",
        "connector.first_sync_start",
        "connector.check",
        "connector.sync.start",
        "connector.sync",
        "writeback.queued",
        "writeback.written",
        "connector.update",
        "connector.remove",
    ):
        assert expected in connector_actions, expected
    assert connector_actions.count("connector.check") == 3
    assert connector_actions.count("connector.sync") == 2

    outcomes = [r.after for r in rows if r.action == "connector.sync" and r.after]
    assert [(o["status"], o["fetched"], o["new"]) for o in outcomes] == [
        ("succeeded", 3, 3),
        ("failed", 0, 0),
    ]
    changed = next(r for r in rows if r.action == "connector.update")
    assert changed.before is not None and changed.after is not None
    assert changed.before["options"]["page_size"] == 200 and changed.after["options"]["page_size"] == 50
    assert changed.after["secrets_changed"] == ["password"]  # the field's name, never its value
    assert changed.before["secret_fields"] == changed.after["secret_fields"] == ["password"]

    # Every column of every row, as a SIEM would receive it.
    with sessions() as session:
        exported = io.StringIO()
        assert export_jsonl(session, exported) == len(rows)
        report = verify(session, session.tenant_id)
    text = exported.getvalue()
    assert "SN prod" in text and fake.username in text  # the scan reads real rows
    for secret in (PASSWORD, ROTATED):
        leaked = [name for name, form in encodings(secret, fake.username).items() if form in text]
        assert leaked == [], (secret, leaked)
    assert report.ok and report.rows == len(rows), report.first_break
