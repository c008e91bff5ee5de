"""What setting up a connector needs beyond its config row: a forgiving URL check and the first sync's start.

Both the desktop wizard and scripts use these; they hold no Qt and no I/O beyond the store.

:func:`cleartext_credentials` says when a connector would send its credentials over plain ``http://``: the
wizard warns (:func:`check_base_url`), the CLI refuses unless told ``--allow-insecure-http``.

:func:`check_base_url` turns what an analyst pastes (``acme.service-now.com/now/nav/ui/classic/...``,
``htps://jira.example.com/jira/browse/OPS-1``) into the base URL a connector wants, says what it changed,
and refuses obvious typos of the vendors' cloud domains with a suggestion rather than letting the first
request fail with "host not found". A context path that is not a known UI or API path (Jira Data Center's
``/jira``) is kept.

:func:`set_first_sync_start` writes the config's first cursor, so the first sync reads only what changed since
that date (the wizard's default: 90 days back) instead of the system's whole history. It never moves an
existing cursor: a sync that already ran owns it.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from connectors.base import Cursor
from connectors.sync import TICKETS_STREAM
from core.store.models import SyncCursor
from core.store.repository import current_actor, record_audit
from core.store.tenancy import TenantSession

FIRST_SYNC_LOOKBACK = timedelta(days=90)

# Cloud domains whose instances live on sub-domains; a near miss is a typo, and any path is a UI path.
CLOUD_DOMAINS: dict[str, str] = {
    "service-now.com": "servicenow",
    "servicenowservices.com": "servicenow",
    "atlassian.net": "jira",
    "sdpondemand.manageengine.com": "servicedesk_plus",
    "sdpondemand.manageengine.eu": "servicedesk_plus",
    "sdpondemand.manageengine.in": "servicedesk_plus",
    "sdpondemand.manageengine.com.au": "servicedesk_plus",
    "onbmc.com": "remedy",
}
# Cloud domains where the vendor's own host is never an instance, and whose near misses are typos.
_INSTANCE_DOMAINS = ("service-now.com", "servicenowservices.com", "atlassian.net", "onbmc.com")
# Where an instance is usually reached when someone types only its name.
_SHORT_NAME_DOMAIN = {"servicenow": "service-now.com", "jira": "atlassian.net"}
# Path segments that start a UI page or an API call: everything from them on is not part of the base URL.
_UI_SEGMENTS = frozenset(
    {
        "api",
        "app",
        "arsys",
        "browse",
        "dashboard",
        "esc",
        "issues",
        "login",
        "now",
        "plugins",
        "projects",
        "rest",
        "secure",
        "servicedesk",
        "smartit",
        "sp",
        "ui",
    }
)
_UI_SUFFIXES = (".do", ".jspa", ".jsp", ".cc", ".html", ".htm", ".aspx", ".php")
_TLD_TYPOS = {"con": "com", "cmo": "com", "ocm": "com", "comm": "com", "vom": "com", "xom": "com"}
_TLD_TYPOS |= {"nte": "net", "nett": "net", "ogr": "org", "rog": "org"}
_HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_SCHEME = re.compile(r"^(?P<scheme>[a-z]{2,7})(?P<sep>:[/\\]*|[/\\]{1,3})", re.IGNORECASE)
_SIMILAR = 0.8


@dataclass(frozen=True, slots=True)
class UrlCheck:
    """The normalised URL, what was changed, and a problem that must be fixed before going on."""

    url: str
    changes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    problem: str | None = None
    suggestion: str | None = None  # a corrected URL to offer when ``problem`` is a typo

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class _Draft:
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_base_url(text: str, connector_type: str | None = None) -> UrlCheck:
    """``text`` as a connector base URL: scheme added or fixed, UI paths, query and fragment removed."""
    draft = _Draft()
    raw = text.strip()
    if not raw:
        return UrlCheck("", problem="Enter the address of the instance, e.g. https://acme.service-now.com")
    if any(ch.isspace() for ch in raw):
        return UrlCheck(raw, problem="The address contains a space; paste it again without spaces")
    candidate = _fix_scheme(raw, draft)
    parts = urlsplit(candidate)
    if parts.username or parts.password:
        return UrlCheck(
            candidate,
            problem="Remove the user name or password from the address; enter them on the next page",
        )
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return UrlCheck(candidate, problem="The address has no host name")
    try:
        port = parts.port
    except ValueError:
        return UrlCheck(candidate, problem="The port after the host name is not a number between 1 and 65535")
    labels = host.split(".")
    if not all(_HOST_LABEL.match(label) for label in labels):
        return UrlCheck(
            candidate,
            problem=f"{host!r} is not a valid host name (letters, digits, hyphens and dots only)",
        )
    netloc = host if port is None else f"{host}:{port}"
    scheme = parts.scheme.lower()
    path = _base_path(parts.path, host, draft)
    if parts.query or parts.fragment:
        draft.changes.append("removed the query and fragment after the address")
    url = f"{scheme}://{netloc}{path}"
    if scheme == "http":
        draft.warnings.append("http:// sends the credentials unencrypted; use https:// unless this is a test")
    typo = _host_typo(host, labels, connector_type, draft)
    if typo is not None:
        problem, suggested_host = typo
        suggestion = None
        if suggested_host is not None:
            suggested_netloc = suggested_host if port is None else f"{suggested_host}:{port}"
            suggestion = f"{scheme}://{suggested_netloc}{path}"
        return UrlCheck(url, tuple(draft.changes), tuple(draft.warnings), problem, suggestion)
    return UrlCheck(url, tuple(draft.changes), tuple(draft.warnings))


def _fix_scheme(raw: str, draft: _Draft) -> str:
    match = _SCHEME.match(raw)
    if match is None:
        draft.changes.append("added https://")
        return "https://" + raw
    scheme, separator = match.group("scheme").lower(), match.group("sep")
    rest = raw[match.end() :]
    if scheme in ("http", "https") and separator == "://":
        return scheme + "://" + rest
    if scheme in ("http", "https") or difflib.SequenceMatcher(None, scheme, "https").ratio() >= 0.6:
        fixed = "http" if scheme == "http" else "https"
        draft.changes.append(f"corrected {match.group(0)!r} to {fixed + '://'!r}")
        return f"{fixed}://{rest}"
    # Something like "acme.example.com:8443" has no scheme: urlsplit would read "acme.example.com" as one.
    draft.changes.append("added https://")
    return "https://" + raw


def _cloud_domain(host: str) -> str | None:
    return next((d for d in CLOUD_DOMAINS if host == d or host.endswith("." + d)), None)


def _base_path(path: str, host: str, draft: _Draft) -> str:
    segments = [segment for segment in path.split("/") if segment]
    if _cloud_domain(host) is not None:
        kept: list[str] = []
    else:
        kept = []
        for segment in segments:
            if segment.lower() in _UI_SEGMENTS or segment.lower().endswith(_UI_SUFFIXES):
                break
            kept.append(segment)
    if len(kept) < len(segments):
        removed = "/" + "/".join(segments[len(kept) :])
        draft.changes.append(f"removed the page path {removed}")
    elif kept:
        draft.warnings.append(
            f"kept /{'/'.join(kept)} as the context path (Jira Data Center often has /jira)"
        )
    return "/" + "/".join(kept) if kept else ""


def _host_typo(
    host: str, labels: list[str], connector_type: str | None, draft: _Draft
) -> tuple[str, str | None] | None:
    tld = labels[-1]
    if tld in _TLD_TYPOS and len(labels) > 1:
        fixed = ".".join([*labels[:-1], _TLD_TYPOS[tld]])
        return f"'.{tld}' looks like a typo of '.{_TLD_TYPOS[tld]}'", fixed
    known = _cloud_domain(host)
    if known is not None:
        system = CLOUD_DOMAINS[known]
        if host == known and known in _INSTANCE_DOMAINS:
            return f"{host} is the vendor's domain; add your instance's name in front of it", None
        if connector_type and system != connector_type:
            draft.warnings.append(f"{host} looks like a {system} address, not {connector_type}")
        return None
    for domain in _INSTANCE_DOMAINS:
        size = domain.count(".") + 1
        if len(labels) <= size:
            continue
        tail = ".".join(labels[-size:])
        other_tld = tail.rsplit(".", 1)[0] == domain.rsplit(".", 1)[0]  # atlassian.com for atlassian.net
        if other_tld or difflib.SequenceMatcher(None, tail, domain).ratio() >= _SIMILAR:
            fixed = ".".join([*labels[:-size], domain])
            return f"{tail!r} looks like a typo of {domain!r}", fixed
    if len(labels) == 1:
        short_domain = _SHORT_NAME_DOMAIN.get(connector_type or "")
        if short_domain is not None:
            full = f"{host}.{short_domain}"
            return f"{host!r} is not a full host name; did you mean {full}?", full
        draft.warnings.append(f"{host!r} is a single-label name: it resolves only inside your network")
    return None


def cleartext_credentials(base_url: str, *, sends_credentials: bool) -> str | None:
    """Why sending credentials to ``base_url`` would expose them, or None when it would not.

    Plain ``http://`` puts a Basic header, an API token or a login form on the network in clear text. A
    loopback address is the exception, as for the W3C's "potentially trustworthy" origins (Secure Contexts,
    3.1): its traffic never leaves the machine, which is how a local test server or a TLS tunnel
    (``ssh -L``, stunnel) is reached. Only a literal loopback IP or ``localhost`` counts; a name that merely
    resolves to one does not.
    """
    parts = urlsplit(base_url.strip())
    if not sends_credentials or parts.scheme.lower() != "http" or _is_loopback(parts.hostname or ""):
        return None
    return (
        f"{base_url} is plain http://: the credentials would cross the network in clear text, readable "
        "by anyone on the way. Use https://, or accept that explicitly (a test instance) with "
        "--allow-insecure-http"
    )


def _is_loopback(host: str) -> bool:
    host = host.rstrip(".").lower()
    if host == "localhost":  # RFC 6761 6.3: always the loopback (resolvers are told never to ask DNS)
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_first_sync_start(now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - FIRST_SYNC_LOOKBACK


def set_first_sync_start(
    sessions: sessionmaker[TenantSession], config_id: int, start: datetime, *, actor: str | None = None
) -> bool:
    """Store ``start`` as the config's cursor if it has none yet; True if written (and audited: it decides
    how much of the source's history the store ever sees).

    The cursor carries no record id, so every connector re-reads records at exactly ``start`` (minus its
    timestamp precision) instead of skipping any.
    """
    moment = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
    with sessions.begin() as session:
        existing = session.scalar(
            select(SyncCursor.id).where(
                SyncCursor.connector_config_id == config_id, SyncCursor.stream == TICKETS_STREAM
            )
        )
        if existing is not None:
            return False
        session.add(
            SyncCursor(
                tenant_id=session.tenant_id,
                connector_config_id=config_id,
                stream=TICKETS_STREAM,
                state=Cursor(moment.astimezone(UTC)).to_state(),
            )
        )
        record_audit(
            session,
            actor=actor or current_actor(),
            action="connector.first_sync_start",
            entity_type="connector_config",
            entity_id=config_id,
            after={"start": moment.astimezone(UTC).isoformat()},
        )
    return True
