"""Group tensors by name pattern (blk.7.attn_norm.weight -> blk.*.attn_norm.weight) and type."""

from __future__ import annotations

from typing import NamedTuple

from pyscan.scan.report import TensorReport


def name_pattern(name: str) -> str:
    """Replace every all-digit dotted component (a layer or expert number) with '*'."""
    return ".".join("*" if part.isdigit() else part for part in name.split("."))


class TensorGroup(NamedTuple):
    pattern: str
    type: str
    tensors: list[TensorReport]

    @property
    def elements(self) -> tuple[int, int]:
        sizes = [t.n_elements for t in self.tensors]
        return min(sizes), max(sizes)

    def fraction(self, key: str) -> float | None:
        """The share of the group's elements with the count, or None if not scanned / not applicable."""
        total = counted = 0
        for t in self.tensors:  # one pass: a group may hold 200,000 tensors
            if t.counts is None or key not in t.counts:
                return None
            total += t.n_elements
            counted += t.counts[key]
        return counted / total if total else 1.0


def group_tensors(tensors: list[TensorReport]) -> list[TensorGroup]:
    """One group per (pattern, type): patterns in order of first appearance, and a pattern's types
    side by side, the type with the most tensors first (ties: first seen first).

    A Q4_K_M file keeps some layers' attn_v at Q6_K: those rows stay next to the Q4_K ones.
    """
    by_pattern: dict[str, dict[str, TensorGroup]] = {}  # dicts keep first-appearance order
    for t in tensors:
        pattern = name_pattern(t.name)
        types = by_pattern.get(pattern)
        if types is None:
            types = by_pattern[pattern] = {}
        group = types.get(t.type)
        if group is None:  # (setdefault would build a group and its list for every tensor)
            group = types[t.type] = TensorGroup(pattern, t.type, [])
        group.tensors.append(t)
    # sorted() is stable: equal counts keep their first-seen order.
    return [g for types in by_pattern.values() for g in sorted(types.values(), key=lambda g: -len(g.tensors))]

