"""ManageEngine ServiceDesk Plus solutions (the knowledge base) as clean Markdown articles.

It is the requests connector (:mod:`connectors.ticketing.servicedesk_plus`) pointed at another listing, not
a copy of it: the same settings checks, on-premises ``authtoken`` or Cloud Zoho OAuth (data-centre hosts,
the token cached and renewed once on a 401), the v3 ``Accept`` header, the ``response_status`` envelope
checked on every answer (failures arrive inside HTTP 200 too), epoch-millisecond times, numeric-id cursor
tie-break (:meth:`~connectors.ticketing.servicedesk_plus.ServiceDeskPlusConnector.already_stored`) and the
keyset paging of :class:`~connectors.ticketing.servicedesk_plus.RequestsStream` (``search_criteria``
``last_updated_time`` "greater or equal", sorted ascending, ``start_index`` past the ties already read).

API facts this module relies on (ManageEngine's v3 "Solution" and "Topic" pages, and the "V3 solutions API
changes" note of version 11200):

- ``GET {prefix}/api/v3/solutions?input_data={"list_info": {...}}`` answers ``{"solutions": [...],
  "list_info": {"has_more_rows": ...}, "response_status": [...]}``.
- A solution: ``id`` (a number, sent as a string), ``title`` (plain text), ``description`` (HTML, converted
  by :func:`core.knowledge.markdown.html_to_markdown`; the HTML stays in ``raw_payload``), ``topic``
  ``{"name", "id"}`` (topics group solutions, like a knowledge base: stored as the article's ``space``),
  ``keywords`` (one comma-separated string; before 11200 ``key_words``, a list), ``approval_status``
  ``{"name"}``, ``expiry_date`` and the server's own ``is_expirydate_elapsed``, ``created_by`` ``{"name"}``,
  ``created_time`` / ``last_updated_time`` ``{"value": "<epoch ms>", "display_value"}``, ``attachments``.
- ``approval_status`` names, as the web client lists them (``/api/v3/solutions/approval_status``):
  ``Approved`` (published), ``Approval Pending`` (review), ``UnApproved`` (the state a new solution starts
  in) and ``Rejected`` (draft), ``Expired`` (retired). An approved solution whose expiry date has passed is
  retired too: SDP hides it from requesters, so it must not be matched. An unknown (renamed) status is
  stored as a draft: never matched.
- Keywords are what SDP's own solution search matches on, so they end the Markdown body ("Keywords: ...")
  where the article search finds them.
- The solution's page: on Cloud ``{base}/app/<portal>/ui/solutions/<id>/details`` (as the requests
  connector's ``/ui/requests/<id>/details``; seen in published links to SDP Cloud solutions); on-premises
  ``{base}/AddSolution.do?submitaction=viewsolution&solutionID=<id>`` (the classic view URL on-premises
  installs publish).

Limitation: an approved solution that expires without an edit is not re-read by an incremental sync (its
``last_updated_time`` does not move), so it stays published here until the next edit or full sync.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from connectors.base import (
    AuthMode,
    ConnectorKind,
    ConnectorSpec,
    CreatedTicket,
    Cursor,
    HttpStream,
    NewIncident,
    PageRequest,
    Reading,
    WorkNote,
    WriteAccess,
    WriteCheck,
)
from connectors.errors import BadResponseError, ConfigurationError
from connectors.ticketing import servicedesk_plus
from connectors.ticketing.servicedesk_plus import (
    AUTH_CLOUD,
    MAX_ROW_COUNT,
    Keyset,
    RequestsStream,
    ServiceDeskPlusConnector,
    epoch_ms_value,
)
from core.knowledge.markdown import html_to_markdown
from core.knowledge.records import ArticleState, ArticleValues

SOURCE_SYSTEM = "servicedesk_plus_solutions"
REQUESTS_SPEC = servicedesk_plus.SPEC
FIELDS_REQUIRED = (
    "id",
    "title",
    "description",
    "topic",
    "keywords",
    "approval_status",
    "is_public",
    "created_by",
    "created_time",
    "last_updated_time",
    "expiry_date",
    "is_expirydate_elapsed",
    "attachments",
)
# approval_status names, folded (case, spaces and underscores ignored) -> our state.
STATES: Mapping[str, ArticleState] = {
    "approved": ArticleState.PUBLISHED,
    "approvalpending": ArticleState.REVIEW,
    "unapproved": ArticleState.DRAFT,
    "rejected": ArticleState.DRAFT,
    "expired": ArticleState.RETIRED,
}
_WHITESPACE = re.compile(r"\s+")
_NOT_LETTERS = re.compile(r"[\s_-]+")

SPEC = ConnectorSpec(
    type=SOURCE_SYSTEM,
    display_name="ManageEngine ServiceDesk Plus solutions",
    kind=ConnectorKind.KNOWLEDGE,
    auth_modes=(
        REQUESTS_SPEC.auth_modes[0],
        AuthMode(
            AUTH_CLOUD,
            "Cloud: Zoho OAuth (refresh token)",
            "A Self Client in the Zoho API console with the scope SDPOnDemand.solutions.READ.",
        ),
    ),
    fields=(
        REQUESTS_SPEC.field("portal"),
        REQUESTS_SPEC.field("data_centre"),
        REQUESTS_SPEC.field("api_key"),
        REQUESTS_SPEC.field("client_id"),
        REQUESTS_SPEC.field("client_secret"),
        REQUESTS_SPEC.field("refresh_token"),
    ),
    timestamp_precision=timedelta(milliseconds=1),
    description="Solutions (the knowledge base) from ServiceDesk Plus on-premises or Cloud, as Markdown.",
    docs_url="https://www.manageengine.com/products/service-desk/sdpod-v3-api/solution/solution.html",
)


# ----------------------------------------------------------------------------------------------------------
# Pure helpers (no I/O), tested on their own
# ----------------------------------------------------------------------------------------------------------


def _name(value: Any) -> str | None:
    """A lookup's ``name`` (``{"name", "id"}``), or a plain value, stripped; None when empty."""
    if isinstance(value, Mapping):
        value = value.get("name")
    if value is None:
        return None
    text = _WHITESPACE.sub(" ", str(value)).strip()
    return text or None


def solution_state(
    approval_status: str | None, *, expiry: datetime | None = None, elapsed: bool = False, now: datetime
) -> ArticleState:
    """Our state from the ``approval_status`` name; an approved solution past its expiry date is retired."""
    key = _NOT_LETTERS.sub("", (approval_status or "").casefold())
    state = STATES.get(key, ArticleState.DRAFT)
    if state is ArticleState.PUBLISHED and (elapsed or (expiry is not None and expiry <= now)):
        return ArticleState.RETIRED
    return state


def keyword_list(record: Mapping[str, Any]) -> tuple[str, ...]:
    """``keywords`` (comma-separated, v3 since 11200) or ``key_words`` (a list, before), de-duplicated."""
    raw = record.get("keywords")
    if raw is None:
        raw = record.get("key_words")
    items = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else []
    seen: dict[str, str] = {}
    for item in items:
        word = _name(item)
        if word and word.casefold() not in seen:
            seen[word.casefold()] = word
    return tuple(seen.values())


def solution_url(base: str, solution_id: str, *, cloud_portal: str | None) -> str:
    """The solution's page in the web console (see the module docstring)."""
    base = base.rstrip("/")
    if cloud_portal:
        return f"{base}/app/{cloud_portal}/ui/solutions/{solution_id}/details"
    return f"{base}/AddSolution.do?submitaction=viewsolution&solutionID={solution_id}"


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def normalise_solution(
    record: Mapping[str, Any], *, base: str, cloud_portal: str | None, now: datetime
) -> ArticleValues:
    """One solution as an article; ValueError (with the reason) when it cannot be one."""
    solution_id = _name(record.get("id"))
    if not solution_id or not solution_id.isdigit():
        raise ValueError(f"the solution id {record.get('id')!r} is not a number")
    title = _name(record.get("title"))
    if not title:
        raise ValueError("the solution has no title")
    description = record.get("description")
    body = html_to_markdown(description) if isinstance(description, str) else ""
    keywords = keyword_list(record)
    if keywords:
        body = f"{body}\n\nKeywords: {', '.join(keywords)}".strip()
    updated_at = epoch_ms_value(record.get("last_updated_time")) or epoch_ms_value(record.get("created_time"))
    state = solution_state(
        _name(record.get("approval_status")),
        expiry=epoch_ms_value(record.get("expiry_date")),
        elapsed=_truthy(record.get("is_expirydate_elapsed")),
        now=now,
    )
    attachments = record.get("attachments")
    attachment_names = tuple(
        name
        for name in (
            _name(item.get("name") or item.get("file_name"))
            for item in (attachments if isinstance(attachments, list) else [])
            if isinstance(item, Mapping)
        )
        if name
    )
    return ArticleValues(
        external_id=solution_id,
        source_system=SOURCE_SYSTEM,
        title=title,
        body=body,
        state=state,
        updated_at=updated_at,
        number=solution_id,
        url=solution_url(base, solution_id, cloud_portal=cloud_portal),
        space=_name(record.get("topic")),
        author=_name(record.get("created_by")),
        attachments=attachment_names,
        raw_payload=dict(record),
    )


# ----------------------------------------------------------------------------------------------------------
# The connector
# ----------------------------------------------------------------------------------------------------------


class SolutionsStream(RequestsStream):
    """``/api/v3/solutions`` in the requests connector's keyset pages; records become articles."""

    noun: ClassVar[str] = "solutions"

    def __init__(
        self, connector: ServiceDeskPlusSolutionsConnector, since: Cursor | None, row_count: int
    ) -> None:
        super().__init__(connector, since, row_count)
        self.solutions = connector

    def request(self, token: Keyset | None) -> PageRequest:
        keyset = token or self.start
        params = self.sdp._list_params(
            row_count=self.row_count,
            start_index=1 + len(keyset.tie_ids),
            floor_ms=keyset.floor_ms,
            fields_required=FIELDS_REQUIRED,
        )
        return PageRequest("GET", self.solutions.solutions_path(), params)

    def records(self, body: Any, request: PageRequest) -> Sequence[Mapping[str, Any]]:
        return self.solutions.solutions_of(body)

    async def normalise(self, record: Mapping[str, Any]) -> Reading:
        return self.solutions.normalise(record)


class ServiceDeskPlusSolutionsConnector(ServiceDeskPlusConnector):
    """The requests connector's client, auth, envelope checks and paging over solutions; it never writes."""

    spec = SPEC
    can_write = False

    async def probe(self) -> None:
        """Auth (the OAuth refresh on Cloud) and a one-row read of solutions."""
        params = self._list_params(row_count=1, start_index=1, fields_required=("id", "title"))
        self.solutions_of(await self._get(self.solutions_path(), params))

    def streams(self, since: Cursor | None, page_size: int | None) -> list[HttpStream[Any]]:
        return [SolutionsStream(self, since, max(1, min(page_size or MAX_ROW_COUNT, MAX_ROW_COUNT)))]

    def solutions_path(self) -> str:
        return f"{self._prefix}/api/v3/solutions"

    def solutions_of(self, body: Any) -> list[Mapping[str, Any]]:
        records = body.get("solutions") if isinstance(body, Mapping) else None
        if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
            raise BadResponseError(
                self.name, f"GET {self.solutions_path()} answered without a list of solutions"
            )
        return records

    def normalise(self, record: Mapping[str, Any]) -> ArticleValues:
        cloud_portal = self._portal if self.settings.auth_mode == AUTH_CLOUD else None
        return normalise_solution(
            record, base=str(self.http.base_url), cloud_portal=cloud_portal, now=self.now()
        )

    def now(self) -> datetime:
        """What an expiry date is compared with (a test pins it)."""
        return datetime.now(UTC)

    # --- no writes -------------------------------------------------------------------------------------

    async def write_check(self) -> WriteCheck:
        return WriteCheck(WriteAccess.NOT_SUPPORTED, f"{SPEC.display_name} connectors do not write")

    async def create_incident(self, incident: NewIncident) -> CreatedTicket:
        raise ConfigurationError(self.name, f"{SPEC.display_name} connectors cannot create incidents")

    async def add_work_note(self, note: WorkNote) -> str | None:
        raise ConfigurationError(self.name, f"{SPEC.display_name} connectors cannot add work notes")
