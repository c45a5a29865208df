"""Spot float tensors whose bytes are in the other byte order than the file's header says.

Weights in their true byte order are almost never NaN, infinite or subnormal.
Read in the wrong order, an F32's exponent comes from a mantissa byte, so
about one value in a hundred lands on those classes, and reading the same
bytes swapped back makes them vanish.  A tensor is flagged when its "odd"
values are many and the swapped reading has far fewer: random bits (odd in
both orders) and deliberate special values are not flagged.
"""

from __future__ import annotations

from pyscan import native
from pyscan.parser.model import ModelFile, TensorInfo

MIN_ODD_SHARE = 1 / 1000  # fewer odd values than this is normal data
CLEAR_WIN = 16  # the swapped reading must have at least this many times fewer odd values


def odd_values(counts: dict[str, int]) -> int:
    return counts["nan"] + counts["inf"] + counts["subnormal"]


def looks_byte_swapped(gguf: ModelFile, info: TensorInfo, counts: dict[str, int]) -> bool:
    """Whether the tensor reads far more plausibly in the other byte order (costs a rescan if suspicious)."""
    odd = odd_values(counts)
    if info.n_elements < 16 or odd < max(4, info.n_elements * MIN_ODD_SHARE):
        return False
    swapped = native.new_counts()
    native.count_into(
        swapped,
        native.KERNEL_DTYPES[info.type_name],
        gguf.mapping.address + info.offset,
        info.n_elements,
        not gguf.swap,
        path=gguf.path,
    )
    return odd_values(native.counts_as_dict(swapped)) * CLEAR_WIN < odd
