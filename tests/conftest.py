"""What every test file shares: the kernel path under test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pyscan import native


@pytest.fixture(params=native.available_isas())
def isa(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each kernel path this CPU has, selected for the test (native.select_isa) and reset after it."""
    yield native.select_isa(request.param)
    native.select_isa(None)
