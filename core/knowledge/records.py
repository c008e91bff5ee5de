"""What a knowledge connector hands the sync: one :class:`ArticleValues` per article it read.

Like :class:`core.store.tickets.TicketValues`, it carries no instance (the connector's base URL says which
installation served it) and every field feeds :attr:`ArticleValues.content_hash`, so a re-read of an
unchanged article changes nothing and an edited one is stored as updated.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


class ArticleState(enum.StrEnum):
    """The article's state, normalised from each vendor's words; only published articles are matched."""

    PUBLISHED = "published"
    DRAFT = "draft"
    REVIEW = "review"
    RETIRED = "retired"


@dataclass(frozen=True, slots=True)
class ArticleValues:
    """One article, normalised; times aware UTC. ``body`` is Markdown (:mod:`core.knowledge.markdown`); the
    source's own HTML/XHTML stays in ``raw_payload``."""

    external_id: str
    source_system: str
    title: str
    body: str
    state: ArticleState
    updated_at: datetime | None  # the source's update time: the sync cursor
    number: str | None = None
    url: str | None = None
    space: str | None = None  # Confluence space, ServiceNow knowledge base, SDP topic
    category: str | None = None
    author: str | None = None
    attachments: tuple[str, ...] = ()
    attachment_text: str | None = None  # only when the connector is told to index attachments
    raw_payload: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        encoded = json.dumps(asdict(self), sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()
