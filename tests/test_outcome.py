"""How a command's end becomes an exit status: a Ctrl-C that lands where Python cannot raise it."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from pyscan.cli.outcome import EXIT_INTERRUPTED, EXIT_OK, guarded


class RaisesWhenCollected:
    """An object whose finalizer raises: Python hands that to sys.unraisablehook, as it does for a
    Ctrl-C that lands in cffi's ffi.gc callback or a weakref callback."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __del__(self) -> None:
        raise self.error


def test_a_ctrl_c_in_a_finalizer_ends_the_command_as_interrupted(capsys: pytest.CaptureFixture[str]) -> None:
    def command() -> int:
        RaisesWhenCollected(KeyboardInterrupt())  # dropped at once: __del__ runs here
        return EXIT_OK

    hook = sys.unraisablehook
    assert guarded(command) == EXIT_INTERRUPTED
    captured = capsys.readouterr()
    assert captured.err == "pyscan: interrupted\n" and "Exception ignored" not in captured.err
    assert sys.unraisablehook is hook  # given back: main() runs inside test processes


def test_other_errors_in_finalizers_still_reach_the_previous_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)

    def command() -> int:
        RaisesWhenCollected(ValueError("a bug"))
        return EXIT_OK

    assert guarded(command) == EXIT_OK
    assert [type(u.exc_value) for u in seen] == [ValueError]
