"""The human-readable report: file facts, type distribution, grouped table, verdict."""

from __future__ import annotations

import os
import sys
import textwrap

from pyscan.formatting import (
    CELL_LIMIT,
    PRECISION_COLUMNS,
    human_size,
    percent,
    plural,
    shape_text,
    table,
    terminal_text,
)
from pyscan.rewrite.engine import RewriteReport
from pyscan.scan.groups import TensorGroup, group_tensors
from pyscan.scan.report import FileReport, TensorReport
from pyscan.scan.verdict import verdict
from pyscan.text import printable, shorten

NOT_A_TERMINAL_WIDTH = 100  # a report piped to a file or a pager is still read by people
MIN_WIDTH = 40


def terminal_width() -> int:
    """Where paragraphs wrap: $COLUMNS, else the terminal's width, else 100 (stdout is no terminal).

    shutil.get_terminal_size's rule, without importing shutil (~5 ms of start-up; tests/test_cli.py).
    """
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.stdout.fileno()).columns
        except (AttributeError, OSError, ValueError):  # no fileno, or not a terminal
            columns = 0
    return max(MIN_WIDTH, columns or NOT_A_TERMINAL_WIDTH)


def paragraph(text: str, width: int, first: str = "") -> list[str]:
    """first + text in lines of at most width characters (escaped first: that can lengthen it); words never split."""
    return textwrap.wrap(printable(first + text), width=width, break_long_words=False, break_on_hyphens=False)


def _from_file(text: str | None) -> str:
    """A string from the file on a header line: escaped, and cut as table cells are."""
    return shorten(printable(text or "?"), CELL_LIMIT)


def render(
    report: FileReport,
    per_tensor: bool = False,
    elapsed: float | None = None,
    width: int | None = None,
    groups: list[TensorGroup] | None = None,
) -> str:
    """The text report; the verdict and warnings wrap at width (default: terminal_width()).

    groups: group_tensors(report.tensors) if the caller has them already (a page needs them too).
    """
    width = terminal_width() if width is None else width
    out: list[str] = [report.path]
    out.append(
        (
            f"  GGUF v{report.version}, {report.endianness}-endian, alignment {report.alignment}, "
            if report.format == "gguf"
            else "  safetensors, "
        )
        + f"{human_size(report.size)}, {plural(report.n_tensors, 'tensor')}, {plural(report.n_kv, 'metadata key')}"
    )
    if report.architecture or report.model_name:
        out.append(f"  model: {_from_file(report.model_name)} (architecture {_from_file(report.architecture)})")
    timing = f" in {elapsed * 1000:.1f} ms" if elapsed is not None else ""
    out.append(f"  scanned {plural(len(report.scanned()), 'float tensor')} with the {report.kernel} kernel{timing}")

    out += ["", "Tensor types"]
    by_type: dict[str, list[TensorReport]] = {}
    for t in report.tensors:
        by_type.setdefault(t.type, []).append(t)
    rows = [
        [name, f"{len(ts):,}", human_size(sum(t.nbytes or 0 for t in ts))]
        for name, ts in sorted(by_type.items(), key=lambda kv: -len(kv[1]))
    ]
    out += ["  " + line for line in table(["type", "tensors", "bytes"], rows)]

    out += ["", "Tensors by name pattern"]
    rows = []
    for g in group_tensors(report.tensors) if groups is None else groups:
        low, high = g.elements
        rows.append(
            [
                g.pattern,
                f"{len(g.tensors):,}",
                g.type,
                f"{low:,}" if low == high else f"{low:,}-{high:,}",
                *(percent(g.fraction(key)) for _, key in PRECISION_COLUMNS),
            ]
        )
    headers = ["pattern", "count", "type", "elements/tensor", *(title for title, _ in PRECISION_COLUMNS)]
    out += ["  " + line for line in table(headers, rows)]

    if per_tensor:
        out += ["", "Every tensor"]
        rows = [
            [
                t.name,
                t.type,
                shape_text(t.shape),
                f"{t.offset:,}",
                *(percent(t.fraction(key)) for _, key in PRECISION_COLUMNS),
                f"{t.count('nan'):,}" if t.scanned else "-",
                f"{t.count('inf'):,}" if t.scanned else "-",
                f"{t.count('zero'):,}" if t.scanned else "-",
                f"{t.count('subnormal'):,}" if t.scanned else "-",
            ]
            for t in report.tensors
        ]
        headers = [
            "name",
            "type",
            "shape",
            "offset",
            *(title for title, _ in PRECISION_COLUMNS),
            "nan",
            "inf",
            "zero",
            "subnormal",
        ]
        out += ["  " + line for line in table(headers, rows)]

    out += ["", *paragraph(verdict(report), width, "Verdict: ")]
    for warning in report.warnings:
        out += paragraph(warning, width, "Warning: ")
    return terminal_text(out)


def _error(value: float) -> str:
    return f"{value:.6g}"


def render_rewrite(result: RewriteReport) -> str:
    """What a --truncate / --round / --fake-quant run changed, tensor by tensor and in total."""
    changed = [t for t in result.tensors if t.changed]
    rows = [
        [
            t.name,
            f"{t.changed:,}",
            f"{t.n_elements:,}",
            percent(t.changed / t.n_elements if t.n_elements else 0),
            _error(t.max_abs_error),
            _error(t.max_rel_error),
        ]
        for t in changed
    ]
    out: list[str] = []
    if rows:
        out += table(["tensor", "changed", "of", "share", "max |error|", "max rel error"], rows)
    unchanged = len(result.tensors) - len(changed)
    if unchanged:
        out.append(f"{unchanged:,} of {plural(len(result.tensors), 'F32 tensor')} unchanged")
    if result.skipped_groups:  # deliberate (q * s would not be exact there), but the user should know
        out.append(
            f"{plural(result.skipped_groups, 'group')} left unchanged: their BF16 scale would be subnormal "
            "(max |x| < qmax x 2^-126) or qmax x scale would overflow"
        )
    share = percent(result.changed / result.n_elements if result.n_elements else 0)
    where = (
        "dry run: nothing written"
        if result.dry_run
        else f"rewritten in place: {result.path}"
        if result.in_place
        else f"written: {result.output}"
    )
    out.append(
        f"{result.mode}: {len(changed):,} of {plural(len(result.tensors), 'F32 tensor')} changed, "
        f"{result.changed:,} of {plural(result.n_elements, 'value')} ({share}), max |error| "
        f"{_error(result.max_abs_error)}, max relative error {_error(result.max_rel_error)}; {where}"
    )
    return terminal_text(out)
