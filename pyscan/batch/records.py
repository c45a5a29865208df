"""One file's outcome as a JSON record.

A record is the file's --json report plus ``mtime_ns`` and ``realpath`` (the resolved absolute
path, which --resume matches on); a file or folder that could not be scanned gives
``{"path", "realpath", "error", "error_kind", "size", "mtime_ns"}`` instead.
"""

from __future__ import annotations

import os
from typing import Any, Literal, NamedTuple

from pyscan.errors import ErrorKind
from pyscan.scan.report import FileReport


class BatchResult(NamedTuple):
    """What scanning one file of a batch gave: a report, or an error."""

    path: str
    size: int | None
    mtime_ns: int | None
    report: FileReport | None = None
    error: str | None = None
    error_kind: ErrorKind | Literal["internal"] | None = None  # "internal": a bug in pyscan, or a dead worker

    @property
    def ok(self) -> bool:
        return self.report is not None

    @property
    def realpath(self) -> str:
        return os.path.realpath(self.path)

    def to_dict(self) -> dict[str, Any]:
        if self.report is not None:
            return {**self.report.to_dict(), "mtime_ns": self.mtime_ns, "realpath": self.realpath}
        return {
            "path": self.path,
            "realpath": self.realpath,
            "error": self.error,
            "error_kind": self.error_kind,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
        }


def file_identity(path: str) -> tuple[int | None, int | None]:
    """(size, modification time in ns), or Nones for a path that cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    return st.st_size, st.st_mtime_ns
