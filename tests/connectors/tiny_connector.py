"""A tiny connector and its fake system: the engine's, the CLI's and the standard suite's own test subject.

Deliberately small but honest: it subclasses the real :class:`~connectors.base.Connector`, builds its client
through :meth:`Connector.create` (so ``transport`` and ``sleep`` are injected the way the real connectors
get them), subtracts its timestamp precision from the cursor when it builds the query, and pages with an
offset. The fake answers in a JSON shape of its own, checks a bearer token and filters by the query.

It is not in ``CONNECTOR_MODULES``: tests register it with :func:`registered` so it never leaks into the
registry other tests see.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx

from connectors import base  # registered() swaps the registry
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
    Page,
    RecordFailure,
)
from connectors.errors import BadResponseError
from connectors.http import RetryPolicy, Sleep
from core.importing.tickets import TicketValues
from core.store.models import TicketKind
from tests.connectors.fake_base import FakeSystem

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

    async def fetch(self, since: Cursor | None, *, page_size: int | None = None) -> AsyncIterator[Page]:
        limit = page_size or 5
        offset = 0
        params: dict[str, Any] = {"limit": limit}
        if since is not None and since.updated_at is not None:
            params["since"] = (since.updated_at - self.spec.timestamp_precision).isoformat()
        while True:
            body = await self.http.get_json(TICKETS_PATH, params=params | {"offset": offset})
            try:
                records = body["records"]
                has_more = bool(body["has_more"])
            except (KeyError, TypeError) as exc:
                raise BadResponseError(self.name, f"GET {TICKETS_PATH}: no records in the answer") from exc
            tickets: list[TicketValues] = []
            failures: list[RecordFailure] = []
            for record in records:
                try:
                    tickets.append(self._normalise(record))
                except (KeyError, ValueError) as exc:
                    failures.append(RecordFailure(record.get("id"), f"unreadable record: {exc}"))
            cursor = (
                Cursor(tickets[-1].updated_at, tickets[-1].external_id) if tickets else (since or Cursor())
            )
            yield Page(tuple(tickets), cursor, tuple(failures))
            if not has_more or not records:
                return
            offset += len(records)

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
        since = self.query_since(request)
        limit = min(int(request.url.params.get("limit", "50")), self.page_size)
        offset = int(request.url.params.get("offset", "0"))
        selected = sorted(
            (t for t in self.tickets.values() if since is None or t.updated_at >= since),
            key=lambda t: (t.updated_at, t.external_id),
        )
        chunk = selected[offset : offset + limit]
        records = [self._render(t) for t in chunk]
        return httpx.Response(200, json={"records": records, "has_more": offset + limit < len(selected)})

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
    saved_registry = dict(base._REGISTRY)
    saved_modules = base.CONNECTOR_MODULES
    base._REGISTRY.clear()
    base._REGISTRY["tiny"] = TinyConnector
    base.CONNECTOR_MODULES = ()
    try:
        yield
    finally:
        base._REGISTRY.clear()
        base._REGISTRY.update(saved_registry)
        base.CONNECTOR_MODULES = saved_modules
