"""Independent reference counts, from numpy bit operations, numpy float16 and ml_dtypes.

These never call pyscan: they are what pyscan's kernels are checked against.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

BF16 = np.dtype(ml_dtypes.bfloat16)


def _round_trips(values: np.ndarray[Any, Any], narrow: Any) -> np.ndarray[Any, Any]:
    """Whether each non-NaN value survives conversion to `narrow` and back unchanged."""
    with np.errstate(over="ignore", invalid="ignore"):
        back = values.astype(narrow).astype(values.dtype)
    return (back == values) & ~np.isnan(values)


def f32_counts(words: np.ndarray[Any, Any]) -> dict[str, int]:
    """Counts for F32 words given as native-order uint32."""
    words = np.asarray(words, dtype=np.uint32)
    x = words.view(np.float32)
    nan = np.isnan(x)
    with np.errstate(invalid="ignore", over="ignore"):
        minus_one = (x - np.float32(1.0)).view(np.uint32)
    return {
        "words": words.size,
        "low16_zero": int(np.count_nonzero((words & 0xFFFF) == 0)),
        "fp16_exact": int(np.count_nonzero(_round_trips(x, np.float16))),
        "nan": int(np.count_nonzero(nan)),
        "inf": int(np.count_nonzero(np.isinf(x))),
        "zero": int(np.count_nonzero(x == 0)),
        "subnormal": int(np.count_nonzero((x != 0) & (np.abs(x) < np.finfo(np.float32).tiny))),
        "low16_zero_minus_one": int(np.count_nonzero(((minus_one & 0xFFFF) == 0) & ~nan)),
    }


def f16_counts(halves: np.ndarray[Any, Any]) -> dict[str, int]:
    """Counts for F16 values given as native-order uint16."""
    h = np.asarray(halves, dtype=np.uint16).view(np.float16)
    x = h.astype(np.float32)
    return {
        "words": h.size,
        # F32's rule on the exact widening (numpy's): low 16 bits zero, NaN payloads included
        "bf16_exact": int(np.count_nonzero((x.view(np.uint32) & 0xFFFF) == 0)),
        "nan": int(np.count_nonzero(np.isnan(h))),
        "inf": int(np.count_nonzero(np.isinf(h))),
        "zero": int(np.count_nonzero(h == 0)),
        "subnormal": int(np.count_nonzero((h != 0) & (np.abs(h) < np.finfo(np.float16).tiny))),
    }


def bf16_counts(halves: np.ndarray[Any, Any]) -> dict[str, int]:
    """Counts for BF16 values given as native-order uint16."""
    b = np.asarray(halves, dtype=np.uint16).view(BF16)
    x = b.astype(np.float32)
    return {
        "words": b.size,
        "fp16_exact": int(np.count_nonzero(_round_trips(x, np.float16))),
        "nan": int(np.count_nonzero(np.isnan(x))),
        "inf": int(np.count_nonzero(np.isinf(x))),
        "zero": int(np.count_nonzero(x == 0)),
        "subnormal": int(np.count_nonzero((x != 0) & (np.abs(x) < np.finfo(np.float32).tiny))),
    }


COUNTS = {"F32": f32_counts, "F16": f16_counts, "BF16": bf16_counts}


# Every special F32 value, as bits.
F32_SPECIALS = np.array([
    0x00000000, 0x80000000,  # +-0
    0x7F800000, 0xFF800000,  # +-Inf
    0x7F800001, 0xFF800001, 0x7F80FFFF, 0x7F810000,  # NaNs: payload only in the low bits; signaling, low zero
    0x7FC00000, 0xFFC00000, 0x7FFFFFFF, 0xFFFFFFFF,  # quiet NaNs
    0x00000001, 0x80000001, 0x007FFFFF, 0x00010000, 0x00400000,  # subnormals
    0x00800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F0000,  # smallest normal, max, max BF16
    0x3F800000, 0xBF800000, 0x3F800001, 0x3F808000, 0x3F810000, 0x3F7FFFFF,  # around 1.0
    0x33800000, 0x33800001, 0x33C00000, 0x34000000, 0x34400000, 0x387FC000, 0x387FE000,  # FP16 subnormal edges
    0x38800000, 0x38802000, 0x38801000, 0x477FE000, 0x477FF000, 0x47800000, 0x477FE001,  # FP16 normal edges
    0x33000000, 0x337FFFFF, 0x3F800000 + 0x2000, 0x3F800000 + 0x1000,
], dtype=np.uint32)  # fmt: skip


def f32_test_words(n: int, seed: int = 0) -> np.ndarray[Any, Any]:
    """Random words that reach every branch: raw bits, BF16-exact, FP16-range, (bf16 + 1) and specials."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 2**32, size=n, dtype=np.uint32)
    kind = rng.integers(0, 6, size=n)
    bf16 = raw & np.uint32(0xFFFF0000)
    # Exponents 100..145 with few mantissa bits set: lands on and around FP16's grid.
    exponent = rng.integers(100, 146, size=n).astype(np.uint32) << 23
    sparse = exponent | (raw & np.uint32(0x007FE000) & rng.integers(0, 2**32, size=n, dtype=np.uint32))
    sparse |= (raw >> 31) << 31
    with np.errstate(invalid="ignore", over="ignore"):
        plus_one = (bf16.view(np.float32) * np.float32(1e-3) + np.float32(1)).view(np.uint32)
    specials = F32_SPECIALS[rng.integers(0, F32_SPECIALS.size, size=n)]
    words = np.select(
        [kind == 0, kind == 1, kind == 2, kind == 3, kind == 4], [raw, bf16, sparse, plus_one, specials], raw
    )
    return words.astype(np.uint32)


# ---- rewrites: what each fake-quantization mode must produce ----------------------------------


def _ulp_grid(x: np.ndarray[Any, Any], keep: int) -> np.ndarray[Any, Any]:
    """The spacing of F32 values with `keep` mantissa bits at each value's magnitude (float64)."""
    _, exponent = np.frexp(x.astype(np.float64))
    return np.ldexp(1.0, np.maximum(exponent - 1, -126) - keep)


def keep_mantissa(words: np.ndarray[Any, Any], keep: int, rounding: bool) -> np.ndarray[Any, Any]:
    """F32 words with `keep` mantissa bits, computed in float64 arithmetic; NaN in, NaN out."""
    x = words.view(np.float32)
    finite = np.isfinite(x)
    grid = _ulp_grid(np.where(finite, x, 1), keep)
    scaled = np.where(finite, x, 0).astype(np.float64) / grid
    with np.errstate(over="ignore"):
        result = (np.round(scaled) if rounding else np.trunc(scaled)) * grid
        result = np.where(np.abs(result) >= 2.0**128, np.copysign(np.inf, result), result).astype(np.float32)
    return np.where(finite, result, x).view(np.uint32)


def fp16_round_trip(words: np.ndarray[Any, Any], toward_zero: bool) -> np.ndarray[Any, Any]:
    """Through IEEE FP16 and back: numpy's nearest-even conversion, stepped toward zero where it rounded up."""
    x = words.view(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        h = x.astype(np.float16)
        if toward_zero:
            overshoot = np.abs(h.astype(np.float32)) > np.abs(x)
            h = np.where(overshoot, np.nextafter(h, np.float16(0)), h)
    return h.astype(np.float32).view(np.uint32)


def fake_quant(values: np.ndarray[Any, Any], row_len: int, group: int, qmax: int) -> np.ndarray[Any, Any]:
    """Symmetric absmax fake quantization with a BF16 scale, per group along each row, in float32."""
    out = values.astype(np.float32).copy()
    rows = out.reshape(-1, row_len)
    for row in rows:
        for start in range(0, row_len, group):
            g = row[start : start + group]
            finite = np.isfinite(g)
            absmax = np.float32(np.max(np.abs(g[finite]))) if finite.any() else np.float32(0)
            scale = (absmax / np.float32(qmax)).astype(BF16).astype(np.float32)
            with np.errstate(over="ignore"):
                top = scale * np.float32(qmax)
            if not (scale >= np.finfo(np.float32).tiny and np.isfinite(top)):
                continue  # all zero, or a scale too small / too large for q * s to be exact
            q = np.clip(np.rint(g[finite] / scale), -qmax, qmax).astype(np.float32)
            g[finite] = q * scale
    return rows.reshape(values.shape)


def change_stats(before: np.ndarray[Any, Any], after: np.ndarray[Any, Any]) -> tuple[int, float, float]:
    """(words changed, max |new - old|, max |new - old| / |old|) in float32, NaN inputs carrying no error."""
    changed = before.view(np.uint32) != after.view(np.uint32)
    old, new = before.view(np.float32), after.view(np.float32)
    tracked = changed & ~np.isnan(old)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        err = np.abs(new[tracked] - old[tracked])
        rel = err / np.abs(old[tracked])
    return int(changed.sum()), float(err.max(initial=0)), float(rel.max(initial=0))
