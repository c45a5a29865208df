"""Write a picture atomically: a temporary file in the same folder, then os.replace.

A reader (a browser refreshing the page, a CI job collecting it) sees the old
file or the new one, never half of one; on failure nothing is left behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable

from pyscan.diff.compare import DiffReport
from pyscan.errors import PyscanError
from pyscan.parser.reader import GGUFFile
from pyscan.scan.report import FileReport


def write_atomically(path: str | os.PathLike[str], write: Callable[[str], None]) -> None:
    """Call write(temporary path) in path's folder, then rename it over path; PyscanError if the OS refuses."""
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    try:
        fd, temporary = tempfile.mkstemp(prefix=".pyscan-", suffix=".tmp", dir=folder)
    except OSError as e:
        raise PyscanError(target, f"cannot write: {e.strerror or e}", "io") from None
    try:
        os.close(fd)
        # mkstemp makes the file 0600: give it the mode a plain open() would (0666 less the umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        write(temporary)
        os.replace(temporary, target)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise PyscanError(target, f"cannot write: {e.strerror or e}", "io") from None
    except BaseException:  # Ctrl-C included: leave no temporary file
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_html(path_out: str | os.PathLike[str], report: FileReport | DiffReport, gguf: GGUFFile | None = None) -> None:
    """Write the HTML page of a scan report (with gguf: and its mantissa histograms) or of a diff report."""
    from pyscan.visual.html import render_diff_html, render_html

    text = render_diff_html(report) if isinstance(report, DiffReport) else render_html(report, gguf)

    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)

    write_atomically(path_out, write)
