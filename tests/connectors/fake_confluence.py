"""A local fake of Confluence, Cloud or Data Center (``FakeConfluence(cloud=...)``), in the real shapes.

What it reproduces, because each is a way a Confluence connector breaks:

- Paths per flavour: Cloud under ``/wiki`` (``/wiki/rest/api/...``, downloads ``/wiki/download/...``),
  Data Center below a context path (``/confluence/rest/api/...``).
- Auth per flavour: Basic email:API token on Cloud, ``Authorization: Bearer <PAT>`` on Data Center; a wrong
  one is a 401 in the v1 error shape ``{"statusCode", "data", "message", "reason"}``.
- ``GET /user/current``: Cloud's carries ``timeZone`` (the profile's zone), Data Center's does not (the
  connector's "time zone" option says it there).
- ``GET /content/search``: only the CQL shape a sync sends is understood (``type = page``, ``space IN (…)``,
  a parenthesised extra filter of ``label = "x"``, ``lastmodified >= "yyyy/MM/dd HH:mm"`` read at minute
  precision in the user's zone, ``ORDER BY lastmodified asc``); anything else is a 400 in the parser's
  words. Only ``current`` pages are found (CQL's default). ``expand`` shapes the content objects:
  ``body.storage``, ``version``, ``space``, ``history``, ``metadata.labels``; every link is relative to the
  answer's ``_links.base``.
- Paging: ``limit`` capped at the server's page size; Cloud's ``_links.next`` carries an opaque ``cursor``
  (an offset, base64-encoded, as the real one is opaque), Data Center's a ``start``. The three
  :class:`~connectors.testing.fake_system.Misbehaviour` modes ignore the bound, the cursor / start, or both.
- Attachments: ``GET /content/{id}/child/attachment`` (``title``, ``extensions.fileSize``,
  ``_links.download``) and the download path itself.

Unknown paths and parameters fail the test (:meth:`FakeSystem.not_understood`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx

from connectors.base import ConnectorSettings
from connectors.testing.fake_system import FakeSystem, FakeTicket

EMAIL = "analyst@example.com"
API_TOKEN = "confluence-cloud-s3cret"
PAT = "confluence-dc-pat-s3cret"
CLOUD_ZONE = "Australia/Sydney"
DC_ZONE = "Europe/Berlin"
SPACE_KEY = "OPS"
SPACE_NAME = "Operations"
FIRST_ID = 98300

SEARCH_PARAMS = {"cql", "expand", "limit", "start", "cursor"}
_BOUND = re.compile(r'^lastmodified\s*>=\s*"(\d{4}/\d{2}/\d{2} \d{2}:\d{2})"$')
_SPACE_IN = re.compile(r"^space\s+IN\s*\(([^()]*)\)$", re.IGNORECASE)
_LABEL = re.compile(r'^\(label\s*=\s*"([^"]*)"\)$')
_ORDER = " ORDER BY lastmodified asc"


class CqlError(ValueError):
    """What Confluence's CQL parser would say, answered as a 400."""


def storage_body(number: int) -> str:
    """A realistic storage-format body: heading, numbered steps, a code macro, a warning panel."""
    return (
        f"<h2>Symptoms</h2><p>Service {number} answers <strong>502</strong>.</p>"
        "<h2>Steps</h2><ol><li>Log in to the host.</li><li>Restart the service:"
        '<ac:structured-macro ac:name="code" ac:schema-version="1"><ac:parameter ac:name="language">bash'
        f"</ac:parameter><ac:plain-text-body><![CDATA[sudo systemctl restart svc{number}]]>"
        "</ac:plain-text-body></ac:structured-macro></li></ol>"
        '<ac:structured-macro ac:name="warning" ac:schema-version="1"><ac:rich-text-body>'
        "<p>Drain the node first.</p></ac:rich-text-body></ac:structured-macro>"
    )


class FakeConfluence(FakeSystem):
    connector_type = "confluence"

    def __init__(self, *, cloud: bool = True) -> None:
        super().__init__()
        self.cloud = cloud
        self.base_url = "https://acme.atlassian.net" if cloud else "https://wiki.example.com/confluence"
        self.context = "/wiki" if cloud else "/confluence"
        self.zone = ZoneInfo(CLOUD_ZONE if cloud else DC_ZONE)
        self.attachments: dict[str, list[tuple[str, bytes]]] = {}  # page id -> (file name, content)

    # --- what tests call ------------------------------------------------------------------------------

    def settings(self, *, good_credentials: bool = True, **options: Any) -> ConnectorSettings:
        if self.cloud:
            secret = API_TOKEN if good_credentials else "wrong-cloud-token"
            base: dict[str, Any] = {"deployment": "cloud", "email": EMAIL, "spaces": SPACE_KEY}
            secrets = {"api_token": secret}
            mode = "api_token"
        else:
            secret = PAT if good_credentials else "wrong-dc-pat-token"
            base = {"deployment": "datacenter", "spaces": SPACE_KEY, "time_zone": DC_ZONE}
            secrets = {"personal_access_token": secret}
            mode = "pat"
        base.update(options)
        return ConnectorSettings(
            name="Ops wiki", base_url=self.base_url, auth_mode=mode, options=base, secrets=secrets
        )

    def new_ticket(self, number: int, updated_at: datetime) -> FakeTicket:
        return FakeTicket(
            external_id=str(FIRST_ID + number),
            title=f"Restart service {number} after a 502",
            description=storage_body(number),
            updated_at=updated_at,
            created_at=updated_at,
            status="current",
            extra={"space": SPACE_KEY, "labels": ["runbook"], "author": f"Author {number % 3}"},
        )

    def is_ticket_query(self, request: httpx.Request) -> bool:
        return request.url.path.endswith("/rest/api/content/search")

    def query_since(self, request: httpx.Request) -> datetime | None:
        bound, _, _ = self._parse_cql(request.url.params.get("cql", ""))
        return bound

    # --- routing ----------------------------------------------------------------------------------------

    def error_response(
        self, status: int, message: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        reasons = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
        body = {
            "statusCode": status,
            "data": {"authorized": status != 401, "valid": True, "errors": [], "successful": False},
            "message": message,
            "reason": reasons.get(status, "Error"),
        }
        return httpx.Response(status, json=body, headers=dict(headers or {}))

    def route(self, request: httpx.Request) -> httpx.Response:
        if not self._authorised(request):
            return self.error_response(
                401,
                "Basic authentication with passwords is deprecated or the token is invalid"
                if self.cloud
                else "Unauthorized",
            )
        path = request.url.path.removeprefix(self.context)
        if request.method != "GET":
            self.not_understood(request)
        if path == "/rest/api/user/current":
            return httpx.Response(200, json=self._user())
        if path == "/rest/api/content/search":
            return self._search(request)
        match = re.fullmatch(r"/rest/api/content/(\d+)/child/attachment", path)
        if match:
            return self._attachment_list(match.group(1))
        match = re.fullmatch(r"/download/attachments/(\d+)/([^/]+)", path)
        if match:
            for name, content in self.attachments.get(match.group(1), []):
                if name == match.group(2):
                    return httpx.Response(
                        200, content=content, headers={"Content-Type": "application/octet-stream"}
                    )
            return self.error_response(404, "No attachment found")
        self.not_understood(request)

    def _authorised(self, request: httpx.Request) -> bool:
        header: str = request.headers.get("Authorization", "")
        if self.cloud:
            expected = base64.b64encode(f"{EMAIL}:{API_TOKEN}".encode()).decode()
            return header == f"Basic {expected}"
        return header == f"Bearer {PAT}"

    def _user(self) -> dict[str, Any]:
        if self.cloud:
            return {
                "type": "known",
                "accountId": "5b10ac8d82e05b22cc7d4ef5",
                "accountType": "atlassian",
                "email": EMAIL,
                "publicName": "Ann Analyst",
                "displayName": "Ann Analyst",
                "timeZone": CLOUD_ZONE,
            }
        return {"type": "known", "username": "ann", "userKey": "8a7f808a", "displayName": "Ann Analyst"}

    # --- search -----------------------------------------------------------------------------------------

    def _parse_cql(self, cql: str) -> tuple[datetime | None, tuple[str, ...], str | None]:
        if not cql.endswith(_ORDER):
            raise CqlError(f"Could not parse cql : {cql}")
        terms = cql.removesuffix(_ORDER).split(" AND ")
        if not terms or terms[0] != "type = page":
            raise CqlError(f"Could not parse cql : {cql}")
        bound: datetime | None = None
        spaces: tuple[str, ...] = ()
        label: str | None = None
        for term in terms[1:]:
            if match := _BOUND.match(term):
                local = datetime.strptime(match.group(1), "%Y/%m/%d %H:%M").replace(tzinfo=self.zone)
                bound = local.astimezone(UTC)
            elif match := _SPACE_IN.match(term):
                spaces = tuple(part.strip().strip('"') for part in match.group(1).split(","))
            elif match := _LABEL.match(term):
                label = match.group(1)
            else:
                raise CqlError(f"Could not parse cql : {cql}")
        return bound, spaces, label

    def _search(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if set(params.keys()) - SEARCH_PARAMS or "cql" not in params:
            self.not_understood(request)
        try:
            bound, spaces, label = self._parse_cql(params["cql"])
        except CqlError as exc:
            return self.error_response(400, str(exc))
        misbehaviour = self.misbehaviour
        if misbehaviour is not None and misbehaviour.ignores_filter:
            bound = None
        selected = sorted(
            (
                ticket
                for ticket in self.tickets.values()
                if ticket.status == "current"
                and (not spaces or ticket.extra.get("space") in spaces)
                and (label is None or label in ticket.extra.get("labels", []))
                and (bound is None or ticket.updated_at >= bound)
            ),
            key=lambda ticket: (ticket.updated_at, int(ticket.external_id)),
        )
        limit = min(int(params.get("limit", "25")), self.page_size)
        offset = self._offset(params)
        if misbehaviour is not None and misbehaviour.ignores_page_token:
            offset = 0
        page = selected[offset : offset + limit]
        expand = set(params.get("expand", "").split(","))
        links: dict[str, Any] = {
            "base": self.base_url.removesuffix("/wiki") + ("/wiki" if self.cloud else ""),
            "context": self.context,
            "self": str(request.url),
        }
        more = offset + limit < len(selected) or (
            misbehaviour is not None and misbehaviour.ignores_filter and misbehaviour.ignores_page_token
        )
        if more:
            links["next"] = self._next_link(params, offset + limit, limit)
        body = {
            "results": [self._content(ticket, expand) for ticket in page],
            "start": offset,
            "limit": limit,
            "size": len(page),
            "_links": links,
        }
        if not self.cloud:
            body["totalSize"] = len(selected)
        return httpx.Response(200, json=body)

    def _offset(self, params: httpx.QueryParams) -> int:
        if self.cloud and "cursor" in params:
            try:
                return int(json.loads(base64.urlsafe_b64decode(params["cursor"]))["offset"])
            except (ValueError, KeyError) as exc:
                raise AssertionError(f"the connector sent a cursor the fake never made: {exc}") from exc
        return int(params.get("start", "0"))

    def _next_link(self, params: httpx.QueryParams, offset: int, limit: int) -> str:
        query: dict[str, Any] = {"cql": params["cql"], "expand": params.get("expand", ""), "limit": limit}
        if self.cloud:
            cursor = base64.urlsafe_b64encode(json.dumps({"offset": offset, "id": "x"}).encode()).decode()
            query = {"next": "true", "cursor": cursor, **query, "start": offset}
        else:
            query["start"] = offset
        return "/rest/api/content/search?" + urlencode(query)

    def _when(self, moment: datetime) -> str:
        local = moment.astimezone(UTC if self.cloud else self.zone)
        text = local.isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z") if self.cloud else text

    def _content(self, ticket: FakeTicket, expand: set[str]) -> dict[str, Any]:
        page_id = ticket.external_id
        author = {"type": "known", "displayName": ticket.extra.get("author", "Ann Analyst")}
        webui = (
            f"/spaces/{SPACE_KEY}/pages/{page_id}/{ticket.title.replace(' ', '+')}"
            if self.cloud
            else f"/display/{SPACE_KEY}/{ticket.title.replace(' ', '+')}"
        )
        content: dict[str, Any] = {
            "id": page_id,
            "type": "page",
            "status": ticket.status,
            "title": ticket.title,
            "_links": {
                "webui": webui,
                "tinyui": f"/x/{page_id}",
                "self": f"{self.base_url}/rest/api/content/{page_id}",
            },
            "_expandable": {"children": f"/rest/api/content/{page_id}/child"},
        }
        if "space" in expand:
            content["space"] = {"id": 33001, "key": SPACE_KEY, "name": SPACE_NAME, "type": "global"}
        if "version" in expand:
            content["version"] = {
                "by": author,
                "when": self._when(ticket.updated_at),
                "number": 1 + int(ticket.updated_at.timestamp()) % 7,
                "minorEdit": False,
            }
        if "history" in expand:
            content["history"] = {
                "latest": True,
                "createdBy": author,
                "createdDate": self._when(ticket.created_at),
            }
        if "body.storage" in expand:
            content["body"] = {"storage": {"value": ticket.description, "representation": "storage"}}
        if "metadata.labels" in expand:
            labels = ticket.extra.get("labels", [])
            content["metadata"] = {
                "labels": {
                    "results": [
                        {"prefix": "global", "name": name, "id": str(i)} for i, name in enumerate(labels)
                    ],
                    "start": 0,
                    "limit": 200,
                    "size": len(labels),
                }
            }
        return content

    # --- attachments ------------------------------------------------------------------------------------

    def _attachment_list(self, page_id: str) -> httpx.Response:
        if page_id not in {ticket.external_id for ticket in self.tickets.values()}:
            return self.error_response(404, f"No content found with id: ContentId{{id={page_id}}}")
        rows = []
        for index, (name, content) in enumerate(self.attachments.get(page_id, [])):
            rows.append(
                {
                    "id": f"att{page_id}{index}",
                    "type": "attachment",
                    "status": "current",
                    "title": name,
                    "extensions": {"mediaType": "application/octet-stream", "fileSize": len(content)},
                    "_links": {
                        "download": f"/download/attachments/{page_id}/{name}"
                        "?version=1&modificationDate=1700000000000&api=v2",
                        "webui": f"/pages/viewpageattachments.action?pageId={page_id}",
                    },
                }
            )
        base = self.base_url.removesuffix("/wiki") + ("/wiki" if self.cloud else "")
        return httpx.Response(
            200,
            json={
                "results": rows,
                "start": 0,
                "limit": 50,
                "size": len(rows),
                "_links": {"base": base, "context": self.context},
            },
        )


# --- uploads in the real file formats, for attachment tests ---------------------------------------------


def minimal_pdf(*lines: str) -> bytes:
    """A one-page PDF whose text layer holds ``lines`` (Helvetica, one line each), with a correct xref."""
    escaped = [line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for line in lines]
    stream = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) '" for line in escaped) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def minimal_docx(*paragraphs: str, document_xml: str | None = None) -> bytes:
    """A DOCX (a zip with ``word/document.xml``) holding ``paragraphs``; a tab in one becomes ``w:tab``."""
    import io
    import zipfile
    from xml.sax.saxutils import escape

    word = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    if document_xml is None:
        body = "".join(
            "<w:p><w:r>"
            + "<w:tab/>".join(f'<w:t xml:space="preserve">{escape(part)}</w:t>' for part in text.split("\t"))
            + "</w:r></w:p>"
            for text in paragraphs
        )
        document_xml = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<w:document xmlns:w="{word}"><w:body>{body}</w:body></w:document>'
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        archive.writestr("word/document.xml", document_xml)
    return buffer.getvalue()
