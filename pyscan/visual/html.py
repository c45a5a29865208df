"""The visual reports: one self-contained HTML page per scan (``render_html``) or diff (``render_diff_html``)."""

from __future__ import annotations

import os
from collections.abc import Callable

from pyscan.diff.compare import DiffReport, TensorDiff, short_float
from pyscan.diff.render import container
from pyscan.formatting import PRECISION_COLUMNS, human_size, percent, plural, shape_text
from pyscan.parser.model import ModelFile
from pyscan.scan.groups import TensorGroup, group_tensors
from pyscan.scan.report import FileReport, TensorReport
from pyscan.scan.verdict import verdict
from pyscan.visual import colors
from pyscan.visual.cells import Heatmap, diff_heatmap, scan_heatmap, too_many_for_a_map
from pyscan.visual.diff_page import relations_section
from pyscan.visual.mantissa import FORMATS, tensor_histogram, type_histogram
from pyscan.visual.page import facts, legend, page, table
from pyscan.visual.svg import bars_svg, esc, heatmap_svg

OPEN_CHARTS = 12  # more per-tensor histograms than this start collapsed
MAX_TABLE_ROWS = 2_000  # rows of one table on the page; the rest are counted, not listed
MAX_CHARTS = 256  # per-tensor histograms on one page, at most (a file may hold 200,000 tensors)
MAP_HINT = (
    "Rows: layers (non-layer tensors first); columns: tensor kinds. Each float cell is coloured by what explains "
    "its values best, deeper as the share it explains grows: BF16-exact (blue), BF16 + 1, i.e. w - 1 BF16-exact "
    "(purple, how llama.cpp stores Gemma norms), FP16-exact (blue-green), or none of them: full F32. Quantized "
    "cells show their type; a dashed outline marks a layer without that tensor. Hover a cell for its name, type, "
    "shape and every share."
)


def _rows_left_out(n_rows: int) -> list[str]:
    if n_rows <= MAX_TABLE_ROWS:
        return []
    return [f'<p class="hint">The first {MAX_TABLE_ROWS:,} of {n_rows:,} rows are shown; --json lists them all.</p>']


def _map_section(title: str, n_tensors: int, heatmap: Callable[[], Heatmap], hint: str) -> list[str]:
    too_many = too_many_for_a_map(n_tensors)
    if too_many is not None:
        return [f"<h2>{esc(title)}</h2>", f'<p class="hint">{esc(too_many)}</p>']
    return _map_parts(title, heatmap(), hint)


def _map_parts(title: str, heatmap: Heatmap, hint: str) -> list[str]:
    return [
        f"<h2>{esc(title)}</h2>",
        f'<p class="hint">{esc(hint)}</p>',
        legend(heatmap),
        f'<div class="scroll">{heatmap_svg(heatmap, title)}</div>',
    ]


def _header(report: FileReport) -> list[str]:
    container = f"GGUF v{report.version}" if report.format == "gguf" else report.format
    items = [
        ("format", container),
        ("byte order", f"{report.endianness}-endian"),
        ("size", human_size(report.size)),
        ("tensors", f"{report.n_tensors:,}"),
        ("metadata keys", f"{report.n_kv:,}"),
        ("float tensors scanned", f"{len(report.scanned()):,}"),
        ("kernel", report.kernel),
    ]
    if report.format == "gguf":
        items.insert(2, ("alignment", str(report.alignment)))
    if report.architecture or report.model_name:
        items.insert(0, ("model", f"{report.model_name or '?'} ({report.architecture or '?'})"))
    warnings: list[str] = list(report.warnings)
    return [
        f"<h1>{esc(os.path.basename(report.path) or report.path)}</h1>",
        f'<p class="sub">{esc(report.path)}</p>',
        facts(items),
        f'<p class="verdict"><b>Verdict:</b> {esc(verdict(report))}</p>',
        *(f'<p class="warning">{esc(w)}</p>' for w in warnings),
    ]


def _types_section(report: FileReport) -> list[str]:
    by_type: dict[str, list[TensorReport]] = {}
    for t in report.tensors:
        by_type.setdefault(t.type, []).append(t)
    fills = colors.type_colors(by_type)
    total = sum(t.nbytes or 0 for t in report.tensors) or 1
    rows = []
    for name, tensors in sorted(by_type.items(), key=lambda kv: -len(kv[1])):
        nbytes = sum(t.nbytes or 0 for t in tensors)
        bar = f'<span class="share" style="width:{240 * nbytes / total:.1f}px;background:{fills[name]}"></span>'
        rows.append([name, f"{len(tensors):,}", human_size(nbytes), f"{100 * nbytes / total:.1f}%", bar])
    headers = ["type", "tensors", "bytes", "share of bytes", ""]
    return ["<h2>Tensor types</h2>", table(headers, rows, numeric=(1, 2, 3), name=-1, markup=(4,))]


def _groups_section(report: FileReport, groups: list[TensorGroup] | None) -> list[str]:
    rows = []
    for g in group_tensors(report.tensors) if groups is None else groups:
        low, high = g.elements
        sizes = f"{low:,}" if low == high else f"{low:,}-{high:,}"
        rows.append(
            [g.pattern, f"{len(g.tensors):,}", g.type, sizes, *(percent(g.fraction(k)) for _, k in PRECISION_COLUMNS)]
        )
    headers = ["pattern", "count", "type", "elements/tensor", *(title for title, _ in PRECISION_COLUMNS)]
    return [
        "<h2>Tensors by name pattern</h2>",
        table(headers, rows[:MAX_TABLE_ROWS], numeric=(1, 3, 4, 5, 6)),
        *_rows_left_out(len(rows)),
    ]


# Per float type: (last bin a narrower format keeps, its name), drawn as dashed lines on the charts.
MARKS: dict[str, tuple[tuple[int, str], ...]] = {"F32": ((7, "BF16"), (10, "FP16")), "F16": ((7, "BF16"),), "BF16": ()}


def _all_of(n: int, type_name: str) -> str:
    return f"the {type_name} tensor" if n == 1 else f"all {plural(n, type_name + ' tensor')}"


def _chart(caption: str, counts: list[int], type_name: str, big: bool = False) -> str:
    color = colors.ramp(colors.BF16_SCALE, 0.85)
    width, height = (330, 100) if big else (250, 72)  # with the 30 px y-axis
    chart = bars_svg(counts, color, MARKS[type_name], width, height)
    return f"<figure>{chart}<figcaption>{caption}</figcaption></figure>"


def _mantissa_section(report: FileReport, gguf: ModelFile | None) -> list[str]:
    floats = [t for t in report.scanned() if t.type in FORMATS]
    if not floats:
        return []
    out = [
        "<h2>Mantissa bits used</h2>",
        '<p class="hint">How many explicit mantissa bits each value uses (trailing zero bits do not count; '
        "NaN and infinities are left out). BF16 keeps 7 bits, FP16 10, F32 23: an F32 tensor whose bars stop "
        "at 7 carries no more than BF16 precision.</p>",
    ]
    if gguf is None:
        return [*out, '<p class="hint">Not computed: the report was rendered without the open file.</p>']
    infos = {info.name: info for info in gguf.tensors}
    floats = [t for t in floats if t.name in infos]
    summary = [
        _chart(esc(_all_of(len(tensors), type_name)), type_histogram(gguf, tensors), type_name, big=True)
        for type_name in dict.fromkeys(t.type for t in floats)
        for tensors in [[infos[t.name] for t in floats if t.type == type_name]]
    ]
    # One chart per tensor, but a bounded page: past MAX_CHARTS, the largest tensors (in file order).
    shown = floats
    if len(floats) > MAX_CHARTS:
        largest = set(sorted(range(len(floats)), key=lambda i: -floats[i].n_elements)[:MAX_CHARTS])
        shown = [t for i, t in enumerate(floats) if i in largest]
    charts = [
        _chart(f"<code>{esc(t.name)}</code> {esc(t.type)} {esc(shape_text(t.shape))}",
               tensor_histogram(gguf, infos[t.name]), t.type)
        for t in shown
    ]  # fmt: skip
    title = f"Per tensor ({len(charts):,})" if len(shown) == len(floats) else (
        f"Per tensor: the {len(charts):,} largest of {len(floats):,}")  # fmt: skip
    attribute = " open" if len(charts) <= OPEN_CHARTS else ""
    return [
        *out,
        f'<div class="charts">{"".join(summary)}</div>',
        f"<details{attribute}><summary>{title}</summary>",
        f'<div class="charts">{"".join(charts)}</div></details>',
    ]


def render_html(report: FileReport, gguf: ModelFile | None = None, groups: list[TensorGroup] | None = None) -> str:
    """The scan report as one self-contained HTML page.

    gguf, the open file the report was made from, adds the mantissa-bits
    histograms (read from its mapping); without it they are left out.
    """
    body = [
        *_header(report),
        *_map_section("Precision map", len(report.tensors), lambda: scan_heatmap(report), MAP_HINT),
        *_types_section(report),
        *_groups_section(report, groups),
        *_mantissa_section(report, gguf),
    ]
    return page(f"pyscan: {os.path.basename(report.path)}", body)


def _status(status: str) -> str:
    return status.replace("_", " ").replace("in a", "in A").replace("in b", "in B")


def _diff_row(t: TensorDiff) -> list[str]:
    if t.compared == "bytes" or t.compared is None:
        differing = f"{t.n_bytes_differ:,} bytes" if t.n_bytes_differ else "-"
        types = t.type if None in (t.type_a, t.type_b) or t.type_a == t.type_b else f"{t.type_a} -> {t.type_b}"
        return [t.name, _status(t.status), types, differing, "-", "-", "-", "-"]
    n = t.n_values_differ or 0
    share = percent(n / t.n_elements) if t.n_elements else "-"

    def stat(x: float | None) -> str:
        return "-" if x is None else short_float(x)

    types = t.type if t.type_a == t.type_b else f"{t.type_a} -> {t.type_b}"  # F16 against F32 by name
    row = [t.name, _status(t.status), types, f"{n:,}", share]
    return row + [stat(t.max_abs_diff), stat(t.max_rel_diff), stat(t.rmse)]


def render_diff_html(report: DiffReport) -> str:
    """A diff (pyscan diff A B) as one self-contained HTML page."""
    body = [
        "<h1>pyscan diff</h1>",
        f'<p class="sub">A: {esc(report.path_a)} ({esc(container(report.format_a, report.version_a))}, '
        f"{esc(report.endianness_a)}-endian)</p>",
        f'<p class="sub">B: {esc(report.path_b)} ({esc(container(report.format_b, report.version_b))}, '
        f"{esc(report.endianness_b)}-endian)</p>",
        f'<p class="verdict"><b>Summary:</b> {esc(report.summary)}</p>',
        *(f'<p class="warning">note: {esc(n)}</p>' for n in report.notes),
        *_map_section(
            "Difference map",
            len(report.tensors),
            lambda: diff_heatmap(report),
            "Rows: layers (non-layer tensors first); columns: tensor kinds. Each cell shows the share of values "
            "that differ; hover it for the tensor's name, status and largest differences.",
        ),
    ]
    body += relations_section(report)
    differing = [t for t in report.tensors if t.differs and not (t.relations and t.compared is None)]
    if differing:
        headers = ["name", "status", "type", "differing", "share", "max |d|", "max rel", "RMSE"]
        rows = [_diff_row(t) for t in differing[:MAX_TABLE_ROWS]]
        body += [f"<h2>Differing tensors ({len(differing):,})</h2>", table(headers, rows, numeric=(3, 4, 5, 6, 7))]
        body += _rows_left_out(len(differing))
    if report.metadata_differences:
        rows = [
            [m.key, m.status.replace("_", " "), m.value_a or "-", m.value_b or "-"]
            for m in report.metadata_differences
        ]  # fmt: skip
        body += ["<h2>Metadata differences</h2>", table(["key", "status", "A", "B"], rows)]
    return page("pyscan diff", body)
