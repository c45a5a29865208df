"""Exit statuses, and running a command so that its failures end as one line on stderr."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from pyscan.errors import PyscanError

EXIT_OK = 0
EXIT_DIFFERENT = 1  # pyscan diff found differences; a batch had failed files
EXIT_ERROR = 2  # an invalid or unreadable file, or bad options
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same clean-up path as Ctrl-C: no partial output is left behind.
    raise KeyboardInterrupt


def guarded(command: Callable[[], int]) -> int:
    """Run command; a PyscanError becomes one line on stderr and exit 2, never a traceback."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return command()
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
