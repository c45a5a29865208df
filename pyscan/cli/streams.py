"""Standard streams the caller closed (`pyscan m.gguf >&-`, `2>&-`).

A closed fd 0, 1 or 2 is the lowest free number, so the next file pyscan opens (a model, an output's
temporary file) would take it, and a report, an error line or a library's log written to that number
would land in the file. Each closed one is reopened on /dev/null before anything else runs.
"""

from __future__ import annotations

import os
import sys


def reopen_closed_streams() -> frozenset[int]:
    """Reopen each closed standard fd on /dev/null (sys.stderr too, which Python left None); which were closed."""
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.append(fd)
    for fd in closed:
        try:
            null = os.open(os.devnull, os.O_RDWR)
        except OSError:  # no /dev/null (a bare chroot): the caller refuses to run
            return frozenset((0, 1, 2))
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    if 2 in closed:  # errors now reach /dev/null: the exit status still says what happened
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)  # noqa: SIM115 (it lives as long as the process)
    return frozenset(closed)
