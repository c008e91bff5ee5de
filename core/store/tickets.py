"""The ticket every source produces, and how a batch of them is stored: one home for files and connectors.

The file importer (:mod:`core.importing.tickets`) and every connector (``connectors.ticketing.*``) normalise
their records into :class:`TicketValues`; :func:`upsert_tickets` writes them. Which stored row a record
updates is the identity rule in :mod:`core.store.models`: (source system, source instance, external id)
within a tenant. This module applies it: :func:`instance_of` turns an instance's address into its key,
:func:`known_instances` lists a system's instances, and rows of unknown instance (a file imported before
any connector was configured) belong to the only known instance of their system.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import aliased

from core.errors import ImportFailedError
from core.store.models import UNKNOWN_INSTANCE, ConnectorConfig, Ticket, TicketKind
from core.store.sql import fit_row
from core.store.tenancy import TenantSession

# Statuses that mean "resolved" in the supported systems' words; a resolved ticket without a resolution time
# takes its last update as one (MTTR needs it).
RESOLVED_STATES = frozenset(
    {"resolved", "closed", "done", "closed complete", "closed skipped", "cancelled", "canceled"}
)
MAX_TITLE = 1000  # tickets.title's length
_DEFAULT_PORTS = frozenset({80, 443})


@dataclass(frozen=True, slots=True)
class TicketValues:
    """A normalised ticket from a file row or a connector record, before it meets the database.

    It carries no instance: a record does not know which instance served it, its source does (the
    connector's base URL, or what the analyst says of a file), so :func:`upsert_tickets` is told. Every
    field here feeds :attr:`content_hash`, so a new field changes every stored hash (and re-analyses all).
    """

    external_id: str
    source_system: str
    title: str
    description: str
    status: str | None
    severity: str | None
    assignee: str | None
    kind: TicketKind
    category: str | None
    configuration_item: str | None
    resolution_notes: str | None
    resolved_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    source_url: str | None
    raw_payload: dict[str, Any]

    @property
    def content_hash(self) -> str:
        encoded = json.dumps(_columns(self), sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def is_resolved(status: str | None, resolved_at: datetime | None) -> bool:
    """The ticket is resolved: its status says so, or (a source sending no status) it has a resolution time.

    The status decides when there is one: a reopened ticket often keeps its old resolution time.
    """
    if status is not None and status.strip():
        return status.strip().lower() in RESOLVED_STATES
    return resolved_at is not None


@dataclass(frozen=True, slots=True)
class Reopened:
    """A stored ticket that was resolved and is not any more: what it was before this upsert."""

    previous_status: str | None
    previous_resolved_at: datetime | None


@dataclass
class TicketChanges:
    """What :func:`upsert_tickets` wrote, for the caller that acts on it right after (outcome inference):
    the ids of the rows inserted or changed, and the changed rows that were resolved and are not any more
    (a reopen, seen only here: the update overwrites the status it had)."""

    ticket_ids: list[int] = dataclasses.field(default_factory=list)
    reopened: dict[int, Reopened] = dataclasses.field(default_factory=dict)


def instance_of(address: str) -> str:
    """The instance key of a base URL, any page URL of the instance, or a bare host name.

    The lower-case host, with its port unless that is 80 or 443: ``https://Acme.service-now.com/now/nav``,
    ``acme.service-now.com`` and ``http://acme.service-now.com:443`` are one instance. Paths are left out
    (a page URL pasted from the browser must match the connector's base URL); two instances on one host
    under different context paths would merge, which no supported system ships by default.
    """
    text = address.strip()
    if not text:
        return UNKNOWN_INSTANCE
    parts = urlsplit(text if "://" in text else "//" + text)
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError(f"{address!r} names no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{address!r}: the port is not a number between 1 and 65535") from None
    return host if port is None or port in _DEFAULT_PORTS else f"{host}:{port}"


def known_instances(session: TenantSession, source_system: str) -> frozenset[str]:
    """The instances of ``source_system`` this tenant knows: its configured connectors' and its tickets'.

    A connector config counts when its type names the system (every built-in connector writes its type as
    the tickets' ``source_system``), so an instance configured but not synced yet already counts.
    """
    instances = {
        instance_of(config.base_url)
        for config in session.scalars(
            select(ConnectorConfig).where(ConnectorConfig.connector_type == source_system)
        )
        if config.base_url
    }
    # One index seek per instance (the unique key starts tenant, system, instance), not a scan of the rows.
    last = UNKNOWN_INSTANCE
    while True:
        following = session.scalar(
            select(func.min(Ticket.source_instance)).where(
                Ticket.source_system == source_system, Ticket.source_instance > last
            )
        )
        if following is None:
            break
        instances.add(following)
        last = following
    instances.discard(UNKNOWN_INSTANCE)
    return frozenset(instances)


def import_instance(session: TenantSession, source_system: str, told: str | None) -> str:
    """The instance a file's ``source_system`` records belong to: what the analyst said, else the system's
    only known instance, else unknown; with two or more known and nothing said, the file is refused."""
    if told:
        return instance_of(told)
    return _only_instance(source_system, known_instances(session, source_system))


def _only_instance(source_system: str, instances: frozenset[str]) -> str:
    if len(instances) > 1:
        raise ImportFailedError(
            f"{source_system}: {len(instances)} instances are known ({', '.join(sorted(instances))}); "
            "say which one the file was exported from (runbook-desk import tickets --instance HOST)"
        )
    return next(iter(instances), UNKNOWN_INSTANCE)


def upsert_tickets(
    session: TenantSession,
    batch: Sequence[TicketValues],
    *,
    instance: str | None = None,
    connector_config_id: int | None = None,
    changes: TicketChanges | None = None,
) -> tuple[int, int, int]:
    """Insert new tickets, update changed ones, leave identical ones alone; (inserted, updated, unchanged).

    ``instance`` is where the records come from (a connector's :func:`instance_of` its base URL, or what
    the analyst said of a file); None means the source did not say, and each system's records go to
    :func:`import_instance` (which refuses when that is ambiguous). A row of unknown instance with the
    same system and id is taken over when the instance is the system's only known one.

    Keyed on (source_system, source_instance, external_id) within the session's tenant; the content hash
    decides "changed". Bulk INSERT / UPDATE by primary key: per-object unit-of-work bookkeeping made a 100k
    import several times slower. The caller owns the transaction. ``connector_config_id`` is stamped on
    every row a connector reads, changed or not (so removing a connector can purge them); files leave it.
    ``changes``, when given, is filled with the ids written and the reopens (:class:`TicketChanges`).
    """
    by_key: dict[tuple[str, str], TicketValues] = {}
    for values in batch:  # the same ticket twice in one batch: the later row wins
        by_key[(values.source_system, values.external_id)] = values
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []  # changed rows, and unchanged ones only re-keyed or adopted
    changed = 0
    unchanged = len(batch) - len(by_key)
    owner = {} if connector_config_id is None else {"connector_config_id": connector_config_id}
    for system in sorted({system for system, _ in by_key}):
        known = known_instances(session, system)
        target = _only_instance(system, known) if instance is None else instance
        claims_unknown = target != UNKNOWN_INSTANCE and known <= {target}
        found = _stored(session, system, target, claims_unknown, [i for s, i in by_key if s == system])
        for external_id, values in ((i, v) for (s, i), v in by_key.items() if s == system):
            content_hash = values.content_hash
            stored = found.get(external_id)
            if stored is None:
                inserts.append(
                    _fitted(values)
                    | {
                        "tenant_id": session.tenant_id,
                        "source_instance": target,
                        "content_hash": content_hash,
                    }
                    | owner
                )
                continue
            claimed = {"source_instance": target} if stored.instance != target else {}
            if stored.content_hash == content_hash:
                unchanged += 1
                adopted = owner if owner and stored.connector_config_id != connector_config_id else {}
                if claimed or adopted:  # a connector re-reading a ticket adopts it
                    updates.append({"id": stored.id} | claimed | adopted)
            else:
                changed += 1
                if changes is not None:
                    changes.ticket_ids.append(stored.id)
                    if is_resolved(stored.status, stored.resolved_at) and not is_resolved(
                        values.status, values.resolved_at
                    ):
                        changes.reopened[stored.id] = Reopened(stored.status, stored.resolved_at)
                updates.append(
                    _fitted(values) | {"id": stored.id, "content_hash": content_hash} | claimed | owner
                )
    if inserts:  # Core executemany: the ORM bulk path issued ~1 statement per 2 rows on SQLite
        session.execute(insert(_TICKETS), inserts)
        if changes is not None:
            changes.ticket_ids.extend(_inserted_ids(session, inserts))
    if updates:
        session.execute(update(Ticket), updates)
    # Each record counts once: an unchanged row that was only adopted or re-keyed is unchanged, not updated.
    return len(inserts), changed, unchanged


def move_to_instance(session: TenantSession, connector_config_id: int, instance: str) -> int:
    """Re-key the rows a connector config brought to ``instance``, as its base URL moved (a new custom
    domain, a proxy) but its instance did not; how many moved.

    A row whose id the new instance already holds (another config reads that host) stays where it was: two
    rows cannot share a key, and neither is dropped.
    """
    twin = aliased(Ticket)
    taken = (
        select(twin.id)
        .where(
            twin.source_system == Ticket.source_system,
            twin.source_instance == instance,
            twin.external_id == Ticket.external_id,
        )
        .exists()
    )
    result = session.execute(
        update(Ticket)
        .where(
            Ticket.connector_config_id == connector_config_id,
            Ticket.source_instance != instance,
            ~taken,
        )
        .values(source_instance=instance)
        .execution_options(synchronize_session=False)
    )
    if not isinstance(result, CursorResult):  # Session.execute returns one for DML; typed as Result
        raise TypeError(f"expected a CursorResult, got {type(result).__name__}")
    return result.rowcount


@dataclass(frozen=True, slots=True)
class _StoredTicket:
    id: int
    instance: str
    content_hash: str
    connector_config_id: int | None
    status: str | None
    resolved_at: datetime | None


def _inserted_ids(session: TenantSession, inserts: Sequence[Mapping[str, Any]]) -> list[int]:
    """The ids the rows just inserted got (a Core executemany returns none), looked up by their key."""
    by_instance: dict[tuple[str, str], list[str]] = {}
    for row in inserts:
        by_instance.setdefault((row["source_system"], row["source_instance"]), []).append(row["external_id"])
    ids: list[int] = []
    for (system, instance), external_ids in by_instance.items():
        ids.extend(
            session.scalars(
                select(Ticket.id).where(
                    Ticket.source_system == system,
                    Ticket.source_instance == instance,
                    Ticket.external_id.in_(external_ids),
                )
            )
        )
    return ids


def _stored(
    session: TenantSession, system: str, instance: str, claims_unknown: bool, external_ids: Iterable[str]
) -> Mapping[str, _StoredTicket]:
    """The stored row each id updates: the instance's own, else (when it may claim them) the unknown one's."""
    instances = [instance, UNKNOWN_INSTANCE] if claims_unknown else [instance]
    query = select(
        Ticket.id,
        Ticket.external_id,
        Ticket.source_instance,
        Ticket.content_hash,
        Ticket.connector_config_id,
        Ticket.status,
        Ticket.resolved_at,
    ).where(
        Ticket.source_system == system,
        Ticket.source_instance.in_(instances),
        Ticket.external_id.in_(list(external_ids)),
    )
    found: dict[str, _StoredTicket] = {}
    for pk, external_id, stored_instance, digest, config_id, status, resolved_at in session.execute(query):
        if external_id not in found or stored_instance == instance:
            found[external_id] = _StoredTicket(pk, stored_instance, digest, config_id, status, resolved_at)
    return found


def _columns(values: TicketValues) -> dict[str, Any]:
    return {name: getattr(values, name) for name in _TICKET_VALUE_NAMES}


def _fitted(values: TicketValues) -> dict[str, Any]:
    """The columns to write: descriptive text cut to its column's length (a 300-character category from a
    source system would fail the batch on PostgreSQL). The identity is never cut (two ids would merge), and
    the content hash is of the values as received, so cutting changes no stored hash."""
    return fit_row(_TICKETS, _columns(values), keep=_IDENTITY_COLUMNS)


_TICKET_VALUE_NAMES = tuple(f.name for f in dataclasses.fields(TicketValues))
_TICKETS = Ticket.metadata.tables[Ticket.__tablename__]
_IDENTITY_COLUMNS = frozenset({"external_id", "source_system", "source_instance"})
