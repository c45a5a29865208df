"""Evaluate candidates against a base model, chunk by chunk, in engine processes.

Every model has its own engine process for the whole run.  For each chunk the base's logits are
computed once and compared with each candidate's as they arrive; then both are dropped.  Only a
few numbers per scored token outlive a chunk, so memory does not grow with the number of chunks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from pyscan.errors import PyscanError
from pyscan.eval.engine import Engine, engine_threads
from pyscan.eval.protocol import MIN_CTX, chunks


@dataclass
class EvalRequest:
    base: str
    candidates: Sequence[str]
    text: str
    text_name: str
    ctx: int = 512
    max_chunks: int | None = None
    threads: int | None = None
    prompts: Sequence[str] = ()
    n_tokens: int = 32
    on_chunk: Callable[[int, int], None] | None = field(default=None, repr=False)  # (done, total)


def evaluate(request: EvalRequest) -> dict[str, Any]:
    """The report as a JSON-ready dict: base, n_tokens_scored, ctx, candidates (see README)."""
    import numpy as np

    from pyscan.eval import metrics

    if request.ctx < MIN_CTX or request.ctx % 2:
        raise PyscanError(None, f"--ctx must be an even number of at least {MIN_CTX}", "usage")
    for path in (request.base, *request.candidates):
        if not os.path.isfile(path):
            raise PyscanError(path, "no such file", "io")
    threads = engine_threads(request.threads)
    with ExitStack() as stack:
        base = stack.enter_context(Engine(request.base, request.ctx, threads))
        others = [stack.enter_context(Engine(path, request.ctx, threads)) for path in request.candidates]
        for other in others:
            if other.n_vocab != base.n_vocab:
                raise PyscanError(
                    other.path, f"vocabulary of {other.n_vocab:,} tokens, but the base has {base.n_vocab:,}", "usage"
                )
        work = chunks(base.tokenize(request.text), request.ctx, base.bos, request.max_chunks)
        if not work:
            raise PyscanError(
                request.text_name, f"the text is too short for one chunk of {request.ctx} tokens (try a smaller --ctx)",
                "usage",
            )  # fmt: skip
        base_measures = metrics.TokenMeasures()
        measures = [(metrics.TokenMeasures(), metrics.PairMeasures()) for _ in others]
        for done, chunk in enumerate(work):
            targets = np.asarray(chunk.targets, dtype=np.int64)
            base_logits = base.score(chunk.tokens)
            metrics.single(base_logits, targets, base_measures)
            for engine, (single, paired) in zip(others, measures, strict=True):
                logits = engine.score(chunk.tokens)
                metrics.pair(base_logits, logits, targets, paired, single)
                del logits
            del base_logits
            if request.on_chunk:
                request.on_chunk(done + 1, len(work))
        outputs = [generations(base, others, prompt, request.n_tokens) for prompt in request.prompts]
    from pyscan.diff.compare import diff

    report_candidates = []
    for index, (path, (single, paired)) in enumerate(zip(request.candidates, measures, strict=True)):
        entry: dict[str, Any] = {"path": path, **metrics.summarize(base_measures, single, paired)}
        entry["weights_identical"] = diff(request.base, path).identical
        if request.prompts:
            entry["outputs"] = [output[index] for output in outputs]
            entry["outputs_identical"] = all(o["identical"] for o in entry["outputs"])
        report_candidates.append(entry)
    return {
        "base": {"path": request.base, "ppl": metrics.perplexity(base_measures)},
        "text": request.text_name,
        "ctx": request.ctx,
        "n_chunks": len(work),
        "n_tokens_scored": sum(chunk.n_scored for chunk in work),
        "candidates": report_candidates,
    }


def generations(base: Engine, others: list[Engine], prompt: str, n_tokens: int) -> list[dict[str, Any]]:
    """Per candidate: the base's and its greedy continuation of prompt, and where they first differ."""
    reference = base.generate(prompt, n_tokens)
    result = []
    for engine in others:
        mine = engine.generate(prompt, n_tokens)
        a, b = reference["tokens"], mine["tokens"]
        first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
        if first is None and len(a) != len(b):
            first = min(len(a), len(b))
        result.append(
            {"prompt": prompt, "identical": first is None, "first_difference": first,
             "base_text": reference["text"], "text": mine["text"]}
        )  # fmt: skip
    return result
