"""The progress bar: on a terminal only, never with --json or --quiet."""

from __future__ import annotations

import argparse
import io

import pytest

from pyscan.cli import progress as progress_module
from pyscan.cli.main import show_progress
from pyscan.cli.progress import progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    with progress_bar(1 << 30, "scanning", enabled=True) as progress:
        assert progress is None


def test_bar_on_a_terminal_counts_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setattr(progress_module, "SHOW_AFTER_SECONDS", 0)
    with progress_bar(2048, "scanning", enabled=True) as progress:
        assert progress is not None
        progress(1024)
        progress(1024)
    assert "scanning" in terminal.getvalue() and "/2.00k" in terminal.getvalue()  # a bar with the right total


def test_no_bar_when_disabled_or_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", Terminal())
    for total, enabled in ((1 << 30, False), (0, True)):
        with progress_bar(total, "scanning", enabled=enabled) as progress:
            assert progress is None


@pytest.mark.parametrize(("json", "quiet", "shown"), [(False, False, True), (True, False, False), (False, True, False)])
def test_json_and_quiet_turn_the_bar_off(json: bool, quiet: bool, shown: bool) -> None:
    assert show_progress(argparse.Namespace(json=json, quiet=quiet)) is shown


def test_the_total_is_only_computed_for_a_bar_that_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def total() -> int:  # costs a parse of the model in the CLI
        calls.append(1)
        return 4096

    monkeypatch.setattr("sys.stderr", io.StringIO())
    with progress_bar(total, "rewriting", enabled=True) as progress:
        assert progress is None
    assert calls == []
    monkeypatch.setattr("sys.stderr", Terminal())
    with progress_bar(total, "rewriting", enabled=True) as progress:
        assert progress is not None
    assert calls == [1]
