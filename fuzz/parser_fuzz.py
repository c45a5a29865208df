"""Coverage-guided fuzzing of pyscan's GGUF parser and everything that runs on what it accepts (atheris).

    python fuzz/parser_fuzz.py [libFuzzer options] [CORPUS_DIR ...]

Each input is written to a temporary file and given to pyscan.open; if that accepts it, the
file is also scanned, dry-run rewritten (truncate bf16 and fake-quant int4), compared with a
fixed valid model, and every report is rendered and serialized.  pyscan.PyscanError is the
expected way to refuse a file; any other exception is a finding (atheris saves the input and
exits non-zero).  fuzz/run.sh builds the seed corpus and runs this.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import math
import os
import pkgutil
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import atheris  # type: ignore[import-untyped]  # no stubs

import pyscan
import pyscan.diff.compare
from pyscan.cli.render import render, render_rewrite
from pyscan.diff.render import render as render_diff
from pyscan.parser.metadata import MetadataArray, ValueType

WORK = Path(tempfile.mkdtemp(prefix="pyscan-parser-fuzz-"))
INPUT = WORK / "input.gguf"
REFERENCE = WORK / "reference.gguf"  # a valid model every accepted input is diffed against


def mode(**options: Any) -> pyscan.RewriteMode:
    chosen = pyscan.parse_mode(**options)
    assert chosen is not None
    return chosen


TRUNCATE = mode(truncate="bf16")
FAKE_QUANT = mode(fake_quant="int4", group_size=32)
MAX_DECODED = 1 << 16  # decode at most this many array elements per input, to keep executions fast


def instrument_pyscan() -> int:
    """Add coverage instrumentation to every pyscan function; returns how many.

    atheris.instrument_imports cannot see through the import hook of an editable install
    (scikit-build-core's redirecting finder), so the loaded functions are patched instead, after
    importing every submodule (pyscan imports some lazily, e.g. the safetensors reader).
    """
    for module in pkgutil.walk_packages(pyscan.__path__, "pyscan."):
        if not module.name.endswith("__main__"):  # that one runs the command line
            with contextlib.suppress(ImportError):  # optional extras (dask, matplotlib)
                importlib.import_module(module.name)
    package = os.path.dirname(os.path.abspath(pyscan.__file__)) + os.sep
    functions = [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, types.FunctionType) and obj.__code__.co_filename.startswith(package)
    ]
    for function in functions:
        atheris.instrument_func(function)
    return len(functions)


def write_reference() -> None:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(os.fspath(REFERENCE), "llama")
    writer.add_name("reference")
    writer.add_array("tokenizer.ggml.tokens", ["a", "b"])
    writer.add_tensor("token_embd.weight", np.linspace(-2, 2, 64, dtype=np.float32).reshape(2, 32))
    writer.add_tensor("half.weight", np.arange(8, dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def dumps(obj: Any) -> str:
    # The README promises JSON; json.dumps would otherwise write NaN/Infinity, which is not JSON.
    return json.dumps(obj, allow_nan=False)


def exercise_metadata(model: pyscan.ModelFile) -> None:
    decoded = 0
    for entry in model.metadata.values():
        value = entry.value
        if isinstance(value, MetadataArray) and decoded + len(value) <= MAX_DECODED:
            decoded += len(value)
            items = value.to_list()
            assert len(items) == len(value)
            if value.element_type != ValueType.STRING:
                assert len(value.to_numpy()) == len(value)


def exercise_tensors(model: pyscan.ModelFile) -> None:
    for info in model.tensors:
        assert model.tensor(info.name) == info  # names are unique
        if info.nbytes is not None:
            assert model.data_offset <= info.offset and info.offset + info.nbytes <= model.size
        try:
            array = model.to_numpy(info)
        except pyscan.PyscanError as err:
            assert err.kind == "usage", err  # a type with no plain layout: refused, not broken
            continue
        assert array.size == info.n_elements and array.nbytes == info.nbytes


def test_one_input(data: bytes) -> None:
    # A fresh inode each time, so a mapping left from the previous input never sees new bytes.
    INPUT.unlink(missing_ok=True)
    INPUT.write_bytes(data)
    try:
        model = pyscan.open(INPUT)
    except pyscan.PyscanError as err:
        assert str(err).startswith(str(INPUT)), err
        return
    with model:
        exercise_metadata(model)
        exercise_tensors(model)
    # Everything below reads a file pyscan.open accepted: any PyscanError is now a finding too.
    report = pyscan.scan(INPUT)
    dumps(report.to_dict())
    render(report, per_tensor=True, elapsed=0.0)
    for mode in (TRUNCATE, FAKE_QUANT):
        result = pyscan.rewrite_file(INPUT, mode)
        assert result.dry_run and result.output is None
        assert math.isfinite(result.max_abs_error), result.to_dict()
        dumps(result.to_dict())
        render_rewrite(result)
    difference = pyscan.compare(INPUT, REFERENCE)
    dumps(difference.to_dict())
    render_diff(difference)
    # A file equals itself (unknown types are 'not compared', so not 'identical': check counts).
    itself = pyscan.compare(INPUT, INPUT)
    assert itself.n_tensors_differ == 0 and not itself.metadata_differences, dumps(itself.to_dict())


def main() -> None:
    print(f"INFO: instrumented {instrument_pyscan()} pyscan functions", file=sys.stderr)
    write_reference()
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
