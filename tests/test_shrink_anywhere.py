"""A file that shrinks while pyscan reads it outside the kernels: diff, --html, the header walk, batches.

The file is cut for real (os.truncate) at the moment pyscan has mapped it, by a wrapper around
the mapping function, in a separate process: a SIGBUS that got through shows as a signal exit.
Whatever the command, the result is one line naming the file, exit 2 (a batch: an error record
and exit 1), and no output file.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import gguf_bytes as gb
import numpy as np
import pytest
from cli_runner import python_script as run
from gguf_bytes import Tensor

from pyscan.demo import write_tinyllama_like

# Run the command line with the mapping of every file whose name contains VICTIM cut to CUT bytes
# right after it is mapped (CUT < 0: cut |CUT| bytes before the data section instead).
SHRINK_AFTER_MAPPING = """
import os, sys
from pyscan import native
from pyscan.parser import opener
victim, cut = sys.argv[1], int(sys.argv[2])
real_map_file = native.map_file
def map_then_shrink(path, writable=False):
    mapping = real_map_file(path, writable)
    if victim in os.fspath(path):
        os.truncate(path, cut)
    return mapping
opener.map_file = map_then_shrink
from pyscan.cli.main import main
sys.exit(main(sys.argv[3:]))
"""

# Run the command line with the scanned file cut to CUT bytes between the scan and the pictures.
SHRINK_BEFORE_PICTURES = """
import os, sys
from pyscan.cli import main as cli
real = cli.write_pictures
def shrink_then_draw(args, report, *rest):
    os.truncate(report.path, int(sys.argv[1]))
    return real(args, report, *rest)
cli.write_pictures = shrink_then_draw
sys.exit(cli.main(sys.argv[2:]))
"""


def assert_one_line_shrank(result: subprocess.CompletedProcess[str], path: Path) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "shrank" in lines[0] and str(path) in lines[0], result.stderr


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".pyscan-" in p.name]


def f32_model(path: Path, n_tensors: int = 4, n_words: int = 1 << 18) -> Path:
    rng = np.random.default_rng(7)
    tensors = [
        Tensor(f"blk.{i}.w", [1024, n_words // 1024], gb.F32, data=rng.normal(size=n_words).astype("<f4").tobytes())
        for i in range(n_tensors)
    ]
    path.write_bytes(gb.build_bytes([gb.kv("general.architecture", gb.STRING, "llama")], tensors))
    return path


@pytest.mark.parametrize("side", ["a", "b"])
def test_diff_of_a_file_that_shrinks(tmp_path: Path, side: str) -> None:
    a, b = f32_model(tmp_path / "a.gguf"), f32_model(tmp_path / "b.gguf")
    victim = a if side == "a" else b
    result = run(SHRINK_AFTER_MAPPING, victim.name, "8192", "diff", str(a), str(b))
    assert_one_line_shrank(result, victim)


def test_diff_html_of_a_file_that_shrinks_writes_no_page(tmp_path: Path) -> None:
    a, b = f32_model(tmp_path / "a.gguf"), f32_model(tmp_path / "b.gguf")
    page = tmp_path / "diff.html"
    result = run(SHRINK_AFTER_MAPPING, "b.gguf", "8192", "diff", str(a), str(b), "--html", str(page))
    assert_one_line_shrank(result, b)
    assert not page.exists() and leftovers(tmp_path) == []


def test_html_histograms_of_a_file_that_shrinks(tmp_path: Path) -> None:
    model = f32_model(tmp_path / "model.gguf")
    page = tmp_path / "report.html"
    result = run(SHRINK_BEFORE_PICTURES, "8192", str(model), "--html", str(page))
    assert_one_line_shrank(result, model)
    assert not page.exists() and leftovers(tmp_path) == []


def test_header_walk_of_a_file_that_shrinks(tmp_path: Path) -> None:
    """A vocabulary far larger than the part of the file that is left: the string walk reads zero pages."""
    tokens = [f"token-{i:07d}" for i in range(300_000)]
    model = tmp_path / "vocab.gguf"
    model.write_bytes(
        gb.build_bytes(
            [
                gb.kv("general.architecture", gb.STRING, "llama"),
                gb.kv_array("tokenizer.ggml.tokens", gb.STRING, tokens),
            ],
            [Tensor("w", [8], gb.F32, data=bytes(32))],
        )
    )
    for cut in ("4096", "1048576"):
        model_copy = tmp_path / f"vocab-{cut}.gguf"
        model_copy.write_bytes(model.read_bytes())
        for command in ([str(model_copy)], [str(model_copy), "--json"]):
            result = run(SHRINK_AFTER_MAPPING, model_copy.name, cut, *command)
            assert_one_line_shrank(result, model_copy)
            model_copy.write_bytes(model.read_bytes())


def test_text_report_of_a_file_that_shrinks(tmp_path: Path) -> None:
    model = tmp_path / "demo.gguf"
    write_tinyllama_like(model)
    result = run(SHRINK_AFTER_MAPPING, model.name, "65536", str(model))
    assert_one_line_shrank(result, model)
    assert result.stdout == ""  # no report made of zeros


def test_batch_with_a_file_that_shrinks_gives_its_error_record(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("a", "b", "c", "victim"):
        f32_model(folder / f"{name}.gguf", n_tensors=2)
    report = tmp_path / "report.jsonl"
    result = run(
        SHRINK_AFTER_MAPPING, "victim", "8192", str(folder), "--jsonl", "--jobs", "2", "--resume", str(report)
    )
    assert result.returncode == 1, result.stderr  # some files failed
    assert "Traceback" not in result.stderr
    records = [json.loads(line) for line in report.read_text().splitlines()]
    by_name = {Path(r["path"]).name: r for r in records}
    assert sorted(by_name) == ["a.gguf", "b.gguf", "c.gguf", "victim.gguf"]
    assert "shrank" in by_name["victim.gguf"]["error"] and by_name["victim.gguf"]["error_kind"] == "io"
    assert all("error" not in by_name[n] for n in ("a.gguf", "b.gguf", "c.gguf"))
