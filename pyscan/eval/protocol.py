"""llama-perplexity's chunking, so that pyscan's figures compare with the community's.

The text is tokenized once (with BOS where the model adds one) and cut into chunks of ctx tokens;
each chunk's first token is replaced by BOS, and only its second half is scored: the logits at
positions ctx/2 .. ctx-2 predict tokens ctx/2+1 .. ctx-1.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_CTX = 8  # a chunk must score at least a few tokens


@dataclass(frozen=True)
class Chunk:
    tokens: list[int]  # what the engine evaluates (first one BOS)
    targets: list[int]  # the tokens the scored logits predict

    @property
    def n_scored(self) -> int:
        return len(self.targets)


def chunks(tokens: list[int], ctx: int, bos: int, limit: int | None = None) -> list[Chunk]:
    count = len(tokens) // ctx
    if limit is not None:
        count = min(count, limit)
    result = []
    for k in range(count):
        window = list(tokens[k * ctx : (k + 1) * ctx])
        window[0] = bos
        result.append(Chunk(window, window[ctx // 2 + 1 :]))
    return result
