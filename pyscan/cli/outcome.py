"""Exit statuses, and running a command so that its failures end as one line on stderr."""

from __future__ import annotations

import os
import signal
import sys
import warnings
from collections.abc import Callable
from types import FrameType

from pyscan import native
from pyscan.errors import PyscanError
from pyscan.text import safe_line

EXIT_OK = 0
EXIT_DIFFERENT = 1  # pyscan diff found differences; a batch had failed files
EXIT_ERROR = 2  # an invalid or unreadable file, a file that cannot be written, or bad options
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same clean-up path as Ctrl-C: no partial output is left behind.
    raise KeyboardInterrupt


def _show_warning(message: Warning | str, category: type[Warning], *rest: object, **kwargs: object) -> None:
    print(f"pyscan: warning: {safe_line(str(message))}", file=sys.stderr)


def emit(text: str) -> None:
    """Write one line to stdout; a full disk or a closed file is a PyscanError (a closed pipe: BrokenPipeError)."""
    try:
        sys.stdout.write(text + "\n")
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise PyscanError("standard output", f"cannot write: {exc.strerror or exc}", "io") from None


class _CallbackInterrupt:
    """Ctrl-C that landed in a callback Python cannot raise from (cffi's ffi.gc closing a mapping, a
    weakref's): Python would print "Exception ignored ..." with a traceback and go on to exit 0.
    It is remembered instead: the command goes on to its end (it cannot be stopped from there; seen
    1-3 times in 40 interrupts, in the last ~10 ms of a run), then says "interrupted" and exits 130."""

    __slots__ = ("seen", "previous")

    def __init__(self) -> None:
        self.seen = False
        self.previous = sys.unraisablehook

    def __call__(self, unraisable: sys.UnraisableHookArgs) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            self.seen = True
        else:
            self.previous(unraisable)

    def __enter__(self) -> _CallbackInterrupt:
        sys.unraisablehook = self
        return self

    def __exit__(self, *exc: object) -> None:
        sys.unraisablehook = self.previous  # tests run main() in their own process


def guarded(command: Callable[[], int]) -> int:
    """Run command; a PyscanError becomes one line on stderr and exit 2, never a traceback.

    Whatever happened, a file that shrank while it was read is named first: what was read from
    it past its new end was zeros, so it explains any other failure, and no result may stand.
    """
    signal.signal(signal.SIGTERM, _terminate)
    warnings.showwarning = _show_warning
    try:
        try:
            with _CallbackInterrupt() as callback:
                status = command()
        except BaseException:
            native.check_mappings()
            raise
        native.check_mappings()
        if callback.seen:
            raise KeyboardInterrupt
        return status
    except PyscanError as exc:
        print(f"pyscan: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("pyscan: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `pyscan FILE | head`): not an error worth a word.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # a bug: still one line, naming it, and a status scripts can tell apart
        if os.environ.get("PYSCAN_DEBUG"):
            raise
        print(f"pyscan: internal error (a bug in pyscan; PYSCAN_DEBUG=1 shows where): {safe_line(repr(exc), 300)}",
              file=sys.stderr)  # fmt: skip
        return EXIT_ERROR
