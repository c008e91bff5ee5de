"""Connector tests: an empty in-memory keychain per test, the redacting log filter installed, fakes only."""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import keyring.backends.fail
import pytest

from connectors.secrets import REDACTOR, install_secret_redaction
from tests.connectors.tiny_connector import FakeTiny, registered
from tests.memory_keyring import MemoryKeyring

MEMORY_BACKEND = "tests.memory_keyring.MemoryKeyring"


@pytest.fixture(autouse=True)
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    """Every test gets an empty in-memory keychain, selected both ways keyring allows.

    ``PYTHON_KEYRING_BACKEND`` is read only when keyring first picks a backend (``get_keyring()`` caches
    it), so the environment variable covers a fresh process (a CLI subprocess) and ``set_keyring`` this one.
    """
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", MEMORY_BACKEND)
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    install_secret_redaction()
    yield ring
    keyring.set_keyring(MemoryKeyring())  # never leave a test's secrets (or a failing backend) behind
    REDACTOR.forget_all()


@pytest.fixture
def no_keychain() -> keyring.backends.fail.Keyring:
    """A machine with no OS keychain: keyring's own fail backend raises NoKeyringError on every call."""
    ring = keyring.backends.fail.Keyring()
    keyring.set_keyring(ring)
    return ring


@pytest.fixture
def tiny() -> Iterator[FakeTiny]:
    """The tiny connector registered (alone) and its fake serving its URL, even for the CLI."""
    fake = FakeTiny()
    fake.page_size = 5
    with registered():
        FakeTiny.serving[fake.base_url] = fake
        try:
            yield fake
        finally:
            FakeTiny.serving.pop(fake.base_url, None)
    assert fake.unexpected == []
