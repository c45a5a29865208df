"""How a tensor B came from its reference A: identical, exact-cast, rounded, shifted, permuted, quantized, different.

(``equal-values``, bits that differ holding the same values, is told apart in compare.py: only it sees the bits.)

The expected B is A put through what the converter does for this tensor (``Transform``: llama.cpp
adds the norm shift in F32 and permutes llama-family Q/K rows per head); B is then checked, row
chunk by row chunk, against it:

* every value equal: ``identical`` (same type, nothing applied) or ``exact-cast`` (the type
  changed without changing a value) plus the transforms applied (``shifted``, ``permuted``,
  ``transposed``);
* every value equal to the expected one rounded to a narrower type: ``rounded``, with how
  (round-to-nearest-even to F16 or BF16, or truncation to BF16), so a user learns which
  rounding reproduces the file bit for bit;
* B of a quantized type A does not have: ``quantized``, with its errors (quant_error.py);
* anything else: ``different``, with the errors and the first differing index, and a note when B
  matches a known mistake instead (the shift missing or applied twice, the permutation missing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from pyscan.diff.quant_error import ErrorStats
from pyscan.diff.rows import is_quantized, n_rows, row_length, rows
from pyscan.diff.sides import Entry

Array = np.ndarray[Any, Any]

RELATION_WORDS = ("identical", "equal-values", "exact-cast", "rounded", "shifted", "permuted", "transposed",
                  "quantized", "different")  # fmt: skip
CHUNK_ELEMENTS = 1 << 20  # ~8 MiB per float64 temporary
MAX_TRANSPOSED_ELEMENTS = 1 << 26  # a transposed pair is compared whole: bounded
NOT_QUANTIZATION_COSINE = 0.5  # below this, B is no quantization of A (unrelated tensors give ~0)
MISTAKE_FACTOR = 4.0  # a known mistake must fit this many times better than the converter's result
NO_QUANTIZATION = "no quantization of the source"  # a "different" note that explains nothing: look further

ROUNDINGS = {
    "F32": "round-to-nearest-even to F32",
    "F16": "round-to-nearest-even to F16",
    "BF16": "round-to-nearest-even to BF16",
    "BF16-trunc": "truncation to BF16",
}
# The roundings that can have made a tensor of each type (the narrower ones when stored wider).
CANDIDATES = {"F32": ("F16", "BF16", "BF16-trunc"), "F16": ("F16",), "BF16": ("BF16", "BF16-trunc"), "F64": ()}
NARROW_SOURCES = ("F32", "F16", "BF16")  # llama.cpp computes their transforms in F32


class Transform(NamedTuple):
    shift: float = 0.0  # added to A (Gemma-family norms: 1.0)
    heads: int | None = None  # llama.cpp's Q/K row permutation with this many heads
    transposed: bool = False

    @property
    def words(self) -> list[str]:
        applied = (("shifted", self.shift), ("permuted", self.heads), ("transposed", self.transposed))
        return [word for word, on in applied if on]


class Relation:
    """The verdict for one pair, with the errors against the expected B."""

    __slots__ = ("relations", "how", "shift", "note", "stats")

    def __init__(self, relations: list[str], stats: ErrorStats, how: str | None = None, shift: float | None = None,
                 note: str | None = None) -> None:  # fmt: skip
        self.relations = relations
        self.how = how
        self.shift = shift
        self.note = note
        self.stats = stats

    def __repr__(self) -> str:
        return f"Relation({self.relations}, how={self.how!r}, note={self.note!r})"


def permute(rows_: Array, heads: int) -> Array:
    """llama.cpp's LlamaModel.permute over whole heads: w.reshape(n_head, 2, r/n_head/2, ...).swapaxes(1, 2)."""
    n, length = rows_.shape
    return rows_.reshape(heads, 2, n // heads // 2, length).swapaxes(1, 2).reshape(n, length)


def round_to(values: Array, how: str) -> Array:
    """values (float64) rounded as `how` says, in float32 (float64 for F32 itself); NaNs stay NaNs."""
    import ml_dtypes

    with np.errstate(over="ignore", invalid="ignore"):
        if how == "F32":
            return values.astype(np.float32).astype(np.float64)
        narrow = values.astype(np.float32)  # the expected values of a narrow source are F32 already
        if how == "F16":
            return narrow.astype(np.float16).astype(np.float32)
        if how == "BF16":
            return narrow.astype(ml_dtypes.bfloat16).astype(np.float32)
        words = narrow.view(np.uint32) & np.uint32(0xFFFF0000)
        return np.where(np.isnan(narrow), np.float32(np.nan), words.view(np.float32))


def same(a: Array, b: Array) -> bool:
    """Equal values of one float type, -0 apart from +0, any NaN equal to any NaN."""
    unsigned = np.dtype(f"u{a.dtype.itemsize}")
    if np.array_equal(a.view(unsigned), b.view(unsigned)):  # the common case, one pass
        return True
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if not np.array_equal(nan_a, nan_b):
        return False
    with np.errstate(invalid="ignore"):
        a, b = np.where(nan_a, 0.0, a).astype(a.dtype), np.where(nan_b, 0.0, b).astype(b.dtype)
    return bool(np.array_equal(a.view(unsigned), b.view(unsigned)))


class _Track:
    """A hypothesis about B checked chunk by chunk: exact matches (or rounded ones) and its errors."""

    __slots__ = ("label", "stats", "exact", "rounded")

    def __init__(self, label: str, candidates: tuple[str, ...]) -> None:
        self.label = label
        self.stats = ErrorStats()
        self.exact = True
        self.rounded = dict.fromkeys(candidates, True)

    def add(self, expected: Array, actual: Array, start: int) -> None:
        self.stats.add(expected, actual, start)
        self.exact = self.exact and self.stats.first_diff is None
        narrow: Array | None = None
        for how, ok in self.rounded.items():
            if ok:  # every chunk, exact ones too: a value B holds exactly may still not survive the rounding
                rounded = round_to(expected, how)
                if rounded.dtype != np.float32:
                    self.rounded[how] = same(rounded, actual)
                    continue
                if narrow is None:
                    with np.errstate(over="ignore", invalid="ignore"):
                        narrow = actual.astype(np.float32)  # exact: B's type is no wider than F32 here
                self.rounded[how] = same(rounded, narrow)

    @property
    def matches(self) -> str | None:
        """ "exact", the rounding that reproduces B, or None."""
        if self.exact:
            return "exact"
        return next((how for how, ok in self.rounded.items() if ok), None)


Observer = Callable[[Array, Array], None]  # rows of A and of B as read, before any transform


def relate(a: Entry, b: Entry, transform: Transform, observe: Observer | None = None) -> Relation:
    """Compare B with A put through transform; both tensors readable and of matching shapes.

    observe, given, sees every chunk of rows of both sides as read (float64), so a caller that
    needs more of the same values reads the tensors once, not twice; not with a transposed pair.
    """
    (file_a, ta), (file_b, tb) = a, b
    # (an integer B has no rounding to try: its values are compared as they are)
    candidates = () if is_quantized(tb) else CANDIDATES.get(tb.type_name, ())
    if tb.type_name == "F32" and ta.type_name == "F64":
        candidates = ("F32", *candidates)
    narrow = ta.type_name in NARROW_SOURCES
    main = _Track("expected", candidates)
    mistakes: list[tuple[_Track, Transform]] = []
    if transform.shift:
        mistakes += [(_Track("unshifted", candidates), transform._replace(shift=0.0)),
                     (_Track("twice", candidates), transform._replace(shift=2 * transform.shift))]  # fmt: skip
    if transform.heads:
        mistakes.append((_Track("unpermuted", candidates), transform._replace(heads=None)))

    def expected(values: Array, t: Transform) -> Array:
        if t.shift:
            values = values + t.shift
            if narrow:  # llama.cpp adds in F32 (it upcasts BF16 and F16 first)
                values = values.astype(np.float32).astype(np.float64)
        if not t.heads:
            return values
        if len(tb.shape) == 1:  # a bias: one row here, permuted as a column
            return permute(values.reshape(-1, 1), t.heads).reshape(values.shape)
        return permute(values, t.heads)

    if transform.transposed:
        whole_a = rows(file_a, ta, 0, n_rows(ta))
        whole_b = rows(file_b, tb, 0, n_rows(tb))
        source = np.ascontiguousarray(whole_a.T)
        for track, t in [(main, transform), *mistakes]:
            track.add(expected(source, t), whole_b, 0)
    else:
        total, length = n_rows(tb), row_length(tb)
        group = total // transform.heads if transform.heads and len(tb.shape) > 1 else 1
        step = max(group, CHUNK_ELEMENTS // max(length, 1) // group * group)
        for first in range(0, total, step):
            count = min(step, total - first)
            source, actual = rows(file_a, ta, first, count), rows(file_b, tb, first, count)
            if observe is not None:
                observe(source, actual)
            for track, t in [(main, transform), *mistakes]:
                track.add(expected(source, t), actual, first * length)
    return _verdict(ta.type_name, tb, transform, main, mistakes)


def _verdict(type_a: str, tb: Any, transform: Transform, main: _Track,
             mistakes: list[tuple[_Track, Transform]]) -> Relation:  # fmt: skip
    words = transform.words
    shift = transform.shift or None
    if is_quantized(tb) and tb.type_name != type_a:
        mistake = _best_mistake(main, mistakes)
        if mistake is not None:
            return Relation(["different"], main.stats, shift=shift, note=_mistake_note(mistake, transform, True))
        cosine = main.stats.cosine
        if cosine is not None and cosine < NOT_QUANTIZATION_COSINE:
            return Relation(["different"], main.stats, shift=shift,
                            note=f"{NO_QUANTIZATION} (cosine {cosine:.3f})")  # fmt: skip
        return Relation(["quantized", *words], main.stats, shift=shift)
    found = main.matches
    if found == "exact":
        if not words and type_a == tb.type_name:
            return Relation(["identical"], main.stats)
        return Relation((["exact-cast"] if type_a != tb.type_name else []) + words, main.stats, shift=shift)
    if found is not None:
        how = ROUNDINGS[found] + (f", stored as {tb.type_name}" if found.split("-")[0] != tb.type_name else "")
        return Relation(["rounded", *words], main.stats, how=how, shift=shift)
    for track, _ in mistakes:
        if track.matches is not None:
            return Relation(["different"], main.stats, shift=shift, note=_mistake_note(track, transform, False))
    mistake = _best_mistake(main, mistakes) if is_quantized(tb) else None
    note = _mistake_note(mistake, transform, True) if mistake is not None else None
    return Relation(["different"], main.stats, shift=shift, note=note)


def unexplained(relation: list[str], note: str | None) -> bool:
    """A "different" pair no known mistake accounts for: it may be another tensor's conversion."""
    return relation == ["different"] and (note is None or note.startswith(NO_QUANTIZATION))


def _best_mistake(main: _Track, mistakes: list[tuple[_Track, Transform]]) -> _Track | None:
    fits = [t for t, _ in mistakes if t.stats.err2_total * MISTAKE_FACTOR < main.stats.err2_total]
    return min(fits, key=lambda t: t.stats.err2_total, default=None)


def _mistake_note(track: _Track, transform: Transform, approximate: bool) -> str:
    what = {
        "unshifted": f"equals the source: the norm shift (+{transform.shift!r}) is missing",
        "twice": f"source + {2 * transform.shift!r}: the shift applied twice",
        "unpermuted": "equals the source unpermuted: the Q/K permutation is missing",
    }[track.label]
    if not approximate:
        return what
    return f"{what.replace('equals', 'closer to', 1)} (rel. RMSE {_pct(track.stats.rel_rmse)} against that)"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"
