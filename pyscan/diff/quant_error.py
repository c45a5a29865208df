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

from pyscan.diff.scaled_sums import ScaledSums

ERR2, REF2, CAND2, DOT = range(4)  # the sums kept: of error², reference², candidate², reference x candidate
HISTOGRAM_BUCKETS = 150
HISTOGRAM_WIDTH = 0.0002  # quantize-stats' buckets: 150 x 0.0002 = [0, 0.03)

Array = np.ndarray[Any, Any]


class ErrorStats:
    """Sums over chunks; the figures are read once every chunk has been added."""

    __slots__ = ("n", "n_skipped", "sums", "max_abs", "histogram", "first_diff")

    def __init__(self) -> None:
        self.n = 0  # finite pairs
        self.n_skipped = 0  # pairs where either side is not finite
        self.sums = ScaledSums(4)  # ERR2, REF2, CAND2, DOT: scaled, so that F64 values of 1e200 do not overflow
        self.max_abs = 0.0
        self.histogram = np.zeros(HISTOGRAM_BUCKETS + 1, dtype=np.int64)
        self.first_diff: int | None = None  # flat index of the first value that differs (NaN equals NaN)

    def add(self, reference: Array, candidate: Array, start: int) -> None:
        """One chunk: flat arrays of the same length whose first element has flat index `start`."""
        x, y = reference.reshape(-1), candidate.reshape(-1)
        if self.first_diff is None and not np.array_equal(x, y):
            differ = (x != y) & ~(np.isnan(x) & np.isnan(y))
            if differ.any():
                self.first_diff = start + int(np.argmax(differ))
        finite = np.isfinite(x) & np.isfinite(y)
        if not finite.all():
            self.n_skipped += int(x.size - np.count_nonzero(finite))
            x, y = x[finite], y[finite]
        if not x.size:
            return
        self.n += x.size
        factor = self.sums.factor_for(max(float(x.max()), -float(x.min()), float(y.max()), -float(y.min())))
        if factor != 1.0:
            x, y = x * factor, y * factor
        scaled_error = np.abs(y - x)
        # einsum, not np.dot: BLAS threads spinning on 2 shared cores made dot 10-50x slower here
        for index, (left, right) in enumerate(((scaled_error, scaled_error), (x, x), (y, y), (x, y))):
            self.sums.add(index, float(np.einsum("i,i->", left, right)))
        with np.errstate(over="ignore"):  # an error past float64 (1e308 against -1e308) is inf
            error = scaled_error if factor == 1.0 else scaled_error / factor
        self.max_abs = max(self.max_abs, float(error.max()))
        # clipped before the cast: a huge error must not wrap around
        buckets = np.minimum(error * (1 / HISTOGRAM_WIDTH), HISTOGRAM_BUCKETS).astype(np.intp)
        self.histogram += np.bincount(buckets, minlength=HISTOGRAM_BUCKETS + 1)

    @property
    def err2(self) -> float:
        """The sum of squared errors (inf where it is past float64): to rank two fits of one tensor."""
        return self.sums.total(ERR2)

    @property
    def rmse(self) -> float | None:
        return self.sums.root_mean(ERR2, self.n) if self.n else None

    # The ratios below are of sums at one scale: true ratios.
    @property
    def rel_rmse(self) -> float | None:
        err2, ref2 = self.sums.sums[ERR2], self.sums.sums[REF2]
        return math.sqrt(err2 / ref2) if self.n and ref2 > 0 else None

    @property
    def snr_db(self) -> float | None:
        err2, ref2 = self.sums.sums[ERR2], self.sums.sums[REF2]
        if not self.n or ref2 == 0:
            return None
        return math.inf if err2 == 0 else 10 * math.log10(ref2 / err2)

    @property
    def cosine(self) -> float | None:
        ref2, cand2, dot = self.sums.sums[REF2], self.sums.sums[CAND2], self.sums.sums[DOT]
        norm = math.sqrt(ref2) * math.sqrt(cand2)
        return dot / norm if self.n and norm > 0 else None

    def histogram_dict(self) -> dict[str, Any]:
        return {"bucket_width": HISTOGRAM_WIDTH, "counts": self.histogram[:HISTOGRAM_BUCKETS].tolist(),
                "above": int(self.histogram[HISTOGRAM_BUCKETS])}  # fmt: skip
