"""What each map cell shows: its colour, its short label and its tooltip, and the legend.

One description (a ``Heatmap``) feeds both pictures, the HTML page's SVG and
the matplotlib PNG, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

from pyscan.diff.compare import (
    DIFFERENT,
    IDENTICAL,
    NOT_COMPARED,
    ONLY_IN_A,
    ONLY_IN_B,
    SHAPE_CHANGED,
    TYPE_CHANGED,
    DiffReport,
    TensorDiff,
    short_float,
)
from pyscan.formatting import PRECISION_COLUMNS, percent, shape_text
from pyscan.scan.groups import TensorGroup, name_pattern
from pyscan.scan.report import FileReport, TensorReport
from pyscan.text import printable
from pyscan.visual import colors
from pyscan.visual.grid import Grid, build_grid

MAX_TOOLTIP_NAMES = 6
T = TypeVar("T")


class Cell(NamedTuple):
    fill: str
    label: str  # a few characters drawn inside the cell
    tooltip: str  # lines: name(s), type and shape, shares


class Scale(NamedTuple):
    """A sequential colour scale: title, colour stops, and (position, text) ticks."""

    title: str
    stops: colors.Stops
    ticks: Sequence[tuple[float, str]]


class Heatmap(NamedTuple):
    grid: Grid
    cells: dict[tuple[str, str], Cell]
    scale: Scale
    swatches: Sequence[tuple[str, str]] = ()  # (colour, meaning) of categorical cells
    swatch_title: str = ""
    more_scales: Sequence[Scale] = ()  # a scan map has one scale per explanation of float values

    @property
    def scales(self) -> list[Scale]:
        return [self.scale, *self.more_scales]


def short_percent(fraction: float) -> str:
    """A cell label: "100%", "0%", "99.7%"; a partial share never reads as 100% or 0%."""
    if fraction >= 1:
        return "100%"
    if fraction <= 0:
        return "0%"
    text = f"{100 * fraction:.1f}%"
    return ">99.9%" if text == "100.0%" else "<0.1%" if text == "0.0%" else text


def _names(items: Sequence[T], name: Callable[[T], str]) -> list[str]:
    names = [printable(name(t)) for t in items[:MAX_TOOLTIP_NAMES]]  # a name's newline is no tooltip line
    if len(items) > MAX_TOOLTIP_NAMES:
        names.append(f"... and {len(items) - MAX_TOOLTIP_NAMES:,} more")
    return names


def _by_slot(grid: Grid, items: Sequence[T], name: Callable[[T], str]) -> dict[tuple[str, str], list[T]]:
    by_name = {name(t): t for t in items}
    return {slot: [by_name[n] for n in names] for slot, names in grid.cells.items()}


# ---- scan reports ------------------------------------------------------------------------------


def _scan_cell(tensors: list[TensorReport], type_fill: dict[str, str]) -> Cell:
    types = sorted({t.type for t in tensors})
    type_name = types[0] if len(types) == 1 else "mixed"
    group = TensorGroup(name_pattern(tensors[0].name), type_name, tensors)
    first = tensors[0]
    sizes = f"shape {shape_text(first.shape)}, {first.n_elements:,} elements"
    lines = [*_names(tensors, lambda t: t.name), f"{', '.join(types)}, {sizes}"]
    explained = explain_float(tensors)
    if explained is None:  # quantized (or left unscanned): coloured by type
        lines.append("not scanned (quantized or not selected)")
        fill = type_fill.get(type_name, colors.MIXED)
        return Cell(fill, type_name, "\n".join(lines))
    lines.append(", ".join(f"{title} {percent(group.fraction(key))}" for title, key in PRECISION_COLUMNS))
    kind, share = explained
    style = FLOAT_STYLES[kind]
    lines.append(f"best explained as {style.title}: {percent(share)} of its values")
    if style.stops is None:
        return Cell(colors.FULL_F32, style.prefix, "\n".join(lines))
    position = (share - colors.EXPLAINED_MIN) / (1 - colors.EXPLAINED_MIN)
    return Cell(colors.ramp(style.stops, position), f"{style.prefix} {label_percent(share)}", "\n".join(lines))


class FloatStyle(NamedTuple):
    title: str  # in the tooltip and the legend
    prefix: str  # of the cell label
    stops: colors.Stops | None  # None: one flat colour (full F32)


# Explanations of a float tensor's values, in the order that breaks ties.
FLOAT_STYLES: dict[str, FloatStyle] = {
    "bf16-exact": FloatStyle("BF16-exact", "BF16", colors.BF16_SCALE),
    "bf16-plus-one": FloatStyle(
        "BF16 + 1 (w - 1 BF16-exact: BF16 weights stored as w + 1)", "+1", colors.PLUS_ONE_SCALE
    ),
    "fp16-exact": FloatStyle("FP16-exact", "FP16", colors.FP16_SCALE),
    "full-f32": FloatStyle(f"full F32 (none explains {100 * colors.EXPLAINED_MIN:g}% of the values)", "F32", None),
}


def explain_float(tensors: Sequence[TensorReport]) -> tuple[str, float] | None:
    """What explains the scanned float tensors' values best, and the share it explains; None if not scanned.

    The shares: BF16-exact words; non-NaN values whose w - 1 is BF16-exact; non-NaN FP16 values (an F16
    tensor's all are, a BF16 tensor's are all BF16-exact).  The largest wins (ties in FLOAT_STYLES'
    order); below EXPLAINED_MIN none explains the tensor: full F32.
    """
    if not tensors or any(t.counts is None for t in tensors):
        return None
    total = sum(t.n_elements for t in tensors)
    numbers = sum(t.n_elements - t.count("nan") for t in tensors)
    if total == 0:
        return "bf16-exact", 1.0
    shares = {
        "bf16-exact": sum(t.count("bf16_exact") for t in tensors) / total,
        "bf16-plus-one": sum(t.count("low16_zero_minus_one") for t in tensors) / numbers if numbers else 0.0,
        "fp16-exact": sum(t.n_elements - t.count("nan") if t.type == "F16" else t.count("fp16_exact")
                          for t in tensors) / numbers if numbers else 0.0,
    }  # fmt: skip
    best = max(shares, key=lambda k: shares[k])  # the first of equal shares: max keeps the first
    if shares[best] < colors.EXPLAINED_MIN:
        return "full-f32", 1 - shares[best]
    return best, shares[best]


def label_percent(fraction: float) -> str:
    """A short share for a cell label: "100%", ">99%", "75%"; never rounded up to 100% or down to 0%."""
    if fraction >= 1:
        return "100%"
    text = f"{100 * fraction:.0f}%"
    return ">99%" if text == "100%" else "<1%" if text == "0%" else text


MAX_MAP_TENSORS = 20_000  # a map of more tensors is unreadable, and its page hundreds of MB


def too_many_for_a_map(n_tensors: int) -> str | None:
    """Why there is no map (a sentence), or None when the tensors fit on one."""
    if n_tensors <= MAX_MAP_TENSORS:
        return None
    return f"{n_tensors:,} tensors are too many for a map (at most {MAX_MAP_TENSORS:,}): see the tables instead."


def scan_heatmap(report: FileReport) -> Heatmap:
    grid = build_grid(t.name for t in report.tensors)
    slots = _by_slot(grid, report.tensors, lambda t: t.name)
    typed = [t.type for t in report.tensors if t.fraction("bf16_exact") is None]
    type_fill = colors.type_colors(typed)
    cells = {slot: _scan_cell(tensors, type_fill) for slot, tensors in slots.items()}
    kinds = {explained[0] for tensors in slots.values() for explained in [explain_float(tensors)] if explained}
    low = f"{100 * colors.EXPLAINED_MIN:g}%"
    shaded = [kind for kind, style in FLOAT_STYLES.items() if style.stops is not None and kind in kinds]
    scales = [
        Scale(f"{style.title}: share of the values", style.stops, [(0.0, low), (1.0, "100%")])
        for kind in shaded or ["bf16-exact"]  # a map with no shaded cell still gets a scale
        for style in [FLOAT_STYLES[kind]]
        if style.stops is not None
    ]
    used = {c.fill for c in cells.values()}
    swatches = [(fill, t) for t, fill in type_fill.items() if fill in used]
    if any(c.label == "mixed" for c in cells.values()):
        swatches.append((colors.MIXED, "several types"))
    if "full-f32" in kinds:
        swatches.insert(0, (colors.FULL_F32, "float: " + FLOAT_STYLES["full-f32"].title))
    return Heatmap(grid, cells, scales[0], swatches, "other cells: quantized (not scanned) by type", scales[1:])


# ---- diff reports ------------------------------------------------------------------------------

# Per status: (fill, cell label, legend text); the first status of a slot in this order wins.
DIFF_STYLES: dict[str, tuple[str, str, str]] = {
    ONLY_IN_A: (colors.MISSING, "A only", "only in A / only in B"),
    ONLY_IN_B: (colors.MISSING, "B only", "only in A / only in B"),
    TYPE_CHANGED: (colors.CHANGED, "type", "type or shape changed"),
    SHAPE_CHANGED: (colors.CHANGED, "shape", "type or shape changed"),
    "bytes": (colors.BYTES_DIFFER, "bytes", "quantized: bytes differ"),
    DIFFERENT: ("", "", ""),  # values differ: the scale
    NOT_COMPARED: (colors.UNKNOWN, "?", "not compared (unknown type)"),
    IDENTICAL: (colors.IDENTICAL, "", "identical"),
}


def _style_key(t: TensorDiff) -> str:
    return "bytes" if t.status == DIFFERENT and t.compared == "bytes" else t.status


def _diff_line(t: TensorDiff) -> str:
    if t.status in (TYPE_CHANGED, SHAPE_CHANGED):
        return f"{t.type_a} {shape_text(t.shape_a)} -> {t.type_b} {shape_text(t.shape_b)}"
    shape = shape_text(t.shape_a if t.shape_a is not None else t.shape_b)
    text = f"{t.type}, shape {shape}: {t.status.replace('_', ' ')}"
    if t.compared == "bytes" and t.n_bytes_differ:
        text += f", {t.n_bytes_differ:,} bytes differ"
    elif t.n_values_differ:
        text += (
            f", {t.n_values_differ:,} of {t.n_elements or 0:,} values ({percent(_share(t))}), "
            f"max |d| {short_float(t.max_abs_diff or 0.0)}, max rel {short_float(t.max_rel_diff or 0.0)}"
        )
    return text


def _share(t: TensorDiff) -> float:
    return (t.n_values_differ or 0) / t.n_elements if t.n_elements else 0.0


def _diff_cell(tensors: list[TensorDiff]) -> Cell:
    key = min((_style_key(t) for t in tensors), key=list(DIFF_STYLES).index)
    lines = [line for t in tensors[:MAX_TOOLTIP_NAMES] for line in (printable(t.name), "  " + _diff_line(t))]
    if len(tensors) > MAX_TOOLTIP_NAMES:
        lines.append(f"... and {len(tensors) - MAX_TOOLTIP_NAMES:,} more")
    if key != DIFFERENT:
        fill, label, _ = DIFF_STYLES[key]
        return Cell(fill, label, "\n".join(lines))
    valued = [t for t in tensors if t.compared == "values"]
    total = sum(t.n_elements or 0 for t in valued)
    share = sum(t.n_values_differ or 0 for t in valued) / total if total else 0.0
    return Cell(colors.ramp(colors.DIFF_SCALE, colors.diff_position(share)), short_percent(share), "\n".join(lines))


def diff_heatmap(report: DiffReport) -> Heatmap:
    grid = build_grid(t.name for t in report.tensors)
    slots = _by_slot(grid, report.tensors, lambda t: t.name)
    cells = {slot: _diff_cell(tensors) for slot, tensors in slots.items()}
    decades = colors.DIFF_DECADES
    scale = Scale(
        "values that differ (share of the tensor, log scale)",
        colors.DIFF_SCALE,
        [(0.0, f"<={100 * 10.0**-decades:g}%"), (1 / 3, f"{100 * 10.0 ** (-2 * decades / 3):g}%"),
         (2 / 3, f"{100 * 10.0 ** (-decades / 3):g}%"), (1.0, "100%")],
    )  # fmt: skip
    present = {_style_key(t) for t in report.tensors} | {IDENTICAL}
    swatches: dict[str, str] = {}  # legend text -> fill, in DIFF_STYLES order
    for key, (fill, _, text) in DIFF_STYLES.items():
        if key in present and fill:
            swatches.setdefault(text, fill)
    return Heatmap(grid, cells, scale, [(fill, text) for text, fill in swatches.items()])
