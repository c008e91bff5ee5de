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

import logging
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import keyring
import keyring.errors

from connectors.errors import CredentialStoreError

SERVICE_NAME = "runbook-desk"
REDACTED = "***"
# Shorter values are not registered for redaction: replacing "abc" everywhere would garble every log line,
# and no real password, token or client secret is that short.
MIN_REDACTED_LENGTH = 4

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
    backend = keyring.get_keyring()
    return f"{type(backend).__module__.rsplit('.', 1)[-1]}.{type(backend).__name__}"


def _backend(connector: str) -> keyring.backend.KeyringBackend:
    with _translated(connector, "open the OS keychain"):
        return keyring.get_keyring()


def _delete_quietly(backend: keyring.backend.KeyringBackend, service: str, username: str) -> None:
    try:
        backend.delete_password(service, username)
    except keyring.errors.PasswordDeleteError:
        # The backend's way of saying "no such entry"; a locked keychain raises KeyringLocked instead.
        if backend.get_password(service, username) is not None:
            raise


@contextmanager
def _translated(connector: str, action: str) -> Iterator[None]:
    """Turns keyring's errors into a :class:`CredentialStoreError` that tells the user what to do."""
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


class SecretRedactingFilter(logging.Filter):
    """Replaces known secret values and ``Authorization:`` header values in log records with ``***``.

    The record is rewritten (message formatted, args dropped, traceback text redacted) rather than dropped:
    the line still says what happened. Values are registered as they are loaded from the keychain, so a
    secret reaches no log even when a vendor echoes it back in an error body.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def register(self, value: str) -> None:
        if len(value) >= MIN_REDACTED_LENGTH:
            with self._lock:
                self._secrets.add(value)

    def forget_all(self) -> None:
        with self._lock:
            self._secrets.clear()

    def redact(self, text: str) -> str:
        with self._lock:
            known = sorted(self._secrets, key=len, reverse=True)  # longest first: no half-redacted overlap
        for value in known:
            if value in text:
                text = text.replace(value, REDACTED)
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


# The one filter every connector logger shares: logging itself is process-global, so its redactor is too.
REDACTOR = SecretRedactingFilter()

REDACTED_LOGGERS = ("connectors", "httpx", "httpcore")


def register_secret(value: str) -> None:
    REDACTOR.register(value)


def redact_text(text: str) -> str:
    """``text`` with every registered secret and Authorization value masked (for error messages)."""
    return REDACTOR.redact(text)


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
