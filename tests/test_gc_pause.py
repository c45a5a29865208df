"""The command line pauses the collector while it builds a report; the library never touches it."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from models import write_mixed

import pyscan
from pyscan import native
from pyscan.cli import main as cli_main
from pyscan.cli.gc_pause import paused_gc
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


def recording(seen: list[tuple[str, bool]], step: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """function, noting whether the collector was on at each call."""

    def record(*args: Any, **kwargs: Any) -> Any:
        seen.append((step, gc.isenabled()))
        return function(*args, **kwargs)

    return record


@pytest.fixture
def recorded_steps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """The parse, a kernel and the records of every scan from here on, each with the collector's state."""
    seen: list[tuple[str, bool]] = []
    monkeypatch.setattr("pyscan.parser.opener.parse_gguf", recording(seen, "parse", gguf_parser.parse_gguf))
    monkeypatch.setattr(native, "count_batch", recording(seen, "count", native.count_batch))
    monkeypatch.setattr(scanner, "TensorReport", recording(seen, "record", scanner.TensorReport))
    return seen


def test_the_report_command_runs_with_the_collector_paused(
    tmp_path: Path, recorded_steps: list[tuple[str, bool]], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mixed.gguf"
    write_mixed(path)
    assert cli_main.main([str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tensors"]
    assert {step for step, _ in recorded_steps} == {"parse", "count", "record"}
    assert not any(on for _, on in recorded_steps)
    assert gc.isenabled()  # and back on for the rest of this process


def test_the_library_leaves_the_collector_alone(tmp_path: Path, recorded_steps: list[tuple[str, bool]]) -> None:
    """It is the caller's process: its threads, forks and signal handlers may rely on the collector."""
    path = tmp_path / "mixed.gguf"
    write_mixed(path)
    assert pyscan.scan(path).tensors
    assert {step for step, _ in recorded_steps} == {"parse", "count", "record"}
    assert all(on for _, on in recorded_steps)


def test_the_library_never_switches_the_collector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not even a pause that puts it back, anywhere inside open, scan or to_dict."""
    path = tmp_path / "mixed.gguf"
    write_mixed(path)
    calls: list[str] = []
    for name in ("disable", "enable", "freeze", "set_threshold"):
        monkeypatch.setattr(gc, name, lambda *args, _name=name: calls.append(_name))
    with pyscan.open(path) as model:
        assert model.tensors
    assert pyscan.scan(path).to_dict()["tensors"]
    assert calls == []


def test_a_report_that_fails_leaves_the_collector_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mixed.gguf"
    write_mixed(path)

    def failing_record(*args: Any) -> Any:
        assert not gc.isenabled()  # so this fails inside the pause
        raise pyscan.PyscanError(str(path), "no room for the record", "io")

    monkeypatch.setattr(scanner, "TensorReport", failing_record)
    assert cli_main.main([str(path), "--json"]) == 2
    assert "no room for the record" in capsys.readouterr().err
    assert gc.isenabled()
