"""Write a picture atomically, by the rules of pyscan.writer.atomic.

A reader (a browser refreshing the page, a CI job collecting it) sees the old
file or the new one, never half of one; on failure nothing is left behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from pyscan.diff.compare import DiffReport
from pyscan.errors import PyscanError
from pyscan.parser.model import ModelFile
from pyscan.scan.groups import TensorGroup
from pyscan.scan.report import FileReport
from pyscan.writer.atomic import AtomicFile, check_target


def write_atomically(
    path: str | os.PathLike[str], write: Callable[[str], None], inputs: Sequence[str] = (), force: bool = False
) -> None:
    """Call write(temporary path) beside path, then publish it as path (see pyscan.writer.atomic)."""
    target = os.fspath(path)
    check_target(target, inputs, force)
    with AtomicFile(target, force, inputs=inputs) as out:
        try:
            write(out.temporary)
        except OSError as e:
            raise PyscanError(target, f"cannot write: {e.strerror or e}", "io") from None
        out.publish()


def write_html(
    path_out: str | os.PathLike[str],
    report: FileReport | DiffReport,
    gguf: ModelFile | None = None,
    force: bool = False,
    groups: list[TensorGroup] | None = None,
) -> None:
    """Write the HTML page of a scan report (with gguf: and its mantissa histograms) or of a diff report.

    groups: group_tensors(report.tensors) if the caller has them already (the text report does).
    """
    from pyscan.visual.html import render_diff_html, render_html

    text = render_diff_html(report) if isinstance(report, DiffReport) else render_html(report, gguf, groups)

    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)

    write_atomically(path_out, write, report_inputs(report), force)


def report_inputs(report: FileReport | DiffReport) -> list[str]:
    """The files a report was made from, a checkpoint folder's files included: a picture of it may not
    replace them, nor remove one that is named like its leftover."""
    from pyscan.parser.checkpoint import checkpoint_files, is_checkpoint

    paths = [report.path_a, report.path_b] if isinstance(report, DiffReport) else [report.path]
    return [name for path in paths for name in ([path, *checkpoint_files(path)] if is_checkpoint(path) else [path])]
