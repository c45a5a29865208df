"""Per-token measures from two models' logits, and the statistics llama-perplexity reports over them.

Log-softmax is taken in float64 over the whole vocabulary, without clamping or a floor: two
identical rows give a KL divergence of exactly 0.  Rows are reduced in small blocks, so a chunk
of 256 rows x 262,144 tokens never exists in float64 at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

BLOCK_ROWS = 16  # 16 x 262,144 x 8 bytes = 32 MiB per float64 temporary

Floats = npt.NDArray[np.float64]


def log_softmax(logits: npt.NDArray[Any]) -> Floats:
    x = logits.astype(np.float64)
    top = x.max(axis=1, keepdims=True)
    shifted = x - top
    result: Floats = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return result


@dataclass
class TokenMeasures:
    """Per scored token, appended chunk by chunk (a few numbers per token, never logits)."""

    nll: list[Floats] = field(default_factory=list)

    def nll_all(self) -> Floats:
        return np.concatenate(self.nll) if self.nll else np.zeros(0)


@dataclass
class PairMeasures:
    """What a candidate's logits say against the base's, per scored token."""

    kld: list[Floats] = field(default_factory=list)
    dp: list[Floats] = field(default_factory=list)
    same_top: list[npt.NDArray[np.bool_]] = field(default_factory=list)


def single(logits: npt.NDArray[np.float32], targets: npt.NDArray[np.int64], into: TokenMeasures) -> None:
    """NLL of the correct next token, for one model's rows."""
    for start in range(0, len(targets), BLOCK_ROWS):
        logp = log_softmax(logits[start : start + BLOCK_ROWS])
        rows = np.arange(len(logp))
        into.nll.append(-logp[rows, targets[start : start + BLOCK_ROWS]])


def pair(
    base: npt.NDArray[np.float32],
    candidate: npt.NDArray[np.float32],
    targets: npt.NDArray[np.int64],
    into: PairMeasures,
    candidate_tokens: TokenMeasures,
) -> None:
    """KL(base || candidate), Δp of the correct token and same-top-token, and the candidate's NLL, for one chunk."""
    for start in range(0, len(targets), BLOCK_ROWS):
        logp_b = log_softmax(base[start : start + BLOCK_ROWS])
        logp_q = log_softmax(candidate[start : start + BLOCK_ROWS])
        p_b = np.exp(logp_b)
        into.kld.append((p_b * (logp_b - logp_q)).sum(axis=1))
        rows, block = np.arange(len(logp_b)), targets[start : start + BLOCK_ROWS]
        candidate_tokens.nll.append(-logp_q[rows, block])  # the same numbers single() would give, one pass fewer
        into.dp.append(np.exp(logp_q[rows, block]) - p_b[rows, block])
        into.same_top.append(np.argmax(base[start : start + BLOCK_ROWS], axis=1)
                             == np.argmax(candidate[start : start + BLOCK_ROWS], axis=1))  # fmt: skip


def uncertainty(values: Floats) -> float:
    """The standard error of the mean, sqrt(var / (N - 1)), as llama-perplexity reports it."""
    return math.sqrt(float(values.var()) / (len(values) - 1)) if len(values) > 1 else math.nan


def summarize(base: TokenMeasures, candidate: TokenMeasures, measures: PairMeasures) -> dict[str, float]:
    nll_b, nll_q = base.nll_all(), candidate.nll_all()
    kld = np.concatenate(measures.kld)
    dp = np.concatenate(measures.dp)
    ratio = nll_q - nll_b
    percentiles = np.percentile(kld, [50, 90, 95, 99, 99.9])
    return {
        "ppl": math.exp(float(nll_q.mean())),
        "ln_ppl_ratio": float(ratio.mean()),
        "ln_ppl_ratio_uncertainty": uncertainty(ratio),
        "kld_mean": float(kld.mean()),
        "kld_uncertainty": uncertainty(kld),
        "kld_median": float(percentiles[0]),
        "kld_p90": float(percentiles[1]),
        "kld_p95": float(percentiles[2]),
        "kld_p99": float(percentiles[3]),
        "kld_p999": float(percentiles[4]),
        "kld_max": float(kld.max()),
        "mean_dp": float(dp.mean()),
        "rms_dp": math.sqrt(float((dp * dp).mean())),
        "same_top_p": float(np.concatenate(measures.same_top).mean()),
    }


def perplexity(measures: TokenMeasures) -> float:
    return math.exp(float(measures.nll_all().mean()))
