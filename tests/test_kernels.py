"""Every kernel path this CPU has, against the numpy / ml_dtypes oracles in oracles.py."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from oracles import COUNTS, F32_SPECIALS, f32_test_words

from pyscan import native

ISAS = native.available_isas()
DTYPES = {"F32": (native.F32, np.uint32), "F16": (native.F16, np.uint16), "BF16": (native.BF16, np.uint16)}


def kernel_counts(
    isa: str, type_name: str, words: np.ndarray[Any, Any], offset: int = 0, big_endian: bool = False
) -> dict[str, int]:
    """Run one kernel over words stored `offset` bytes into a buffer, in the given byte order."""
    dtype, _ = DTYPES[type_name]
    stored = words.byteswap() if big_endian else words
    buffer = np.zeros(stored.nbytes + offset + 8, dtype=np.uint8)
    buffer[offset : offset + stored.nbytes] = stored.view(np.uint8)
    acc = native.new_counts()
    native.count_into(acc, dtype, buffer.ctypes.data + offset, words.size, big_endian)
    counts = native.counts_as_dict(acc)
    return {key: counts[key] for key in COUNTS[type_name](words[:0])}


def all_halves() -> np.ndarray[Any, Any]:
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


def test_every_isa_the_cpu_has_is_built_and_available() -> None:
    flags = Path("/proc/cpuinfo").read_text() if platform.system() == "Linux" else ""
    expected = {"scalar"}
    if platform.machine() in ("x86_64", "AMD64"):
        expected |= (
            {"sse2"} | ({"avx2"} if " avx2" in flags else set()) | ({"avx512"} if " avx512f" in flags else set())
        )
    if platform.machine() in ("aarch64", "arm64"):
        expected.add("neon")
    assert expected <= set(ISAS)


def test_f32_special_values(isa: str) -> None:
    words = np.tile(F32_SPECIALS, 3)  # long enough to go through the vector loop too
    for big_endian in (False, True):
        assert kernel_counts(isa, "F32", words, big_endian=big_endian) == COUNTS["F32"](words)


@pytest.mark.parametrize("type_name", ["F16", "BF16"])
def test_every_16_bit_pattern(isa: str, type_name: str) -> None:
    words = all_halves()
    for big_endian in (False, True):
        assert kernel_counts(isa, type_name, words, big_endian=big_endian) == COUNTS[type_name](words)


@pytest.mark.parametrize("type_name", ["F32", "F16", "BF16"])
def test_lengths_0_to_130_at_unaligned_starts(isa: str, type_name: str) -> None:
    _, word_type = DTYPES[type_name]
    pool = f32_test_words(4096, seed=1)
    source = pool if word_type == np.uint32 else pool.view(np.uint16)
    oracle = COUNTS[type_name]
    for n in range(131):
        words = source[n : 2 * n]
        for offset in (0, 1, 2, 3, 5):
            for big_endian in (False, True):
                got = kernel_counts(isa, type_name, words, offset, big_endian)
                assert got == oracle(words), (n, offset, big_endian)


def test_f32_random_words_each_field(isa: str) -> None:
    words = f32_test_words(200_003, seed=2)
    expected = COUNTS["F32"](words)
    got = kernel_counts(isa, "F32", words, offset=3)
    assert got == expected
    # The data must exercise every counter, or this test could not catch a broken one.
    assert all(v > 0 for v in expected.values())


def test_f32_past_the_lane_counter_flush(isa: str) -> None:
    """More than one block of 2^24 words: the 32-bit lane counters are flushed in between."""
    words = f32_test_words((1 << 24) + 37, seed=3)
    assert kernel_counts(isa, "F32", words, offset=1) == COUNTS["F32"](words)


def test_counts_add_into_the_accumulator(isa: str) -> None:
    words = f32_test_words(1000, seed=4)
    acc = native.new_counts()
    native.count_into(acc, native.F32, words.ctypes.data, 600, False)
    native.count_into(acc, native.F32, words.ctypes.data + 600 * 4, 400, False)
    got = native.counts_as_dict(acc)
    assert {k: got[k] for k in COUNTS["F32"](words)} == COUNTS["F32"](words)


def test_unavailable_or_unknown_isa_is_a_clear_error() -> None:
    from pyscan.errors import PyscanError

    with pytest.raises(PyscanError, match="not a kernel path"):
        native.select_isa("mmx")
    missing = [name for name in native.ISA_NAMES if name not in ISAS]
    for name in missing:
        with pytest.raises(PyscanError, match="not available"):
            native.select_isa(name)
