"""Error statistics of a tensor against its reference, as llama.cpp's quantize-stats reports them.

Accumulated chunk by chunk in float64 over the positions where both values are finite:
RMSE, max |error|, relative RMSE (rmse / rms(reference)), SNR in dB (10 log10 of signal power
over error power), cosine similarity, and quantize-stats' histogram of |error|: 150 buckets of
width 0.0002 over [0, 0.03), plus one for everything above.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pyscan.diff.scaled_sums import ScaledSum, add_squared_differences, exponent_of, scaled

HISTOGRAM_BUCKETS = 150
HISTOGRAM_WIDTH = 0.0002  # quantize-stats' buckets: 150 x 0.0002 = [0, 0.03)

Array = np.ndarray[Any, Any]


class ErrorStats:
    """Sums over chunks; the figures are read once every chunk has been added."""

    __slots__ = ("n", "n_skipped", "err2", "ref2", "cand2", "dot", "max_abs", "histogram", "first_diff", "n_differ",
                 "infinitely_apart")  # fmt: skip

    def __init__(self) -> None:
        self.n = 0  # finite pairs
        self.n_skipped = 0  # pairs where either side is not finite
        # error², reference², candidate², reference x candidate: scaled sums (F64 1e200 squared overflows)
        self.err2, self.ref2, self.cand2, self.dot = ScaledSum(), ScaledSum(), ScaledSum(), ScaledSum()
        self.max_abs = 0.0
        self.histogram = np.zeros(HISTOGRAM_BUCKETS + 1, dtype=np.int64)
        self.first_diff: int | None = None  # flat index of the first value that differs (NaN equals NaN)
        self.n_differ = 0  # values that differ (NaN equals NaN), as compare.py counts them
        self.infinitely_apart = False  # an infinity against another value (not a NaN)

    def add(self, reference: Array, candidate: Array, start: int) -> None:
        """One chunk: flat arrays of the same length whose first element has flat index `start`."""
        x, y = reference.reshape(-1), candidate.reshape(-1)
        finite = np.isfinite(x) & np.isfinite(y)
        all_finite = bool(finite.all())
        self._count_differences(x, y, start, None if all_finite else finite)
        if not all_finite:
            self.n_skipped += int(x.size - np.count_nonzero(finite))
            x, y = x[finite], y[finite]
        if not x.size:
            return
        self.n += x.size
        ex, ey = exponent_of(x), exponent_of(y)  # 0 (no scaling) for all but extreme F64 values
        xs, ys = scaled(x, ex), scaled(y, ey)

        def dot(a: Array, b: Array) -> float:
            # einsum, not np.dot: BLAS threads spinning on 2 shared cores made dot 10-50x slower here
            return float(np.einsum("i,i->", a, b))

        error = add_squared_differences(self.err2, x, y, lambda e: dot(e, e))  # inf: past float64
        self.ref2.add(dot(xs, xs), 2 * ex)
        self.cand2.add(dot(ys, ys), 2 * ey)
        self.dot.add(dot(xs, ys), ex + ey)
        self.max_abs = max(self.max_abs, float(error.max()))
        # clipped before the cast: a huge error must not wrap around (one past float64 / width is inf)
        with np.errstate(over="ignore"):
            buckets = np.minimum(error * (1 / HISTOGRAM_WIDTH), HISTOGRAM_BUCKETS).astype(np.intp)
        self.histogram += np.bincount(buckets, minlength=HISTOGRAM_BUCKETS + 1)

    def _count_differences(self, x: Array, y: Array, start: int, finite: Array | None) -> None:
        """n_differ and first_diff; finite: which pairs are finite, None when all are (the usual chunk)."""
        differ = x != y
        if finite is not None:  # NaN equals NaN; an infinity against anything else is infinitely apart
            nan_x, nan_y = np.isnan(x), np.isnan(y)  # once each: these masks are the chunk's cost
            differ &= ~(nan_x & nan_y)  # (NaN != NaN is true)
            self.infinitely_apart = self.infinitely_apart or bool((differ & ~finite & ~(nan_x | nan_y)).any())
        n = int(np.count_nonzero(differ))
        if n:
            if self.first_diff is None:
                self.first_diff = start + int(np.argmax(differ))
            self.n_differ += n

    @property
    def max_diff(self) -> float:
        """max |error| over the values that differ, infinities included (NaN pairs aside)."""
        return math.inf if self.infinitely_apart else self.max_abs

    @property
    def err2_total(self) -> float:
        """The sum of squared errors (inf where it is past float64): to rank two fits of one tensor."""
        return self.err2.total

    @property
    def rmse(self) -> float | None:
        return self.err2.root_mean(self.n) if self.n else None

    @property
    def rel_rmse(self) -> float | None:
        return self.err2.root_ratio(self.ref2) if self.n and self.ref2.mantissa > 0 else None

    @property
    def snr_db(self) -> float | None:
        if not self.n or self.ref2.mantissa == 0:
            return None
        return math.inf if self.err2.mantissa == 0 else 10 * self.ref2.log10_ratio(self.err2)

    @property
    def cosine(self) -> float | None:
        if not self.n or self.ref2.mantissa <= 0 or self.cand2.mantissa <= 0:
            return None
        (ref, ref_exponent), (cand, cand_exponent) = self.ref2.root(), self.cand2.root()
        cosine = math.ldexp(self.dot.mantissa / (ref * cand), self.dot.exponent - ref_exponent - cand_exponent)
        return min(1.0, max(-1.0, cosine))  # rounding takes x against itself to 1.0000000000000002

    def histogram_dict(self) -> dict[str, Any]:
        return {"bucket_width": HISTOGRAM_WIDTH, "counts": self.histogram[:HISTOGRAM_BUCKETS].tolist(),
                "above": int(self.histogram[HISTOGRAM_BUCKETS])}  # fmt: skip
