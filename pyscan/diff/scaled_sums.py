"""Sums of squares and products of float64 values that neither overflow nor underflow.

A F64 tensor may hold 1e200: its square overflows, and RMSE, SNR and cosine came out inf or nan;
values or differences of 1e-200 square to zero.  Each array is multiplied by a power of two
(exact, numpy's ldexp) that brings its largest magnitude near 1, and each sum is kept as
mantissa x 2**exponent.  Arrays whose largest magnitude lies in [2^-400, 2^400] (every F32, F16 and
BF16 value, and most F64) are not scaled: their sums are the plain float64 sums.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

# Squared, and summed over up to 2^60 values, magnitudes in here stay inside float64's normal range.
SAFE_LOW, SAFE_HIGH = 2.0**-400, 2.0**400


def exponent_of(values: Array) -> int:
    """The power of two to scale finite values by (values * 2**-e): 0 when their largest magnitude
    is in the safe range (or they are all zero), else its binary exponent (the largest is then in [0.5, 1))."""
    largest = max(float(values.max()), -float(values.min())) if values.size else 0.0
    return 0 if largest == 0 or SAFE_LOW <= largest <= SAFE_HIGH else math.frexp(largest)[1]


def scaled(values: Array, exponent: int) -> Array:
    """values * 2**-exponent, exactly (no new array for exponent 0)."""
    return values if exponent == 0 else np.ldexp(values, -exponent)


def _ldexp(mantissa: float, exponent: int) -> float:
    try:
        return math.ldexp(mantissa, exponent)
    except OverflowError:  # past float64: the honest answer is an infinity
        return math.copysign(math.inf, mantissa)


class ScaledSum:
    """A running sum kept as mantissa x 2**exponent.

        total = ScaledSum()
        e = exponent_of(x); xs = scaled(x, e)
        total.add(float(np.einsum("i,i->", xs, xs)), 2 * e)   # the sum of x², whatever x's size
        total.root_mean(n)                                     # sqrt(sum / n) at the true scale

    A term far smaller than the sum so far is shifted to its scale, where it may vanish: it could
    not change a float64 sum either.
    """

    __slots__ = ("mantissa", "exponent")

    def __init__(self) -> None:
        self.mantissa, self.exponent = 0.0, 0

    def add(self, mantissa: float, exponent: int = 0) -> None:
        if mantissa == 0:
            return
        if self.mantissa == 0:
            self.mantissa, self.exponent = mantissa, exponent
        elif exponent > self.exponent:
            self.mantissa = math.ldexp(self.mantissa, self.exponent - exponent) + mantissa
            self.exponent = exponent
        else:
            self.mantissa += math.ldexp(mantissa, exponent - self.exponent)

    @property
    def total(self) -> float:
        """The sum itself (inf where it is past float64)."""
        return _ldexp(self.mantissa, self.exponent)

    def _even(self) -> tuple[float, int]:
        """(mantissa, exponent) with an even exponent, for a square root."""
        return (self.mantissa * 2, self.exponent - 1) if self.exponent % 2 else (self.mantissa, self.exponent)

    def root(self) -> tuple[float, int]:
        """sqrt(sum) as (mantissa, exponent); the sum is of squares (not negative)."""
        mantissa, exponent = self._even()
        return math.sqrt(mantissa), exponent // 2

    def root_mean(self, n: int) -> float:
        """sqrt(sum / n), computed at the scale (the sum itself may be past float64: 1e200 squared)."""
        mantissa, exponent = self._even()
        return _ldexp(math.sqrt(mantissa / n), exponent // 2)

    def ratio(self, other: ScaledSum) -> float:
        """self / other (other nonzero); inf where that is past float64."""
        return _ldexp(self.mantissa / other.mantissa, self.exponent - other.exponent)

    def log10_ratio(self, other: ScaledSum) -> float:
        """log10(self / other), both positive: finite even where the ratio itself is past float64."""
        if self.exponent == other.exponent:
            return math.log10(self.mantissa / other.mantissa)
        return math.log10(self.mantissa / other.mantissa) + (self.exponent - other.exponent) * math.log10(2)
