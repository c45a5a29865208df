"""Fake quantization through a real ggml block format: F32 rows to Q8_0 (Q4_0, ...) and back, by gguf.quants.

What llama-quantize would do to a tensor if it quantized it, as F32 again: gguf.quants.quantize
then gguf.quants.dequantize, so the values are those of gguf-py's reference code bit for bit.
The rewrite engine hands over whole rows; a row whose length is not a multiple of the 32-value
block is refused first (check_rows), as ggml itself refuses such a tensor in a block
type.  The int modes are idempotent by construction (a BF16 scale keeps q * s exact); a block
format's F16 scale is recomputed from dequantized values, so nothing guarantees it (it held on
every test here), and the engine's re-run check does not apply to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyscan.errors import PyscanError
from pyscan.text import quote

if TYPE_CHECKING:  # numpy and gguf load only when a block format runs: not at every start-up
    import numpy as np

    from pyscan.parser.model import TensorInfo

BLOCK_FORMATS = ("q8_0", "q4_0", "q4_1", "q5_0", "q5_1")  # the block types gguf.quants can quantize
BLOCK_SIZE = 32  # values per block in every one of them


def check_rows(path: str, targets: Sequence[TensorInfo], target: str) -> None:
    """Refuse a tensor whose rows cannot be cut into whole blocks (before anything is written)."""
    for info in targets:
        row_len = info.shape[0] if info.shape else 1
        if info.n_elements and row_len % BLOCK_SIZE:
            raise PyscanError(
                path,
                f"tensor {quote(info.name)} has rows of {row_len} values, not a multiple of {target}'s "
                f"{BLOCK_SIZE}-value blocks (leave it out with --exclude)",
                "usage",
            )


def round_trip(acc: Any, target: str, src: int, dst: int | None, n_words: int, row_len: int, swap: bool) -> None:
    """Rewrite n_words F32 words (whole 32-value blocks) from address src to dst through the block format.

    dst None is a dry run; dst == src stores only the words that changed (clean pages stay clean).
    What changed goes into acc (a pyscan_change_stats) as the C kernels count it.
    """
    import numpy as np
    from gguf import GGMLQuantizationType, quants

    from pyscan import native

    qtype = GGMLQuantizationType[target.upper()]
    order = ">f4" if swap else "<f4"
    old = np.frombuffer(native.ffi.buffer(native.ffi.cast("char *", src), 4 * n_words), dtype=order)
    values = old.astype(np.float32).reshape(-1, BLOCK_SIZE)  # blocks are independent
    with np.errstate(all="ignore"):  # NaN and infinities go through as gguf.quants makes them
        new = quants.dequantize(quants.quantize(values, qtype), qtype).astype(np.float32).reshape(-1)
    old_bits, new_bits = values.reshape(-1).view(np.uint32), new.view(np.uint32)
    changed = old_bits != new_bits
    _track(acc, values.reshape(-1), new, changed)
    if dst is None:
        return
    out = np.frombuffer(native.ffi.buffer(native.ffi.cast("char *", dst), 4 * n_words), dtype=order)
    if dst == src:
        np.copyto(out, new, where=changed)
    else:
        out[:] = new


def _track(acc: Any, old: np.ndarray[Any, Any], new: np.ndarray[Any, Any], changed: np.ndarray[Any, Any]) -> None:
    """Add to acc as pyscan_track does: errors in F32 over changed words whose old value is not NaN."""
    import numpy as np

    tracked = changed & ~np.isnan(old)
    acc.changed += int(changed.sum())
    if not tracked.any():
        return
    with np.errstate(all="ignore"):
        err = np.abs(new[tracked] - old[tracked])
        rel = err / np.abs(old[tracked])
    # NaN never wins a comparison in C (err > max is false), so it is left out here too.
    top_abs = float(np.max(err, initial=0.0, where=~np.isnan(err)))
    top_rel = float(np.max(rel, initial=0.0, where=~np.isnan(rel)))
    acc.max_abs_error = max(float(acc.max_abs_error), top_abs)
    acc.max_rel_error = max(float(acc.max_rel_error), top_rel)
