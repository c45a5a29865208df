"""Sums of squares and products of float64 values that neither overflow nor underflow.

A F64 tensor may hold 1e200: its square overflows, and RMSE, SNR and cosine came out inf or nan.
Each chunk's values are multiplied by a power of two (exact) that brings the largest near 1, and the
sums are kept at one common scale, as LAPACK's dnrm2 does.  Values of F32, F16 and BF16 (and most F64)
need no scale: for them the factor is 1 and the sums are bit for bit what plain float64 gives.
"""

from __future__ import annotations

import math

# Chunks whose largest magnitude lies in here are summed unscaled: squared, and summed over up to
# 2^60 values, they stay inside float64's normal range (2^-1022 .. 2^1024).
SAFE_LOW, SAFE_HIGH = 2.0**-400, 2.0**400


class ScaledSums:
    """n running sums, each the true sum times 2**(-2 * exponent).

        sums = ScaledSums(2)
        factor = sums.factor_for(largest)   # multiply this chunk's values by factor, then
        sums.add(0, float(np.sum(x * x)))   # add its sums of squares / products
        rms = sums.root_mean(0, n)          # at the true scale; sums.sums[i] / sums.sums[j] are true ratios
    """

    __slots__ = ("exponent", "sums")

    def __init__(self, n: int) -> None:
        self.exponent: int | None = None  # set by the first chunk with a nonzero value
        self.sums = [0.0] * n

    def factor_for(self, largest: float) -> float:
        """The power of two to scale a chunk by, given its largest finite magnitude (the sums so far are
        rescaled when this chunk needs a smaller factor)."""
        if largest == 0 or not math.isfinite(largest):
            return 1.0 if self.exponent is None else math.ldexp(1.0, -self.exponent)
        wanted = 0 if SAFE_LOW <= largest <= SAFE_HIGH else math.frexp(largest)[1]
        if self.exponent is None:
            self.exponent = wanted
        elif wanted > self.exponent:  # earlier chunks are small beside this one: what underflows is negligible
            shrink = math.ldexp(1.0, 2 * (self.exponent - wanted))
            self.sums = [s * shrink for s in self.sums]
            self.exponent = wanted
        return math.ldexp(1.0, -self.exponent)

    def add(self, index: int, scaled_sum: float) -> None:
        self.sums[index] += scaled_sum

    def total(self, index: int) -> float:
        """The true sum, or inf where it is past float64."""
        try:
            return math.ldexp(self.sums[index], 2 * (self.exponent or 0))
        except OverflowError:
            return math.inf

    def root_mean(self, index: int, n: int) -> float:
        """sqrt(true sum / n), computed at the scale (the sum itself may be past float64: 1e200 squared)."""
        try:
            return math.ldexp(math.sqrt(self.sums[index] / n), self.exponent or 0)
        except OverflowError:
            return math.inf
