"""An in-memory keyring backend for tests: the real ``keyring`` API, no OS keychain, nothing on disk.

Selected with ``PYTHON_KEYRING_BACKEND=tests.helpers.memory_keyring.MemoryKeyring`` (keyring reads it the
first time
``keyring.get_keyring()`` runs) or ``keyring.set_keyring(MemoryKeyring())``; ``tests/connectors/conftest.py``
does both, so every test starts with an empty keychain.
"""

from __future__ import annotations

import keyring.errors
from keyring.backend import KeyringBackend


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]  # keyring declares it a classproperty; a constant is what it reads

    def __init__(self) -> None:
        super().__init__()
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


class LockedKeyring(MemoryKeyring):
    """A keychain that exists but stays locked (the user dismissed the unlock prompt)."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")
