"""Connector credentials in the OS keychain (via ``keyring``), and a log filter that keeps them out of logs.

Each connector config gets a stable keychain key, ``"<tenant-slug>/<uuid>"``, made once when the config is
created and stored in its ``config_json`` (the key, never the secret). Each secret field is one keychain entry
under the service :data:`SERVICE_NAME` with the user name ``"<key>/<field>"``: the analyst sees readable
entries in Seahorse / Keychain Access / Credential Manager, and removing a config removes exactly its entries.

There is deliberately no fallback: with no keychain (``keyring`` raises ``NoKeyringError``, e.g. a server
without a Secret Service) or a locked or refusing one, :class:`~connectors.errors.CredentialStoreError` tells
the user what to install or unlock. A plaintext file next to the database is what this module exists to avoid,
so ``keyrings.alt`` is not a dependency.

The backend is whatever ``keyring.get_keyring()`` returns at call time, so ``PYTHON_KEYRING_BACKEND`` or
``keyring.set_keyring`` (tests use :mod:`tests.helpers.memory_keyring`) choose it.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

from connectors.errors import CredentialStoreError

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

# keyring is imported where a secret is read or written, not with this module: the CLI's log redaction
# imports this module for every command, and keyring's import (its backends) cost ~30 ms of a `tickets list`.

SERVICE_NAME = "runbook-desk"
REDACTED = "***"
# Shorter values are not registered for redaction: replacing "abc" everywhere would garble every log line,
# and no real password, token or client secret is that short.
MIN_REDACTED_LENGTH = 4
# What the store keeps of an error text (sync_runs.error_text, audit rows): a page of explanation, not the
# megabytes of HTML a faulty server may answer with.
MAX_STORED_TEXT = 2_000

NO_KEYCHAIN_HINT = (
    "no OS keychain is available to hold the credentials: install and unlock one (GNOME Keyring "
    "`gnome-keyring` or KWallet on Linux; macOS Keychain and Windows Credential Manager are built in). "
    "On a headless Linux machine run Runbook Desk inside `dbus-run-session` with "
    "`gnome-keyring-daemon --unlock`. Runbook Desk never stores secrets in a plain file"
)


def new_keychain_key(tenant_slug: str) -> str:
    """A key that never changes for the life of a config (renaming the config keeps its credentials)."""
    return f"{tenant_slug}/{uuid.uuid4().hex}"


def entry_name(keychain_key: str, field: str) -> str:
    return f"{keychain_key}/{field}"


def store_secrets(
    connector: str, keychain_key: str, secrets: Mapping[str, str], *, service: str = SERVICE_NAME
) -> None:
    """Write each secret; an empty value deletes the entry (the analyst cleared the field)."""
    backend = _backend(connector)
    for field, value in secrets.items():
        with _translated(connector, f"store the secret {field!r}"):
            if value:
                backend.set_password(service, entry_name(keychain_key, field), value)
                register_secret(value)
            else:
                _delete_quietly(backend, service, entry_name(keychain_key, field))


def load_secrets(
    connector: str, keychain_key: str, fields: Iterable[str], *, service: str = SERVICE_NAME
) -> dict[str, str]:
    """The stored secrets among ``fields``; a missing one is left out (``settings.secret()`` then says so).

    Every value loaded is registered with the redacting log filter before anyone can log it.
    """
    backend = _backend(connector)
    found: dict[str, str] = {}
    for field in fields:
        with _translated(connector, f"read the secret {field!r}"):
            value = backend.get_password(service, entry_name(keychain_key, field))
        if value:
            register_secret(value)
            found[field] = value
    return found


def delete_secrets(
    connector: str, keychain_key: str, fields: Iterable[str], *, service: str = SERVICE_NAME
) -> None:
    """Remove the entries; one already gone is not an error (a retried removal must succeed)."""
    backend = _backend(connector)
    for field in fields:
        with _translated(connector, f"delete the secret {field!r}"):
            _delete_quietly(backend, service, entry_name(keychain_key, field))


def keychain_backend_name() -> str:
    """E.g. ``SecretService.Keyring``; shown by diagnostics, never secret."""
    import keyring

    backend = keyring.get_keyring()
    return f"{type(backend).__module__.rsplit('.', 1)[-1]}.{type(backend).__name__}"


def _backend(connector: str) -> KeyringBackend:
    import keyring

    with _translated(connector, "open the OS keychain"):
        return keyring.get_keyring()


def _delete_quietly(backend: KeyringBackend, service: str, username: str) -> None:
    import keyring.errors

    try:
        backend.delete_password(service, username)
    except keyring.errors.PasswordDeleteError:
        # The backend's way of saying "no such entry"; a locked keychain raises KeyringLocked instead.
        if backend.get_password(service, username) is not None:
            raise


@contextmanager
def _translated(connector: str, action: str) -> Iterator[None]:
    """Turns keyring's errors into a :class:`CredentialStoreError` that tells the user what to do."""
    import keyring.errors

    try:
        yield
    except keyring.errors.NoKeyringError as exc:
        raise CredentialStoreError(connector, f"cannot {action}: {NO_KEYCHAIN_HINT}") from exc
    except keyring.errors.KeyringLocked as exc:
        raise CredentialStoreError(
            connector,
            f"cannot {action}: the OS keychain is locked; unlock it (log in to the desktop) and retry",
        ) from exc
    except keyring.errors.KeyringError as exc:
        raise CredentialStoreError(
            connector,
            f"cannot {action}: the OS keychain refused ({type(exc).__name__}: {exc}); "
            "unlock it or check its settings",
        ) from exc


# --- log redaction ---------------------------------------------------------------------------------------

_AUTHORIZATION = re.compile(
    r"""(?P<name>["']?(?:proxy-)?authorization["']?\s*[:=]\s*["']?)(?P<value>[^"'\r\n,}\]]+)""",
    re.IGNORECASE,
)
# A run of base64 (standard or URL-safe alphabet) with its padding: what a base64 form is masked as a whole
# of, so neither the edges of the secret nor the user name in front of it (``user:secret``) survive.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")
_URL_SAFE = str.maketrans("+/", "-_")


def literal_forms(value: str) -> frozenset[str]:
    """The texts a secret becomes on the wire and in a server's echo of it, besides base64.

    URL-encoded as a path or query part (``quote``) and as a form field (``quote_plus``, what httpx sends
    for ``data=``; Remedy's login form), in upper- and lower-case hex; JSON-escaped as Python writes it
    (ASCII-only) and as most servers do (UTF-8, some also escaping ``/``); HTML-escaped (an error page);
    and with its whitespace collapsed (error texts are made one line before they are shown).
    """
    json_ascii = json.dumps(value)[1:-1]
    json_utf8 = json.dumps(value, ensure_ascii=False)[1:-1]
    forms = {
        value,
        json_ascii,
        json_utf8,
        json_ascii.replace("/", "\\/"),
        json_utf8.replace("/", "\\/"),
        html.escape(value),
        " ".join(value.split()),
    }
    for encoded in (quote(value, safe=""), quote(value), quote_plus(value)):
        forms.add(encoded)
        forms.add(_PERCENT_ESCAPE.sub(lambda match: match.group(0).lower(), encoded))
    return frozenset(form for form in forms if len(form) >= MIN_REDACTED_LENGTH)


def base64_cores(value: str) -> frozenset[str]:
    """Base64 text that appears wherever ``value`` is base64-encoded, whatever is encoded around it.

    Base64 turns 3 bytes into 4 characters, so a secret starting at byte offset 0, 1 or 2 (mod 3) of the
    encoded input (alone, or after ``user:`` in a Basic header) is written one of three ways. For each, the
    characters made of the secret's bits alone are the same whatever precedes or follows it: that "core" is
    what :meth:`SecretRedactingFilter.redact` looks for, in both alphabets and in UTF-8 and Latin-1 (httpx
    encodes Basic credentials as UTF-8, some clients as Latin-1).
    """
    encodings = {value.encode("utf-8")}
    if all(ord(char) < 256 for char in value):
        encodings.add(value.encode("latin-1"))
    cores: set[str] = set()
    for raw in encodings:
        for offset in range(3):
            start = -(-8 * offset // 6)  # the first character made of the secret's bits only
            end = 8 * (offset + len(raw)) // 6  # one past the last such character
            encoded = base64.b64encode(b"\0" * offset + raw)[start:end].decode("ascii")
            if len(encoded) >= MIN_REDACTED_LENGTH:
                cores.add(encoded)
                cores.add(encoded.translate(_URL_SAFE))
    return frozenset(cores)


class SecretRedactingFilter(logging.Filter):
    """Replaces known secrets, in every form they travel in, and ``Authorization:`` values with ``***``.

    The record is rewritten (message formatted, args dropped, traceback text redacted) rather than dropped:
    the line still says what happened. Values are registered as they are loaded from the keychain, so a
    secret reaches no log even when a vendor echoes the request back in an error body: raw, URL-encoded
    (a login form), JSON-escaped (a request body) or base64-encoded (a Basic ``Authorization`` header, of
    ``user:secret``). :func:`redact_text` applies the same to every error text the store, the CLI and the
    UI show.

    The forms are compiled into two regular expressions when a secret is registered (rare), so masking a
    line costs two scans of it however many secrets are known.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        # (literal forms, base64 cores): replaced as one tuple, so a reader never pairs old with new.
        self._patterns: tuple[re.Pattern[str] | None, re.Pattern[str] | None] = (None, None)

    def register(self, value: str) -> None:
        if len(value) < MIN_REDACTED_LENGTH:
            return
        with self._lock:
            if value in self._secrets:
                return
            self._secrets.add(value)
            self._compile()

    def forget_all(self) -> None:
        with self._lock:
            self._secrets.clear()
            self._compile()

    def _compile(self) -> None:
        literals = {form for value in self._secrets for form in literal_forms(value)}
        cores = {core for value in self._secrets for core in base64_cores(value)}
        self._patterns = (_alternation(literals), _alternation(cores))

    def redact(self, text: str) -> str:
        literals, cores = self._patterns
        if literals is not None:
            text = literals.sub(REDACTED, text)
        if cores is not None and cores.search(text):
            text = _BASE64_RUN.sub(lambda run: REDACTED if cores.search(run.group(0)) else run.group(0), text)
        return _AUTHORIZATION.sub(lambda m: m.group("name") + REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message or record.args:
            record.msg = redacted
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _alternation(texts: set[str]) -> re.Pattern[str] | None:
    """One pattern matching any of ``texts``, longest first (no half-masked overlap); None for none."""
    if not texts:
        return None
    return re.compile("|".join(re.escape(text) for text in sorted(texts, key=lambda t: (-len(t), t))))


# The one filter every connector logger shares: logging itself is process-global, so its redactor is too.
REDACTOR = SecretRedactingFilter()

REDACTED_LOGGERS = ("connectors", "httpx", "httpcore")


def register_secret(value: str) -> None:
    REDACTOR.register(value)


def redact_text(text: str) -> str:
    """``text`` with every registered secret (in any of its encodings) and Authorization value masked: for
    error messages, before they are stored, printed or shown."""
    return REDACTOR.redact(text)


def redacted_excerpt(text: str, limit: int = MAX_STORED_TEXT) -> str:
    """``text`` redacted, then cut to ``limit`` characters: what the store and the audit trail keep of a
    server's or a connector's words (a server can send megabytes of error page). Redacting first, so the
    cut cannot leave half of an encoded secret that no longer matches."""
    text = redact_text(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def install_secret_redaction(logger_names: Iterable[str] = REDACTED_LOGGERS) -> None:
    """Put :data:`REDACTOR` on these loggers and every descendant that exists now.

    A filter on a logger sees only records logged through that very logger (not its children's), so each
    descendant gets it too. Call it after :func:`connectors.registry.load_all` so connector modules' loggers
    exist (the registry puts it on each plugin's package as it loads it); calling it again is harmless.
    """
    names = tuple(logger_names)
    targets = [logging.getLogger(name) for name in names]
    for existing_name, existing in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(existing, logging.Logger) and existing_name.startswith(tuple(f"{n}." for n in names)):
            targets.append(existing)
    for logger in targets:
        if REDACTOR not in logger.filters:
            logger.addFilter(REDACTOR)
