"""Inline SVG: the layer x kind heatmap and small bar charts.

Every string that reaches the markup passes through ``esc``: tensor names
come from whoever made the file.  No ids, scripts or external references, so
any number of these can share a page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from pyscan.text import printable
from pyscan.visual.cells import Heatmap
from pyscan.visual.colors import text_color
from pyscan.visual.grid import NON_LAYER

CELL_W, CELL_H, GAP = 64, 18, 2  # 64: room for "BF16 100%"
BLOCK_GAP = 12  # between the non-layer columns/row and the layer ones
CHAR_W = 6.6  # average advance of an 11px sans-serif character
MAX_LABEL = 28  # row and column labels are cut here (the tooltip keeps the full name)
MAX_CELL_LABEL = 9  # "BF16 100%"
EMPTY = "#c9ced4"  # the outline of a slot with no tensor: unlike any fill


def esc(text: object) -> str:
    """For a page: control characters escaped as the text report escapes them (pyscan.text.printable:
    ESC, newlines, bidi overrides, lone surrogates, ...), then HTML-escaped."""
    return html.escape(printable(str(text)), quote=True)


def esc_lines(text: str) -> str:
    """esc for a tooltip: its newlines are kept, each line escaped (names' own newlines were escaped in cells)."""
    return "\n".join(map(esc, text.split("\n")))


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def heatmap_svg(heatmap: Heatmap, caption: str) -> str:
    grid = heatmap.grid
    row_labels = ["non-layer" if r == NON_LAYER else cut(printable(r), MAX_LABEL) for r in grid.rows]
    col_labels = [cut(printable(c), MAX_LABEL) for c in grid.columns]  # escaped before cut and measured
    label_w = 12 + CHAR_W * max((len(s) for s in row_labels), default=4)
    # Column labels are drawn at -45 degrees: they need height and spill right by the same amount.
    header_h = 14 + CHAR_W * max((len(s) for s in col_labels), default=4) * math.sqrt(0.5)

    def x_of(col: int) -> float:
        return label_w + col * (CELL_W + GAP) + (BLOCK_GAP if 0 < grid.n_non_layer_columns <= col else 0)

    split = grid.rows[:1] == [NON_LAYER]

    def y_of(row: int) -> float:
        return header_h + row * (CELL_H + GAP) + (BLOCK_GAP if split and row > 0 else 0)

    width = x_of(len(grid.columns)) + header_h
    height = y_of(len(grid.rows)) + 4
    out = [
        f'<svg class="heatmap" width="{_num(width)}" height="{_num(height)}" viewBox="0 0 {_num(width)} '
        f'{_num(height)}" role="img" aria-label="{esc(caption)}">'
    ]
    for i, label in enumerate(col_labels):
        x, y = x_of(i) + CELL_W / 2, header_h - 6
        out.append(
            f'<text class="col-label" transform="translate({_num(x)},{_num(y)}) rotate(-45)">'
            f"<title>{esc(grid.columns[i])}</title>{esc(label)}</text>"
        )
    for r, (row, label) in enumerate(zip(grid.rows, row_labels, strict=True)):
        out.append(f'<g class="row" data-layer="{esc(row)}" transform="translate(0,{_num(y_of(r))})">')
        out.append(
            f'<text class="row-label" x="{_num(label_w - 8)}" y="{CELL_H - 5}" text-anchor="end">'
            f"<title>{esc(row)}</title>{esc(label)}</text>"
        )
        # Only the row's own block gets empty placeholders: the non-layer row and the layers share no kinds.
        block = (
            range(grid.n_non_layer_columns) if row == NON_LAYER else range(grid.n_non_layer_columns, len(grid.columns))
        )
        for c, column in enumerate(grid.columns):
            cell = heatmap.cells.get((row, column))
            left = _num(x_of(c))
            if cell is None:
                if c in block:
                    out.append(
                        f'<rect class="empty" x="{left}" width="{CELL_W - 1}" height="{CELL_H - 1}" rx="2" '
                        f'fill="none" stroke="{EMPTY}" stroke-dasharray="3 2"/>'
                    )
                continue
            out.append(
                f'<g class="cell"><title>{esc_lines(cell.tooltip)}</title>'
                f'<rect x="{left}" width="{CELL_W}" height="{CELL_H}" rx="2" fill="{esc(cell.fill)}"/>'
                f'<text x="{_num(x_of(c) + CELL_W / 2)}" y="{CELL_H - 5}" text-anchor="middle" '
                f'fill="{text_color(cell.fill)}">{esc(cut(cell.label, MAX_CELL_LABEL))}</text></g>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


Y_AXIS_W = 30  # the bar charts' y-axis labels ("100%")


def share_ticks(peak: float) -> tuple[float, list[float]]:
    """The y-axis of a bar chart whose tallest bar holds share peak (0..1): its top, and 0, half, top.

    The top is the smallest round share (1, 2 or 5 times a power of ten, at most 100%) that holds the
    tallest bar, so the bars fill the chart and every tick reads as a plain percentage.
    """
    if peak <= 0:
        return 1.0, [0.0, 1.0]
    exponent = math.floor(math.log10(peak))
    for mantissa in (1, 2, 5, 10):
        ceiling = min(1.0, mantissa * 10.0**exponent)
        if ceiling >= peak * (1 - 1e-12):
            break
    return ceiling, [0.0, ceiling / 2, ceiling]  # three lines: the small charts are 64 px high


def _share_text(share: float) -> str:
    return f"{100 * share:.3g}%"


def bars_svg(
    counts: Sequence[int],
    color: str,
    marks: Sequence[tuple[int, str]] = (),
    width: int = 220,
    height: int = 64,
) -> str:
    """A bar per bin (bin i = i mantissa bits) with a tooltip each, over a y-axis in shares of the values;
    marks: (k, text) draws a dashed line after bin k (the last bin a narrower format keeps) and labels
    the axis there."""
    total = sum(counts)
    peak = max(counts, default=0) / total if total else 0.0  # the tallest bar's share of the values
    axis, top, left = 12, 10, Y_AXIS_W  # room for the tick labels below, the mark labels above, the y-axis
    base = height - axis
    plot_w = width - left
    step = plot_w / max(len(counts), 1)
    ceiling, ticks = share_ticks(peak)
    out = [f'<svg class="bars" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    # The y-axis: share of the tensor's values, gridlines at round shares up to the tallest bar.
    for tick in ticks:
        y = _num(base - (base - top) * tick / ceiling)
        out.append(f'<line x1="{left}" x2="{width}" y1="{y}" y2="{y}" stroke="#eaeef2"/>')
        out.append(f'<text class="tick" x="{left - 3}" y="{y}" dy="3" text-anchor="end">{_share_text(tick)}</text>')
    for i, n in enumerate(counts):
        h = (base - top) * (n / total) / ceiling if total else 0.0
        if n and h < 1:
            h = 1.0  # a bin holding any value stays visible
        share = f"{100 * n / total:.2f}%" if total else "0%"
        out.append(
            f'<rect x="{_num(left + i * step + 0.5)}" y="{_num(base - h)}" width="{_num(step - 1)}" '
            f'height="{_num(h)}" fill="{color}"><title>{i} bits: {n:,} values ({share})</title></rect>'
        )
    out.append(f'<line x1="{left}" x2="{width}" y1="{base}" y2="{base}" stroke="#999"/>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{base}" stroke="#999"/>')
    for k, text in marks:
        x = _num(left + (k + 1) * step)
        out.append(f'<line x1="{x}" x2="{x}" y1="{top - 2}" y2="{base}" stroke="#57606a" stroke-dasharray="2 2"/>')
        out.append(f'<text class="tick" x="{x}" y="{top - 3}" text-anchor="middle">{esc(text)}</text>')
    for i in sorted({0, len(counts) - 1, *(k for k, _ in marks)}):
        x = _num(left + i * step + step / 2)
        out.append(f'<text class="tick" x="{x}" y="{height - 1}" text-anchor="middle">{i}</text>')
    out.append("</svg>")
    return "".join(out)
