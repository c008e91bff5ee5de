"""Errors a connector raises, one small tree so the sync engine, the CLI and the wizard catch by meaning.

    ConnectorError                      base; every message names the connector
    ├── ConfigurationError              a setting is missing or malformed (before any request)
    ├── CredentialStoreError            the OS keychain is missing, locked or refused the operation
    ├── TransportError                  no HTTP answer at all
    │   ├── ConnectionFailedError       DNS name not found, connection refused or dropped, proxy failure
    │   ├── TlsError                    the server's certificate is not trusted (pick a CA bundle)
    │   └── ConnectorTimeoutError       connect or read timed out
    ├── HttpStatusError                 not a success; has .status, .path, .server_message
    │   ├── AuthenticationError         401 (or a vendor's own "authentication failed")
    │   ├── PermissionDeniedError       403: authenticated, but missing a role or scope
    │   ├── NotFoundError               404: wrong URL, table, form or API version
    │   │   └── GoneError               410: the API was removed (e.g. Jira Cloud's old /rest/api/3/search)
    │   ├── RateLimitedError            429; has .retry_after (seconds) when the server said
    │   ├── RequestRejectedError        other 4xx: the server refused the query (bad JQL, bad field)
    │   └── ServerError                 5xx
    └── BadResponseError                a success status with a body we cannot read (not JSON, wrong shape)
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
        where = f" ({method} {path})" if method else ""
        super().__init__(connector, f"{message}{where}")


class ConnectionFailedError(TransportError):
    pass


class TlsError(TransportError):
    pass


class ConnectorTimeoutError(TransportError):
    pass


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


class BadResponseError(ConnectorError):
    pass


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
