"""The base of every local fake external system: what the standard connector suite drives.

Test support shipped for connector authors (plugins included): a plugin's tests subclass :class:`FakeSystem`
for their own vendor and run :class:`~connectors.testing.standard_suite.StandardConnectorSuite` against it.

A fake keeps tickets in memory and answers requests through ``httpx.MockTransport`` in the real API's shapes
(paths, auth, cursor filtering, pagination, error bodies, rate-limit headers). Like airbyte's ``HttpMocker``,
a fake fails the test on a request it does not understand: :meth:`FakeSystem.not_understood` raises
:class:`UnexpectedRequestError` naming the method and path (and records it in ``unexpected``, which the suite
checks too, for code paths that catch everything) rather than guessing an answer. Tests inject failures for
the next requests: a status in the vendor's own error shape, a 429 with its headers, a dropped connection, a
malformed body; and :attr:`FakeSystem.misbehaviour` makes the server page wrongly, for the no-progress guard.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, NoReturn

import httpx

from connectors.base import ConnectorSettings


class UnexpectedRequestError(AssertionError):
    """A connector sent a request its fake does not understand: the test fails here, naming it.

    An AssertionError, so no connector code path catches it as a connector error and carries on.
    """


class Misbehaviour(enum.Enum):
    """How a fake server can page wrongly; each fake implements all three in its own API's terms."""

    # The listing's filter (the cursor's "updated since", a keyset bound) is ignored: every request
    # lists from the start, while the offset or page token and the "more" flag still work.
    IGNORES_FILTER = "ignores_filter"
    # The offset or page token is ignored: every request answers the first page of what its filter selects
    # and says there is more while that selection is longer than a page. (A connector that pages by its
    # filter alone, a keyset, sends no offset or token: for it this is the normal server.)
    IGNORES_PAGE_TOKEN = "ignores_page_token"
    # Every listing request answers the first page again, and says there is more: filter and position
    # both ignored.
    SAME_PAGE_FOREVER = "same_page_forever"

    @property
    def ignores_filter(self) -> bool:
        return self is not Misbehaviour.IGNORES_PAGE_TOKEN

    @property
    def ignores_page_token(self) -> bool:
        return self is not Misbehaviour.IGNORES_FILTER


@dataclass
class FakeTicket:
    """One ticket as the fake system holds it; each fake renders it in its own API's shape."""

    external_id: str
    title: str
    description: str
    updated_at: datetime  # aware, UTC
    created_at: datetime
    status: str = "New"
    severity: str = "3"
    resolution_notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class InjectedFailure:
    status: int | None = None  # None with drop=True: the connection drops
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str = "injected failure"
    drop: bool = False
    malformed: bool = False  # a 200 whose body is not JSON


class FakeSystem(ABC):
    connector_type: ClassVar[str]
    base_url: str = "https://fake.example.com"  # a fake may set its own per instance (Jira Cloud or DC)

    def __init__(self) -> None:
        self.tickets: dict[str, FakeTicket] = {}
        self.requests: list[httpx.Request] = []
        self.unexpected: list[str] = []
        self.failures: list[InjectedFailure] = []
        self.page_size = 50  # the server's own maximum page size
        self.misbehaviour: Misbehaviour | None = None

    # --- what tests call ------------------------------------------------------------------------------

    @abstractmethod
    def settings(self, *, good_credentials: bool = True) -> ConnectorSettings:
        """Settings (with secrets) for a connector pointed at this fake; wrong secrets when asked."""

    def add_ticket(self, ticket: FakeTicket) -> None:
        self.tickets[ticket.external_id] = ticket

    def new_ticket(self, number: int, updated_at: datetime) -> FakeTicket:
        """A plausible ticket numbered ``number``; a fake whose ids look otherwise (``PRJ-7``) overrides this.

        ``external_id`` must be what the connector stores as ``TicketValues.external_id``: the standard
        suite compares the stored rows with the fake's tickets by it.
        """
        return FakeTicket(
            external_id=f"T{number:05d}",
            title=f"Ticket {number}: printer on floor {number % 7} jams",
            description=f"Reported by user {number}. Paper jam in tray 2.",
            updated_at=updated_at,
            created_at=updated_at,
        )

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def fail_next(self, failure: InjectedFailure, times: int = 1) -> None:
        self.failures.extend([failure] * times)

    def ticket_queries(self) -> list[datetime | None]:
        """The "updated since" each ticket-listing request asked for (None: no filter), in order.

        The standard suite asserts on these: an incremental sync must ask for what changed, not everything.
        """
        return [self.query_since(r) for r in self.requests if self.is_ticket_query(r)]

    def is_ticket_query(self, request: httpx.Request) -> bool:
        """True for a request that lists tickets (not a login, a probe of the user, a token exchange)."""
        raise NotImplementedError(f"{type(self).__name__} must say which requests list tickets")

    def query_since(self, request: httpx.Request) -> datetime | None:
        """The lower bound on "updated" in a ticket-listing request, parsed from the vendor's query (aware,
        UTC), or None when the request has no such filter."""
        raise NotImplementedError(f"{type(self).__name__} must parse its own cursor query")

    # --- what subclasses implement ----------------------------------------------------------------------

    @abstractmethod
    def route(self, request: httpx.Request) -> httpx.Response:
        """Answer one request as the real system would (auth checked, cursor query applied, paged)."""

    @abstractmethod
    def error_response(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """An error in the vendor's own body shape."""

    # ----------------------------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.failures:
            failure = self.failures.pop(0)
            if failure.drop:
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                )
            if failure.malformed:
                return httpx.Response(
                    200, text="<html><body>Maintenance</body></html>", headers={"Content-Type": "text/html"}
                )
            assert failure.status is not None
            return self.error_response(failure.status, failure.message, failure.headers)
        return self.route(request)

    def not_understood(self, request: httpx.Request) -> NoReturn:
        """Fail the test: the connector sent something the real server would not answer as it expects."""
        description = f"{request.method} {request.url.path}"
        self.unexpected.append(description)
        raise UnexpectedRequestError(f"fake {self.connector_type} does not understand {description}")


class FakeMonitoringSystem(FakeSystem):
    """A fake monitoring system (Zabbix, Datadog, SolarWinds): its "tickets" are alert records (a problem, an
    event, an active alert), each of a distinct alert unless made by :meth:`repeat`.

    For the monitoring part of the standard suite
    (:class:`~connectors.testing.standard_suite.StandardMonitoringSuite`); ``extra`` of a
    :class:`FakeTicket` holds what the vendor's record needs (monitor or trigger id, host, severity).
    """

    # True for an event stream (Zabbix events, Datadog events, SolarWinds alert history): a record never
    # changes once written, so the suite's "edit a record" tests become "add a record" tests.
    records_are_immutable: ClassVar[bool] = False

    @abstractmethod
    def repeat(self, ticket: FakeTicket, number: int, at: datetime) -> FakeTicket:
        """Add and return a new record (numbered ``number``) of the same alert as ``ticket`` (same monitor
        or trigger, host and title) firing again at ``at``."""

    @abstractmethod
    def recover(self, ticket: FakeTicket, at: datetime) -> None:
        """``ticket``'s alert recovers at ``at``, as the vendor reports it: the record updated with its
        recovery (Zabbix ``r_eventid``, a SolarWinds reset) or a recovery record added (a Datadog
        "Recovered" event)."""
