"""The human-readable diff: summary line, table of differing tensors, lists of structural changes."""

from __future__ import annotations

from pyscan.diff.compare import (
    DIFFERENT,
    NOT_COMPARED,
    ONLY_IN_A,
    ONLY_IN_B,
    SHAPE_CHANGED,
    TYPE_CHANGED,
    DiffReport,
    MetadataDifference,
    TensorDiff,
)
from pyscan.formatting import percent, shape_text, table, terminal_text


def _stat(x: float | None) -> str:
    """One format for every number of a column (six significant digits), whatever its size."""
    return "-" if x is None else f"{x:.6g}"


MAX_RELATION_ROWS = 40  # the text report's worst pairs; --json lists them all


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.3g}%"


def _relation_row(t: TensorDiff) -> list[str]:
    e = t.errors
    types = t.type if t.type_a == t.type_b else f"{t.type_a} -> {t.type_b}"
    source = "" if t.source == t.name else t.source
    if e is None:
        return [t.name, source, types, ", ".join(t.relations), "-", "-", "-", "-"]
    snr = "-" if e.snr_db is None else f"{e.snr_db:.1f}"
    cosine = "-" if e.cosine is None else f"{e.cosine:.6f}"
    return [t.name, source, types, ", ".join(t.relations), _pct(e.rel_rmse), _stat(e.max_abs if e.n else None), snr,
            cosine]  # fmt: skip


def relations_table(report: DiffReport) -> list[str]:
    """The pairs that are not identical, worst first (different, then the largest relative RMSE)."""
    pairs = [t for t in report.tensors if t.relations and t.relations != ["identical"]]
    if not pairs:
        return []
    pairs.sort(key=lambda t: -t.worst())
    shown = pairs[:MAX_RELATION_ROWS]
    headers = ["name", "source", "type", "relations", "rel RMSE", "max err", "SNR dB", "cosine"]
    rows = [_relation_row(t) for t in shown]
    if all(not row[1] for row in rows):  # paired by name: no source column
        headers, rows = headers[:1] + headers[2:], [r[:1] + r[2:] for r in rows]
    out = ["", f"Relations (worst first, {len(shown):,} of {len(pairs):,})"]
    out += ["  " + line.rstrip() for line in table(headers, rows, left=4 if len(headers) == 8 else 3)]
    notes = [(t.name, t.remark) for t in shown if t.remark]
    if notes:
        out += ["", "Notes"] + [f"  {name}: {text}" for name, text in notes]
    return out


def _metadata_row(m: MetadataDifference) -> list[str]:
    def side(value: str | None, type_name: str | None) -> str:
        if value is None:
            return "-"
        return f"{value} ({type_name})" if m.status == TYPE_CHANGED else value

    return [m.key, m.status.replace("_", " "), side(m.value_a, m.type_a), side(m.value_b, m.type_b)]


def _differing_row(t: TensorDiff) -> list[str]:
    if t.compared == "bytes":
        return [t.name, t.type, f"{t.n_bytes_differ or 0:,} bytes", "-", "-", "-", "-"]
    n = t.n_values_differ or 0
    share = n / t.n_elements if t.n_elements else None
    types = t.type if t.type_a == t.type_b else f"{t.type_a} -> {t.type_b}"  # F16 against F32 by name
    return [t.name, types, f"{n:,}", percent(share), _stat(t.max_abs_diff), _stat(t.max_rel_diff), _stat(t.rmse)]


def container(model_format: str, version: int | None) -> str:
    """How a file's format reads: 'GGUF v3', or 'safetensors'."""
    return f"GGUF v{version}" if model_format == "gguf" else model_format


def render(report: DiffReport) -> str:
    out = [report.summary]
    out.append(f"  A: {report.path_a} ({container(report.format_a, report.version_a)}, {report.endianness_a}-endian)")
    out.append(f"  B: {report.path_b} ({container(report.format_b, report.version_b)}, {report.endianness_b}-endian)")
    out += [f"  note: {note}" for note in report.notes]

    if not report.mapped and any(t.relations not in ([], ["identical"], ["different"]) for t in report.tensors):
        out.insert(1, f"  {report.relations_summary}")
    different = [t for t in report.with_status(DIFFERENT, TYPE_CHANGED) if t.compared is not None]
    if different:
        out += ["", "Differing tensors"]
        headers = ["name", "type", "differing", "share", "max |d|", "max rel", "RMSE"]
        out += ["  " + line.rstrip() for line in table(headers, [_differing_row(t) for t in different], left=2)]

    out += relations_table(report)

    for title, status in (("Only in A", ONLY_IN_A), ("Only in B", ONLY_IN_B)):
        tensors = report.with_status(status)
        if tensors:
            out += ["", title]
            rows = [[t.name, t.type, shape_text(t.shape_a if status == ONLY_IN_A else t.shape_b)] for t in tensors]
            out += ["  " + line.rstrip() for line in table(["name", "type", "shape"], rows, left=3)]

    changed = report.with_status(TYPE_CHANGED, SHAPE_CHANGED)
    if changed:
        out += ["", "Type or shape changed"]
        rows = [
            [t.name, f"{t.type_a} {shape_text(t.shape_a)}", f"{t.type_b} {shape_text(t.shape_b)}"]
            for t in changed
        ]  # fmt: skip
        out += ["  " + line.rstrip() for line in table(["name", "A", "B"], rows, left=3)]

    unknown = report.with_status(NOT_COMPARED)
    if unknown:
        out += ["", "Not compared (type unknown to pyscan, data extent unknown)"]
        out += [f"  {t.name}  {t.type}" for t in unknown]

    if report.metadata_differences:
        out += ["", "Metadata differences"]
        rows = [_metadata_row(m) for m in report.metadata_differences]
        out += ["  " + line.rstrip() for line in table(["key", "change", "A", "B"], rows, left=4)]
    return terminal_text(out)
