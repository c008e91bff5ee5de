"""The framework's page loop and its no-progress guard, on a minimal stream over scripted server answers."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
import pytest

from connectors.base import (
    AuthMode,
    Connector,
    ConnectorKind,
    ConnectorSettings,
    ConnectorSpec,
    Cursor,
    HttpStream,
    NoProgressGuard,
    Page,
    PageRequest,
    StreamPage,
)
from connectors.errors import PagingStalledError
from core.store.models import TicketKind
from core.store.tickets import TicketValues

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PATH = "/api/items"


def record(number: int, minutes: int | None = None, *, broken: bool = False) -> dict[str, Any]:
    updated = T0 + timedelta(minutes=number if minutes is None else minutes)
    return {"id": f"I-{number}", "updated": "never" if broken else updated.isoformat()}


class ScriptedServer:
    """Answers page n with the n-th scripted page (the last one again when the script runs out)."""

    def __init__(self, pages: Sequence[Sequence[dict[str, Any]]], *, more: bool = True) -> None:
        self.pages = pages
        self.more = more
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        page = int(request.url.params["page"])
        records = self.pages[min(page, len(self.pages) - 1)]
        return httpx.Response(
            200, json={"items": list(records), "more": self.more or page + 1 < len(self.pages)}
        )


class ItemsStream(HttpStream[int]):
    max_empty_pages = 3

    def request(self, token: int | None) -> PageRequest:
        return PageRequest("GET", PATH, {"page": token or 0})

    def records(self, body: Any, request: PageRequest) -> Sequence[Mapping[str, Any]]:
        items: list[Mapping[str, Any]] = body["items"]
        return items

    async def normalise(self, record: Mapping[str, Any]) -> TicketValues:
        updated = datetime.fromisoformat(record["updated"])  # ValueError for a broken record: a failure
        return TicketValues(
            external_id=record["id"],
            source_system="items",
            title=record["id"],
            description="",
            status=None,
            severity=None,
            assignee=None,
            kind=TicketKind.INCIDENT,
            category=None,
            configuration_item=None,
            resolution_notes=None,
            resolved_at=None,
            created_at=updated,
            updated_at=updated,
            source_url=None,
            raw_payload=dict(record),
        )

    def record_id(self, record: Mapping[str, Any]) -> str | None:
        return str(record["id"])

    def next_page_token(self, page: StreamPage[int]) -> int | None:
        return (page.token or 0) + 1 if page.body["more"] else None


class ItemsConnector(Connector):
    spec: ClassVar[ConnectorSpec] = ConnectorSpec(
        "items", "Items", ConnectorKind.TICKETING, (AuthMode("none", "None"),), ()
    )

    async def probe(self) -> None:
        return None

    def streams(self, since: Cursor | None, page_size: int | None) -> list[HttpStream[Any]]:
        return [ItemsStream(self, since)]


def read(server: ScriptedServer, pages_read: list[Page] | None = None) -> list[Page]:
    settings = ConnectorSettings("Items test", "https://items.example.com", "none")
    connector = ItemsConnector.create(settings, transport=httpx.MockTransport(server.handle))
    pages = [] if pages_read is None else pages_read

    async def go() -> list[Page]:
        try:
            async for page in connector.fetch(None):
                pages.append(page)
        finally:
            await connector.close()
        return pages

    return asyncio.run(go())


def test_pages_carry_tickets_failures_and_the_last_tickets_cursor() -> None:
    server = ScriptedServer([[record(1), record(2, broken=True), record(3)], [record(4)]], more=False)
    first, second = read(server)
    assert [t.external_id for t in first.tickets] == ["I-1", "I-3"]
    assert [(f.external_id, "never" in f.reason) for f in first.failures] == [("I-2", True)]
    assert first.cursor == Cursor(T0 + timedelta(minutes=3), "I-3")
    assert second.cursor == Cursor(T0 + timedelta(minutes=4), "I-4")


def test_a_page_of_records_read_already_stops_the_sync_before_it_is_stored() -> None:
    server = ScriptedServer([[record(1), record(2)], [record(3)], [record(2), record(3)]])
    stored: list[Page] = []
    with pytest.raises(PagingStalledError) as stopped:
        read(server, stored)
    assert len(server.requests) == 3
    assert [t.external_id for page in stored for t in page.tickets] == ["I-1", "I-2", "I-3"]
    message = str(stopped.value)
    assert message.startswith("Items test: GET /api/items: the paging does not advance")
    assert "page 3 holds only records this sync has read already" in message


def test_a_record_updated_mid_sync_comes_back_as_new() -> None:
    server = ScriptedServer([[record(1), record(2)], [record(3), record(1, minutes=30)]], more=False)
    pages = read(server)
    assert [t.external_id for page in pages for t in page.tickets] == ["I-1", "I-2", "I-3", "I-1"]


def test_the_last_page_may_repeat_a_record() -> None:
    server = ScriptedServer([[record(1), record(2)], [record(2)]], more=False)
    assert len(read(server)) == 2


def test_pages_without_records_are_allowed_a_few_times_in_a_row() -> None:
    empty: list[dict[str, Any]] = []
    broken = [record(9, broken=True)]  # failures only: no record the guard can place
    server = ScriptedServer([[record(1)], empty, broken, [record(2)], empty, empty, [record(3)]], more=False)
    assert [t.external_id for page in read(server) for t in page.tickets] == ["I-1", "I-2", "I-3"]

    endless = ScriptedServer([[record(1)], empty])
    with pytest.raises(PagingStalledError, match="3 pages in a row held no record") as stopped:
        read(endless)
    assert len(endless.requests) == 1 + ItemsStream.max_empty_pages
    assert stopped.value.requests == 4 and stopped.value.path == PATH


def test_the_guard_remembers_a_bounded_window_of_pages() -> None:
    guard = NoProgressGuard("Items test", max_empty_pages=3)
    first = [("I-1", T0)]
    guard.observe(first, method="GET", path=PATH, more=True)
    for number in range(2, NoProgressGuard.WINDOW + 2):
        guard.observe([(f"I-{number}", T0)], method="GET", path=PATH, more=True)
    guard.observe(first, method="GET", path=PATH, more=True)  # forgotten by now: counts as new
    with pytest.raises(PagingStalledError):
        guard.observe(first, method="GET", path=PATH, more=True)
