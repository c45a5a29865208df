"""The human-readable report: file facts, type distribution, grouped table, verdict."""

from __future__ import annotations

from pyscan.formatting import PRECISION_COLUMNS, human_size, percent, shape_text, table, terminal_text
from pyscan.rewrite.engine import RewriteReport
from pyscan.scan.groups import group_tensors
from pyscan.scan.report import FileReport, TensorReport
from pyscan.scan.verdict import verdict


def render(report: FileReport, per_tensor: bool = False, elapsed: float | None = None) -> str:
    out: list[str] = [report.path]
    out.append(
        (
            f"  GGUF v{report.version}, {report.endianness}-endian, alignment {report.alignment}, "
            if report.format == "gguf"
            else "  safetensors, "
        )
        + f"{human_size(report.size)}, {report.n_tensors:,} tensors, {report.n_kv:,} metadata keys"
    )
    if report.architecture or report.model_name:
        out.append(f"  model: {report.model_name or '?'} (architecture {report.architecture or '?'})")
    timing = f" in {elapsed * 1000:.1f} ms" if elapsed is not None else ""
    out.append(f"  scanned {len(report.scanned()):,} float tensors with the {report.kernel} kernel{timing}")

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
    for g in group_tensors(report.tensors):
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

    out += ["", "Verdict: " + verdict(report)]
    out += [f"Warning: {warning}" for warning in report.warnings]
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
        out.append(f"{unchanged:,} of {len(result.tensors):,} F32 tensors unchanged")
    if result.skipped_groups:  # deliberate (q * s would not be exact there), but the user should know
        out.append(
            f"{result.skipped_groups:,} groups left unchanged: their BF16 scale would be subnormal "
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
        f"{result.mode}: {len(changed):,} of {len(result.tensors):,} F32 tensors changed, "
        f"{result.changed:,} of {result.n_elements:,} values ({share}), max |error| "
        f"{_error(result.max_abs_error)}, max relative error {_error(result.max_rel_error)}; {where}"
    )
    return terminal_text(out)
