"""The ticket's write-back status line and the window's drainer: posting, failed with Retry, then posted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import sessionmaker

from connectors.configs import create_config
from connectors.registry import ConnectorRegistry, use_registry
from connectors.testing.fake_system import InjectedFailure
from connectors.writes import WritebackReport
from core.store.models import Runbook, RunbookStatus, Ticket
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace
from core.workflow.review import approve
from desktop.background.tasks import TaskRunner
from desktop.background.write_jobs import WritebackDrainer
from desktop.context import AppContext
from desktop.widgets.writeback_status import WritebackStatusWidget
from tests.connectors.test_writes import FakeWritableTiny, WritableTiny
from tests.connectors.tiny_connector import GOOD_TOKEN


@pytest.fixture
def fake() -> Iterator[FakeWritableTiny]:
    system = FakeWritableTiny()
    with use_registry(ConnectorRegistry((), find_plugins=None, classes=(WritableTiny,))):
        yield system
    assert system.unexpected == []


@pytest.fixture
def runner(qtbot) -> Iterator[TaskRunner]:  # type: ignore[no-untyped-def]
    task_runner = TaskRunner()
    yield task_runner
    task_runner.shutdown()


@pytest.fixture
def context(workspace: Workspace, runner: TaskRunner, fake: FakeWritableTiny) -> AppContext:
    app_context = AppContext(workspace, "default", runner, reviewer_name="ana")
    app_context.transport_factory = lambda _settings: fake.transport()
    return app_context


def approved_tickets(sessions: sessionmaker[TenantSession], fake: FakeWritableTiny) -> tuple[int, int]:
    """A synced ticket with an approved runbook (a write-back pending) and an imported one, approved too."""
    config = create_config(
        sessions,
        connector_type="tiny-writable",
        name="Tiny prod",
        base_url=fake.base_url,
        options={"write_back": True},
        secrets={"token": GOOD_TOKEN},
        actor="test",
    )
    with sessions.begin() as session:
        synced = Ticket(
            external_id="T00007",
            source_system="tiny",
            title="DNS",
            content_hash="a",
            raw_payload={"id": "T00007"},
        )
        synced.connector_config_id = config.id
        imported = Ticket(external_id="CSV-1", source_system="csv", title="DNS too", content_hash="b")
        runbook = Runbook(title="Flush the DNS cache", status=RunbookStatus.APPROVED, content_hash="r")
        session.add_all([synced, imported, runbook])
        session.flush()
        approve(session, synced.id, runbook.id, 0.8, "ana")
        approve(session, imported.id, runbook.id, 0.8, "ana")
        return synced.id, imported.id


def test_posting_then_failed_with_retry_then_posted(
    qtbot, context: AppContext, fake: FakeWritableTiny
) -> None:  # type: ignore[no-untyped-def]
    synced_id, imported_id = approved_tickets(context.sessions, fake)
    widget = WritebackStatusWidget(context.runner, context.sessions, context.reviewer)
    qtbot.addWidget(widget)
    drainer = WritebackDrainer(context)
    widget.retried.connect(drainer.drain_soon)
    drainer.drained.connect(widget.reload)

    with qtbot.waitSignal(widget.loaded, timeout=5000):
        widget.show_ticket(imported_id)
    assert widget.isHidden() and widget.labels == []  # a file import is never written back

    with qtbot.waitSignal(widget.loaded, timeout=5000):
        widget.show_ticket(synced_id)
    assert [label.text() for label in widget.labels] == ["“Flush the DNS cache”: posting to Tiny prod…"]
    assert not widget.isHidden() and widget.retry_buttons == {}

    fake.fail_next(InjectedFailure(403, message="no itil role"))
    with qtbot.waitSignal(drainer.drained, timeout=10_000) as drained:
        drainer.drain_soon()
    assert drained.args == [WritebackReport(written=0, failed=1, pending=1)]
    qtbot.waitUntil(lambda: bool(widget.retry_buttons), timeout=5000)
    [text] = [label.text() for label in widget.labels]
    assert text.startswith("“Flush the DNS cache”: failed to post to Tiny prod: ")
    assert "no itil role" in text
    assert fake.notes == {}

    [button] = widget.retry_buttons.values()
    with qtbot.waitSignal(drainer.drained, timeout=10_000) as drained:
        button.click()  # stores the retry, which asks the drainer to post at once
    assert drained.args == [WritebackReport(written=1, failed=0, pending=0)]
    qtbot.waitUntil(
        lambda: (
            [label.text() for label in widget.labels]
            == ["“Flush the DNS cache”: posted to Tiny prod as a work note (N1)"]
        ),
        timeout=5000,
    )
    assert widget.retry_buttons == {}
    assert fake.notes == {
        "T00007": ["Runbook linked by ana in Runbook Desk: Flush the DNS cache (confidence 80%)"]
    }
