"""Errors a connector raises, one small tree so the sync engine, the CLI and the wizard catch by meaning.

    ConnectorError                      base; every message names the connector
    ├── ConfigurationError              a setting is missing or malformed (before any request)
    ├── CredentialStoreError            the OS keychain is missing, locked or refused the operation
    ├── TransportError                  no HTTP answer at all
    │   ├── ConnectionFailedError       DNS name not found, connection refused or dropped, proxy failure
    │   ├── TlsError                    the server's certificate is not trusted (pick a CA bundle)
    │   └── ConnectorTimeoutError       connect or read timed out
    │       ├── RequestDeadlineError    one request (all its tries) ran past its time limit (hung, dripping)
    │       └── SyncDeadlineError       the sync ran past its time limit; its stored pages stay
    ├── HttpStatusError                 not a success; has .status, .path, .server_message
    │   ├── AuthenticationError         401 (or a vendor's own "authentication failed")
    │   ├── PermissionDeniedError       403: authenticated, but missing a role or scope
    │   ├── NotFoundError               404: wrong URL, table, form or API version
    │   │   └── GoneError               410: the API was removed (e.g. Jira Cloud's old /rest/api/3/search)
    │   ├── RateLimitedError            429; has .retry_after (seconds) when the server said
    │   ├── RequestRejectedError        other 4xx: the server refused the query (bad JQL, bad field)
    │   │   └── RedirectRefusedError    3xx: reported, never followed (the credentials stay with this host)
    │   └── ServerError                 5xx
    └── BadResponseError                a success status with a body we cannot read (not JSON, wrong shape)
        ├── ResponseTooLargeError       the answer grew past the response size limit (never a MemoryError)
        └── PagingStalledError          the pages stopped advancing (the server ignores the query's position)

Messages name the connector, the method and path (never the query string, which may carry tokens), the status
and the server's own error text, and never a secret. Lower-level exceptions are chained with ``from``.
"""

from __future__ import annotations

from core.errors import RunbookDeskError


class ConnectorError(RunbookDeskError):
    def __init__(self, connector: str, message: str) -> None:
        self.connector = connector
        self.detail = message
        super().__init__(f"{connector}: {message}")


class ConfigurationError(ConnectorError):
    pass


class CredentialStoreError(ConnectorError):
    pass


class TransportError(ConnectorError):
    def __init__(self, connector: str, message: str, *, method: str = "", path: str = "") -> None:
        self.method = method
        self.path = path
        self.reason = message  # without the connector and the request, for a progress line
        where = f" ({method} {path})" if method else ""
        super().__init__(connector, f"{message}{where}")


class ConnectionFailedError(TransportError):
    pass


class TlsError(TransportError):
    pass


class ConnectorTimeoutError(TransportError):
    pass


class RequestDeadlineError(ConnectorTimeoutError):
    """One request, all its tries included, ran past :attr:`connectors.http.HttpLimits.request_deadline_s`.

    The read timeout restarts with every byte, so a server dripping a byte every few seconds never trips
    it; this wall-clock limit does. ``waited_s`` is how long the request waited in all.
    """

    def __init__(self, connector: str, message: str, *, method: str, path: str, waited_s: float) -> None:
        self.waited_s = waited_s
        super().__init__(connector, message, method=method, path=path)


class SyncDeadlineError(ConnectorTimeoutError):
    """The sync ran past :attr:`connectors.http.HttpLimits.run_deadline_s`; the pages it stored stay stored
    and the next sync goes on from them."""


class HttpStatusError(ConnectorError):
    def __init__(
        self, connector: str, *, method: str, path: str, status: int, server_message: str, hint: str = ""
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.server_message = server_message
        self.hint = hint
        text = f"HTTP {status} on {method} {path}"
        if server_message:
            text += f": {server_message}"
        if hint:
            text += f" ({hint})"
        super().__init__(connector, text)


class AuthenticationError(HttpStatusError):
    pass


class PermissionDeniedError(HttpStatusError):
    pass


class NotFoundError(HttpStatusError):
    pass


class GoneError(NotFoundError):
    pass


class RateLimitedError(HttpStatusError):
    def __init__(
        self,
        connector: str,
        *,
        method: str,
        path: str,
        status: int,
        server_message: str,
        hint: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(
            connector, method=method, path=path, status=status, server_message=server_message, hint=hint
        )


class RequestRejectedError(HttpStatusError):
    pass


class ServerError(HttpStatusError):
    pass


class RedirectRefusedError(RequestRejectedError):
    """A 3xx. Never followed: a redirect to a login page is an authentication problem to report, and one to
    another host would carry the credentials there. ``location`` is where it pointed (without its query)."""

    def __init__(
        self,
        connector: str,
        *,
        method: str,
        path: str,
        status: int,
        server_message: str,
        hint: str = "",
        location: str = "",
    ) -> None:
        self.location = location
        super().__init__(
            connector, method=method, path=path, status=status, server_message=server_message, hint=hint
        )


class BadResponseError(ConnectorError):
    pass


class ResponseTooLargeError(BadResponseError):
    """An answer larger than :attr:`connectors.http.HttpLimits.max_response_bytes`: stopped while streaming,
    before it could take the machine's memory (a 2 GB body, an endless chunked stream)."""

    def __init__(self, connector: str, message: str, *, method: str, path: str, limit: int) -> None:
        self.method = method
        self.path = path
        self.limit = limit
        super().__init__(connector, message)


class PagingStalledError(BadResponseError):
    """The no-progress guard of :meth:`connectors.base.HttpStream.read_pages` stopped a sync.

    The server answered a page of records this sync had read already, or pages without records for too
    long: it ignores the filter, offset or page token it was sent, and would answer the same forever.
    """

    def __init__(self, connector: str, *, method: str, path: str, reason: str, requests: int) -> None:
        self.method = method
        self.path = path
        self.requests = requests
        super().__init__(
            connector,
            f"{method} {path}: the paging does not advance: {reason}; stopped after {requests} requests "
            "(the server seems to ignore the query's filter, offset or page token)",
        )
