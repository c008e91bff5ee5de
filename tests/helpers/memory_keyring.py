"""An in-memory keyring backend for tests: the real ``keyring`` API, no OS keychain, nothing on disk.

Selected with ``PYTHON_KEYRING_BACKEND=tests.helpers.memory_keyring.MemoryKeyring`` (keyring reads it the
first time
``keyring.get_keyring()`` runs) or ``keyring.set_keyring(MemoryKeyring())``; ``tests/connectors/conftest.py``
does both, so every test starts with an empty keychain.
"""

from __future__ import annotations

import keyring.errors

# One in-memory backend: the standard suite ships it for plugin authors (connectors.testing).
from connectors.testing.memory_keyring import MemoryKeyring

__all__ = ["LockedKeyring", "MemoryKeyring"]


class LockedKeyring(MemoryKeyring):
    """A keychain that exists but stays locked (the user dismissed the unlock prompt)."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")
