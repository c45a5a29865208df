"""Per-token measures from two models' logits, and the statistics llama-perplexity reports over them.

Everything is in float64 over the whole vocabulary, without clamping or a floor.  With
lse = log sum exp(x) (one exp pass per model and row) the measures are

    NLL = lse - x[target]        KLD = sum p_b * (x_b - x_q) - (lse_b - lse_q),   p_b = exp(x_b - lse_b)

which is sum p_b (log p_b - log p_q) rewritten so that a candidate costs two exp passes, not three
log-softmax ones (2.6 s -> ~1 s per chunk of 255 x 262,144 here).  Identical rows still give
exactly 0: x_b - x_q is 0 and both lse come from the same code on the same numbers.  Rows are
reduced in small blocks, and float32 logits are widened inside each ufunc, so a chunk never
exists in float64 at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

BLOCK_ROWS = 16  # 16 x 262,144 x 8 bytes = 32 MiB per float64 temporary

Floats = npt.NDArray[np.float64]


def logsumexp(rows: npt.NDArray[Any], top: npt.NDArray[np.intp], scratch: Floats) -> Floats:
    """log sum exp of each row, in float64 (rows float32 or float64; top: each row's argmax; scratch: rows' shape)."""
    peak = rows[np.arange(len(rows)), top].astype(np.float64)
    np.subtract(rows, peak[:, None], out=scratch)
    np.exp(scratch, out=scratch)
    result: Floats = peak + np.log(scratch.sum(axis=1))
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


@dataclass
class BaseRows:
    """What one chunk of base logits gives once, for every candidate: each row's argmax and log sum exp."""

    top: npt.NDArray[np.intp]
    lse: Floats

    def rows(self, which: slice) -> BaseRows:
        return BaseRows(self.top[which], self.lse[which])


def single(logits: npt.NDArray[np.float32], targets: npt.NDArray[np.int64], into: TokenMeasures) -> BaseRows:
    """NLL of the correct next token, for the base's rows; what pair() needs of them."""
    top = np.argmax(logits, axis=1)
    lse = np.empty(len(targets))
    scratch = np.empty((min(BLOCK_ROWS, len(targets)), logits.shape[1]))
    for start in range(0, len(targets), BLOCK_ROWS):
        block = slice(start, start + BLOCK_ROWS)
        lse[block] = logsumexp(logits[block], top[block], scratch[: len(top[block])])
    into.nll.append(lse - logits[np.arange(len(targets)), targets])
    return BaseRows(top, lse)


def pair(
    base: npt.NDArray[np.float32],
    known: BaseRows,
    candidate: npt.NDArray[np.float32],
    targets: npt.NDArray[np.int64],
    into: PairMeasures,
    candidate_tokens: TokenMeasures,
) -> None:
    """KL(base || candidate), Δp of the correct token and same-top-token, and the candidate's NLL, for one chunk."""
    scratch = np.empty((min(BLOCK_ROWS, len(targets)), base.shape[1]))
    diff = np.empty_like(scratch)
    for start in range(0, len(targets), BLOCK_ROWS):
        block = slice(start, start + BLOCK_ROWS)
        b, q, t = base[block], candidate[block], targets[block]
        n, rows = len(t), np.arange(len(t))
        top_q = np.argmax(q, axis=1)
        lse_b, lse_q = known.lse[block], logsumexp(q, top_q, scratch[:n])
        p_b = np.exp(np.subtract(b, lse_b[:, None], out=scratch[:n]), out=scratch[:n])
        np.subtract(b, q, out=diff[:n], dtype=np.float64)  # widened first: 0 exactly where b == q
        into.kld.append(np.einsum("ij,ij->i", p_b, diff[:n]) - (lse_b - lse_q))
        nll_q = lse_q - q[rows, t]
        candidate_tokens.nll.append(nll_q)  # the same numbers single() would give, one pass fewer
        into.dp.append(np.exp(-nll_q) - np.exp(-(lse_b - b[rows, t])))
        into.same_top.append(known.top[block] == top_q)


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
        "ppl": _exp(float(nll_q.mean())),
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
    return _exp(float(measures.nll_all().mean()))


def _exp(x: float) -> float:
    """e**x, inf past float64's range, where math.exp raises (a mean NLL over ~709.8: a broken model)."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf
