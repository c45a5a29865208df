"""How many explicit mantissa bits the values of a float tensor use.

A value uses k bits when its mantissa field, read from the top, ends after
bit k: k = width - (trailing zero bits of the field), and 0 for an empty
field (powers of two and zero).  A BF16-exact F32 value uses at most 7, an
FP16 one at most 10.  NaN and infinities have no precision to speak of and
are left out.  Counting runs over the file's zero-copy view, chunk by chunk,
so memory stays bounded whatever the tensor's size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyscan.parser.model import ModelFile, TensorInfo

CHUNK_ELEMENTS = 1 << 16  # small enough that a chunk's temporaries stay in cache (2-3x faster than 1 << 20)

# type -> (word bytes, explicit mantissa bits): the exponent field sits just above the mantissa.
FORMATS: dict[str, tuple[int, int]] = {"F32": (4, 23), "F16": (2, 10), "BF16": (2, 7)}
EXPONENT_BITS = {"F32": 8, "F16": 5, "BF16": 8}

Array = np.ndarray[Any, Any]


def bit_histogram(words: Array, type_name: str) -> list[int]:
    """Counts of values using 0..width mantissa bits, for native-order unsigned words of the type."""
    _, width = FORMATS[type_name]
    mantissa_mask = np.uint32((1 << width) - 1)
    exponent_mask = np.uint32(((1 << EXPONENT_BITS[type_name]) - 1) << width)
    # Counted by the float32 exponent of each mantissa's lowest set bit (see below): 256 bins.
    by_exponent = np.zeros(256, dtype=np.int64)
    for start in range(0, words.size, CHUNK_ELEMENTS):
        w = words[start : start + CHUNK_ELEMENTS].astype(np.uint32, copy=False)
        mantissa = w & mantissa_mask
        # m & -m keeps the lowest set bit: a power of two 2**j (j < 23), exact in float32, whose
        # exponent field is 127 + j; an empty mantissa gives 0.0, exponent field 0.
        lowest = mantissa & (np.uint32(0) - mantissa)
        exponent = lowest.astype(np.float32).view(np.uint32) >> np.uint32(23)
        counts = np.bincount(exponent, minlength=256)
        special = (w & exponent_mask) == exponent_mask  # NaN and infinities: rare, so subtracted afterwards
        if special.any():
            counts -= np.bincount(exponent[special], minlength=256)
        by_exponent += counts
    # k bits used <=> the lowest set bit is bit width - k <=> exponent field 127 + width - k.
    return [int(by_exponent[0])] + [int(by_exponent[127 + width - k]) for k in range(1, width + 1)]


def tensor_histogram(gguf: ModelFile, info: TensorInfo) -> list[int]:
    """The mantissa-bits histogram of an F32, F16 or BF16 tensor of an open file."""
    if info.n_elements == 0:  # nothing to count; and to_numpy cannot reshape e.g. a [2**62, 0] tensor
        return [0] * (FORMATS[info.type_name][1] + 1)
    return bit_histogram(gguf.words(info), info.type_name)


SMALL_TENSOR_ELEMENTS = 1 << 14  # below this, tensors are counted together: numpy's per-call cost dominates
SMALL_BATCH_ELEMENTS = 1 << 22  # small tensors counted together at most this many values at a time


def type_histogram(gguf: ModelFile, tensors: list[TensorInfo]) -> list[int]:
    """The histogram of all these tensors of one type together (sum of tensor_histogram, computed faster)."""
    total = np.zeros(FORMATS[tensors[0].type_name][1] + 1, dtype=np.int64) if tensors else np.zeros(0, np.int64)
    small = [info for info in tensors if 0 < info.n_elements < SMALL_TENSOR_ELEMENTS]
    for info in tensors:
        if info.n_elements >= SMALL_TENSOR_ELEMENTS:
            total += tensor_histogram(gguf, info)
    # Small ones joined in batches of at most SMALL_BATCH_ELEMENTS: bounded memory, few numpy calls.
    start = 0
    while start < len(small):
        stop, elements = start, 0
        while stop < len(small) and (stop == start or elements + small[stop].n_elements <= SMALL_BATCH_ELEMENTS):
            elements += small[stop].n_elements
            stop += 1
        total += bit_histogram(gguf.joined_words(small[start:stop]), small[start].type_name)
        start = stop
    return [int(n) for n in total]
