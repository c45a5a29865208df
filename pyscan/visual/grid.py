"""Lay tensors out as a map: one row per layer, one column per tensor kind.

``blk.7.attn_q.weight`` sits in row ``blk.7``, column ``attn_q``; a tensor
with no layer number (``token_embd.weight``) sits in the non-layer row, in a
column of its own.  The layer is the first all-digit dotted component, so
``v.blk.3.attn_q.weight`` (a vision tower) and ``model.layers.3.mlp.up_proj``
(safetensors names) work too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from pyscan.scan.groups import name_pattern

NON_LAYER = "other"  # the row key (and data-layer value) of tensors without a layer number


class Placement(NamedTuple):
    row: str  # "blk.7", or NON_LAYER
    column: str  # "attn_q", "token_embd", ...


def _is_number(part: str) -> bool:
    # ASCII only: str.isdigit() also accepts "²" and other digits no layer is named with.
    return part.isascii() and part.isdigit()


def _kind(parts: list[str]) -> str:
    if parts and parts[-1] == "weight":  # the usual suffix says nothing; .bias and the rest stay
        parts = parts[:-1]
    return name_pattern(".".join(parts)) or "(unnamed)"


def place(name: str) -> Placement:
    parts = name.split(".")
    for i, part in enumerate(parts):
        if _is_number(part):
            return Placement(".".join(parts[: i + 1]), _kind(parts[i + 1 :]))
    return Placement(NON_LAYER, _kind(parts))


def _layer_order(row: str, first_seen: dict[str, int]) -> tuple[int, int, str, str]:
    prefix, _, number = row.rpartition(".")
    digits = number.lstrip("0")
    # Numeric order without int() (a hostile 4,000-digit "layer" must not raise); "010" and "10" by text.
    return first_seen[prefix], len(digits), digits, number


class Grid(NamedTuple):
    """Rows (non-layer first, then layers in numeric order) x columns, and where each name sits."""

    rows: list[str]
    columns: list[str]
    n_non_layer_columns: int  # the first columns hold the non-layer tensors
    cells: dict[tuple[str, str], list[str]]  # (row, column) -> names


def build_grid(names: Iterable[str]) -> Grid:
    """The map of these tensor names; a (row, column) slot shared by several names keeps them all."""
    cells: dict[tuple[str, str], list[str]] = {}
    prefixes: dict[str, int] = {}
    other_columns: dict[str, None] = {}  # dicts as ordered sets: file order
    layer_columns: set[str] = set()
    for name in names:
        p = place(name)
        cells.setdefault((p.row, p.column), []).append(name)
        if p.row == NON_LAYER:
            other_columns.setdefault(p.column)
        else:
            prefixes.setdefault(p.row.rpartition(".")[0], len(prefixes))
            layer_columns.add(p.column)
    layers = sorted({row for row, _ in cells if row != NON_LAYER}, key=lambda r: _layer_order(r, prefixes))
    rows = ([NON_LAYER] if other_columns else []) + layers
    # Layer kinds sorted by name: attn_* and ffn_* then sit side by side.
    columns = list(other_columns) + sorted(layer_columns - other_columns.keys())
    return Grid(rows, columns, len(other_columns), cells)
