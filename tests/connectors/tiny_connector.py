"""A tiny connector and its fake system: the engine's, the CLI's and the standard suite's own test subject.

Deliberately small but honest, and the shortest example of a connector on the framework: it subclasses the
real :class:`~connectors.base.Connector`, builds its client through :meth:`Connector.create` (so ``transport``
and ``sleep`` are injected the way the real connectors get them), and supplies one
:class:`~connectors.base.HttpStream` (the request and the parsing; the page loop is the base's). The query
starts its precision before the cursor (``since``) and pages by keyset (``after`` the last record read), so
a record edited mid-sync cannot make it skip one. The fake answers in a JSON shape of its own, checks a
bearer token and filters by the query.

It is not a built-in: tests register it with :func:`registered` so it never leaks into the registry other
tests see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx

from connectors.base import (
    AuthMode,
    ClientOptions,
    ConfigField,
    Connector,
    ConnectorKind,
    ConnectorSettings,
    ConnectorSpec,
    Cursor,
    FieldType,
    HttpStream,
    PageRequest,
    StreamPage,
)
from connectors.errors import BadResponseError
from connectors.http import RetryPolicy, Sleep
from connectors.registry import ConnectorRegistry, use_registry
from connectors.testing.fake_system import FakeSystem, Misbehaviour
from core.store.models import TicketKind
from core.store.tickets import TicketValues

GOOD_TOKEN = "tiny-token-3f9a7c51e2"
TICKETS_PATH = "/api/tickets"


def _error_text(response: httpx.Response) -> str:
    body = response.json()
    return str(body["error"]["message"])


class TinyConnector(Connector):
    spec: ClassVar[ConnectorSpec] = ConnectorSpec(
        type="tiny",
        display_name="Tiny Tracker",
        kind=ConnectorKind.TICKETING,
        auth_modes=(AuthMode("token", "API token"),),
        fields=(
            ConfigField("token", "API token", FieldType.SECRET, page="auth"),
            ConfigField("queue", "Queue", FieldType.TEXT, required=False, default="all"),
            ConfigField("verbose", "Verbose", FieldType.BOOLEAN, required=False),
        ),
        timestamp_precision=timedelta(seconds=1),
    )

    @classmethod
    def client_options(cls, settings: ConnectorSettings) -> ClientOptions:
        return ClientOptions(
            headers={"Authorization": f"Bearer {settings.secret('token')}"}, error_text=_error_text
        )

    @classmethod
    def create(
        cls,
        settings: ConnectorSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        retry: RetryPolicy | None = None,
    ) -> TinyConnector:
        # The CLI cannot hand a transport down; the fake serving this URL in the test process stands in.
        if transport is None and settings.base_url in FakeTiny.serving:
            transport = FakeTiny.serving[settings.base_url].transport()
        return super().create(settings, transport=transport, sleep=sleep, retry=retry)

    async def probe(self) -> None:
        await self.http.get_json("/api/me")

    def streams(self, since: Cursor | None, page_size: int | None) -> list[HttpStream[Any]]:
        return [_TicketsStream(self, since, page_size or 5)]

    def _normalise(self, record: Mapping[str, Any]) -> TicketValues:
        updated = datetime.fromisoformat(record["updated"])
        return TicketValues(
            external_id=record["id"],
            source_system="tiny",
            title=record["title"],
            description=record.get("body", ""),
            status=record.get("status"),
            severity=record.get("severity"),
            assignee=None,
            kind=TicketKind.INCIDENT,
            category=None,
            configuration_item=None,
            resolution_notes=record.get("resolution") or None,
            resolved_at=None,
            created_at=datetime.fromisoformat(record["created"]),
            updated_at=updated,
            source_url=None,
            raw_payload=dict(record),
        )


# A keyset position: the (updated, id) of the last record read.
_After = tuple[datetime, str]


class _TicketsStream(HttpStream[_After]):
    def __init__(self, connector: TinyConnector, since: Cursor | None, limit: int) -> None:
        super().__init__(connector, since)
        self.tiny = connector
        self.limit = limit

    def request(self, token: _After | None) -> PageRequest:
        params: dict[str, Any] = {"limit": self.limit}
        if self.since is not None and self.since.updated_at is not None:
            params["since"] = (self.since.updated_at - TinyConnector.spec.timestamp_precision).isoformat()
        if token is not None:
            params["after"] = f"{token[0].isoformat()}|{token[1]}"
        return PageRequest("GET", TICKETS_PATH, params)

    def records(self, body: Any, request: PageRequest) -> Sequence[Mapping[str, Any]]:
        records = body.get("records") if isinstance(body, Mapping) else None
        if not isinstance(records, list) or not isinstance(body.get("has_more"), bool):
            raise BadResponseError(self.tiny.name, f"GET {TICKETS_PATH}: no records in the answer")
        return records

    async def normalise(self, record: Mapping[str, Any]) -> TicketValues:
        try:
            return self.tiny._normalise(record)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"unreadable record: {exc}") from exc

    def record_id(self, record: Mapping[str, Any]) -> str | None:
        record_id = record.get("id")
        return record_id if isinstance(record_id, str) else None

    def next_page_token(self, page: StreamPage[_After]) -> _After | None:
        if not page.body["has_more"] or not page.records:
            return None
        last = next((t for t in reversed(page.tickets) if t.updated_at is not None), None)
        if last is None or last.updated_at is None:
            raise BadResponseError(self.tiny.name, f"GET {TICKETS_PATH}: no readable record on the page")
        return last.updated_at, last.external_id


class FakeTiny(FakeSystem):
    connector_type = "tiny"
    base_url = "https://tiny.example.com"
    # base_url -> the fake answering it, for code paths that cannot pass a transport (the CLI).
    serving: ClassVar[dict[str, FakeTiny]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.broken_ids: set[str] = set()

    def settings(self, *, good_credentials: bool = True) -> ConnectorSettings:
        token = GOOD_TOKEN if good_credentials else "wrong-token-000000"
        return ConnectorSettings(
            name="Tiny prod", base_url=self.base_url, auth_mode="token", options={}, secrets={"token": token}
        )

    def route(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {GOOD_TOKEN}":
            return self.error_response(401, "invalid token")
        if request.method == "GET" and request.url.path == "/api/me":
            return httpx.Response(200, json={"user": "svc-runbook"})
        if request.method == "GET" and request.url.path == TICKETS_PATH:
            return self._list(request)
        return self.not_understood(request)

    def _list(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if set(params) - {"since", "after", "limit"}:
            self.not_understood(request)
        since = self.query_since(request)
        after = None
        if "after" in params:
            moment, _, last_id = params["after"].partition("|")
            after = (datetime.fromisoformat(moment), last_id)
        # Tiny's paging is its filter (a keyset): with no page token to ignore, IGNORES_PAGE_TOKEN is normal.
        if self.misbehaviour is not None and self.misbehaviour.ignores_filter:
            since = after = None
        limit = min(int(params.get("limit", "50")), self.page_size)
        selected = sorted(
            (
                t
                for t in self.tickets.values()
                if (since is None or t.updated_at >= since)
                and (after is None or (t.updated_at, t.external_id) > after)
            ),
            key=lambda t: (t.updated_at, t.external_id),
        )
        records = [self._render(t) for t in selected[:limit]]
        more = len(selected) > limit or self.misbehaviour is Misbehaviour.SAME_PAGE_FOREVER
        return httpx.Response(200, json={"records": records, "has_more": more})

    def _render(self, ticket: Any) -> dict[str, Any]:
        record = {
            "id": ticket.external_id,
            "title": ticket.title,
            "body": ticket.description,
            "status": ticket.status,
            "severity": ticket.severity,
            "resolution": ticket.resolution_notes,
            "created": ticket.created_at.isoformat(),
            "updated": ticket.updated_at.isoformat(),
        }
        if ticket.external_id in self.broken_ids:
            record["updated"] = "not a date"
        return record

    def error_response(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        return httpx.Response(status, json={"error": {"message": message}}, headers=dict(headers or {}))

    def is_ticket_query(self, request: httpx.Request) -> bool:
        return request.url.path == TICKETS_PATH

    def query_since(self, request: httpx.Request) -> datetime | None:
        since = request.url.params.get("since")
        return datetime.fromisoformat(since) if since else None


@contextmanager
def registered() -> Iterator[None]:
    """The tiny connector in the registry (and only it: the real connector modules are not loaded)."""
    with use_registry(ConnectorRegistry((), find_plugins=None, classes=(TinyConnector,))):
        yield
