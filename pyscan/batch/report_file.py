"""The --resume report: a JSONL file of records, read back with distrust and appended to whole lines only.

Reading: the report must be a regular file (a FIFO would hang, /dev/zero would never end) and not
a model; each line is read with a bounded length, and a line that is not one of our records
(binary bytes, deep or broken JSON, a "path" that is not a string, ...) is skipped with one warning
for all of them.  A half-written last line, left by a killed job, is cut off before appending, so
the report stays valid JSONL.

Files are matched on their resolved path, size and modification time, so `pyscan ./models` and
`pyscan /abs/models` resume each other.

Appending: each record is one write() of a whole line to an O_APPEND descriptor; if the write
fails or is short (a full disk), the file is cut back to its size before that line.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import warnings
from collections.abc import Sequence
from typing import Any

from pyscan import json_text
from pyscan.batch.discover import MODEL_SUFFIXES
from pyscan.batch.records import file_identity
from pyscan.errors import PyscanError
from pyscan.small_files import NotARegularFile, kind_of, open_without_waiting
from pyscan.writer.atomic import PyscanWarning, is_same_file

MAX_LINE_BYTES = 256 << 20  # a record of a model with 200,000 tensors is ~40 MB; far more is not ours

Finished = dict[str, tuple[int, int]]  # resolved path -> (size, mtime_ns)


def check_report_path(report_path: str, inputs: Sequence[str]) -> None:
    """Refuse a report that is a folder, not a regular file, one of the inputs, or a model file.

    (A link is fine: the report is appended to, never renamed, so writes go to the file it names.)
    """
    try:
        info = os.stat(report_path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise PyscanError(report_path, f"cannot use as the report: {exc.strerror or exc}", "io") from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise PyscanError(report_path, f"is {kind_of(info.st_mode)}; the report must be a file", "usage")
    if report_path.endswith(MODEL_SUFFIXES) or any(is_same_file(report_path, given) for given in inputs):
        raise PyscanError(report_path, "is a model file; the report must be a .jsonl file of its own", "usage")
    if info is not None:
        try:
            with open(report_path, "rb") as head:
                start = head.read(9)
                if start[:4] == b"GGUF" or (len(start) == 9 and start[8:] == b"{" and start[:8] != b'{"path":'):
                    raise PyscanError(report_path, "starts like a model file (GGUF or safetensors), not a report",
                                      "usage")  # fmt: skip
        except OSError as exc:
            raise PyscanError(report_path, f"cannot read the report: {exc.strerror or exc}", "io") from None


FAILED = "failed"  # an error record of ours: the file is tried again, and the line is no stranger


def _record_identity(line: bytes) -> tuple[str, tuple[int, int]] | str | None:
    """(resolved path, (size, mtime_ns)) of a good record of ours, FAILED for our error record of a
    file, or None for anything else."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(record, dict):
        return None
    if "error" in record:
        return FAILED if isinstance(record.get("path"), str) and isinstance(record.get("error"), str) else None
    path, real, size, mtime = record.get("path"), record.get("realpath"), record.get("size"), record.get("mtime_ns")
    if not isinstance(path, str) or not isinstance(size, int) or not isinstance(mtime, int):
        return None
    if isinstance(size, bool) or isinstance(mtime, bool):
        return None
    return (real if isinstance(real, str) else os.path.realpath(path)), (size, mtime)


def load_finished(report_path: str) -> Finished:
    """The files the report holds good records for; repairs a half-written last line."""
    finished: Finished = {}
    skipped, first_skipped, number = 0, 0, 0
    try:
        with open(_open_regular(report_path), "rb", closefd=True) as lines:
            while True:
                start = lines.tell()
                line = lines.readline(MAX_LINE_BYTES + 1)
                if not line:
                    break
                number += 1
                if not line.endswith(b"\n"):
                    if len(line) <= MAX_LINE_BYTES:  # the end of the file, mid-line
                        if line.startswith(b'{"path": '):  # a killed job's last record: cut it off
                            _cut(report_path, start)
                            warnings.warn(
                                f"{report_path}: removed a half-written last line (line {number})", PyscanWarning, 2
                            )
                        else:  # not ours to cut: the appender starts a fresh line after it
                            skipped += 1
                            first_skipped = first_skipped or number
                        break
                    while line and not line.endswith(b"\n"):  # an overlong line: skip the rest of it
                        line = lines.readline(1 << 20)
                    identity = None
                elif not line.strip():
                    continue
                else:
                    identity = _record_identity(line)
                if identity is None:
                    skipped += 1
                    first_skipped = first_skipped or number
                    continue
                if isinstance(identity, tuple):
                    finished[identity[0]] = identity[1]
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise PyscanError(report_path, f"cannot read the report to resume: {exc.strerror or exc}", "io") from None
    if skipped:
        warnings.warn(
            f"{report_path}: skipped {skipped:,} line(s) that are not pyscan records (the first: line {first_skipped})",
            PyscanWarning,
            2,
        )
    return finished


def _open_regular(report_path: str, flags: int = os.O_RDONLY) -> int:
    """A descriptor for the report, refusing (not blocking on) a FIFO swapped in after the checks."""
    try:
        return open_without_waiting(report_path, flags)
    except NotARegularFile as exc:
        raise PyscanError(report_path, f"is {exc.kind}; the report must be a file", "usage") from None


def already_done(path: str, finished: Finished) -> bool:
    """Whether the file is in the report with the same resolved path, size and modification time."""
    return finished.get(os.path.realpath(path)) == file_identity(path)


def _cut(report_path: str, size: int) -> None:
    try:
        os.truncate(report_path, size)
    except OSError as exc:
        raise PyscanError(report_path, f"cannot repair the report: {exc.strerror or exc}", "io") from None


class ReportAppender:
    """Appends records to the report, one whole line per write, or none of it."""

    def __init__(self, report_path: str) -> None:
        self.path = report_path
        try:
            self.fd = _open_regular(report_path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        except OSError as exc:
            raise PyscanError(report_path, f"cannot append to the report: {exc.strerror or exc}", "io") from None
        try:
            info = os.fstat(self.fd)
            if info.st_size and os.pread(self.fd, 1, info.st_size - 1) != b"\n":
                os.write(self.fd, b"\n")  # a last line that is not ours: start on a fresh one
        except OSError as exc:
            os.close(self.fd)
            raise PyscanError(report_path, f"cannot append to the report: {exc.strerror or exc}", "io") from None

    def append(self, record: dict[str, Any]) -> None:
        data = (json_text.dumps(record) + "\n").encode()
        before = os.fstat(self.fd).st_size
        try:
            written = os.write(self.fd, data)
            if written != len(data):
                raise OSError(28, "No space left on device")  # a short write: treat as what it almost always is
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, before)  # keep whole lines only
            raise PyscanError(self.path, f"cannot append to the report: {exc.strerror or exc}", "io") from None

    def close(self) -> None:
        os.close(self.fd)
