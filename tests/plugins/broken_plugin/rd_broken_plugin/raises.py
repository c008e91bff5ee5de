"""A plugin whose import fails, as one with a missing dependency does."""

from __future__ import annotations

import rd_dependency_that_is_not_installed  # noqa: F401 -- the failure under test


class BrokenConnector:
    pass
