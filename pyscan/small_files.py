"""Opening the small files pyscan reads besides models: a checkpoint's JSON, an eval text, a batch report.

Each is opened with O_NONBLOCK, so a FIFO where a file was expected cannot hang the open waiting for
a writer, and its kind is checked on the descriptor, so a FIFO or folder swapped in after a check of
the path is caught too.
"""

from __future__ import annotations

import os
import stat


class NotARegularFile(Exception):
    """The path is a folder, a device or (where pipes are not taken) a FIFO; ``kind`` says which.

    (A socket cannot be opened at all: os.open raises OSError.)
    """

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def kind_of(mode: int) -> str:
    """What a file that is not a regular file is, in words for a message ("a folder", "a FIFO", ...)."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def open_without_waiting(path: str, flags: int = os.O_RDONLY, *, pipes: bool = False) -> int:
    """A descriptor for path if it is a regular file (or, with pipes, a pipe); else NotARegularFile.

    OSError as os.open raises it.  A pipe is made blocking again: its writer may be slower than us.
    """
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            return fd
        if pipes and stat.S_ISFIFO(mode):
            os.set_blocking(fd, True)
            return fd
        raise NotARegularFile(kind_of(mode))
    except BaseException:
        os.close(fd)
        raise


def read_at_most(path: str, limit: int, *, pipes: bool = False) -> bytes:
    """Up to limit + 1 bytes of path (so a caller sees that it is longer than limit); see open_without_waiting."""
    fd = open_without_waiting(path, pipes=pipes)
    try:
        handle = open(fd, "rb")  # noqa: SIM115 (the with below closes it)
    except BaseException:
        os.close(fd)
        raise
    with handle:
        return handle.read(limit + 1)
