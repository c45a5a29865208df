"""The inference engine's own process: llama-cpp-python behind a pipe, so that its crash is not pyscan's.

Run as ``python -m pyscan.eval.child MODEL CTX THREADS``.  It reads pickled requests on stdin and
answers each with one pickled dict on its protocol pipe (the stdout it was given), followed, when
the dict has an ``array`` entry (dtype, shape), by that array's raw bytes in C order.  Everything llama.cpp
prints goes to stderr: file descriptor 1 is pointed there before the library loads.

Requests: ``("tokenize", text)``, ``("score", tokens)`` (the float32 logits of positions
len/2 .. len-2 of one chunk), ``("generate", prompt, n)`` (greedy), ``("quit",)``.
"""

from __future__ import annotations

import os
import pickle
import sys
from typing import IO, Any

# Test hook: a child that dies as a crashing engine would (an abort in C code), at "load" or "score".
ABORT_ENV = "PYSCAN_EVAL_TEST_ABORT"
UBATCH = 128  # tokens per decode: llama.cpp reserves logits for this many rows (64 halves it but runs ~2x slower)


def reply(channel: IO[bytes], header: dict[str, Any]) -> None:
    pickle.dump(header, channel, protocol=pickle.HIGHEST_PROTOCOL)
    channel.flush()


def score(model: Any, tokens: list[int], channel: IO[bytes]) -> None:
    """Evaluate one chunk from an empty cache; reply with the logits of its scored half (positions n/2 .. n-2).

    The chunk goes in as pieces of UBATCH tokens, each row streamed out as soon as it exists: llama.cpp
    then reserves logits for one piece, not for the whole chunk (256 MiB at --ctx 512 with a
    262,144-token vocabulary), and no copy of the scored rows is ever made here.
    """
    import numpy as np

    n, vocab = len(tokens), model.n_vocab()
    first, end = n // 2, n - 1
    model.reset()
    model._ctx.kv_cache_clear()  # no state from the previous chunk: each chunk starts at position 0
    pickle.dump({"array": (np.dtype(np.float32).str, (end - first, vocab))}, channel, protocol=pickle.HIGHEST_PROTOCOL)
    # The whole chunk is decoded, in the pieces llama.cpp's own n_ubatch split would make: pieces cut
    # elsewhere (ending at n-1, say) change the last row's logits by up to 1.0 on this build.
    for start in range(0, n, UBATCH):
        stop = min(start + UBATCH, n)
        scored = range(max(start, first), min(stop, end))
        model._batch.set_batch(batch=tokens[start:stop], n_past=start, logits_all=False)
        for i in scored:
            model._batch.batch.logits[i - start] = True
        model._ctx.decode(model._batch)
        for i in scored:
            row = np.ctypeslib.as_array(model._ctx.get_logits_ith(i - start), shape=(vocab,))
            channel.write(memoryview(row.data).cast("B"))
    channel.flush()


def generate(model: Any, prompt: str, n_tokens: int) -> dict[str, Any]:
    """Greedy continuation: the most likely token, n_tokens times (stopping at end of generation)."""
    import numpy as np

    tokens = model.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
    model.reset()
    model._ctx.kv_cache_clear()
    produced: list[int] = []
    position, pending = 0, list(tokens)
    for _ in range(n_tokens):
        model._batch.set_batch(batch=pending, n_past=position, logits_all=False)  # logits of the last only
        model._ctx.decode(model._batch)
        position += len(pending)
        row = np.ctypeslib.as_array(model._ctx.get_logits_ith(len(pending) - 1), shape=(model.n_vocab(),))
        token = int(np.argmax(row))
        if model._model.token_is_eog(token) if hasattr(model._model, "token_is_eog") else token == model.token_eos():
            break
        produced.append(token)
        pending = [token]
    text = model.detokenize(produced).decode("utf-8", errors="replace")
    return {"tokens": produced, "text": text}


def serve(model_path: str, ctx: int, threads: int, requests: IO[bytes], channel: IO[bytes]) -> None:
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        reply(channel, {"error": "missing", "detail": str(exc)})
        return
    if os.environ.get(ABORT_ENV) == "load":
        os.abort()
    try:
        model = Llama(
            model_path=model_path, n_ctx=ctx, n_batch=ctx, n_ubatch=min(ctx, UBATCH), n_threads=threads,
            n_threads_batch=threads, logits_all=False, verbose=False,
        )  # fmt: skip
    except Exception as exc:  # llama-cpp-python raises ValueError for a model llama.cpp refuses
        reply(channel, {"error": "load", "detail": str(exc)})
        return
    reply(channel, {"n_vocab": model.n_vocab(), "bos": model.token_bos()})
    while True:
        request = pickle.load(requests)
        try:
            if request[0] == "tokenize":
                reply(channel, {"tokens": model.tokenize(request[1].encode("utf-8"), add_bos=True, special=False)})
            elif request[0] == "score":
                if os.environ.get(ABORT_ENV) == "score":
                    os.abort()
                score(model, request[1], channel)
            elif request[0] == "generate":
                reply(channel, generate(model, request[1], request[2]))
            else:
                return
        except Exception as exc:  # e.g. llama_decode failing: an answer, not a dead pipe
            reply(channel, {"error": "engine", "detail": f"{type(exc).__name__}: {exc}"})


def main() -> None:
    model_path, ctx, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever the C library prints must not corrupt the protocol
    sys.stdout = sys.stderr
    serve(model_path, ctx, threads, sys.stdin.buffer, channel)


if __name__ == "__main__":
    main()
