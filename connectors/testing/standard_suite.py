"""The standard suite every connector passes (airbyte's standard tests): adding a connector means passing it.

Test support shipped for connector authors, plugins included: it imports pytest and is never loaded by the
app. A connector's test module (a plugin's own, too) subclasses :class:`StandardConnectorSuite` and names
its fake, a :class:`~connectors.testing.fake_system.FakeSystem` of its vendor::

    from connectors.testing.standard_suite import StandardConnectorSuite

    class TestServiceNowStandard(StandardConnectorSuite):
        fake_cls = FakeServiceNow

and overrides the ``fake_factory`` fixture only when the fake needs arguments. The connector must be in the
registry the test sees (an installed plugin is; otherwise wrap the tests in
:func:`connectors.registry.use_registry`). Everything runs through the real path: the config is created with
:func:`connectors.configs.create_config` (secrets in an in-memory keychain the suite installs), synced by
:func:`connectors.sync.run_sync` into a real SQLite workspace in ``tmp_path`` (the suite's own ``workspace``
and ``sessions`` fixtures), with the fake's ``httpx.MockTransport`` and a recording ``sleep`` injected. The
fake must fail the test on any request it does not understand, say which requests list tickets and what
"updated since" they asked for (:meth:`FakeSystem.is_ticket_query` / :meth:`FakeSystem.query_since`), and
implement the two :class:`~connectors.testing.fake_system.Misbehaviour` modes.

Tickets come from :meth:`FakeSystem.new_ticket`; pairs share an update time, so the id tie-break is
exercised on every page boundary.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus, urlsplit

import keyring
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from connectors.base import CheckProblem, CheckResult, Connector, ConnectorKind, ConnectorSettings, Cursor
from connectors.configs import ConfigRow, create_config
from connectors.http import HttpLimits, duration_text, use_limits
from connectors.registry import connector_class
from connectors.sync import SyncCancelledError, SyncReport, run_sync, stored_cursor
from connectors.testing.fake_system import (
    FakeMonitoringSystem,
    FakeSystem,
    FakeTicket,
    InjectedFailure,
    Misbehaviour,
)
from connectors.testing.faulty_server import Fault, FaultyServer
from connectors.testing.memory_keyring import MemoryKeyring
from core.store.models import (
    AlertStatus,
    KnowledgeArticle,
    MonitoringAlert,
    MonitoringEvent,
    SyncRun,
    SyncStatus,
    Ticket,
)
from core.store.tenancy import TenantSession
from core.store.workspace import Workspace

PAGE = 5
TICKETS = 12  # three pages: 5, 5, 2
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
JITTER = 0.5  # RetryPolicy.jitter
# Listing requests a sync may send to a misbehaving server before the no-progress guard must have stopped it
# (or the sync ended on its own): a few pages of progress, then the page that shows none.
GUARD_REQUESTS = 6
# The fault tests' limits: small, so that a fault shows at once; the deadline tests' is real seconds, short,
# so that every connector runs them in a fraction of a second (only the faulty request has to wait for it).
FAULT_LIMITS = HttpLimits(
    max_response_bytes=256 * 1024, request_deadline_s=30.0, run_deadline_s=60.0, report_waits_after_s=0.05
)
# 1 s, not less: the deadline covers every request of the run, and a fault-free one (a Datadog sync reads
# its monitors first) must not run out of it on a busy CI machine (0.25 s did, once in a CI rehearsal).
DEADLINE_LIMITS = replace(FAULT_LIMITS, request_deadline_s=1.0)
DEADLINE_TEXT = duration_text(DEADLINE_LIMITS.request_deadline_s)


def secret_forms(settings: ConnectorSettings) -> set[str]:
    """Every form a secret of ``settings`` takes on the wire, so in a server's echo: as is, URL-encoded (a
    query, a login form), JSON-escaped, base64 alone and as the ``user:secret`` of a Basic header."""
    names = [value for value in settings.options.values() if isinstance(value, str) and value]
    forms: set[str] = set()
    for secret in settings.secrets.values():
        forms |= {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1], _b64(secret)}
        forms |= {_b64(f"{name}:{secret}") for name in names}
    return {form for form in forms if len(form) >= 6}


def below_base(config: ConfigRow, path: str) -> str:
    """A path as messages name it: below the base URL's own path (a Jira context path such as /jira)."""
    return path.removeprefix(urlsplit(config.base_url).path.rstrip("/"))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class SleepRecorder:
    """The injected ``sleep``: records what the client was told to wait, waits for nothing."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class AfterPage:
    """The sync's :class:`~core.progress.Progress`: runs ``action`` once, when ``page`` pages are stored, and
    with ``cancel`` asks the sync to stop there. ``messages`` keeps every report's message (a wait for a slow
    server is reported too, with the same page count)."""

    def __init__(self, page: int, action: Callable[[], None] | None = None, *, cancel: bool = False) -> None:
        self.page = page
        self.action = action
        self.cancel = cancel
        self.pages_stored = 0
        self.messages: list[str] = []

    def report(self, done: int, total: int | None = None, message: str = "") -> None:
        self.pages_stored = done
        self.messages.append(message)
        if done == self.page and self.action is not None:
            action, self.action = self.action, None
            action()

    @property
    def cancelled(self) -> bool:
        return self.cancel and self.pages_stored >= self.page


class StandardConnectorSuite:
    fake_cls: ClassVar[type[FakeSystem]]

    # --- the suite's own environment: a private keychain and workspace per test ---------------------------

    @pytest.fixture(autouse=True)
    def memory_keychain(self) -> Iterator[MemoryKeyring]:
        """An empty in-memory keychain for the test: configs store their secrets in it, never in the OS's."""
        previous = keyring.get_keyring()
        ring = MemoryKeyring()
        keyring.set_keyring(ring)
        yield ring
        keyring.set_keyring(previous)

    @pytest.fixture(scope="class")
    @classmethod
    def workspace_template(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """A migrated workspace with its default tenant, made once per suite class; each test opens a copy
        (migrating a fresh one on every test cost more than most tests do)."""
        root = tmp_path_factory.mktemp("standard-suite-template") / "workspace"
        with Workspace.open(root) as template:
            template.session_factory("default")
        return root

    @pytest.fixture
    def workspace(self, tmp_path: Path, workspace_template: Path) -> Iterator[Workspace]:
        root = tmp_path / "standard-suite-workspace"
        shutil.copytree(workspace_template, root, ignore=shutil.ignore_patterns("*.lock"))
        opened = Workspace.open(root)
        yield opened
        opened.close()

    @pytest.fixture
    def sessions(self, workspace: Workspace) -> sessionmaker[TenantSession]:
        return workspace.session_factory("default")

    # --- fixtures a connector's module may override ------------------------------------------------------

    @pytest.fixture
    def fake_factory(self) -> Callable[[], FakeSystem]:
        return self.fake_cls

    @pytest.fixture
    def fake(self, fake_factory: Callable[[], FakeSystem]) -> Iterator[FakeSystem]:
        system = fake_factory()
        system.page_size = PAGE
        yield system
        assert system.unexpected == [], "the connector sent requests its fake does not understand"

    @pytest.fixture
    def sleeps(self) -> SleepRecorder:
        return SleepRecorder()

    @pytest.fixture
    def faulty(self, fake: FakeSystem) -> Iterator[FaultyServer]:
        """The connector's fake behind a real HTTP server on 127.0.0.1, faults off until a test sets one."""
        with FaultyServer(fake, drip_interval_s=0.02) as server:
            yield server

    # --- helpers ----------------------------------------------------------------------------------------

    def add_tickets(self, fake: FakeSystem, count: int = TICKETS, first: int = 1) -> list[FakeTicket]:
        added = []
        for number in range(first, first + count):
            ticket = fake.new_ticket(number, START + timedelta(minutes=10 * ((number - 1) // 2)))
            fake.add_ticket(ticket)
            added.append(ticket)
        return added

    def make_config(
        self, sessions: sessionmaker[TenantSession], fake: FakeSystem, *, good_credentials: bool = True
    ) -> ConfigRow:
        settings = fake.settings(good_credentials=good_credentials)
        return create_config(
            sessions,
            connector_type=fake.connector_type,
            name=settings.name,
            base_url=settings.base_url,
            auth_mode=settings.auth_mode,
            options=dict(settings.options),
            secrets=dict(settings.secrets),
            ca_bundle=settings.ca_bundle,
            actor="standard-suite",
        )

    def sync(
        self,
        sessions: sessionmaker[TenantSession],
        fake: FakeSystem,
        config: ConfigRow,
        sleeps: SleepRecorder,
        **kwargs: Any,
    ) -> SyncReport:
        return asyncio.run(
            run_sync(sessions, config.id, transport=fake.transport(), sleep=sleeps, page_size=PAGE, **kwargs)
        )

    def sync_through(
        self,
        faulty: FaultyServer,
        sessions: sessionmaker[TenantSession],
        config: ConfigRow,
        sleeps: SleepRecorder,
        *,
        limits: HttpLimits = FAULT_LIMITS,
        **kwargs: Any,
    ) -> SyncReport:
        """A sync whose every request goes over a real socket to ``faulty``, under small ``limits``."""
        with use_limits(limits):
            return asyncio.run(
                run_sync(
                    sessions, config.id, transport=faulty.transport(), sleep=sleeps, page_size=PAGE, **kwargs
                )
            )

    def assert_failed_clearly(
        self,
        sessions: sessionmaker[TenantSession],
        faulty: FaultyServer,
        config: ConfigRow,
        report: SyncReport,
        what: str,
    ) -> None:
        """Failed, recorded as failed, and the error says what happened, to which connector, on which path
        (the last listing request the server received)."""
        assert report.status is SyncStatus.FAILED, report.headline()
        assert report.error is not None
        assert what in report.error, report.error
        assert report.error.startswith(config.name), report.error
        paths = faulty.listing_paths()
        assert paths, "no listing request reached the server"
        assert below_base(config, paths[-1]) in report.error, (paths, report.error)
        with sessions() as session:
            run = session.scalars(select(SyncRun).order_by(SyncRun.id.desc()).limit(1)).one()
        assert run.status is SyncStatus.FAILED and run.error_text is not None and what in run.error_text

    @property
    def record_model(self) -> type[Ticket] | type[MonitoringEvent] | type[KnowledgeArticle]:
        """Where a sync stores the fake's records: tickets, a monitoring connector's events, a knowledge
        connector's articles."""
        kind = connector_class(self.fake_cls.connector_type).spec.kind
        if kind is ConnectorKind.MONITORING:
            return MonitoringEvent
        return KnowledgeArticle if kind is ConnectorKind.KNOWLEDGE else Ticket

    def stored_ids(self, sessions: sessionmaker[TenantSession], config: ConfigRow) -> list[str]:
        model = self.record_model
        with sessions() as session:
            return sorted(
                session.scalars(select(model.external_id).where(model.connector_config_id == config.id))
            )

    def stored_title(self, sessions: sessionmaker[TenantSession], external_id: str) -> str | None:
        model = self.record_model
        with sessions() as session:
            return session.scalar(select(model.title).where(model.external_id == external_id))

    def check(self, fake: FakeSystem, *, good_credentials: bool) -> CheckResult:
        async def go() -> CheckResult:
            connector: Connector = connector_class(fake.connector_type).create(
                fake.settings(good_credentials=good_credentials),
                transport=fake.transport(),
                sleep=SleepRecorder(),
            )
            try:
                return await connector.check()
            finally:
                await connector.close()

        return asyncio.run(go())

    def ticket_query_paths(self, fake: FakeSystem) -> list[str]:
        return [request.url.path for request in fake.requests if fake.is_ticket_query(request)]

    def fail_after_page(
        self, fake: FakeSystem, page: int, failure: InjectedFailure, times: int = 1
    ) -> AfterPage:
        """A progress that makes the requests after ``page`` stored pages fail."""
        return AfterPage(page, lambda: fake.fail_next(failure, times))

    # --- check() ----------------------------------------------------------------------------------------

    def test_check_with_good_credentials(self, fake: FakeSystem) -> None:
        result = self.check(fake, good_credentials=True)
        assert result.ok, result

    def test_check_with_bad_credentials_says_authentication(self, fake: FakeSystem) -> None:
        result = self.check(fake, good_credentials=False)
        assert result.problem is CheckProblem.AUTHENTICATION, result
        for secret in fake.settings(good_credentials=False).secrets.values():
            assert secret not in result.message
        assert len(fake.requests) <= 3  # no retry storm on a wrong password

    # --- syncs ------------------------------------------------------------------------------------------

    def test_full_sync_stores_every_ticket_and_no_secret(
        self,
        fake: FakeSystem,
        sessions: sessionmaker[TenantSession],
        workspace: Workspace,
        sleeps: SleepRecorder,
    ) -> None:
        tickets = self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        report = self.sync(sessions, fake, config, sleeps)
        assert report.status is SyncStatus.SUCCEEDED, report.error
        assert (report.new, report.updated, report.failed) == (TICKETS, 0, 0)
        assert report.pages >= TICKETS // PAGE
        assert self.stored_ids(sessions, config) == sorted(t.external_id for t in tickets)
        with sessions() as session:
            model = self.record_model
            titles = {
                row.external_id: row.title for row in session.execute(select(model.external_id, model.title))
            }
            cursor = stored_cursor(session, config.id)
            run = session.scalars(select(SyncRun)).one()
        assert all(titles[t.external_id] == t.title for t in tickets)
        last = max(tickets, key=lambda t: (t.updated_at, t.external_id))
        assert cursor is not None
        assert cursor.updated_at == last.updated_at
        assert (run.status, run.items_new, run.error_text) == (SyncStatus.SUCCEEDED, TICKETS, None)
        assert sleeps.waits == []

        again = self.sync(sessions, fake, config, sleeps, full=True)
        assert (again.new, again.updated, again.unchanged) == (0, 0, TICKETS)

        workspace.engine.dispose()  # checkpoint nothing away: read the main file and the WAL as they are
        stored = b"".join(p.read_bytes() for p in workspace.root.glob("runbook-desk.sqlite3*"))
        for secret in fake.settings().secrets.values():
            assert secret.encode() not in stored

    def test_incremental_sync_fetches_only_what_changed(
        self, fake: FakeSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        tickets = self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        assert self.sync(sessions, fake, config, sleeps).ok
        with sessions() as session:
            before = stored_cursor(session, config.id)
        assert before is not None and before.updated_at is not None
        changed = tickets[2]
        changed.title = "Printer on floor 3 is on fire"
        changed.updated_at = START + timedelta(hours=5)
        fake.add_ticket(changed)
        added = fake.new_ticket(TICKETS + 1, START + timedelta(hours=6))
        fake.add_ticket(added)
        fake.requests.clear()

        report = self.sync(sessions, fake, config, sleeps)
        assert report.ok, report.error
        assert (report.new, report.updated) == (1, 1)
        assert report.unchanged <= 2  # only the lookback overlap is re-read
        queries = fake.ticket_queries()
        assert queries, "no ticket query was sent"
        precision = connector_class(fake.connector_type).spec.timestamp_precision
        for since in queries:
            assert since is not None, "an incremental sync asked for everything"
            assert before.updated_at - 2 * precision - timedelta(minutes=1) <= since <= before.updated_at
        assert self.stored_title(sessions, changed.external_id) == "Printer on floor 3 is on fire"
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(self.record_model)) == TICKETS + 1

    @pytest.mark.parametrize("how", ["error", "cancelled"])
    def test_sync_killed_after_page_k_resumes_without_loss_or_duplicate(
        self, fake: FakeSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder, how: str
    ) -> None:
        tickets = self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        k = 2
        if how == "error":
            report = self.sync(
                sessions, fake, config, sleeps, progress=self.fail_after_page(fake, k, InjectedFailure(403))
            )
            assert report.status is SyncStatus.FAILED
            first_new = report.new
        else:
            with pytest.raises(SyncCancelledError):
                self.sync(sessions, fake, config, sleeps, progress=AfterPage(k, cancel=True))
            with sessions() as session:
                run = session.scalars(select(SyncRun)).one()
            assert run.status is SyncStatus.CANCELLED, (run.status, run.error_text)
            first_new = run.items_new
        stored = self.stored_ids(sessions, config)
        # A keyset connector may re-read a record or two of the minute it restarts at: k pages bring a little
        # less than k * PAGE new records, and the stored ones are the oldest.
        assert len(stored) == first_new and (k - 1) * PAGE < first_new <= k * PAGE
        newest_stored = max(t.updated_at for t in tickets if t.external_id in stored)
        assert all(t.updated_at >= newest_stored for t in tickets if t.external_id not in stored)
        with sessions() as session:
            cursor = stored_cursor(session, config.id)
        assert cursor is not None and cursor.updated_at == newest_stored

        resumed = self.sync(sessions, fake, config, sleeps)
        assert resumed.ok, resumed.error
        assert first_new + resumed.new == TICKETS
        assert resumed.updated == 0
        assert self.stored_ids(sessions, config) == sorted(t.external_id for t in tickets)

    def test_401_is_a_clear_error_without_a_retry_storm(
        self, fake: FakeSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        self.add_tickets(fake)
        config = self.make_config(sessions, fake, good_credentials=False)
        report = self.sync(sessions, fake, config, sleeps)
        assert report.status is SyncStatus.FAILED
        assert report.error is not None and config.name in report.error
        assert "401" in report.error or "authenticat" in report.error.lower()
        for secret in fake.settings(good_credentials=False).secrets.values():
            assert secret not in report.error
        assert len(fake.requests) <= 3
        assert sleeps.waits == []
        assert self.stored_ids(sessions, config) == []

    def test_429_waits_as_the_server_says(
        self, fake: FakeSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        progress = self.fail_after_page(fake, 1, InjectedFailure(429, headers={"Retry-After": "7"}))
        report = self.sync(sessions, fake, config, sleeps, progress=progress)
        assert report.ok, report.error
        assert len(sleeps.waits) == 1 and 7 <= sleeps.waits[0] <= 7 + JITTER
        assert report.new == TICKETS

    def test_429_with_a_rate_limit_reset_time(
        self, fake: FakeSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        reset = str(int(time.time()) + 30)
        progress = self.fail_after_page(fake, 1, InjectedFailure(429, headers={"X-RateLimit-Reset": reset}))
        report = self.sync(sessions, fake, config, sleeps, progress=progress)
        assert report.ok, report.error
        assert len(sleeps.waits) == 1 and 27 <= sleeps.waits[0] <= 30 + JITTER

    def test_500_then_success(
        self, fake: FakeSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        report = self.sync(
            sessions, fake, config, sleeps, progress=self.fail_after_page(fake, 1, InjectedFailure(500))
        )
        assert report.ok, report.error
        assert report.new == TICKETS
        assert len(sleeps.waits) == 1

    def test_malformed_json_is_a_clear_error_naming_connector_and_path(
        self, fake: FakeSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        progress = self.fail_after_page(fake, 1, InjectedFailure(malformed=True))
        report = self.sync(sessions, fake, config, sleeps, progress=progress)
        assert report.status is SyncStatus.FAILED
        assert report.error is not None
        assert config.name in report.error
        # The failing request is the last listing (a logout that close() sends afterwards may follow it).
        assert self.ticket_query_paths(fake)[-1] in report.error
        assert "json" in report.error.lower()
        assert len(self.stored_ids(sessions, config)) == PAGE  # the first page stays stored

    def test_empty_result(
        self, fake: FakeSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        config = self.make_config(sessions, fake)
        report = self.sync(sessions, fake, config, sleeps)
        assert report.ok, report.error
        assert (report.new, report.updated, report.unchanged, report.failed) == (0, 0, 0, 0)
        with sessions() as session:
            assert stored_cursor(session, config.id) is None
        again = self.sync(sessions, fake, config, sleeps)
        assert again.ok and again.new == 0

    def test_dropped_connection_mid_page_is_retried(
        self, fake: FakeSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        report = self.sync(
            sessions, fake, config, sleeps, progress=self.fail_after_page(fake, 1, InjectedFailure(drop=True))
        )
        assert report.ok, report.error
        assert report.new == TICKETS
        assert len(sleeps.waits) == 1

    def test_connection_that_keeps_dropping_fails_clearly(
        self, fake: FakeSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        progress = self.fail_after_page(fake, 1, InjectedFailure(drop=True), times=20)
        report = self.sync(sessions, fake, config, sleeps, progress=progress)
        assert report.status is SyncStatus.FAILED
        assert report.error is not None and "dropped" in report.error and config.name in report.error
        assert len(self.stored_ids(sessions, config)) == PAGE
        fake.failures.clear()

    # --- records moving under the sync, and servers that page wrongly ------------------------------------

    def test_a_ticket_updated_mid_sync_does_not_hide_an_unread_one(
        self, fake: FakeSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        """An edit moves a ticket read on page one to the end of the order; plain offset paging would then
        skip the unread ticket that slides back across the page boundary, for good."""
        tickets = self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        edited = tickets[0]

        def edit() -> None:
            edited.title = "Printer on floor 1 caught fire"
            edited.updated_at = START + timedelta(hours=5)
            fake.add_ticket(edited)

        report = self.sync(sessions, fake, config, sleeps, progress=AfterPage(1, edit))
        assert report.ok, report.error
        assert self.stored_ids(sessions, config) == sorted(t.external_id for t in tickets)
        assert (report.new, report.updated) == (TICKETS, 1)  # the edit read again, as an update
        assert self.stored_title(sessions, edited.external_id) == "Printer on floor 1 caught fire"

    def test_a_server_repeating_its_first_page_is_stopped_with_a_clear_error(
        self,
        fake: FakeSystem,
        faulty: FaultyServer,
        sessions: sessionmaker[TenantSession],
        sleeps: SleepRecorder,
    ) -> None:
        """The same records for ever, with "more" always said: filter and position both ignored."""
        self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        fake.misbehaviour = Misbehaviour.SAME_PAGE_FOREVER
        report = self.sync_through(faulty, sessions, config, sleeps)
        assert report.status is SyncStatus.FAILED
        assert report.error is not None and "does not advance" in report.error
        assert config.name in report.error
        paths = self.ticket_query_paths(fake)
        assert paths[-1] in report.error
        assert len(paths) <= GUARD_REQUESTS
        assert len(self.stored_ids(sessions, config)) <= PAGE

    @pytest.mark.parametrize("misbehaviour", [Misbehaviour.IGNORES_FILTER, Misbehaviour.IGNORES_PAGE_TOKEN])
    def test_a_server_ignoring_a_filter_cannot_make_the_sync_loop(
        self,
        fake: FakeSystem,
        faulty: FaultyServer,
        sessions: sessionmaker[TenantSession],
        sleeps: SleepRecorder,
        misbehaviour: Misbehaviour,
    ) -> None:
        """Ignoring the time filter (a keyset bound) or the offset / page token: a connector whose paging
        needs what was ignored is stopped by the guard within a few requests; one whose paging does not
        (an opaque token past an ignored filter, a keyset past an ignored offset it never sends) reads every
        ticket once and ends."""
        tickets = self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        fake.misbehaviour = misbehaviour
        report = self.sync_through(faulty, sessions, config, sleeps)
        paths = self.ticket_query_paths(fake)
        assert len(paths) <= GUARD_REQUESTS
        if report.ok:
            assert report.new == TICKETS
            assert self.stored_ids(sessions, config) == sorted(t.external_id for t in tickets)
        else:
            assert report.error is not None and "does not advance" in report.error
            assert config.name in report.error and paths[-1] in report.error

    # --- a faulty server on a real socket: every fault ends in a clear error, quickly ---------------------

    def test_the_faulty_server_serves_a_normal_sync(
        self,
        fake: FakeSystem,
        faulty: FaultyServer,
        sessions: sessionmaker[TenantSession],
        sleeps: SleepRecorder,
    ) -> None:
        """The baseline of the fault tests: through the real socket (streamed, limits on) all is stored."""
        tickets = self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        report = self.sync_through(faulty, sessions, config, sleeps)
        assert report.ok, report.error
        assert self.stored_ids(sessions, config) == sorted(t.external_id for t in tickets)
        assert faulty.requests and faulty.faults_served == 0

    @pytest.mark.parametrize("fault", [Fault.HUGE_BODY, Fault.ENDLESS_STREAM])
    def test_an_answer_larger_than_the_limit_stops_there(
        self,
        fake: FakeSystem,
        faulty: FaultyServer,
        sessions: sessionmaker[TenantSession],
        sleeps: SleepRecorder,
        fault: Fault,
    ) -> None:
        """A 2 GiB body is refused on its announced length, an endless stream at the limit: never read into
        memory, never retried, the first page kept."""
        self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        faulty.fault, faulty.fault_after = fault, 1
        report = self.sync_through(faulty, sessions, config, sleeps)
        self.assert_failed_clearly(
            sessions, faulty, config, report, "larger than the response limit of 256 KiB"
        )
        assert faulty.faults_served == 1
        assert len(self.stored_ids(sessions, config)) == PAGE

    def test_a_dripping_answer_ends_at_the_request_deadline(
        self,
        fake: FakeSystem,
        faulty: FaultyServer,
        sessions: sessionmaker[TenantSession],
        sleeps: SleepRecorder,
    ) -> None:
        """A byte at a time keeps restarting the read timeout; the wall-clock deadline ends it anyway."""
        self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        faulty.fault = Fault.BYTE_DRIP
        report = self.sync_through(faulty, sessions, config, sleeps, limits=DEADLINE_LIMITS)
        self.assert_failed_clearly(
            sessions, faulty, config, report, f"did not arrive whole within the time limit of {DEADLINE_TEXT}"
        )
        assert report.elapsed_s < DEADLINE_LIMITS.request_deadline_s + 5
        assert faulty.faults_served == 1  # the deadline covers every try: none is left

    def test_a_server_that_never_answers_ends_at_the_deadline_and_the_wait_shows(
        self,
        fake: FakeSystem,
        faulty: FaultyServer,
        sessions: sessionmaker[TenantSession],
        sleeps: SleepRecorder,
    ) -> None:
        self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        faulty.fault = Fault.SILENT
        progress = AfterPage(0)
        report = self.sync_through(
            faulty, sessions, config, sleeps, limits=DEADLINE_LIMITS, progress=progress
        )
        self.assert_failed_clearly(
            sessions, faulty, config, report, f"no answer within the time limit of {DEADLINE_TEXT}"
        )
        assert report.error is not None and "1 try" in report.error
        path = below_base(config, faulty.listing_paths()[-1])
        assert any(path in m and "waiting for" in m and config.name in m for m in progress.messages), (
            progress.messages
        )

    def test_the_sync_deadline_ends_the_run_keeps_its_pages_and_the_next_run_resumes(
        self,
        fake: FakeSystem,
        faulty: FaultyServer,
        sessions: sessionmaker[TenantSession],
        sleeps: SleepRecorder,
    ) -> None:
        """A retry whose wait would pass the run's time limit is not waited for: the run ends at once."""
        self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        busy = InjectedFailure(429, headers={"Retry-After": "30"})
        limits = replace(FAULT_LIMITS, request_deadline_s=5.0, run_deadline_s=2.0)
        report = self.sync_through(
            faulty, sessions, config, sleeps, limits=limits, progress=self.fail_after_page(fake, 1, busy)
        )
        self.assert_failed_clearly(sessions, faulty, config, report, "the sync's time limit of 2 s")
        assert sleeps.waits == []
        first = len(self.stored_ids(sessions, config))
        assert first == report.new == PAGE

        resumed = self.sync_through(faulty, sessions, config, sleeps)
        assert resumed.ok, resumed.error
        assert report.new + resumed.new == TICKETS and resumed.updated == 0

    @pytest.mark.parametrize("status", [400, 200])
    def test_a_server_echoing_the_request_gets_no_secret_back_out(
        self,
        fake: FakeSystem,
        faulty: FaultyServer,
        sessions: sessionmaker[TenantSession],
        sleeps: SleepRecorder,
        caplog: pytest.LogCaptureFixture,
        status: int,
    ) -> None:
        """Every request (a login, a token exchange too) answered with what it carried, credentials in any
        encoding first: none of it reaches the error, the stored run or the log."""
        caplog.set_level(logging.INFO)
        self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        faulty.fault, faulty.fault_every_request, faulty.echo_status = Fault.ECHO, True, status
        report = self.sync_through(faulty, sessions, config, sleeps)
        assert report.status is SyncStatus.FAILED
        assert report.error is not None and config.name in report.error
        assert any(below_base(config, seen.path) in report.error for seen in faulty.requests)
        with sessions() as session:
            stored_error = session.scalars(select(SyncRun.error_text)).one() or ""
        forms = secret_forms(fake.settings())
        for text in (report.error, stored_error, caplog.text):
            leaked = [form for form in forms if form in text]
            assert leaked == [], f"{leaked} in {text!r}"

    @pytest.mark.parametrize("fault", [Fault.REDIRECT_AWAY, Fault.REDIRECT_LOOP])
    def test_a_redirect_is_reported_and_the_credentials_stay_here(
        self,
        fake: FakeSystem,
        faulty: FaultyServer,
        sessions: sessionmaker[TenantSession],
        sleeps: SleepRecorder,
        fault: Fault,
    ) -> None:
        self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        with FaultyServer() as elsewhere:
            faulty.fault, faulty.elsewhere = fault, elsewhere
            report = self.sync_through(faulty, sessions, config, sleeps)
            away = f"another address, {elsewhere.url}/"
        assert elsewhere.requests == []  # not followed: nothing, credentials least of all, went there
        expected = away if fault is Fault.REDIRECT_AWAY else "a redirect loop"
        self.assert_failed_clearly(sessions, faulty, config, report, expected)
        assert faulty.faults_served == 1  # neither followed nor retried

    def test_a_sign_in_page_instead_of_json_is_a_clear_error(
        self,
        fake: FakeSystem,
        faulty: FaultyServer,
        sessions: sessionmaker[TenantSession],
        sleeps: SleepRecorder,
    ) -> None:
        self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        faulty.fault = Fault.HTML_LOGIN
        report = self.sync_through(faulty, sessions, config, sleeps)
        self.assert_failed_clearly(
            sessions, faulty, config, report, "an HTML page where the API answers JSON"
        )
        assert faulty.faults_served == 1

    def test_cursor_round_trips_through_the_store(self, fake: FakeSystem) -> None:
        cursor = Cursor(START, "X-1", {"token": "abc"})
        assert Cursor.from_state(cursor.to_state()) == cursor


class StandardMonitoringSuite(StandardConnectorSuite):
    """The standard suite plus what a monitoring connector owes the deduplication (issue 13): its records are
    alert events, a repeat of one alert is one more occurrence of it, and a recovery resolves it.

    Its fake is a :class:`~connectors.testing.fake_system.FakeMonitoringSystem`: ``new_ticket`` makes a
    record of a distinct alert (its own monitor or trigger), :meth:`~FakeMonitoringSystem.repeat` the same
    alert firing again, :meth:`~FakeMonitoringSystem.recover` its recovery in the vendor's terms.
    """

    fake_cls: ClassVar[type[FakeMonitoringSystem]]

    # --- an event stream has no edits: the two edit tests become their new-record counterparts ------------

    def test_incremental_sync_fetches_only_what_changed(
        self, fake: FakeSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        assert isinstance(fake, FakeMonitoringSystem)
        if not fake.records_are_immutable:
            super().test_incremental_sync_fetches_only_what_changed(fake, sessions, sleeps)
            return
        self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        assert self.sync(sessions, fake, config, sleeps).ok
        with sessions() as session:
            before = stored_cursor(session, config.id)
        assert before is not None and before.updated_at is not None
        added = [fake.new_ticket(TICKETS + n, START + timedelta(hours=5 + n)) for n in (1, 2)]
        for record in added:
            fake.add_ticket(record)
        fake.requests.clear()

        report = self.sync(sessions, fake, config, sleeps)
        assert report.ok, report.error
        assert (report.new, report.updated) == (2, 0)
        assert report.unchanged <= 2  # only the lookback overlap is re-read
        queries = fake.ticket_queries()
        assert queries, "no listing request was sent"
        precision = connector_class(fake.connector_type).spec.timestamp_precision
        for since in queries:
            assert since is not None, "an incremental sync asked for everything"
            assert before.updated_at - 2 * precision - timedelta(minutes=1) <= since
        assert self.stored_title(sessions, added[1].external_id) == added[1].title
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(self.record_model)) == TICKETS + 2

    def test_a_ticket_updated_mid_sync_does_not_hide_an_unread_one(
        self, fake: FakeSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        assert isinstance(fake, FakeMonitoringSystem)
        if not fake.records_are_immutable:
            super().test_a_ticket_updated_mid_sync_does_not_hide_an_unread_one(fake, sessions, sleeps)
            return
        tickets = self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        late = fake.new_ticket(TICKETS + 1, START + timedelta(hours=5))
        report = self.sync(
            sessions, fake, config, sleeps, progress=AfterPage(1, lambda: fake.add_ticket(late))
        )
        assert report.ok, report.error
        assert self.sync(
            sessions, fake, config, sleeps
        ).ok  # what arrived mid-sync is read by now at the latest
        assert self.stored_ids(sessions, config) == sorted(t.external_id for t in [*tickets, late])

    def alerts(self, sessions: sessionmaker[TenantSession]) -> list[MonitoringAlert]:
        with sessions() as session:
            rows = list(session.scalars(select(MonitoringAlert).order_by(MonitoringAlert.id)))
            session.expunge_all()
            return rows

    def alert_of(self, sessions: sessionmaker[TenantSession], external_id: str) -> MonitoringAlert:
        with sessions() as session:
            event = session.scalars(
                select(MonitoringEvent).where(MonitoringEvent.external_id == external_id)
            ).one()
            alert = session.get_one(MonitoringAlert, event.alert_id)
            session.expunge(alert)
            return alert

    def test_every_record_is_one_alert_with_its_fields(
        self, fake: FakeMonitoringSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        tickets = self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        assert self.sync(sessions, fake, config, sleeps).ok
        alerts = self.alerts(sessions)
        assert len(alerts) == TICKETS
        for alert in alerts:
            assert alert.occurrence_count == 1
            assert alert.title and alert.severity in {"critical", "high", "warning", "info"}
            assert alert.first_seen == alert.last_seen
            assert alert.source_system == fake.connector_type
        assert {a.external_id for a in alerts} == {t.external_id for t in tickets}

    def test_a_repeat_is_one_more_occurrence_of_its_alert(
        self, fake: FakeMonitoringSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        tickets = self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        assert self.sync(sessions, fake, config, sleeps).ok
        fired_again = fake.repeat(tickets[4], TICKETS + 1, START + timedelta(hours=3))
        report = self.sync(sessions, fake, config, sleeps)
        assert report.ok, report.error
        assert report.new == 1
        assert len(self.alerts(sessions)) == TICKETS  # 13 events, 12 alerts
        alert = self.alert_of(sessions, fired_again.external_id)
        assert alert.occurrence_count == 2
        assert alert.last_seen == START + timedelta(hours=3)
        assert alert.last_seen > alert.first_seen
        assert alert.status is not AlertStatus.RESOLVED
        assert alert.id == self.alert_of(sessions, tickets[4].external_id).id
        again = self.sync(sessions, fake, config, sleeps, full=True)  # re-reading counts nothing twice
        assert again.ok and again.new == 0
        assert self.alert_of(sessions, fired_again.external_id).occurrence_count == 2

    def test_a_recovery_resolves_its_alert(
        self, fake: FakeMonitoringSystem, sessions: sessionmaker[TenantSession], sleeps: SleepRecorder
    ) -> None:
        tickets = self.add_tickets(fake)
        config = self.make_config(sessions, fake)
        assert self.sync(sessions, fake, config, sleeps).ok
        assert self.alert_of(sessions, tickets[1].external_id).status is not AlertStatus.RESOLVED
        fake.recover(tickets[1], START + timedelta(hours=4))
        report = self.sync(sessions, fake, config, sleeps)
        assert report.ok, report.error
        alert = self.alert_of(sessions, tickets[1].external_id)
        assert alert.status is AlertStatus.RESOLVED
        assert alert.resolved_at == START + timedelta(hours=4)
        assert alert.occurrence_count == 1
        others = [self.alert_of(sessions, t.external_id) for t in tickets if t is not tickets[1]]
        assert all(other.status is not AlertStatus.RESOLVED for other in others)
