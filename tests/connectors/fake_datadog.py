"""A local fake of Datadog's API on one site, answering in the real shapes.

What it reproduces, because each one is a way a Datadog connector breaks:

- the two key headers on every request (``DD-API-KEY``, ``DD-APPLICATION-KEY``; ``/api/v1/validate`` needs
  only the API key), a wrong one answered as Datadog does: **403** ``{"errors": ["Forbidden"]}``, not 401;
- ``GET /api/v2/events``: ``filter[query]`` (``source:alert`` and tag terms), ``filter[from]`` /
  ``filter[to]`` in milliseconds (without ``filter[from]`` only the last 15 minutes, as the real default),
  ``sort=timestamp``, ``page[limit]`` capped at the server's page size, an opaque ``meta.page.after`` cursor
  taken back as ``page[cursor]`` and bound to its query, and ``{"data": []}`` after the last page; each event
  a JSON:API record whose ``attributes.attributes`` hold monitor_id, status, a prefixed title
  (``[P2] [Triggered on {host:web-01}] ...``), hostname, service, tags, a millisecond timestamp and a numeric
  ``evt.id`` string beyond 2**53;
- ``GET /api/v1/monitor``: ``page`` / ``page_size``, a bare array, with query, priority and overall_state;
- errors as ``{"errors": [...]}``; a 429 with an empty body and the ``X-RateLimit-*`` headers (its reset in
  seconds from now);
- the three :class:`~connectors.testing.fake_system.Misbehaviour` modes on the event listing.

Unknown paths and parameters fail the test (:class:`~connectors.testing.fake_system.UnexpectedRequestError`).
"""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from connectors.base import ConnectorSettings
from connectors.testing.fake_system import FakeMonitoringSystem, FakeTicket

API_KEY = "dd-api-key-0123456789abcdef"
APPLICATION_KEY = "dd-app-key-fedcba9876543210abcd"
EVT_ID_BASE = 7_420_000_000_000_000_000  # evt.id values are this large: beyond 2**53, sent as strings
EVENTS_PARAMS = {"filter[query]", "filter[from]", "filter[to]", "sort", "page[limit]", "page[cursor]"}
MONITOR_PARAMS = {"page", "page_size"}


def rate_limit_headers(reset_seconds: int = 6) -> dict[str, str]:
    """Datadog's 429 headers: the window, what is left of it, and seconds until it resets."""
    return {
        "X-RateLimit-Limit": "1000",
        "X-RateLimit-Period": "60",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(reset_seconds),
        "X-RateLimit-Name": "events_list",
    }


def data_id(number: int) -> str:
    """An event's JSON:API id, opaque as Datadog's are ("AAAAAY..." base64)."""
    return "AAAAA" + base64.urlsafe_b64encode(f"evt-{number:08d}".encode()).decode().rstrip("=")


class FakeDatadog(FakeMonitoringSystem):
    connector_type = "datadog"
    records_are_immutable: ClassVar[bool] = True

    def __init__(self, *, site: str = "datadoghq.com", api_host: str = "api.datadoghq.com") -> None:
        super().__init__()
        self.site = site
        self.base_url = f"https://{api_host}"
        self.monitors: dict[int, dict[str, Any]] = {}
        self.cursors: dict[str, tuple[str, int]] = {}  # page cursor -> (the query it belongs to, offset)
        self.event_queries: list[dict[str, str]] = []
        self.embedded_queries: dict[int, str] = {}  # monitor id -> the query its events carry
        self.now = datetime.now(UTC)
        self._numbers = itertools.count(10_000)

    # --- what tests call ----------------------------------------------------------------------------

    def settings(self, *, good_credentials: bool = True, **options: Any) -> ConnectorSettings:
        return ConnectorSettings(
            name="Fake Datadog",
            base_url=self.base_url,
            auth_mode="api_keys",
            options={"site": self.site, "history_days": 3650} | options,
            secrets={
                "api_key": API_KEY if good_credentials else "dd-wrong-api-key-000000",
                "application_key": APPLICATION_KEY if good_credentials else "dd-wrong-app-key-000000",
            },
        )

    def new_ticket(self, number: int, updated_at: datetime) -> FakeTicket:
        """An alert of its own monitor (``1000 + number``) on its own host, triggered at ``updated_at``."""
        host = f"web-{number:02d}"
        return FakeTicket(
            external_id=data_id(number),
            title=f"CPU load high on {host}",
            description=f"Load average over 4 for 5 minutes on {host}.",
            updated_at=updated_at,
            created_at=updated_at,
            status="error",
            extra={
                "evt_id": str(EVT_ID_BASE + number),
                "monitor_id": 1000 + number,
                "host": host,
                "service": "checkout" if number % 2 else "search",
                "priority": 1 + number % 3,
                "transition": "Triggered",
            },
        )

    def add_ticket(self, ticket: FakeTicket) -> None:
        super().add_ticket(ticket)
        monitor_id = int(ticket.extra["monitor_id"])
        service = ticket.extra["service"]
        self.monitors.setdefault(
            monitor_id,
            {
                "id": monitor_id,
                "name": f"CPU load high on {{{{host.name}}}} ({monitor_id})",
                "type": "query alert",
                "query": f"avg(last_5m):avg:system.load.1{{service:{service}}} by {{host}} > 4",
                "message": "Load is high. @pagerduty-ops",
                "tags": [f"service:{service}", "team:ops"],
                "priority": ticket.extra.get("priority"),
                "overall_state": "Alert",
                "created": "2026-01-05T10:00:00.000000+00:00",
                "modified": "2026-01-05T10:00:00.000000+00:00",
            },
        )
        if ticket.status == "success":
            self.monitors[monitor_id]["overall_state"] = "OK"

    def repeat(self, ticket: FakeTicket, number: int, at: datetime) -> FakeTicket:
        again = FakeTicket(
            external_id=data_id(number),
            title=ticket.title,
            description=ticket.description,
            updated_at=at,
            created_at=at,
            status="error",
            extra=dict(ticket.extra) | {"evt_id": str(EVT_ID_BASE + number), "transition": "Triggered"},
        )
        self.add_ticket(again)
        return again

    def recover(self, ticket: FakeTicket, at: datetime) -> None:
        """Datadog sends a separate "[Recovered]" event of the same monitor and host, status success."""
        number = next(self._numbers)
        self.add_ticket(
            FakeTicket(
                external_id=data_id(number),
                title=ticket.title,
                description=ticket.description,
                updated_at=at,
                created_at=at,
                status="success",
                extra=dict(ticket.extra) | {"evt_id": str(EVT_ID_BASE + number), "transition": "Recovered"},
            )
        )

    def is_ticket_query(self, request: httpx.Request) -> bool:
        return request.url.path == "/api/v2/events"

    def query_since(self, request: httpx.Request) -> datetime | None:
        value = request.url.params.get("filter[from]")
        return datetime.fromtimestamp(int(value) / 1000, UTC) if value else None

    def error_response(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        if status == 429:  # Datadog's 429 has no body at all; its headers say when to come back
            given = dict(headers or {})
            present = {key.lower() for key in given}
            defaults = {k: v for k, v in rate_limit_headers().items() if k.lower() not in present}
            return httpx.Response(429, headers=defaults | given)
        return httpx.Response(status, json={"errors": [message]}, headers=dict(headers or {}))

    # --- routing ------------------------------------------------------------------------------------

    def route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method != "GET" or path not in ("/api/v1/validate", "/api/v1/monitor", "/api/v2/events"):
            return self.not_understood(request)
        if request.headers.get("DD-API-KEY") != API_KEY:
            return self.error_response(403, "Forbidden")
        if path == "/api/v1/validate":
            return httpx.Response(200, json={"valid": True})
        if request.headers.get("DD-APPLICATION-KEY") != APPLICATION_KEY:
            return self.error_response(403, "Forbidden")
        if path == "/api/v1/monitor":
            return self._monitors(request)
        return self._events(request)

    def _monitors(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if set(params) - MONITOR_PARAMS:
            return self.not_understood(request)
        try:
            page, size = int(params.get("page", "0")), int(params.get("page_size", "100"))
        except ValueError:
            return self.error_response(400, "Invalid page or page_size")
        if size > 1000:
            return self.error_response(400, "page_size must be at most 1000")
        ordered = [self.monitors[key] for key in sorted(self.monitors)]
        return httpx.Response(200, json=ordered[page * size : (page + 1) * size])

    def _events(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        if set(params) - EVENTS_PARAMS or params.get("sort", "timestamp") != "timestamp":
            return self.not_understood(request)
        self.event_queries.append(params)
        query = params.get("filter[query]", "*")
        terms = query.replace("(", " ").replace(")", " ").replace(" AND ", " ").split()
        if "source:alert" not in terms:
            return self.not_understood(request)  # this fake holds monitor alerts only
        try:
            start = self._moment(params.get("filter[from]"), self.now - timedelta(minutes=15))
            end = self._moment(params.get("filter[to]"), self.now)
            limit = int(params.get("page[limit]", "10"))
        except ValueError:
            return self.error_response(400, "Invalid filter[from], filter[to] or page[limit]")
        if not 1 <= limit <= 1000:
            return self.error_response(400, "page[limit] must be between 1 and 1000")
        size = min(limit, self.page_size)
        ignore_filter = self.misbehaviour is not None and self.misbehaviour.ignores_filter
        ignore_cursor = self.misbehaviour is not None and self.misbehaviour.ignores_page_token
        selected = sorted(self.tickets.values(), key=lambda t: (t.updated_at, t.external_id))
        if not ignore_filter:
            selected = [t for t in selected if start <= t.updated_at <= end]
        wanted_tags = [term for term in terms if term != "source:alert"]
        selected = [t for t in selected if all(tag in self._tags(t) for tag in wanted_tags)]
        query_key = json.dumps({k: v for k, v in params.items() if k != "page[cursor]"}, sort_keys=True)
        offset = 0
        token = params.get("page[cursor]")
        if token and not ignore_cursor:
            stored = self.cursors.get(token)
            if stored is None or stored[0] != query_key:
                return self.error_response(400, "Invalid page[cursor]")
            offset = stored[1]
        chunk = selected[offset : offset + size]
        body: dict[str, Any] = {
            "data": [self._event(t) for t in chunk],
            "meta": {"elapsed": 7, "request_id": "pddv1ChZ", "status": "done"},
        }
        if chunk:  # a full page says more may follow; the page after the last is {"data": []}
            after = base64.urlsafe_b64encode(uuid.uuid4().bytes * 2).decode().rstrip("=")
            self.cursors[after] = (query_key, offset + size)
            body["meta"]["page"] = {"after": after}
            body["links"] = {"next": str(request.url.copy_merge_params({"page[cursor]": after}))}
        return httpx.Response(200, json=body)

    @staticmethod
    def _moment(value: str | None, default: datetime) -> datetime:
        if value is None or value == "now":
            return default
        return datetime.fromtimestamp(int(value) / 1000, UTC)

    @staticmethod
    def _tags(ticket: FakeTicket) -> list[str]:
        return [
            f"host:{ticket.extra['host']}",
            f"service:{ticket.extra['service']}",
            f"monitor_id:{ticket.extra['monitor_id']}",
            "source:alert",
            "env:prod",
        ]

    def _event(self, ticket: FakeTicket) -> dict[str, Any]:
        extra = ticket.extra
        monitor = self.monitors.get(int(extra["monitor_id"]))  # None: deleted since it fired
        priority = extra.get("priority")
        prefix = f"[P{priority}] " if priority else ""
        title = f"{prefix}[{extra['transition']} on {{host:{extra['host']}}}] {ticket.title}"
        stamp = ticket.updated_at.astimezone(UTC)
        return {
            "id": ticket.external_id,
            "type": "event",
            "attributes": {
                "message": f"%%%\n{ticket.description}\n\n@pagerduty-ops\n%%%",
                "tags": self._tags(ticket),
                "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
                "attributes": {
                    "aggregation_key": f"monitor-{extra['monitor_id']}",
                    "evt": {
                        "id": extra["evt_id"],
                        "name": title,
                        "source_id": 36,
                        "type": "query_alert_monitor",
                    },
                    "hostname": extra["host"],
                    "monitor_groups": [f"host:{extra['host']}"],
                    "monitor_id": extra["monitor_id"],
                    "priority": "normal",
                    "service": extra["service"],
                    "source_type_name": "Monitor Alert",
                    "sourcecategory": "monitor_alert",
                    "status": ticket.status,
                    "tags": [f"service:{extra['service']}", "team:ops"],
                    "timestamp": int(stamp.timestamp() * 1000),
                    "title": title,
                }
                | self._embedded_monitor(monitor),
            },
        }

    def _embedded_monitor(self, monitor: Mapping[str, Any] | None) -> dict[str, Any]:
        """The ``monitor`` an event carries: id, name and type, and its query only when the test says so."""
        if monitor is None:
            return {}
        embedded = {"id": monitor["id"], "name": monitor["name"], "type": monitor["type"]}
        if monitor["id"] in self.embedded_queries:
            embedded["query"] = self.embedded_queries[monitor["id"]]
        return {"monitor": embedded}
