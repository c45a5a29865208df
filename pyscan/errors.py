"""The one exception type pyscan raises for anything wrong with its input."""

from __future__ import annotations

import os
from typing import Literal

ErrorKind = Literal["format", "io", "usage"]


class PyscanError(Exception):
    """A file pyscan cannot read, or a request it cannot carry out.

    ``path`` names the file (or is None when no file is involved) and
    ``reason`` says what is wrong in a few words; ``str(error)`` joins them into
    the one line the command-line tool prints.  ``kind`` is one of
    ``"format"`` (the bytes are not a valid file), ``"io"`` (the operating
    system refused), or ``"usage"`` (a bad option or request).
    """

    def __init__(self, path: str | os.PathLike[str] | None, reason: str, kind: ErrorKind = "format") -> None:
        self.path = None if path is None else os.fspath(path)
        self.reason = reason
        self.kind = kind
        super().__init__(f"{self.path}: {reason}" if self.path is not None else reason)

    def __str__(self) -> str:
        """The one line the command-line tool prints: file names and names from files escaped, length bounded."""
        from pyscan.text import safe_line

        return safe_line(super().__str__())


class FileShrankError(PyscanError):
    """A mapped file shrank while pyscan read it: what the reads returned past the new end was zeros, not data."""

    def __init__(self, path: str | os.PathLike[str] | None, consequence: str = "") -> None:
        reason = "the file shrank while it was being read (another process truncated it? or an I/O error)"
        super().__init__(path, f"{reason}; {consequence}" if consequence else reason, "io")
