"""An example connector plugin: a spec and a connector class, installed as its own package.

It proves the registry finds a connector another distribution declares; it reads no tickets (``streams`` is
empty), which is all the registry, the CLI and the wizard need to list it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from connectors.base import (
    AuthMode,
    ConfigField,
    Connector,
    ConnectorKind,
    ConnectorSpec,
    Cursor,
    FieldType,
    HttpStream,
)

SPEC = ConnectorSpec(
    type="example_itsm",
    display_name="Example ITSM",
    kind=ConnectorKind.TICKETING,
    auth_modes=(AuthMode("token", "API token"),),
    fields=(ConfigField("token", "API token", FieldType.SECRET, page="auth"),),
    description="A connector from an installed plugin package.",
)


class ExampleConnector(Connector):
    spec: ClassVar[ConnectorSpec] = SPEC

    async def probe(self) -> None:
        await self.http.get("/api/ping")

    def streams(self, since: Cursor | None, page_size: int | None) -> Sequence[HttpStream[Any]]:
        return ()
