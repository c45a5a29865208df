"""What test files share: the kernel path under test, and a record of the read advice pyscan gives."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pyscan import native


@pytest.fixture(params=native.available_isas())
def isa(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each kernel path this CPU has, selected for the test (native.select_isa) and reset after it."""
    yield native.select_isa(request.param)
    native.select_isa(None)


@pytest.fixture
def mapping_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    """Each read hint pyscan gives a mapping, in order, instead of giving it: ("prefetch" | "willneed" |
    "sparse" | "sequential", offset, length)."""
    calls: list[tuple[str, int, int]] = []
    for name in ("prefetch", "willneed"):
        monkeypatch.setattr(
            native.Mapping, name, lambda self, offset, length, name=name: calls.append((name, offset, length))
        )
    monkeypatch.setattr(
        native.Mapping,
        "advise",
        lambda self, offset, length, sparse: calls.append(("sparse" if sparse else "sequential", offset, length)),
    )
    return calls
