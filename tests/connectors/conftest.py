"""Connector tests: fakes only (the empty in-memory keychain per test is ``tests/conftest.py``'s)."""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import keyring.backends.fail
import pytest

from tests.connectors.tiny_connector import FakeTiny, registered


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
