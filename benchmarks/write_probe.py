"""How fast this machine writes a copy of FILE three ways, with no rewrite at all (a baseline for -o).

    python benchmarks/write_probe.py FILE [--rounds N]

copy_file_range (what cp does), pread + pwrite through a 16 MiB buffer (what pyscan -o must do
for the bytes it rewrites: they pass through user memory), and pwrite straight from a read-only
mapping.  Each round runs the three in turn (order rotated) into FILE.probe beside FILE, removed
after; wall and CPU seconds (user + sys) of each, medians over rounds.
"""

from __future__ import annotations

import argparse
import mmap
import os
import resource
import statistics
import time
from collections.abc import Callable

CHUNK = 16 << 20


def copy_file_range(source: str, target: str) -> None:
    size = os.path.getsize(source)
    with open(source, "rb") as src, open(target, "wb") as dst:
        done = 0
        while done < size:
            done += os.copy_file_range(src.fileno(), dst.fileno(), 1 << 30, done, done)


def pread_pwrite(source: str, target: str) -> None:
    size = os.path.getsize(source)
    buffer = memoryview(bytearray(CHUNK))
    with open(source, "rb") as src, open(target, "wb") as dst:
        for offset in range(0, size, CHUNK):
            n = os.preadv(src.fileno(), [buffer], offset)
            os.pwrite(dst.fileno(), buffer[:n], offset)


def mapped_pwrite(source: str, target: str) -> None:
    with (
        open(source, "rb") as src,
        open(target, "wb") as dst,
        mmap.mmap(src.fileno(), 0, prot=mmap.PROT_READ) as mapping,
    ):
        view = memoryview(mapping)
        for offset in range(0, len(mapping), CHUNK):
            os.pwrite(dst.fileno(), view[offset : offset + CHUNK], offset)
        view.release()


def measure(probe: Callable[[str, str], None], source: str, target: str) -> tuple[float, float]:
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    probe(source, target)
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
    os.remove(target)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    probes = [copy_file_range, pread_pwrite, mapped_pwrite]
    results: dict[str, list[tuple[float, float]]] = {p.__name__: [] for p in probes}
    target = args.file + ".probe"
    for round_ in range(args.rounds):
        for probe in probes[round_ % 3 :] + probes[: round_ % 3]:
            results[probe.__name__].append(measure(probe, args.file, target))
    for name, samples in results.items():
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        print(f"{name:16s} wall {wall:6.2f} s  cpu {cpu:6.2f} s  (median of {len(samples)})")


if __name__ == "__main__":
    main()
