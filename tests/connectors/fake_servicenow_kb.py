"""A local ServiceNow instance serving ``kb_knowledge``: the incident fake's Table API over articles.

Everything the incident fake (:mod:`tests.connectors.fake_servicenow`) does applies: basic auth and OAuth,
the encoded query with ``gs.dateGenerate`` literals, ``Link`` and ``X-Total-Count``, errors in ServiceNow's
body shape, read ACLs that shorten pages, and the :class:`~connectors.testing.fake_system.Misbehaviour`
modes. What this one adds is the ``kb_knowledge`` record in its real shape with
``sysparm_display_value=all``:

- ``short_description`` as typed in the form (it may carry ``\\n\\t\\t``), ``text`` as the editor stores it
  (HTML with entities and inline styles), ``wiki`` null unless the article is a wiki article;
- ``article_type`` ``text`` (shown "HTML") or ``wiki``; ``workflow_state`` ``published`` (shown
  "Published"), ``draft``, ``review``, ``retired``, ``outdated``, ``pending_retirement``...;
- ``kb_knowledge_base``, ``kb_category`` and ``author`` as reference fields (``display_value``, ``value``
  and, unless excluded, ``link``); ``valid_to`` a date;
- query terms on ``workflow_state``, ``kb_knowledge_base`` (sys_id) and ``kb_knowledge_base.title`` (the
  dot-walked title), so a knowledge-base filter really filters.

With attachments (:meth:`FakeServiceNowKnowledge.attach`), the Attachment API too: ``GET
/api/now/attachment?sysparm_query=table_name=kb_knowledge^table_sys_id=<id>`` lists their metadata
(``file_name``, ``content_type``, ``size_bytes`` as strings, ``download_link``...), ``GET
/api/now/attachment/<sys_id>/file`` answers the bytes; an unknown attachment is a 404 "Record doesn't
exist".

An article is a :class:`~connectors.testing.fake_system.FakeTicket`: ``external_id`` the number, ``title``
the short description, ``description`` the HTML body, ``status`` the workflow state, and in ``extra`` the
knowledge base, category, author, ``article_type`` and ``wiki``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from connectors.base import ConnectorSettings
from connectors.testing.fake_system import FakeTicket
from tests.connectors.fake_servicenow import QUERYABLE, FakeServiceNow, sys_id_for

KB_TABLE = "kb_knowledge"
STATE_LABELS = {
    "draft": "Draft",
    "review": "Review",
    "scheduled_publish": "Scheduled for publish",
    "published": "Published",
    "pending_retirement": "Pending retirement",
    "retired": "Retired",
    "outdated": "Outdated",
}
ARTICLE_TYPE_LABELS = {"text": "HTML", "wiki": "Wiki"}


def article_html(number: int) -> str:
    """A body as ServiceNow's editor stores it: inline styles, entities, a heading, steps, a table."""
    return (
        f'<p style="margin: 0px; font-family: Arial;"><span style="font-size: 10pt;">Users at site {number} '
        "lose the VPN tunnel every 10&nbsp;minutes &amp; must log in again.</span></p>"
        '<h2 style="color: #1f3864;">Resolution</h2>'
        '<ol><li><span style="font-size: 10pt;">Open <strong>AnyConnect</strong> &gt; Preferences.'
        "</span></li>"
        "<li>Untick &quot;Block connections to untrusted servers&quot;.</li></ol>"
    )


@dataclass
class FakeAttachment:
    article: str  # the article's number
    file_name: str
    content_type: str
    data: bytes
    size_bytes: int | None = None  # what the metadata claims; None: the real size

    @property
    def sys_id(self) -> str:
        return sys_id_for("sys_attachment", f"{self.article}/{self.file_name}")


class FakeServiceNowKnowledge(FakeServiceNow):
    connector_type: ClassVar[str] = "servicenow_kb"
    queryable: ClassVar[frozenset[str]] = QUERYABLE | {
        "workflow_state",
        "article_type",
        "kb_knowledge_base",
        "kb_knowledge_base.title",
        "kb_category",
    }

    def __init__(self, *, auth_mode: str = "basic", account_time_zone: str = "UTC") -> None:
        super().__init__(auth_mode=auth_mode, account_time_zone=account_time_zone, tables=(KB_TABLE,))
        self.existing_tables = {KB_TABLE}
        self.readable_tables = {KB_TABLE}
        self.knowledge_bases_option = ""  # what settings() puts in the "knowledge_bases" option
        self.query_option = ""
        self.index_attachments = False  # the "index_attachments" option
        self.attachments: list[FakeAttachment] = []
        self.file_downloads: list[str] = []  # file names, in order

    # --- what tests call ------------------------------------------------------------------------------

    def settings(self, *, good_credentials: bool = True) -> ConnectorSettings:
        base = super().settings(good_credentials=good_credentials)
        options = {key: value for key, value in base.options.items() if key != "tables"}
        if self.knowledge_bases_option:
            options["knowledge_bases"] = self.knowledge_bases_option
        if self.query_option:
            options["query"] = self.query_option
        if self.index_attachments:
            options["index_attachments"] = True
        return ConnectorSettings(
            name="ServiceNow Knowledge (fake)",
            base_url=base.base_url,
            auth_mode=base.auth_mode,
            options=options,
            secrets=dict(base.secrets),
        )

    def attach(
        self,
        article: FakeTicket,
        file_name: str,
        data: bytes,
        content_type: str,
        size_bytes: int | None = None,
    ) -> FakeAttachment:
        attachment = FakeAttachment(article.external_id, file_name, content_type, data, size_bytes)
        self.attachments.append(attachment)
        return attachment

    def new_ticket(self, number: int, updated_at: datetime) -> FakeTicket:
        return self.new_article(number, updated_at)

    def new_article(
        self,
        number: int,
        updated_at: datetime,
        *,
        title: str | None = None,
        html: str | None = None,
        state: str = "published",
        knowledge_base: str = "IT",
        category: str = "Network",
        author: str = "Beth Anglin",
        article_type: str = "text",
        wiki: str | None = None,
    ) -> FakeTicket:
        """An article numbered ``KB<number>``; not added (``add_ticket`` adds it)."""
        return FakeTicket(
            external_id=f"KB{number:07d}",
            title=title if title is not None else f"VPN drops every 10 minutes at site {number}",
            description=html if html is not None else article_html(number),
            updated_at=updated_at,
            created_at=updated_at - timedelta(days=1),
            status=state,
            extra={
                "table": KB_TABLE,
                "knowledge_base": knowledge_base,
                "category": category,
                "author": author,
                "article_type": article_type,
                "wiki": wiki,
            },
        )

    # --- the Attachment API ---------------------------------------------------------------------------

    def route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path == "/api/now/attachment":
            return self._attachment_list(request)
        download = re.fullmatch(r"/api/now/attachment/([0-9a-f]{32})/file", path)
        if request.method == "GET" and download:
            return self._attachment_file(request, download.group(1))
        return super().route(request)

    def _attachment_list(self, request: httpx.Request) -> httpx.Response:
        if not self._authenticated(request):
            return self.error_response(
                401, "User Not Authenticated", detail="Required to provide Auth information"
            )
        if set(request.url.params) - {"sysparm_query", "sysparm_limit"}:
            return self.not_understood(request)
        terms = dict(
            term.split("=", 1)
            for term in request.url.params.get("sysparm_query", "").split("^")
            if "=" in term and not term.startswith("ORDERBY")
        )
        if set(terms) != {"table_name", "table_sys_id"} or terms["table_name"] != KB_TABLE:
            return self.not_understood(request)
        owners = {self.sys_id(ticket): number for number, ticket in self.tickets.items()}
        number = owners.get(terms["table_sys_id"])
        rows = sorted(
            (self._attachment_meta(a) for a in self.attachments if a.article == number),
            key=lambda row: row["file_name"],
        )
        return httpx.Response(200, json={"result": rows}, headers={"X-Total-Count": str(len(rows))})

    def _attachment_meta(self, attachment: FakeAttachment) -> dict[str, str]:
        moment = "2026-03-01 08:00:00"
        size = attachment.size_bytes if attachment.size_bytes is not None else len(attachment.data)
        return {
            "size_bytes": str(size),
            "file_name": attachment.file_name,
            "sys_mod_count": "0",
            "average_image_color": "",
            "image_width": "",
            "sys_updated_on": moment,
            "sys_tags": "",
            "table_name": KB_TABLE,
            "sys_id": attachment.sys_id,
            "image_height": "",
            "sys_updated_by": "admin",
            "download_link": f"{self.base_url}/api/now/attachment/{attachment.sys_id}/file",
            "content_type": attachment.content_type,
            "sys_created_on": moment,
            "size_compressed": str(size),
            "compressed": "true",
            "state": "available",
            "table_sys_id": self.sys_id(self.tickets[attachment.article]),
            "chunk_size_bytes": "700000",
            "hash": hashlib.sha256(attachment.data).hexdigest(),
            "sys_created_by": "admin",
        }

    def _attachment_file(self, request: httpx.Request, sys_id: str) -> httpx.Response:
        if not self._authenticated(request):
            return self.error_response(
                401, "User Not Authenticated", detail="Required to provide Auth information"
            )
        found = next((a for a in self.attachments if a.sys_id == sys_id), None)
        if found is None:
            return self.error_response(
                404, "No Record found", detail="Record doesn't exist or ACL restricts the record retrieval"
            )
        self.file_downloads.append(found.file_name)
        return httpx.Response(200, content=found.data, headers={"Content-Type": found.content_type})

    # --- records --------------------------------------------------------------------------------------

    def _internal(self, ticket: FakeTicket, table: str) -> dict[str, str]:
        extra = ticket.extra
        return {
            "sys_id": self.sys_id(ticket),
            "number": ticket.external_id,
            "short_description": ticket.title,
            "workflow_state": ticket.status,
            "article_type": str(extra.get("article_type", "text")),
            "kb_knowledge_base": sys_id_for("kb_knowledge_base", str(extra.get("knowledge_base", ""))),
            "kb_knowledge_base.title": str(extra.get("knowledge_base", "")),
            "kb_category": sys_id_for("kb_category", str(extra.get("category", ""))),
        }

    def _render(
        self, ticket: FakeTicket, table: str, wanted: list[str] | None, display: str, exclude_link: bool
    ) -> dict[str, Any]:
        extra = ticket.extra
        sys_id = self.sys_id(ticket)
        article_type = str(extra.get("article_type", "text"))
        wiki = extra.get("wiki")
        fields: dict[str, tuple[Any, Any]] = {
            "sys_id": (sys_id, sys_id),
            "number": (ticket.external_id, ticket.external_id),
            "short_description": (ticket.title, ticket.title),
            "text": (ticket.description, ticket.description),
            "wiki": (wiki, wiki),  # null on a text article
            "article_type": (article_type, ARTICLE_TYPE_LABELS.get(article_type, article_type)),
            "workflow_state": (ticket.status, STATE_LABELS.get(ticket.status, ticket.status)),
            "valid_to": ("2100-01-01", "2100-01-01"),
        }
        for name, moment in (("sys_updated_on", ticket.updated_at), ("sys_created_on", ticket.created_at)):
            stored = moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "seconds")
            shown = moment.astimezone(self.account_zone).replace(tzinfo=None).isoformat(" ", "seconds")
            fields[name] = (stored, shown)
        references = {
            "kb_knowledge_base": ("kb_knowledge_base", extra.get("knowledge_base")),
            "kb_category": ("kb_category", extra.get("category")),
            "author": ("sys_user", extra.get("author")),
        }
        return self.render_fields(fields, references, wanted, display, exclude_link)
