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
    """Groups in order of first appearance."""
    groups: dict[tuple[str, str], TensorGroup] = {}
    for t in tensors:
        key = (name_pattern(t.name), t.type)
        groups.setdefault(key, TensorGroup(key[0], t.type, [])).tensors.append(t)
    return list(groups.values())
