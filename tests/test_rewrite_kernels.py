"""Every rewrite mode on every kernel path, against numpy / ml_dtypes oracles."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import pytest
from oracles import F32_SPECIALS, change_stats, f32_test_words, fake_quant, fp16_round_trip, keep_mantissa

from pyscan import native
from pyscan.rewrite import parse_mode
from pyscan.rewrite.modes import RewriteMode


def rewrite(
    mode: RewriteMode,
    words: np.ndarray[Any, Any],
    offset: int = 0,
    big_endian: bool = False,
    row_len: int | None = None,
    where: str = "copy",
) -> tuple[np.ndarray[Any, Any], tuple[int, float, float]]:
    """Run mode over words stored `offset` bytes into a buffer; where = copy | in-place | dry."""
    stored = words.byteswap() if big_endian else words
    source = np.zeros(stored.nbytes + offset + 8, dtype=np.uint8)
    source[offset : offset + stored.nbytes] = stored.view(np.uint8)
    target = np.full_like(source, 0xA5)
    src = source.ctypes.data + offset
    dst = {"copy": target.ctypes.data + offset, "in-place": src, "dry": None}[where]
    acc = native.new_change_stats()
    mode.run(acc, src, dst, words.size, row_len or max(words.size, 1), big_endian)
    result_bytes = {"copy": target, "in-place": source, "dry": source}[where][offset : offset + stored.nbytes]
    result = result_bytes.copy().view(">u4" if big_endian else "<u4").astype(np.uint32)
    return result, (int(acc.changed), float(acc.max_abs_error), float(acc.max_rel_error))


def assert_same_words(got: np.ndarray[Any, Any], want: np.ndarray[Any, Any]) -> None:
    """Bit-identical, except that a NaN only has to stay a NaN."""
    got_nan, want_nan = np.isnan(got.view(np.float32)), np.isnan(want.view(np.float32))
    np.testing.assert_array_equal(got_nan, want_nan)
    mismatch = np.flatnonzero((got != want) & ~want_nan)
    assert mismatch.size == 0, [
        (hex(w), hex(g), hex(o))
        for w, g, o in zip(want[mismatch[:5]], got[mismatch[:5]], want[mismatch[:5]], strict=True)
    ]


MANTISSA_MODES = [
    ("truncate", "bf16"),
    ("round", "bf16"),
    *[(k, f"m{n}") for k in ("truncate", "round") for n in (0, 1, 4, 10, 16, 22, 23)],
]


def expected(mode: RewriteMode, words: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if mode.target == "fp16":
        return fp16_round_trip(words, mode.kind == "truncate")
    keep = 7 if mode.target == "bf16" else int(mode.target[1:])
    return keep_mantissa(words, keep, mode.kind == "round")


WORDS = np.concatenate([np.tile(F32_SPECIALS, 2), f32_test_words(50_000, seed=11)])


@pytest.mark.parametrize(("kind", "target"), [*MANTISSA_MODES, ("truncate", "fp16"), ("round", "fp16")])
def test_mode_matches_float64_oracle(isa: str, kind: str, target: str) -> None:
    mode = parse_mode(**{kind: target})
    assert mode is not None
    want = expected(mode, WORDS)
    for big_endian in (False, True):
        got, stats = rewrite(mode, WORDS, offset=1, big_endian=big_endian)
        assert_same_words(got, want)
        assert stats == change_stats(WORDS, got)


def nan_classes(seed: int = 7) -> np.ndarray[Any, Any]:
    """NaNs of every class, both signs: payload only in the low 13 / 16 bits, only in the high bits,
    signaling, quiet, all ones, and random payloads."""
    rng = np.random.default_rng(seed)
    payloads = np.array(
        [1, 0x1FFF, 0x2000, 0xFFFF, 0x10000, 0x3FFFFF, 0x3FE000, 0x400000, 0x400001, 0x7FFFFF, 0x7FE000, 0x401FFF],
        dtype=np.uint32,
    )
    random = rng.integers(1, 1 << 23, size=500, dtype=np.uint32)
    payload = np.concatenate([payloads, random, (random & 0x1FFF) | 1, (random & 0x7FE000) | 0x2000])
    return np.concatenate([0x7F800000 | payload, 0xFF800000 | payload]).astype(np.uint32)


NANS = nan_classes()


def test_round_bf16_is_ml_dtypes_bit_for_bit(isa: str) -> None:
    words = np.concatenate([WORDS, NANS])
    x = words.view(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        reference = x.astype(ml_dtypes.bfloat16).astype(np.float32).view(np.uint32)
    for big_endian in (False, True):
        rounded, _ = rewrite(RewriteMode("round", "bf16"), words, offset=1, big_endian=big_endian)
        np.testing.assert_array_equal(rounded, reference)  # exact bits, NaNs included (sign | 0x7FC00000)


def test_truncate_bf16_is_masking_with_the_quiet_bit(isa: str) -> None:
    words = np.concatenate([WORDS, NANS])
    nan = np.isnan(words.view(np.float32))
    truncated, _ = rewrite(RewriteMode("truncate", "bf16"), words)
    reference = np.where(nan, (words & 0xFFFF0000) | 0x00400000, words & 0xFFFF0000)
    np.testing.assert_array_equal(truncated, reference)  # exact bits, NaNs included
    # The NaN whose payload sits only in the low bits stays a NaN (plain masking would make it +Inf).
    nan_low, _ = rewrite(RewriteMode("truncate", "bf16"), np.array([0x7F800001, 0xFF800001], dtype=np.uint32))
    assert list(nan_low) == [0x7FC00000, 0xFFC00000]


def test_round_fp16_is_numpy_float16(isa: str) -> None:
    words = np.concatenate([WORDS, NANS])
    x = words.view(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        want = x.astype(np.float16).astype(np.float32).view(np.uint32)
    got, _ = rewrite(RewriteMode("round", "fp16"), words)
    np.testing.assert_array_equal(got, want)  # exact bits, NaNs included


def every_fp16_neighbourhood() -> np.ndarray[Any, Any]:
    """Every one of the 65,536 16-bit patterns as an FP16 value widened to F32, the F32 words just around
    the tie above each one, and every pattern as the high half of an F32 word (low half 0, 0x1000, 0xFFFF)."""
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    exact = halves.view(np.float16).astype(np.float32).view(np.uint32)
    finite = exact[(exact & 0x7F800000) != 0x7F800000]
    mid = finite + np.uint32(0x1000)  # the tie above each normal FP16 value (in F32 bits)
    around = np.concatenate([mid - 1, mid, mid + 1])
    high = halves.astype(np.uint32) << 16
    return np.concatenate([exact, around, high, high | 0x1000, high | 0xFFFF]).astype(np.uint32)


@pytest.mark.parametrize("toward_zero", [False, True], ids=["round", "truncate"])
def test_fp16_every_16_bit_pattern_and_nan_bit_for_bit(isa: str, toward_zero: bool) -> None:
    words = np.concatenate([every_fp16_neighbourhood(), NANS, WORDS])
    want = fp16_round_trip(words, toward_zero)  # numpy float16, NaNs included
    mode = RewriteMode("truncate" if toward_zero else "round", "fp16")
    for big_endian in (False, True):
        got, stats = rewrite(mode, words, offset=3, big_endian=big_endian)
        np.testing.assert_array_equal(got, want)  # exact bits, NaNs included
        assert stats == change_stats(words, got)


def test_fp16_nan_rule_is_numpys() -> None:
    """The cases from issue 15, against numpy alone: the rule the kernels implement."""
    words = np.array([0x7F800001, 0x7FBFFFFF, 0xFF800001, 0x7FC00001], dtype=np.uint32)
    with np.errstate(invalid="ignore"):
        back = words.view(np.float32).astype(np.float16).astype(np.float32).view(np.uint32)
    assert [hex(v) for v in back] == ["0x7f802000", "0x7fbfe000", "0xff802000", "0x7fc00000"]


@pytest.mark.parametrize("toward_zero", [False, True], ids=["round", "truncate"])
def test_fp16_past_the_block_of_2_24_words(isa: str, toward_zero: bool) -> None:
    words = f32_test_words((1 << 24) + 37, seed=12)
    want = fp16_round_trip(words, toward_zero)
    got, stats = rewrite(RewriteMode("truncate" if toward_zero else "round", "fp16"), words, offset=1)
    np.testing.assert_array_equal(got, want)
    assert stats == change_stats(words, got)


@pytest.mark.parametrize(("target", "qmax"), [("int8", 127), ("int4", 7)])
def test_fake_quant_row_lengths_1_to_130_unaligned(isa: str, target: str, qmax: int) -> None:
    rng = np.random.default_rng(qmax)
    for row_len in range(1, 131):
        magnitude = rng.choice(np.array([1e-40, 1.0, 1e30]), size=row_len * 3)
        x = (rng.normal(0, 0.02, size=row_len * 3) * magnitude).astype(np.float32)
        x[rng.integers(0, x.size)] = rng.choice(np.array([np.nan, np.inf, -np.inf, -0.0, 0.0]))
        x[x.size // 2] = -1e-9  # rounds to -0 in a group with a large maximum
        words = x.view(np.uint32)
        group = None if row_len % 3 else max(1, row_len // 3)
        mode = RewriteMode("fake-quant", target, group)
        want = fake_quant(x, row_len, group or row_len, qmax).view(np.uint32)
        for offset, where in ((0, "copy"), (1, "in-place"), (3, "dry")):
            got, stats = rewrite(mode, words, offset, bool(row_len % 2), row_len, where)
            if where != "dry":
                np.testing.assert_array_equal(got, want, err_msg=f"row_len {row_len} {where}")
            assert stats == change_stats(words, want), (row_len, where)


@pytest.mark.parametrize(
    ("kind", "target"), [("truncate", "bf16"), ("round", "m3"), ("round", "fp16"), ("truncate", "fp16")]
)
def test_lengths_0_to_130_unaligned_in_place_and_dry(isa: str, kind: str, target: str) -> None:
    mode = parse_mode(**{kind: target})
    assert mode is not None
    for n in range(131):
        words = WORDS[n : 2 * n]
        want = expected(mode, words)
        for offset in (0, 3):
            for where in ("copy", "in-place"):
                got, stats = rewrite(mode, words, offset, big_endian=bool(n % 2), where=where)
                assert_same_words(got, want)
                assert stats == change_stats(words, got), (n, offset, where)
            untouched, dry_stats = rewrite(mode, words, offset, where="dry")
            np.testing.assert_array_equal(untouched, words)
            assert dry_stats == stats  # a dry run reports exactly what a real one changes


@pytest.mark.parametrize(("target", "qmax"), [("int8", 127), ("int4", 7)])
@pytest.mark.parametrize(("row_len", "group"), [(64, None), (96, 32), (100, 30), (7, None), (1, None)])
def test_fake_quant_matches_numpy(isa: str, target: str, qmax: int, row_len: int, group: int | None) -> None:
    rng = np.random.default_rng(row_len)
    x = rng.normal(0, 0.02, size=row_len * 9).astype(np.float32)
    x[5] = np.nan
    x[min(17, x.size - 1)] = np.inf
    x[row_len : 2 * row_len] = 0  # an all-zero row stays as it is
    words = x.view(np.uint32)
    mode = RewriteMode("fake-quant", target, group)
    want = fake_quant(x, row_len, group or row_len, qmax).view(np.uint32)
    for big_endian in (False, True):
        got, stats = rewrite(mode, words, offset=2, big_endian=big_endian, row_len=row_len)
        assert_same_words(got, want)
        assert stats == change_stats(words, got)


@pytest.mark.parametrize(
    "mode",
    [
        RewriteMode("truncate", "bf16"),
        RewriteMode("round", "bf16"),
        RewriteMode("round", "m2"),
        RewriteMode("truncate", "fp16"),
        RewriteMode("round", "fp16"),
        RewriteMode("fake-quant", "int8"),
        RewriteMode("fake-quant", "int4", 16),
    ],
    ids=str,
)
def test_every_mode_is_idempotent(isa: str, mode: RewriteMode) -> None:
    words = (
        f32_test_words(64 * 50, seed=5)
        if not mode.is_fake_quant
        else (np.random.default_rng(1).normal(0, 1, 64 * 50).astype(np.float32).view(np.uint32))
    )
    once, _ = rewrite(mode, words, row_len=64)
    twice, stats = rewrite(mode, once, row_len=64)
    np.testing.assert_array_equal(twice, once)
    assert stats[0] == 0


def test_bad_mode_strings_are_usage_errors() -> None:
    from pyscan.errors import PyscanError

    for kwargs in (
        {"truncate": "m24"},
        {"truncate": "m\u0667"},  # an Arabic-Indic 7: only ASCII digits name a mantissa width
        {"round": "fp8"},
        {"fake_quant": "int3"},
        {"truncate": "bf16", "round": "bf16"},
        {"group_size": 4},
        {"fake_quant": "int8", "group_size": 0},
    ):
        with pytest.raises(PyscanError):
            parse_mode(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("qmax", [1, 2, 7, 127, 128])
def test_fake_quant_exact_ties_and_extreme_scales(isa: str, qmax: int) -> None:
    """Values exactly on q + 1/2 ties of the scale and one ulp either side; scales from 2^-126 to 2^127.

    Each row of 64 holds qmax * s (so its scale is exactly the BF16 value s), then ties and neighbours.
    A path that multiplies by 1 / s instead of dividing must still round each of them as x / s does.
    """
    rng = np.random.default_rng(qmax)
    exponents = np.concatenate([rng.integers(-126, 120, size=40), [-126, -125, 125, 126, 127]])
    scales = (np.ldexp(1.0, exponents) * (1 + rng.integers(0, 128, size=exponents.size) / 128)).astype(np.float32)
    with np.errstate(over="ignore"):
        scales = scales[np.isfinite(scales * np.float32(qmax))]
    rows = []
    for s in scales:
        k = rng.integers(-qmax, qmax, size=21).astype(np.float32) + np.float32(0.5)
        ties = k * s  # exact: 9 + 8 significant bits
        row = np.concatenate(
            [
                [np.float32(qmax) * s],
                ties,
                np.nextafter(ties, np.float32(np.inf)),
                np.nextafter(ties, np.float32(-np.inf)),
            ]
        ).astype(np.float32)
        rows.append(row)
    x = np.concatenate(rows)
    words = x.view(np.uint32)
    want = fake_quant(x, 64, 64, qmax).view(np.uint32)
    assert np.count_nonzero(want != words) > x.size // 4  # the rows do get quantized
    for big_endian in (False, True):
        stored = words.byteswap() if big_endian else words
        source = stored.copy()
        target = np.zeros_like(source)
        acc = native.new_change_stats()
        native.fake_quant_into(acc, source.ctypes.data, target.ctypes.data, x.size // 64, 64, 64, qmax, big_endian)
        got = target.byteswap() if big_endian else target
        assert_same_words(got, want)
        assert (int(acc.changed), float(acc.max_abs_error), float(acc.max_rel_error)) == change_stats(words, got)


def skipped_groups_oracle(x: np.ndarray[Any, Any], row_len: int, group: int, qmax: int) -> int:
    """Groups with a non-zero finite value whose BF16 scale is subnormal or whose qmax * s overflows (numpy)."""
    count = 0
    for row in x.reshape(-1, row_len):
        for start in range(0, row_len, group):
            g = row[start : start + group]
            finite = g[np.isfinite(g)]
            absmax = np.float32(np.abs(finite).max()) if finite.size else np.float32(0)
            scale = (absmax / np.float32(qmax)).astype(ml_dtypes.bfloat16).astype(np.float32)
            with np.errstate(over="ignore"):
                top = scale * np.float32(qmax)
            count += bool(absmax != 0 and not (scale >= np.finfo(np.float32).tiny and np.isfinite(top)))
    return count


@pytest.mark.parametrize(("qmax", "group"), [(127, 16), (7, 5), (7, 64)])
def test_fake_quant_counts_the_groups_it_leaves_unchanged(isa: str, qmax: int, group: int) -> None:
    """Tiny groups (subnormal scale), huge ones (qmax * s overflows), all-zero, NaN-only and ordinary ones, with a
    short last group per row: the count of groups left unchanged is numpy's, and their words are untouched."""
    rng = np.random.default_rng(group)
    row_len, pieces = 64 + 7, []
    kinds = [1e-40, 1e-39, 3e-38, 1e38, 3.4e38, 0.0, 1.0, float("nan")]
    for _ in range(12):
        row = np.concatenate([rng.choice(kinds) * rng.uniform(-1, 1, size=group) for _ in range(row_len // group + 1)])
        pieces.append(row[:row_len].astype(np.float32))
    x = np.concatenate(pieces)
    want = skipped_groups_oracle(x, row_len, group, qmax)
    assert want > 0  # the data does hold such groups
    words = x.view(np.uint32)
    target = np.zeros_like(words)
    acc = native.new_change_stats()
    native.fake_quant_into(acc, words.ctypes.data, target.ctypes.data, x.size // row_len, row_len, group, qmax, False)
    assert int(acc.skipped_groups) == want
    assert_same_words(target, fake_quant(x, row_len, group, qmax).view(np.uint32))
    dry = native.new_change_stats()
    native.fake_quant_into(dry, words.ctypes.data, None, x.size // row_len, row_len, group, qmax, False)
    assert int(dry.skipped_groups) == want
