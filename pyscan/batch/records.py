"""One file's outcome, as a JSON record, and reading records back to resume a job.

A record is the file's --json report plus ``mtime_ns``; a file that could not be
scanned gives ``{"path", "error", "error_kind", "size", "mtime_ns"}`` instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from pyscan.errors import PyscanError
from pyscan.scan.report import FileReport


@dataclass
class BatchResult:
    """What scanning one file of a batch gave: a report, or an error."""

    path: str
    size: int | None
    mtime_ns: int | None
    report: FileReport | None = None
    error: str | None = None
    error_kind: str | None = None  # PyscanError.kind, or "internal" for a bug in pyscan

    @property
    def ok(self) -> bool:
        return self.report is not None

    def to_dict(self) -> dict[str, Any]:
        if self.report is not None:
            return {**self.report.to_dict(), "mtime_ns": self.mtime_ns}
        return {
            "path": self.path,
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


def scan_one(
    path: str, include: tuple[str, ...] = (), exclude: tuple[str, ...] = (), threads: int | None = None
) -> BatchResult:
    """Scan a file, turning every failure into an error result (this runs in workers: nothing may escape)."""
    from pyscan.scan.scanner import scan

    size, mtime_ns = file_identity(path)
    try:
        report = scan(path, include=include, exclude=exclude, threads=threads)
    except PyscanError as exc:
        return BatchResult(path, size, mtime_ns, error=exc.reason, error_kind=exc.kind)
    except Exception as exc:  # a bug must not stop the other 999 files
        return BatchResult(path, size, mtime_ns, error=f"internal error: {exc!r}", error_kind="internal")
    return BatchResult(path, size, mtime_ns, report=report)


def load_finished(report_path: str) -> dict[str, tuple[int | None, int | None]]:
    """path -> (size, mtime_ns) of the files a JSONL report already holds good records for.

    Lines that do not parse (a job killed mid-write) and error records are ignored,
    so those files are tried again.
    """
    finished: dict[str, tuple[int | None, int | None]] = {}
    try:
        with open(report_path, encoding="utf-8") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and "error" not in record and "path" in record:
                    finished[record["path"]] = (record.get("size"), record.get("mtime_ns"))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise PyscanError(report_path, f"cannot read the report to resume: {exc.strerror or exc}", "io") from None
    return finished


def already_done(path: str, finished: dict[str, tuple[int | None, int | None]]) -> bool:
    """Whether the file is in the report with the same size and modification time."""
    return path in finished and finished[path] == file_identity(path)
