"""An in-memory keyring backend: the real ``keyring`` API, no OS keychain, nothing on disk.

Test support shipped for connector authors: the standard suite selects it for every test, so a plugin's tests
never read or write the developer's real keychain. Selected with ``keyring.set_keyring(MemoryKeyring())`` or,
for a fresh process, ``PYTHON_KEYRING_BACKEND=connectors.testing.memory_keyring.MemoryKeyring``.
"""

from __future__ import annotations

import keyring.errors
from keyring.backend import KeyringBackend


class MemoryKeyring(KeyringBackend):
    priority = 1  # keyring declares it a classproperty; a constant is what it reads

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring leaves it unannotated
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.entries[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(f"no entry {username!r} in {service!r}") from None
