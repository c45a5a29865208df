"""Sums of squares and products of float64 values that neither overflow nor underflow.

A F64 tensor may hold 1e200: its square overflows, and RMSE, SNR and cosine came out inf or nan;
values or differences of 1e-200 square to zero.  Each array is multiplied by a power of two
(exact, numpy's ldexp) that brings its largest magnitude near 1, and each sum is kept as
mantissa x 2**exponent.  Arrays whose largest magnitude lies in [2^-400, 2^400] (every F32, F16 and
BF16 value, and most F64) are not scaled: their sums are the plain float64 sums.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
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


def add_squared_differences(total: ScaledSum, x: Array, y: Array, square_sum: Callable[[Array], float]) -> Array:
    """Add the sum of (y - x)² over finite x and y to total; return |y - x| (inf where it is past float64).

    The differences are taken unscaled (scaled first, 1e-30 beside 1e300 would vanish) and then
    brought near 1 themselves; only two values near ±1.8e308 differ by more than float64 holds, and
    then their halves' difference is taken (exact for values that large).
    """
    with np.errstate(over="ignore"):
        error: Array = np.abs(y - x)
    if np.isfinite(error).all():
        exponent = exponent_of(error)
        total.add(square_sum(scaled(error, exponent)), 2 * exponent)
    else:
        half = np.abs(y * 0.5 - x * 0.5)
        exponent = exponent_of(half)
        total.add(square_sum(scaled(half, exponent)), 2 * (exponent + 1))
    return error


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

    def root_ratio(self, other: ScaledSum) -> float:
        """sqrt(self / other), sums of squares, other nonzero: from the roots, so that it is right
        wherever it fits a float64 (the ratio itself may not: 1e300 squared over 1e-300 squared)."""
        if self.exponent == other.exponent:  # unscaled sums: the plain formula, where it is exact
            quotient = self.mantissa / other.mantissa
            if quotient == 0 and self.mantissa == 0 or sys.float_info.min <= quotient < math.inf:
                return math.sqrt(quotient)
        (mine, my_exponent), (theirs, their_exponent) = self.root(), other.root()
        return _ldexp(mine / theirs, my_exponent - their_exponent)

    def log10_ratio(self, other: ScaledSum) -> float:
        """log10(self / other), both positive: finite even where the ratio is past float64."""
        quotient = self.mantissa / other.mantissa
        if self.exponent == other.exponent and sys.float_info.min <= quotient < math.inf:
            return math.log10(quotient)  # the plain formula, where it is exact
        shift = (self.exponent - other.exponent) * math.log10(2)
        return math.log10(self.mantissa) - math.log10(other.mantissa) + shift
