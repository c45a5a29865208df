"""The precision map as a PNG, drawn with matplotlib (the optional extra ``pyscan[plot]``).

Only the Agg canvas is used (no pyplot): nothing global changes, no display
is needed, and a caller's own matplotlib backend is left alone.  Every text
drawn from the file is drawn with parse_math=False: a tensor named "$x^{2$"
must not be read as mathtext (an error, or a formula).
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING

from pyscan.diff.compare import DiffReport
from pyscan.errors import PyscanError
from pyscan.scan.report import FileReport
from pyscan.text import printable
from pyscan.visual.cells import Heatmap, diff_heatmap, scan_heatmap, too_many_for_a_map
from pyscan.visual.colors import text_color
from pyscan.visual.files import report_inputs, write_atomically
from pyscan.visual.grid import NON_LAYER

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CELL_W, CELL_H = 0.62, 0.22  # inches
DPI = 120
MAX_LABEL = 28  # characters of a row or column label


def _draw_cells(ax: Axes, heatmap: Heatmap) -> None:
    from matplotlib.collections import PolyCollection

    grid = heatmap.grid
    squares: list[tuple[tuple[float, float], ...]] = []
    fills: list[str] = []
    for r, row in enumerate(grid.rows):
        for c, column in enumerate(grid.columns):
            cell = heatmap.cells.get((row, column))
            if cell is None:
                continue
            left, top, right, bottom = c + 0.04, r + 0.06, c + 0.96, r + 0.94
            squares.append(((left, top), (right, top), (right, bottom), (left, bottom)))
            fills.append(cell.fill)
            ax.text(c + 0.5, r + 0.5, cell.label[:9], ha="center", va="center", fontsize=6.5,
                    color=text_color(cell.fill), parse_math=False)  # fmt: skip
    # One collection, not a Rectangle patch per cell: --plot of 20,000 cells ~1.5x faster (README).
    ax.add_collection(PolyCollection(squares, facecolors=fills, edgecolors="none"), autolim=False)
    ax.set_xlim(0, max(1, len(grid.columns)))  # an empty map (no tensors) still gets a valid axis
    ax.set_ylim(max(1, len(grid.rows)), 0)  # first row on top, as on the page
    ax.set_xticks([c + 0.5 for c in range(len(grid.columns))])
    ax.set_xticklabels(
        [printable(c)[:MAX_LABEL] for c in grid.columns], rotation=45, ha="left", fontsize=7, parse_math=False
    )
    ax.xaxis.tick_top()
    ax.set_yticks([r + 0.5 for r in range(len(grid.rows))])
    ax.set_yticklabels([_row_label(r) for r in grid.rows], fontsize=7, parse_math=False)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if grid.n_non_layer_columns and grid.rows[:1] == [NON_LAYER]:
        # Separate the non-layer block from the layers, as the page's gaps do.
        ax.axhline(1, color="#999999", linewidth=0.6)
        ax.axvline(grid.n_non_layer_columns, color="#999999", linewidth=0.6)


def _draw_legend(fig: Figure, heatmap: Heatmap, bottom: float) -> None:
    from matplotlib.colorbar import ColorbarBase
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.patches import Patch

    scales = heatmap.scales
    width = min(0.3, 0.5 / len(scales))  # side by side in the left half; the swatches take the right
    for i, scale in enumerate(scales):
        cmap = LinearSegmentedColormap.from_list("scale", [(x, c) for x, c in scale.stops])
        cax = fig.add_axes((0.04 + i * (width + 0.03), bottom, width, 0.018))
        bar = ColorbarBase(cax, cmap=cmap, orientation="horizontal")
        bar.set_ticks([x for x, _ in scale.ticks], labels=[t for _, t in scale.ticks], fontsize=6.5)
        short = scale.title.split(" (")[0].split(":")[0]  # "BF16 + 1": the page's legend says the rest
        bar.set_label(f"{short}: share of the values", fontsize=6.5)
    if heatmap.swatches:
        handles = [Patch(facecolor=fill, label=text) for fill, text in heatmap.swatches]
        key = fig.legend(handles=handles, loc="lower right", bbox_to_anchor=(0.98, bottom - 0.01), fontsize=7,
                         frameon=False, ncols=2, title=heatmap.swatch_title or None, title_fontsize=7)  # fmt: skip
        for text in key.get_texts():
            text.set_parse_math(False)


def _row_label(row: str) -> str:
    return "non-layer" if row == NON_LAYER else printable(row)[:MAX_LABEL]  # escaped as on the page


def render_figure(heatmap: Heatmap, title: str) -> Figure:
    from matplotlib.figure import Figure

    grid = heatmap.grid
    n_rows, n_cols = max(1, len(grid.rows)), max(1, len(grid.columns))
    label_in = 0.25 + 0.075 * max((len(_row_label(r)) for r in grid.rows), default=8)
    header_in = 0.35 + 0.05 * max((len(c[:MAX_LABEL]) for c in grid.columns), default=8)
    legend_in = 0.9
    width = max(6.5, label_in + CELL_W * n_cols + header_in * 0.7)
    height = header_in + CELL_H * n_rows + legend_in + 0.4
    fig = Figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_axes((label_in / width, (legend_in + 0.1) / height, CELL_W * n_cols / width, CELL_H * n_rows / height))
    _draw_cells(ax, heatmap)
    fig.suptitle(title[:100], fontsize=9, x=0.02, ha="left", y=1 - 0.08 / height, va="top", parse_math=False)
    _draw_legend(fig, heatmap, 0.45 / height)
    return fig


NO_MATPLOTLIB = "--plot needs matplotlib: pip install 'pyscan[plot]'"


def check_png(report: FileReport | DiffReport, path: str | os.PathLike[str]) -> None:
    """Raise the PyscanError write_png would: before anything is written (--html with --plot publishes neither)."""
    if importlib.util.find_spec("matplotlib") is None:
        raise PyscanError(None, NO_MATPLOTLIB, "usage")
    too_many = too_many_for_a_map(len(report.tensors))
    if too_many is not None:
        raise PyscanError(os.fspath(path), f"no map drawn: {too_many}", "usage")


def write_png(report: FileReport | DiffReport, path: str | os.PathLike[str], force: bool = False) -> None:
    """Write the precision map (or a diff's difference map) to path as a PNG, atomically."""
    check_png(report, path)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError:  # found by check_png, yet broken
        raise PyscanError(None, NO_MATPLOTLIB, "usage") from None
    if isinstance(report, DiffReport):
        heatmap, title = diff_heatmap(report), f"pyscan diff: {report.summary}"
    else:
        heatmap, title = scan_heatmap(report), f"pyscan: {printable(os.path.basename(report.path))}"  # (surrogates)
    fig = render_figure(heatmap, title)
    FigureCanvasAgg(fig)  # attaches the Agg canvas to fig
    write_atomically(path, lambda temporary: fig.savefig(temporary, format="png"), report_inputs(report), force)
