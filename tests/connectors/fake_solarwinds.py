"""A local fake SolarWinds Orion (SWIS REST, ``/SolarWinds/InformationService/v3/Json/Query``).

It answers only the SWQL the connector sends, parsed rather than matched blindly: the probe
(``SELECT TOP n AlertHistoryID FROM Orion.AlertHistory``) and the history listing (``TOP n``, the columns it
names with their aliases, the ``EventType IN (...)`` filter, the optional keyset on ``@since``/``@after_id``,
the order). Any other query, or a value written into the query text instead of ``parameters``, fails the
test (:meth:`not_understood`). In the real shapes: ``{"results": [...]}``; dates with seven fractional
digits, every other one ending in ``Z``; ``Context`` sometimes the literal string "null"; errors as
``{"Message", "ExceptionType", "FullException"}``; a wrong password answered 403 with an empty body (the
Windows HTTP stack refuses it before SWIS), a missing one 401.

Records are history rows (an event stream, never edited): :meth:`repeat` adds a trigger row of the same
alert object, :meth:`recover` a reset row, :meth:`acknowledge` an acknowledgement row.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx

from connectors.base import ConnectorSettings
from connectors.testing.fake_system import FakeMonitoringSystem, FakeTicket

USERNAME = "CORP\\svc-runbook"
PASSWORD = "swis-Pa55word-8e1"
HOST_URL = "https://orion.fake.example.com"
QUERY_PATH = "/SolarWinds/InformationService/v3/Json/Query"

_PROBE = re.compile(r"SELECT TOP (\d+) AlertHistoryID FROM Orion\.AlertHistory")
_LISTING = re.compile(
    r"SELECT TOP (?P<top>\d+) (?P<columns>.+?) FROM Orion\.AlertHistory ah"
    r" WHERE ah\.EventType IN \((?P<types>\d+(?:, \d+)*)\)"
    r"(?P<keyset> AND \(ah\.TimeStamp > @since"
    r" OR \(ah\.TimeStamp = @since AND ah\.AlertHistoryID > @after_id\)\))?"
    r" ORDER BY ah\.TimeStamp, ah\.AlertHistoryID"
)
_COLUMN = re.compile(r"(?P<expression>[A-Za-z.]+) AS (?P<alias>[A-Za-z]+)")
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,7}))?Z?")

TRIGGERED, RESET, ACKNOWLEDGED, NOTE, ACTION_SUCCEEDED = 0, 1, 2, 3, 6


def ticks(text: str) -> int:
    """A SWIS date (as the fake renders it or the connector sends it) as 100-ns ticks since 1970, UTC."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(text)
    whole = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)
    return int(whole.timestamp()) * 10_000_000 + int((match.group(2) or "").ljust(7, "0"))


class FakeSolarWinds(FakeMonitoringSystem):
    connector_type: ClassVar[str] = "solarwinds"
    base_url: str = f"{HOST_URL}:17774"
    records_are_immutable: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.denied_message: str | None = None  # set: SWIS refuses the account (403 with a Message)
        self.queries: list[dict[str, Any]] = []  # every body received, for tests on what was sent

    # --- what tests call -----------------------------------------------------------------------------------

    def settings(self, *, good_credentials: bool = True, **options: Any) -> ConnectorSettings:
        """The server's address without its port: the port field (17774) supplies it, as the wizard does."""
        return ConnectorSettings(
            "Fake Orion",
            HOST_URL,
            "basic",
            {"username": USERNAME, "port": 17774, **options},
            {"password": PASSWORD if good_credentials else "not-the-password"},
        )

    def new_ticket(self, number: int, updated_at: datetime) -> FakeTicket:
        """A trigger row of its own alert on its own node. History ids are numbers (so 10 sorts after 9)."""
        return FakeTicket(
            external_id=str(number),
            title=f"High CPU load on srv-{number:02d}",
            description=f"CPU load on srv-{number:02d} is {80 + number} % for 5 minutes",
            updated_at=updated_at,
            created_at=updated_at,
            extra={
                "event_type": TRIGGERED,
                "alert_id": 40 + number,
                "object_id": 900 + number,
                "node": f"srv-{number:02d}",
                "entity": f"srv-{number:02d}",
                "entity_type": "Orion.Nodes",
                "severity": number % 5,
                "context": "null" if number % 2 else json.dumps({"NodeID": number}),
                "description": "Fires when the CPU load stays above 90 % for 5 minutes",
                "tick": number % 10,  # the seventh fractional digit
            },
        )

    def _next_id(self) -> int:
        return max((int(i) for i in self.tickets), default=0) + 1

    def add_row(self, ticket: FakeTicket, event_type: int, at: datetime, **changes: Any) -> FakeTicket:
        record = FakeTicket(
            external_id=str(changes.pop("number", None) or self._next_id()),
            title=ticket.title,
            description=changes.pop("message", ticket.description),
            updated_at=at,
            created_at=at,
            extra={**ticket.extra, "event_type": event_type, "tick": 0, **changes},
        )
        self.add_ticket(record)
        return record

    def repeat(self, ticket: FakeTicket, number: int, at: datetime) -> FakeTicket:
        return self.add_row(ticket, TRIGGERED, at, number=number)

    def recover(self, ticket: FakeTicket, at: datetime) -> None:
        self.add_row(ticket, RESET, at, message="Alert reset")

    def acknowledge(self, ticket: FakeTicket, at: datetime, account: str = "alice") -> FakeTicket:
        return self.add_row(ticket, ACKNOWLEDGED, at, message="Looking into it", account=account)

    def is_ticket_query(self, request: httpx.Request) -> bool:
        if request.method != "POST" or request.url.path != QUERY_PATH:
            return False
        body = self._body(request)
        return body is not None and _LISTING.fullmatch(str(body.get("query", ""))) is not None

    def query_since(self, request: httpx.Request) -> datetime | None:
        body = self._body(request) or {}
        match = _LISTING.fullmatch(str(body.get("query", "")))
        if match is None or not match.group("keyset"):
            return None
        since = ticks(str(body["parameters"]["since"]))
        return datetime.fromtimestamp(since // 10_000_000, UTC).replace(
            microsecond=(since % 10_000_000) // 10
        )

    # --- the API -----------------------------------------------------------------------------------------

    def error_response(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        fault = "SolarWinds.InformationService.Contract2.InfoServiceFaultContract"
        body = {
            "Message": message,
            "ExceptionType": fault,
            "FullException": f"{fault}: {message}\r\n"
            "   at SolarWinds.InformationService.Core.InformationService.Query(...)",
        }
        return httpx.Response(status, json=body, headers=dict(headers or {}))

    def route(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or request.url.path != QUERY_PATH:
            return self.not_understood(request)
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="SolarWinds"'})
        user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        if (user, password) != (USERNAME, PASSWORD):
            return httpx.Response(403)  # refused before SWIS: no body, no Message
        if self.denied_message is not None:
            return self.error_response(403, self.denied_message)
        body = self._body(request)
        if body is None or set(body) != {"query", "parameters"}:
            return self.not_understood(request)
        self.queries.append(body)
        query, parameters = str(body["query"]), body["parameters"]
        probe = _PROBE.fullmatch(query)
        if probe is not None and parameters == {}:
            rows = sorted(self.tickets.values(), key=lambda t: int(t.external_id))[: int(probe.group(1))]
            return httpx.Response(
                200, json={"results": [{"AlertHistoryID": int(t.external_id)} for t in rows]}
            )
        listing = _LISTING.fullmatch(query)
        if listing is None:
            return self.not_understood(request)
        return self._listing(request, listing, parameters)

    @staticmethod
    def _body(request: httpx.Request) -> dict[str, Any] | None:
        try:
            body = json.loads(request.content or b"null")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _listing(self, request: httpx.Request, listing: re.Match[str], parameters: Any) -> httpx.Response:
        columns: list[tuple[str, Callable[[FakeTicket], Any]]] = []
        for text in listing.group("columns").split(", "):
            column = _COLUMN.fullmatch(text)
            if column is None or column.group("expression") not in COLUMNS:
                return self.not_understood(request)
            columns.append((column.group("alias"), COLUMNS[column.group("expression")]))
        types = {int(t) for t in listing.group("types").split(", ")}
        rows = [t for t in self.tickets.values() if t.extra["event_type"] in types]
        if listing.group("keyset"):
            if not isinstance(parameters, dict) or set(parameters) != {"since", "after_id"}:
                return self.not_understood(request)
            since, after_id = parameters["since"], parameters["after_id"]
            if not isinstance(since, str) or not isinstance(after_id, int) or isinstance(after_id, bool):
                return self.not_understood(request)
            bound = ticks(since)
            if not (self.misbehaviour is not None and self.misbehaviour.ignores_filter):
                rows = [
                    t
                    for t in rows
                    if _ticks_of(t) > bound or (_ticks_of(t) == bound and int(t.external_id) > after_id)
                ]
        elif parameters != {}:
            return self.not_understood(request)
        rows.sort(key=lambda t: (_ticks_of(t), int(t.external_id)))
        page = rows[: int(listing.group("top"))]  # SWIS has no cap of its own on TOP
        return httpx.Response(
            200, json={"results": [{alias: value(t) for alias, value in columns} for t in page]}
        )


def render_time(ticket: FakeTicket) -> str:
    """Seven fractional digits; rows with an odd id end in ``Z``, the others carry no zone (both UTC)."""
    zone = "Z" if int(ticket.external_id) % 2 else ""
    return f"{ticket.updated_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}{ticket.extra.get('tick', 0)}{zone}"


def _ticks_of(ticket: FakeTicket) -> int:
    return ticks(render_time(ticket))


# The SWQL expressions the fake can answer, each from the record it keeps.
COLUMNS: dict[str, Callable[[FakeTicket], Any]] = {
    "ah.AlertHistoryID": lambda t: int(t.external_id),
    "ah.EventType": lambda t: t.extra["event_type"],
    "ah.Message": lambda t: t.description,
    "ah.TimeStamp": render_time,
    "ah.AccountID": lambda t: t.extra.get("account", ""),
    "ah.AlertObjectID": lambda t: t.extra["object_id"],
    "ah.AlertObjects.AlertID": lambda t: t.extra["alert_id"],
    "ah.AlertObjects.EntityType": lambda t: t.extra["entity_type"],
    "ah.AlertObjects.EntityCaption": lambda t: t.extra["entity"],
    "ah.AlertObjects.RelatedNodeCaption": lambda t: t.extra.get("node"),
    "ah.AlertObjects.Context": lambda t: t.extra["context"],
    "ah.AlertObjects.AlertConfigurations.Name": lambda t: t.title,
    "ah.AlertObjects.AlertConfigurations.Severity": lambda t: t.extra["severity"],
    "ah.AlertObjects.AlertConfigurations.Description": lambda t: t.extra["description"],
}
