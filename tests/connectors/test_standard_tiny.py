"""The standard suite against the tiny connector: proves the suite and the engine before real connectors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.testing.standard_suite import StandardConnectorSuite
from tests.connectors.tiny_connector import FakeTiny, registered


class TestTinyStandard(StandardConnectorSuite):
    fake_cls = FakeTiny

    @pytest.fixture(autouse=True)
    def _tiny_registered(self) -> Iterator[None]:
        with registered():
            yield
