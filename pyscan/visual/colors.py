"""Colours of the maps: sequential scales for shares, one fixed colour per tensor type.

The float scale is blue and the quantized palette avoids blue, so a float
cell is never mistaken for a quantized one.  Common types keep the same colour
in every report, so two pictures can be compared side by side.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Stops = Sequence[tuple[float, str]]

# A float tensor is coloured by what explains its values best (see cells.explain_float), one hue per
# explanation, deeper as its share grows: pale at EXPLAINED_MIN (or below), full colour at 100%.
BF16_SCALE: Stops = ((0.0, "#eef4fb"), (0.5, "#7fb0d8"), (1.0, "#08306b"))  # BF16-exact: blue
PLUS_ONE_SCALE: Stops = ((0.0, "#f2eff7"), (0.5, "#9e9ac8"), (1.0, "#3f007d"))  # BF16 + 1: purple
FP16_SCALE: Stops = ((0.0, "#ecf6f6"), (0.5, "#67a9cf"), (1.0, "#014636"))  # FP16-exact: blue-green
FULL_F32 = "#e7e1d8"  # none explains at least EXPLAINED_MIN of the values: F32's precision is used
EXPLAINED_MIN = 0.5
# Share of differing values in a diff: pale to dark red, drawn on a log axis (see diff_position).
DIFF_SCALE: Stops = ((0.0, "#fde0c5"), (0.5, "#f0603a"), (1.0, "#7f0000"))
DIFF_DECADES = 6  # the diff axis runs from 1e-6 (and below) to 1

# Well-known quantized and plain types; others take the spare colours in name order.
TYPE_COLORS: dict[str, str] = {
    "Q4_K": "#f28e2b", "Q6_K": "#59a14f", "Q8_0": "#e15759", "Q5_K": "#edc948", "Q3_K": "#b07aa1",
    "Q2_K": "#ff9da7", "Q4_0": "#9c755f", "Q5_0": "#d4a373", "Q4_1": "#8cd17d", "Q5_1": "#b6992d",
    "F32": "#8e8e8e", "F16": "#a5a5a5", "BF16": "#bdbdbd",  # only for float tensors left unscanned
}  # fmt: skip
SPARE_COLORS = ("#499894", "#d37295", "#86bcb6", "#f1ce63", "#79706e", "#fabfd2", "#d7b5a6", "#a0cbe8")
MIXED = "#cccccc"  # a map cell holding tensors of several types

# Diff cells that are not a share of values.
IDENTICAL = "#e3f1dc"
BYTES_DIFFER = "#6a3d9a"
MISSING = "#4d4d4d"
CHANGED = "#ff7f00"  # type or shape changed
UNKNOWN = "#c8c8c8"  # not compared


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def ramp(stops: Stops, position: float) -> str:
    """The colour at position (0..1, clamped) on a piecewise-linear scale."""
    x = min(1.0, max(0.0, position)) if math.isfinite(position) else 0.0
    for (x0, c0), (x1, c1) in zip(stops, stops[1:], strict=False):
        if x <= x1:
            t = (x - x0) / (x1 - x0)
            a, b = _rgb(c0), _rgb(c1)
            return "#" + "".join(f"{round(u + (v - u) * t):02x}" for u, v in zip(a, b, strict=True))
    return stops[-1][1]


def diff_position(fraction: float) -> float:
    """Where a share of differing values sits on the log axis: 1e-6 -> 0, 1 -> 1 (any difference > 0)."""
    if fraction <= 0:
        return 0.0
    return max(0.0, 1 + math.log10(fraction) / DIFF_DECADES)


def type_colors(types: Iterable[str]) -> dict[str, str]:
    """A colour for each type: the fixed one, or a spare one not already taken (then grey)."""
    wanted = sorted(set(types))
    taken = {TYPE_COLORS[t] for t in wanted if t in TYPE_COLORS}
    spare = [c for c in SPARE_COLORS if c not in taken]
    colors: dict[str, str] = {}
    for t in wanted:
        colors[t] = TYPE_COLORS.get(t) or (spare.pop(0) if spare else MIXED)
    return colors


def text_color(fill: str) -> str:
    """Black or white, whichever reads better on fill (WCAG relative luminance)."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _rgb(fill))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if luminance > 0.179 else "#ffffff"
