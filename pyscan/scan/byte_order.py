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
ELEMENT_BYTES = {"F32": 4, "F16": 2, "BF16": 2}
FIRST_PREFIX = 1 << 14  # elements of the first swapped prefix; each next one is 4x larger
CLEAR_WIN = 16  # the swapped reading must have at least this many times fewer odd values


def odd_values(counts: dict[str, int]) -> int:
    return counts["nan"] + counts["inf"] + counts["subnormal"]


def looks_byte_swapped(gguf: ModelFile, info: TensorInfo, counts: dict[str, int]) -> bool:
    """Whether the tensor reads far more plausibly in the other byte order (costs a rescan if suspicious).

    The swapped reading is counted in growing prefixes and stops as soon as it has enough odd
    values to rule the tensor out: a prefix never has more than the whole tensor, so the answer
    is the same as a full rescan's.  Real F16 weights often pass the first test (their smallest
    values are FP16 subnormals), and read swapped they have odd values at once: the first prefix decides.
    """
    odd = odd_values(counts)
    if info.n_elements < 16 or odd < max(4, info.n_elements * MIN_ODD_SHARE):
        return False
    width = ELEMENT_BYTES[info.type_name]
    swapped = native.new_counts()
    done, step = 0, FIRST_PREFIX
    while done < info.n_elements:
        n = min(step, info.n_elements - done)
        native.count_into(
            swapped,
            native.KERNEL_DTYPES[info.type_name],
            gguf.mapping.address + info.offset + done * width,
            n,
            not gguf.swap,
            path=gguf.path,
        )
        if odd_values(native.counts_as_dict(swapped)) * CLEAR_WIN >= odd:
            return False
        done, step = done + n, step * 4
    return True  # the whole swapped reading has under 1/CLEAR_WIN of the odd values
