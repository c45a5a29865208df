"""What llama.cpp's convert_hf_to_gguf.py does to a source tensor, per architecture, as a Transform.

Only what the converter does is expected (anything else is a difference): Gemma-family
``*norm.weight`` tensors get +1 (GemmaModel, Gemma2Model, Gemma3Model); llama-family
``q_proj`` / ``k_proj`` weights and biases are permuted per head (LlamaModel.permute, K with the
KV head count); a 2-D tensor stored with its dimensions swapped is transposed (a square one is
tried transposed in compare.py when nothing else explains it: its shape cannot say).
"""

from __future__ import annotations

from pyscan.diff.relations import Transform
from pyscan.diff.sides import ModelFacts
from pyscan.parser.model import TensorInfo

NORM_SHIFT_ARCHS = {"gemma": 1.0, "gemma2": 1.0, "gemma3": 1.0}
PERMUTE_ARCHS = frozenset({"llama"})


def expected_transform(arch: str | None, source: TensorInfo, target: TensorInfo, facts: ModelFacts) -> Transform:
    shift = NORM_SHIFT_ARCHS.get(arch or "", 0.0) if source.name.endswith("norm.weight") else 0.0
    heads = None
    if arch in PERMUTE_ARCHS:
        if source.name.endswith(("q_proj.weight", "q_proj.bias")):
            heads = facts.n_head
        elif source.name.endswith(("k_proj.weight", "k_proj.bias")):
            heads = facts.n_kv_head
    transposed = len(source.shape) == 2 and source.shape != target.shape and source.shape[::-1] == target.shape
    if heads is not None:
        n = source.shape[-1] if source.shape else 1  # rows: the outermost dimension
        if n % (2 * heads) or transposed:
            heads = None  # no permutation the converter could have made: compared unpermuted
    return Transform(shift, heads, transposed)
