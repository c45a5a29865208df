"""The collector is paused while a file's many records are built, and always left as it was found."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from models import write_mixed

import pyscan
from pyscan.gc_pause import paused_gc
from pyscan.parser import gguf as gguf_parser
from pyscan.scan import scanner


@pytest.fixture(autouse=True)
def collector_on_after() -> Iterator[None]:
    """Whatever a test does, the next one starts with the collector on."""
    gc.enable()
    yield
    gc.enable()


def test_paused_gc_turns_the_collector_off_inside_and_back_on_after() -> None:
    with paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_paused_gc_turns_the_collector_back_on_after_an_exception() -> None:
    with pytest.raises(KeyError), paused_gc():
        raise KeyError("x")
    assert gc.isenabled()


def test_paused_gc_leaves_a_collector_that_was_off_off() -> None:
    gc.disable()
    with paused_gc():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_nested_pauses_turn_the_collector_on_only_when_the_outer_one_ends() -> None:
    with paused_gc():
        with paused_gc():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_scan_pauses_the_collector_to_parse_and_to_build_its_report_but_not_to_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting a cold 100 GB file takes minutes: the caller's other threads keep their collector then."""
    path = tmp_path / "mixed.gguf"
    write_mixed(path)
    seen: dict[str, bool] = {}
    parse, count, report = gguf_parser.parse_gguf, scanner.count_tensors, scanner._report

    def recording(step: str, function: Any) -> Any:
        def record(*args: Any) -> Any:
            seen[step] = gc.isenabled()
            return function(*args)

        return record

    monkeypatch.setattr("pyscan.parser.opener.parse_gguf", recording("parse", parse))
    monkeypatch.setattr(scanner, "count_tensors", recording("count", count))
    monkeypatch.setattr(scanner, "_report", recording("report", report))
    result = pyscan.scan(path)
    assert seen == {"parse": False, "count": True, "report": False}
    assert gc.isenabled()
    assert result.tensors and result.tensors[0].counts is not None


def test_a_file_that_fails_to_parse_leaves_the_collector_on(tmp_path: Path) -> None:
    path = tmp_path / "cut.gguf"
    write_mixed(path)
    path.write_bytes(path.read_bytes()[:100])  # cut inside the header
    with pytest.raises(pyscan.PyscanError):
        pyscan.scan(path)
    assert gc.isenabled()


def test_a_scan_that_fails_while_counting_leaves_the_collector_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mixed.gguf"
    write_mixed(path)

    def failing_count(*args: Any) -> Any:
        raise pyscan.PyscanError(str(path), "counting failed", "io")

    monkeypatch.setattr(scanner, "count_tensors", failing_count)
    with pytest.raises(pyscan.PyscanError, match="counting failed"):
        pyscan.scan(path)
    assert gc.isenabled()
