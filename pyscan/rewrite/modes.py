"""What a rewrite does to each F32 value: the modes behind --truncate, --round and --fake-quant.

  truncate/round bf16   keep 7 explicit mantissa bits (BF16), toward zero / to nearest even
  truncate/round fp16   through IEEE FP16 and back (its exponent range too: overflow, gradual underflow)
  truncate/round mN     keep N = 0..23 explicit mantissa bits, exponent range unchanged (bf16 = m7)
  fake-quant int8/int4  symmetric absmax quantization per row or per group of G values, dequantized
  fake-quant q8_0, ...  through a ggml block format and back (gguf.quants: q8_0, q4_0, q4_1, q5_0, q5_1)

Every mode but the block formats maps a NaN to a NaN and is idempotent: applying it twice changes
nothing more.  The block formats are gguf.quants' own arithmetic, whatever it does (see rewrite.blocks).
"""

from __future__ import annotations

import re
from typing import Any, Literal, NamedTuple

from pyscan import arguments, native
from pyscan.errors import PyscanError
from pyscan.rewrite.blocks import BLOCK_FORMATS

FAKE_QUANT_LEVELS = {"int8": 127, "int4": 7}  # symmetric: q in [-qmax, qmax]


RewriteKind = Literal["truncate", "round", "fake-quant"]


class RewriteMode(NamedTuple):
    kind: RewriteKind
    target: str  # "bf16", "fp16", "mN", "int8", "int4" or a block format ("q8_0", ...)
    group_size: int | None = None  # fake-quant only; None: one group per row

    def __str__(self) -> str:
        if self.is_block_format:
            return f"{self.kind} {self.target} (blocks of 32)"
        group = f" (groups of {self.group_size})" if self.group_size else (" (per row)" if self.is_fake_quant else "")
        return f"{self.kind} {self.target}{group}"

    @property
    def is_fake_quant(self) -> bool:
        return self.kind == "fake-quant"

    @property
    def is_block_format(self) -> bool:
        return self.target in BLOCK_FORMATS

    def run(
        self, acc: Any, src: int, dst: int | None, n_words: int, row_len: int, swap: bool, path: str | None = None
    ) -> None:
        """Apply the mode to n_words F32 words (whole rows of row_len for fake-quant) from src to dst."""
        if self.is_block_format:
            from pyscan.rewrite.blocks import round_trip

            round_trip(acc, self.target, src, dst, n_words, row_len, swap)
            return
        if self.is_fake_quant:
            qmax = FAKE_QUANT_LEVELS[self.target]
            native.fake_quant_into(acc, src, dst, n_words // row_len, row_len, self._group(row_len), qmax, swap, path)
            return
        op, param = self._transform_op()
        native.transform_into(acc, op, param, src, dst, n_words, swap, path)

    def kernel_op(self, row_len: int) -> Any:
        """The mode as native.rewrite_op's struct, for rows of row_len (not for the block formats)."""
        if self.is_block_format:
            raise ValueError(f"{self} runs in gguf.quants, not in a kernel")
        if self.is_fake_quant:
            qmax = FAKE_QUANT_LEVELS[self.target]
            return native.rewrite_op(native.lib.PYSCAN_OP_FAKE_QUANT, qmax, row_len, self._group(row_len))
        return native.rewrite_op(*self._transform_op())

    def _group(self, row_len: int) -> int:
        """Values per absmax group: group_size, or the row where there is none or it is longer (then
        the row is the group, and a size past the kernel's size_t never reaches it)."""
        return min(self.group_size or row_len, row_len)

    def _transform_op(self) -> tuple[int, int]:
        """(op, param) of pyscan_transform for a truncate or round mode."""
        if self.target == "fp16":
            op = native.lib.PYSCAN_OP_TRUNCATE_FP16 if self.kind == "truncate" else native.lib.PYSCAN_OP_ROUND_FP16
            return op, 0
        keep = 7 if self.target == "bf16" else int(self.target[1:])
        op = native.lib.PYSCAN_OP_TRUNCATE_MANTISSA if self.kind == "truncate" else native.lib.PYSCAN_OP_ROUND_MANTISSA
        return op, keep


def parse_target(kind: Literal["truncate", "round"], text: str) -> RewriteMode:
    target = text.strip().lower()
    match = re.fullmatch(r"m([0-9]{1,2})", target)  # ASCII: \d takes other scripts' digits
    if target in ("bf16", "fp16"):
        return RewriteMode(kind, target)
    if match and int(match.group(1)) <= 23:
        return RewriteMode(kind, f"m{int(match.group(1))}")  # m07 is m7: one name in reports and files
    raise PyscanError(None, f"--{kind} takes bf16, fp16 or mN with N = 0..23, not {text!r}", "usage")


def parse_mode(
    truncate: str | None = None, round: str | None = None, fake_quant: str | None = None, group_size: int | None = None
) -> RewriteMode:
    """The one mode asked for (``parse_mode(truncate="bf16")``); PyscanError for none, a bad or a conflicting one;
    TypeError for an argument of the wrong type (a group_size that is not an int)."""
    for name, value in (("truncate", truncate), ("round", round), ("fake_quant", fake_quant)):
        arguments.text(name, value)
    if group_size is not None:  # its range is checked below, as the command line's --group-size
        group_size = arguments.integer("group_size", group_size)
    mode = optional_mode(truncate, round, fake_quant, group_size)
    if mode is None:
        raise PyscanError(
            None, 'parse_mode() needs one of truncate=, round= or fake_quant= (e.g. truncate="bf16")', "usage"
        )
    return mode


def optional_mode(
    truncate: str | None = None, round: str | None = None, fake_quant: str | None = None, group_size: int | None = None
) -> RewriteMode | None:
    """The one mode the options ask for, or None (a scan); PyscanError for a bad or conflicting choice."""
    given = [
        name
        for name, value in (("truncate", truncate), ("round", round), ("fake-quant", fake_quant))
        if value is not None
    ]
    if len(given) > 1:
        raise PyscanError(None, f"choose one of --{' / --'.join(given)}", "usage")
    if group_size is not None and fake_quant is None:
        raise PyscanError(None, "--group-size goes with --fake-quant", "usage")
    if group_size is not None and group_size < 1:
        raise PyscanError(None, "--group-size must be at least 1", "usage")
    if truncate is not None:
        return parse_target("truncate", truncate)
    if round is not None:
        return parse_target("round", round)
    if fake_quant is not None:
        target = fake_quant.strip().lower()
        if target not in FAKE_QUANT_LEVELS and target not in BLOCK_FORMATS:
            raise PyscanError(
                None, f"--fake-quant takes int8, int4, {', '.join(BLOCK_FORMATS)}, not {fake_quant!r}", "usage"
            )
        if target in BLOCK_FORMATS and group_size is not None:
            raise PyscanError(None, f"--group-size goes with int8 or int4: {target} has 32-value blocks", "usage")
        return RewriteMode("fake-quant", fake_quant.strip().lower(), group_size)
    return None
