"""The relations in one line: "201 tensors: 45 exact-cast from BF16, 135 quantized Q4_K (rel. RMSE 0.9-1.4%), ..."."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pyscan.diff.quant_error import ErrorStats

STATUS_WORDS = {"only_in_a": "only in A", "only_in_b": "only in B", "shape_changed": "shape changed",
                "type_changed": "type changed", "not_compared": "not compared", "different": "different"}  # fmt: skip


class Paired(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def relations(self) -> list[str]: ...
    @property
    def type_a(self) -> str | None: ...
    @property
    def type_b(self) -> str | None: ...
    @property
    def how(self) -> str | None: ...
    @property
    def errors(self) -> ErrorStats | None: ...


def group_label(t: Paired) -> str:
    """What the tensor is, without its numbers: tensors with the same label are counted together."""
    if not t.relations:
        return STATUS_WORDS.get(t.status, t.status)
    words = " + ".join(t.relations)
    if "exact-cast" in t.relations:
        return f"{words} from {t.type_a}"
    if "quantized" in t.relations:
        return f"{words} {t.type_b}" + (f" from {t.type_a}" if t.type_a not in ("F32", "F16", "BF16", "F64") else "")
    if "rounded" in t.relations and t.how:
        return f"{words} ({t.how})"
    return words


def relations_summary(tensors: Sequence[Paired]) -> str:
    groups: dict[str, list[Paired]] = {}
    for t in tensors:
        groups.setdefault(group_label(t), []).append(t)
    parts = []
    for label, members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        rel = sorted(e.rel_rmse for t in members if (e := t.errors) is not None and e.rel_rmse is not None)
        spread = ""
        if rel and any(w in label for w in ("quantized", "different")):
            low, high = f"{100 * rel[0]:.1f}", f"{100 * rel[-1]:.1f}"
            spread = f" (rel. RMSE {low}%)" if low == high else f" (rel. RMSE {low}-{high}%)"
        parts.append(f"{len(members):,} {label}{spread}")
    n = len(tensors)
    return f"{n:,} tensor{'s' if n != 1 else ''}" + (": " + ", ".join(parts) if parts else "")
