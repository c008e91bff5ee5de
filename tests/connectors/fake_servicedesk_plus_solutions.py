"""A local ServiceDesk Plus serving ``/api/v3/solutions``: the requests fake's v3 API over solutions.

Everything the requests fake (:mod:`tests.connectors.fake_servicedesk_plus`) does applies: on-premises
``authtoken`` or Cloud Zoho OAuth with paths under ``/app/<portal>``, the v3 ``Accept`` header, ``input_data``
parsed from the query (``search_criteria`` on ``last_updated_time``, ``sort_field``, ``start_index`` /
``row_count`` capped by the server), ``list_info.has_more_rows``, failures in the ``response_status``
envelope, and the :class:`~connectors.testing.fake_system.Misbehaviour` modes. The listing is the same
code; what changes is the path, the key of the list (``solutions``) and the record:

- ``id`` a number sent as a string, ``title``, ``description`` HTML as SDP's editor stores it;
- ``topic`` and ``created_by`` lookups (``{"name", "id"}``), ``keywords`` one comma-separated string;
- ``approval_status`` ``{"name", "id"}``: ``Approved``, ``Approval Pending``, ``UnApproved``, ``Rejected``,
  ``Expired``; ``expiry_date`` a time object or null and ``is_expirydate_elapsed``;
- ``created_time`` / ``last_updated_time`` ``{"display_value", "value": "<epoch ms>"}``.

The requests endpoints answer "not understood": a solutions connector has no business there.

A solution is a :class:`~connectors.testing.fake_system.FakeTicket`: ``external_id`` the id, ``title``,
``description`` the HTML, ``status`` the approval status name, and in ``extra`` the topic, keywords,
author, ``expiry_date`` (a datetime) and ``attachments`` (file names).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar

import httpx

from connectors.base import ConnectorSettings
from connectors.testing.fake_system import FakeTicket
from tests.connectors.fake_servicedesk_plus import (
    ACCOUNTS_URL,
    V3_ACCEPT,
    FakeServiceDeskPlus,
    time_object,
)

APPROVAL_STATUS_IDS = {
    "Approved": "2",
    "Approval Pending": "3",
    "UnApproved": "1",
    "Rejected": "4",
    "Expired": "5",
}
TOPICS = ("Network", "Email", "Printing")


def solution_html(number: int) -> str:
    """A body as SDP's solution editor stores it: divs, inline styles, entities, a heading, steps, a table."""
    return (
        f'<div style="font-family: Arial; font-size: 10pt"><span>Users on floor {number} cannot reach '
        "the VPN &amp; get error&nbsp;412.</span></div>"
        "<h2>Resolution</h2>"
        "<ol><li>Open <b>AnyConnect</b> &gt; Preferences.</li>"
        "<li>Untick &quot;Block connections to untrusted servers&quot;.</li></ol>"
        "<table><tr><th>Client</th><th>Version</th></tr><tr><td>AnyConnect</td><td>4.10</td></tr></table>"
    )


class FakeServiceDeskPlusSolutions(FakeServiceDeskPlus):
    connector_type: ClassVar[str] = "servicedesk_plus_solutions"

    # --- what tests call ---------------------------------------------------------------------------------

    def settings(self, *, good_credentials: bool = True, **options: Any) -> ConnectorSettings:
        base = super().settings(good_credentials=good_credentials, **options)
        name = "Fake SDP Cloud solutions" if self.flavour == "cloud" else "Fake SDP solutions"
        return ConnectorSettings(name, base.base_url, base.auth_mode, base.options, base.secrets)

    def new_ticket(self, number: int, updated_at: datetime) -> FakeTicket:
        """A published solution; ids are numbers as in ServiceDesk Plus."""
        return FakeTicket(
            external_id=str(100_000 + number),
            title=f"VPN drops on floor {number}: untrusted server setting",
            description=solution_html(number),
            updated_at=updated_at,
            created_at=updated_at,
            status="Approved",
            extra={
                "topic": TOPICS[number % len(TOPICS)],
                "keywords": "vpn, anyconnect",
                "author": "Dana Reyes",
            },
        )

    def solutions_path(self) -> str:
        return f"{self.prefix}/api/v3/solutions"

    def is_ticket_query(self, request: httpx.Request) -> bool:
        return request.method == "GET" and request.url.path == self.solutions_path()

    # --- the API -----------------------------------------------------------------------------------------

    def route(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if self.flavour == "cloud" and f"{url.scheme}://{url.host}" == ACCOUNTS_URL:
            return super().route(request)  # the Zoho token endpoint
        if f"{url.scheme}://{url.host}" != self.url or request.headers.get("Accept") != V3_ACCEPT:
            return self.not_understood(request)
        if not url.path.startswith(f"{self.prefix}/api/v3/"):
            return self.error_response(404, "Invalid URL", code=4007)
        denied = self._check_auth(request)
        if denied is not None:
            return denied
        if request.method == "GET" and url.path == self.solutions_path():
            return self._solutions(request)
        single = re.fullmatch(rf"{re.escape(self.solutions_path())}/(\d+)", url.path)
        if request.method == "GET" and single:
            solution = self.tickets.get(single.group(1))
            if solution is None:
                return self.error_response(404, "Solution not found", code=4007)
            body = {
                "solution": self.render(solution),
                "response_status": {"status_code": 2000, "status": "success"},
            }
            return httpx.Response(200, json=body)
        return self.not_understood(request)

    def _solutions(self, request: httpx.Request) -> httpx.Response:
        """The requests fake's listing (filter, sort, paging, misbehaviour) answered under ``solutions``."""
        listed = self._list(request)
        body = listed.json()
        if "requests" in body:
            body["solutions"] = body.pop("requests")
        return httpx.Response(listed.status_code, json=body, headers=dict(listed.headers))

    def render(self, ticket: FakeTicket) -> dict[str, Any]:
        extra = ticket.extra
        expiry: datetime | None = extra.get("expiry_date")
        status = ticket.status
        return {
            "id": ticket.external_id,
            "title": ticket.title,
            "description": ticket.description,
            "topic": {"name": extra.get("topic", "General"), "id": "100000000000033225"},
            "keywords": extra.get("keywords", ""),
            "is_public": True,
            "approval_status": {"name": status, "id": APPROVAL_STATUS_IDS.get(status, "9")},
            "created_by": {"name": extra.get("author", "administrator"), "id": "4", "email_id": None},
            "created_time": time_object(ticket.created_at),
            "last_updated_time": time_object(ticket.updated_at),
            "expiry_date": time_object(expiry),
            "is_expirydate_elapsed": bool(extra.get("expiry_elapsed", False)),
            "attachments": [
                {"name": name, "id": str(900 + i), "size": {"value": 2048}}
                for i, name in enumerate(extra.get("attachments", ()))
            ],
            "no_of_hits": 3,
        }
