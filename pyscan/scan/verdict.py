"""The conclusion of a report: what explains a file's F32 values, and what --truncate bf16 would change.

Each scanned F32 tensor gets the first explanation that covers every value in it:

  bf16-exact      every word is a BF16 value (low 16 bits zero)
  bf16-plus-one   w - 1 is BF16-exact for every non-NaN value: BF16 weights stored as w + 1
                  (llama.cpp's converter stores Gemma norms so)
  fp16-exact      every non-NaN value is an FP16 value: FP16 weights stored as F32
  full-f32        none of these: the tensor uses F32's precision

The file's kind follows from them (see ``Verdict.kind``).  ``classify`` works from the counts alone;
``truncation_error`` reads the w + 1 tensors once more, since the error of truncating them depends
on their magnitudes, which no count records.

This module imports nothing of the report (the report imports it, for its JSON): it reads any
tensor record with the attributes of ``TensorCounts``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:  # only for a type: the parser imports nothing of scan/
    from pyscan.parser.model import ModelFile

EXPLANATIONS = ("bf16-exact", "bf16-plus-one", "fp16-exact", "full-f32")
CHUNK_BYTES = 16 << 20  # truncation_error's pieces: the resident set stays bounded whatever the tensor


class TensorCounts(Protocol):
    """What the verdict reads of a tensor record (TensorReport has it): counts is None when not scanned."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def n_elements(self) -> int: ...
    @property
    def counts(self) -> dict[str, int] | None: ...


def explain(n: int, counts: dict[str, int]) -> str:
    """The first of EXPLANATIONS that covers every value of a scanned F32 tensor of n values."""
    if counts["low16_zero"] == n:
        return "bf16-exact"
    finite_or_inf = n - counts["nan"]  # NaN has no w - 1 and no FP16 value: the rest must explain it
    if finite_or_inf and counts["low16_zero_minus_one"] == finite_or_inf:
        return "bf16-plus-one"
    if finite_or_inf and counts["fp16_exact"] == finite_or_inf:
        return "fp16-exact"
    return "full-f32"


class Verdict(NamedTuple):
    """The file's F32 tensors by explanation, and what --truncate bf16 would do to them."""

    kind: str  # no-float-tensors, no-f32-tensors, bf16-exact, bf16-plus-one, fp16-exact, mixed, full-f32
    float_tensors: int  # F32, F16 and BF16 tensors scanned
    f32_tensors: int
    f32_values: int
    tensors: dict[str, int]  # explanation -> F32 tensors it covers (every explanation, 0 included)
    nan: int  # NaN values among the F32 ones
    truncate_bf16_changed: int  # F32 values --truncate bf16 would change (NaNs only made quiet not counted)
    # The largest |error| --truncate bf16 makes on the bf16-plus-one tensors; None when there are none
    # or when they were not read (a report made without its file).
    plus_one_max_abs_error: float | None = None
    # Non-NaN F32 values that are no FP16 value: --round fp16 changes each (and NaNs whose low 13 bits
    # are not zero, which no count records).
    fp16_inexact: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The --json form: the fields under their own names."""
        return {**self._asdict(), "tensors": dict(self.tensors)}


def _kind(n_float: int, by: dict[str, int]) -> str:
    if not sum(by.values()):
        return "no-f32-tensors" if n_float else "no-float-tensors"
    if by["full-f32"]:
        return "full-f32"
    explained = [k for k in ("bf16-plus-one", "fp16-exact") if by[k]]
    return "bf16-exact" if not explained else explained[0] if len(explained) == 1 else "mixed"


def classify(tensors: Iterable[TensorCounts], plus_one_error: float | None = None) -> Verdict:
    """The verdict of these tensor records (one pass: a file may hold 200,000 tensors)."""
    by = dict.fromkeys(EXPLANATIONS, 0)
    n_float = n_f32 = values = nan = changes = fp16_inexact = 0
    for t in tensors:  # the counts read directly: a method call per count cost ~0.2 s on 200,000 tensors
        counts = t.counts
        if counts is None:  # only F32, F16 and BF16 tensors are ever scanned
            continue
        n_float += 1
        if t.type != "F32":
            continue
        n = t.n_elements
        n_f32 += 1
        values += n
        nan += counts["nan"]
        changes += n - counts["low16_zero"]
        fp16_inexact += n - counts["nan"] - counts["fp16_exact"]
        by[explain(n, counts)] += 1
    error = plus_one_error if by["bf16-plus-one"] else None
    return Verdict(_kind(n_float, by), n_float, n_f32, values, by, nan, changes, error, fp16_inexact)


def truncation_error(model: ModelFile, tensors: Sequence[TensorCounts]) -> float | None:
    """The largest |error| --truncate bf16 makes on the bf16-plus-one tensors, read with the rewrite kernel.

    None when there are none.  Those tensors are norms in every file seen so far: a few KiB.
    """
    from pyscan import native  # the kernels: only the scan that found such tensors needs them here

    names = {t.name for t in tensors if t.type == "F32" and t.counts is not None and
             explain(t.n_elements, t.counts) == "bf16-plus-one"}  # fmt: skip
    if not names:
        return None
    stats = native.new_change_stats()  # the kernel keeps the running maximum in it
    truncate, base, swap, path = native.lib.PYSCAN_OP_TRUNCATE_MANTISSA, model.mapping.address, model.swap, model.path
    step = CHUNK_BYTES // 4
    for info in model.tensors:
        if info.name not in names:
            continue
        if info.n_elements <= step:  # one call, and no madvise: a norm is a few KiB
            native.transform_into(stats, truncate, 7, base + info.offset, None, info.n_elements, swap, path)
            continue
        for first in range(0, info.n_elements, step):
            n, offset = min(step, info.n_elements - first), info.offset + 4 * first
            native.transform_into(stats, truncate, 7, base + offset, None, n, swap, path)
            model.mapping.release(offset, 4 * n)  # read once: keep the resident set small, as the scan does
    return float(stats.max_abs_error)


# ---- the sentence ------------------------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


def _not_exact(k: int, n: int) -> str:
    """'None of the 109 F32 tensors is BF16-exact', 'The F32 tensor is not ...', '3 of the 109 ... are not'."""
    if n == 1:
        return "The F32 tensor is not BF16-exact"
    if k == n:
        return f"None of the {n:,} F32 tensors is BF16-exact"
    return f"{k:,} of the {n:,} F32 tensors {_are(k)} not BF16-exact"


def _error(value: float) -> str:
    return repr(value)  # the shortest text that is the value: 1.0, 0.00390625


def sentence(v: Verdict) -> str:
    """The verdict in words, one paragraph."""
    if v.kind in ("no-float-tensors", "no-f32-tensors"):
        only = " (only F16 and BF16 ones, which it does not touch)" if v.float_tensors else ""
        return f"No F32 tensors were scanned{only}: --truncate bf16 would change nothing."
    if v.kind == "bf16-exact":
        # (a NaN's quiet bit is set: of these NaNs, a signaling one would be made quiet, a quiet one kept)
        note = f" (of its {_plural(v.nan, 'NaN')}, a signaling one would only be made quiet)" if v.nan else ""
        all_of = "The F32 tensor is" if v.f32_tensors == 1 else f"All {v.f32_tensors:,} F32 tensors are"
        return f"{all_of} already BF16-exact: --truncate bf16 would change nothing{note}."
    by = v.tensors
    inexact = v.f32_tensors - by["bf16-exact"]
    share = (
        f"{v.truncate_bf16_changed:,} of {v.f32_values:,} F32 values "
        f"({100 * v.truncate_bf16_changed / v.f32_values:.2f}%)"
    )
    if v.kind == "bf16-plus-one":
        them = "it" if inexact == 1 else "them"
        error = "" if v.plus_one_max_abs_error is None else f", max |error| {_error(v.plus_one_max_abs_error)}"
        return (
            f"{_not_exact(inexact, v.f32_tensors)}, but w - 1 is BF16-exact for every value in {them}: the "
            f"underlying weights are BF16, stored as w + 1 in F32 (as llama.cpp's converter stores Gemma norms). "
            f"--truncate bf16 on the stored w + 1 loses real precision: it would change {share}{error}."
        )
    if v.kind == "fp16-exact":
        them = "it" if inexact == 1 else "them"
        return (
            f"{_not_exact(inexact, v.f32_tensors)}, but every value in {them} is an FP16 value: FP16 weights "
            f"stored as F32. {_round_fp16(v)}; --truncate bf16 would change {share}."
        )
    parts = [f"{by['bf16-plus-one']:,} BF16 + 1 (BF16 weights stored as w + 1)" if by["bf16-plus-one"] else "",
             f"{by['fp16-exact']:,} FP16-exact" if by["fp16-exact"] else ""]  # fmt: skip
    explained = ", ".join(p for p in parts if p)
    if v.kind == "mixed":
        return f"{_not_exact(inexact, v.f32_tensors)}: {explained}. --truncate bf16 would change {share}."
    full = by["full-f32"]
    others = f" (of the other {inexact - full:,} not BF16-exact: {explained})" if explained else ""
    which = "The F32 tensor carries" if v.f32_tensors == 1 else (
        f"{full:,} of the {v.f32_tensors:,} F32 tensors {'carries' if full == 1 else 'carry'}")  # fmt: skip
    return f"{which} more than BF16 or FP16 precision{others}: --truncate bf16 would change {share}."


def _round_fp16(v: Verdict) -> str:
    """What --round fp16 would do to a file whose F32 tensors are all BF16- or FP16-exact."""
    if v.fp16_inexact:  # BF16 values FP16 cannot hold (below 2^-24, beyond 65504, or with 9+ bits)
        return (
            f"--round fp16 would change {_plural(v.fp16_inexact, 'value')} of the BF16-exact "
            f"{'tensor' if v.tensors['bf16-exact'] == 1 else 'tensors'}, which FP16 cannot hold"
        )
    if v.nan:  # a NaN keeps its top 10 payload bits only
        nans = _plural(v.nan, "NaN")
        return f"--round fp16 would change no number (of its {nans}, those with low payload bits would lose them)"
    return "--round fp16 would change nothing"


def verdict(report: Any) -> str:
    """The verdict of a FileReport, in words (the report's own tensors and measured error)."""
    return sentence(report_verdict(report))


def report_verdict(report: Any) -> Verdict:
    """The Verdict of a FileReport (anything with ``tensors`` and ``plus_one_max_abs_error``)."""
    return classify(report.tensors, getattr(report, "plus_one_max_abs_error", None))
