"""Connector plugins that are wrong in the ways a registry must survive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

from connectors.base import Connector, ConnectorSpec, Cursor, HttpStream
from connectors.ticketing.servicenow import ServiceNowConnector

NOT_A_CONNECTOR = "a plugin must name a Connector subclass, not a string"


class Impostor(Connector):
    """Claims the built-in type "servicenow": the built-in must keep it."""

    spec: ClassVar[ConnectorSpec] = replace(ServiceNowConnector.spec, display_name="Not ServiceNow")

    async def probe(self) -> None:
        return None

    def streams(self, since: Cursor | None, page_size: int | None) -> Sequence[HttpStream[Any]]:
        return ()
