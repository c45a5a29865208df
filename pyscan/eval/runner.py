"""Evaluate candidates against a base model, chunk by chunk, in engine processes.

The base has its own engine process for the whole run; the candidates are evaluated ENGINES_AT_ONCE
at a time, each in its own process.  For each chunk the base's logits are computed once per group
and compared with each candidate's block by block as those arrive from its pipe; then they are
dropped.  Only a few numbers per scored token outlive a chunk, so memory grows neither with the
number of chunks nor with the number of candidates: an engine process holds ~0.6 GB at --ctx 512
with Gemma 3's 262,144-token vocabulary (its weights, llama.cpp's compute and logits buffers), and
when every candidate had one at once, that was the 0.6 GB per candidate.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from pyscan.errors import PyscanError
from pyscan.eval.engine import Engine, engine_threads
from pyscan.eval.protocol import MIN_CTX, Chunk, chunks
from pyscan.text import quote

ENGINES_AT_ONCE = 2  # candidate engines alive together; more groups cost one more base pass each


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


def evaluate(request: EvalRequest, write_candidates: Callable[[], None] | None = None) -> dict[str, Any]:
    """The report as a JSON-ready dict: base, n_tokens_scored, ctx, candidates (see README).

    write_candidates, when given, makes the candidate files once the base is loaded in its engine and
    the text is cut into chunks: an engine that cannot run, a text too short or a prompt too long for
    --ctx then writes nothing (experiment's variants).
    """

    from pyscan.eval import metrics

    if not request.candidates:
        raise PyscanError(None, "give at least one candidate model to compare with the base", "usage")
    if request.ctx < MIN_CTX or request.ctx % 2:
        raise PyscanError(None, f"--ctx must be an even number of at least {MIN_CTX}", "usage")
    check_files([request.base])
    if write_candidates is None:  # every file is checked before the first engine loads
        check_candidates(request)
    threads = engine_threads(request.threads)
    base_measures = metrics.TokenMeasures()
    measures = [(metrics.TokenMeasures(), metrics.PairMeasures()) for _ in request.candidates]
    outputs: list[list[dict[str, Any]]] = [[] for _ in request.prompts]
    groups = [range(i, min(i + ENGINES_AT_ONCE, len(request.candidates)))
              for i in range(0, len(request.candidates), ENGINES_AT_ONCE)]  # fmt: skip
    with Engine(request.base, request.ctx, threads) as base:
        check_prompts(base, request)
        work = chunks(base.tokenize(request.text), request.ctx, base.bos, request.max_chunks)
        if not work:
            raise PyscanError(
                request.text_name,
                f"the text is too short for one chunk of {request.ctx} tokens (try a smaller --ctx)",
                "usage",
            )  # fmt: skip
        if write_candidates is not None:
            write_candidates()
            check_candidates(request)
        for number, group in enumerate(groups):
            with ExitStack() as stack:
                others = [stack.enter_context(Engine(request.candidates[i], request.ctx, threads)) for i in group]
                for other in others:
                    if other.n_vocab != base.n_vocab:  # (what the engine has, where the files did not say)
                        raise vocabulary_size_error(other.path, other.n_vocab, base.n_vocab)
                # A later group recomputes the base's logits (the same numbers) rather than keep them all.
                into = base_measures if number == 0 else metrics.TokenMeasures()
                for done, chunk in enumerate(work):
                    score_chunk(base, others, [measures[i] for i in group], chunk, into)
                    if request.on_chunk:
                        request.on_chunk(number * len(work) + done + 1, len(groups) * len(work))
                for k, prompt in enumerate(request.prompts):
                    outputs[k] += generations(base, others, prompt, request.n_tokens)
    from pyscan.diff.compare import diff

    report_candidates = []
    for index, (path, (single, paired)) in enumerate(zip(request.candidates, measures, strict=True)):
        entry: dict[str, Any] = {"path": path, **metrics.summarize(base_measures, single, paired)}
        entry["weights_identical"] = diff(request.base, path).tensors_identical
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


def check_files(paths: Sequence[str]) -> None:
    for path in paths:
        if not os.path.isfile(path):
            missing = not os.path.exists(path)
            reason = "no such file" if missing else "is not a regular file"
            raise PyscanError(path, reason, "io" if missing else "usage")


def check_candidates(request: EvalRequest) -> None:
    """The candidates are files with the base's vocabulary (as far as the files say)."""
    check_files(request.candidates)
    check_vocabularies(request.base, request.candidates)


def check_prompts(base: Engine, request: EvalRequest) -> None:
    """Each --prompt and its continuation must fit in one context (the engine failed on a NULL pointer)."""
    for prompt in request.prompts:
        n_prompt = len(base.tokenize(prompt))
        if n_prompt + request.n_tokens > request.ctx:
            raise PyscanError(
                None,
                f"--prompt {quote(prompt, 60)} is {n_prompt:,} tokens: with --tokens {request.n_tokens} it needs "
                f"--ctx of at least {n_prompt + request.n_tokens} (it is {request.ctx})",
                "usage",
            )


def check_vocabularies(base: str, candidates: Sequence[str]) -> None:
    """Refuse a candidate whose tokenizer.ggml.tokens differ from the base's, before any engine starts:
    scored on the base's token ids, another tokenizer's model would look merely worse, or equal.
    A file without the list, or none we can read, is left to the engine (it compares the counts)."""
    from pyscan.parser import open_model
    from pyscan.parser.metadata import MetadataArray

    with ExitStack() as stack:
        lists: list[MetadataArray | None] = []
        for path in (base, *candidates):
            try:
                model = stack.enter_context(open_model(path, header_only=True))
            except PyscanError:
                lists.append(None)
                continue
            entry = model.metadata.get("tokenizer.ggml.tokens")
            lists.append(entry.value if entry is not None and isinstance(entry.value, MetadataArray) else None)
        ours = lists[0]
        for path, theirs in zip(candidates, lists[1:], strict=True):
            if ours is None or theirs is None or theirs.same_elements(ours):
                continue
            if theirs.count != ours.count:
                raise vocabulary_size_error(path, theirs.count, ours.count)
            raise PyscanError(path, "another vocabulary: its tokenizer.ggml.tokens differ from the base's", "usage")


def vocabulary_size_error(path: str, n_vocab: int, n_base: int) -> PyscanError:
    return PyscanError(path, f"vocabulary of {n_vocab:,} tokens, but the base has {n_base:,}", "usage")


def score_chunk(
    base: Engine, others: Sequence[Engine], measures: Sequence[tuple[Any, Any]], chunk: Chunk, base_measures: Any
) -> None:
    """One chunk: the base's logits whole, each candidate's block by block against them."""
    import numpy as np

    from pyscan.eval import metrics

    targets = np.asarray(chunk.targets, dtype=np.int64)
    base_logits = base.score(chunk.tokens)
    known = metrics.single(base_logits, targets, base_measures)
    for engine, (single, paired) in zip(others, measures, strict=True):
        for start, block in engine.score_blocks(chunk.tokens, metrics.BLOCK_ROWS):
            rows = slice(start, start + len(block))
            metrics.pair(base_logits[rows], known.rows(rows), block, targets[rows], paired, single)


def generations(base: Engine, others: Sequence[Engine], prompt: str, n_tokens: int) -> list[dict[str, Any]]:
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
