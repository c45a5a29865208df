"""Text from a file never drives the terminal, and no line is unbounded; huge files stay cheap to report.

Names and strings with ESC sequences, BEL, newlines and bidi controls go through every text output
(report, --per-tensor, rewrite table, diff, batch lines, error lines); JSON keeps them exact.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import gguf_bytes as gb
import numpy as np
import pytest
from cli_runner import pyscan_cli as cli
from gguf_bytes import Tensor

# C0 controls but \n, DEL, C1 controls, and the bidi overrides/isolates.
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
EVIL_NAME = "blk.0.\x1b]0;owned\x07\x1b[2J\nforged line\u202e"
EVIL_MODEL = "\x1b[31mred\x1b[0m\r\nVerdict: fake"


def evil_model(path: Path, scale: float = 1.0) -> Path:
    words = (np.linspace(-1, 1, 64, dtype="<f4") * np.float32(scale)).tobytes()
    path.write_bytes(
        gb.build_bytes(
            [gb.kv("general.architecture", gb.STRING, "llama\x1b[5m"), gb.kv("general.name", gb.STRING, EVIL_MODEL),
             gb.kv("evil.\x1b[2Jkey", gb.STRING, "v\x1b[2J")],
            [Tensor(EVIL_NAME[:40], [64], gb.F32, data=words), Tensor("ok.weight", [64], gb.F32, data=words)],
        )
    )  # fmt: skip
    return path


def assert_terminal_safe(result: subprocess.CompletedProcess[str]) -> None:
    for stream in (result.stdout, result.stderr):
        assert not CONTROL.search(stream), repr(stream[:2000])
    assert "forged line" not in "".join(line for line in result.stdout.splitlines() if line.startswith("forged"))


@pytest.mark.parametrize(
    "args",
    [[], ["--per-tensor"], ["--truncate", "bf16", "--dry-run"]],
    ids=["report", "per-tensor", "rewrite"],
)
def test_names_from_the_file_are_escaped_in_reports(tmp_path: Path, args: list[str]) -> None:
    model = evil_model(tmp_path / "evil.gguf")
    result = cli(str(model), *args)
    assert result.returncode == 0, result.stderr
    assert_terminal_safe(result)
    assert "\\x1b" in result.stdout  # shown, escaped, not dropped


def test_json_keeps_names_exact(tmp_path: Path) -> None:
    model = evil_model(tmp_path / "evil.gguf")
    result = cli(str(model), "--json")
    assert result.returncode == 0 and not CONTROL.search(result.stdout)  # JSON escapes them itself
    report = json.loads(result.stdout)
    assert report["name"] == EVIL_MODEL and report["tensors"][0]["name"] == EVIL_NAME[:40]


def test_diff_and_batch_lines_are_escaped(tmp_path: Path) -> None:
    a, b = evil_model(tmp_path / "a.gguf"), evil_model(tmp_path / "b.gguf", scale=0.5)
    result = cli("diff", str(a), str(b))
    assert result.returncode == 1, result.stderr
    assert_terminal_safe(result)
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "evil\x1b[2J\n.gguf").write_bytes(a.read_bytes())
    (folder / "broken\x1b]0;x\x07.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")
    result = cli(str(folder))
    assert result.returncode == 1
    assert_terminal_safe(result)


RAW = ("\x1b", "\x07", "\r", "\u202e")  # what a page must not hold raw: `cat page.html` runs them, U+202E reverses text


def test_pages_escape_names_as_the_text_report_does(tmp_path: Path) -> None:
    a, b = evil_model(tmp_path / "a.gguf"), evil_model(tmp_path / "b.gguf", scale=0.5)
    scan_page, diff_page = tmp_path / "scan.html", tmp_path / "diff.html"
    assert cli(str(a), "--html", str(scan_page), "-q").returncode == 0
    assert cli("diff", str(a), str(b), "--html", str(diff_page)).returncode == 1
    for page in (scan_page, diff_page):
        text = page.read_text()
        assert not [ch for ch in RAW if ch in text], page.name
        assert "forged line" not in "".join(line for line in text.splitlines() if line.startswith("forged"))
        assert "\\x1b[2J" in text and "\\u202e" in text  # shown, escaped, not dropped
    assert "\\x1b[31mred\\x1b[0m\\r\\nVerdict: fake (llama\\x1b[5m)" in scan_page.read_text()  # the model line


def test_plot_labels_are_escaped(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import pyscan
    from pyscan.visual.cells import scan_heatmap
    from pyscan.visual.plot import render_figure

    figure = render_figure(scan_heatmap(pyscan.scan(str(evil_model(tmp_path / "a.gguf")))), "t")
    labels = [t.get_text() for ax in figure.axes for t in [*ax.get_xticklabels(), *ax.get_yticklabels()]]
    assert any("\\x1b" in label for label in labels) and not [ch for ch in RAW if ch in "".join(labels)]


@pytest.mark.parametrize("architecture", ["llama", "arch\n" * 1000])
def test_a_long_model_name_is_one_cut_line(tmp_path: Path, architecture: str) -> None:
    words = np.zeros(64, dtype="<f4").tobytes()
    name = "\x1b[2J" + "name\n" * 1000  # 5,004 characters
    model = tmp_path / "long.gguf"
    model.write_bytes(
        gb.build_bytes(
            [gb.kv("general.architecture", gb.STRING, architecture), gb.kv("general.name", gb.STRING, name)],
            [Tensor("ok.weight", [64], gb.F32, data=words)],
        )
    )
    result = cli(str(model))
    assert result.returncode == 0, result.stderr
    assert_terminal_safe(result)
    [line] = [line for line in result.stdout.splitlines() if line.startswith("  model: ")]
    assert line.startswith("  model: \\x1b[2Jname\\nname") and "… (6,007 characters)" in line  # escaped length
    assert len(line) <= 320 * (1 if architecture == "llama" else 2), len(line)  # 256 per string; was 5,030


def test_error_lines_are_escaped(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(
        gb.build_bytes([gb.kv("k\x1b[2J\n", gb.STRING, "x"), gb.kv("k\x1b[2J\n", gb.STRING, "y")], [])
    )  # a duplicated key whose name is an escape sequence
    result = cli(str(bad))
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    assert_terminal_safe(result)
    assert "appears twice" in result.stderr


@pytest.mark.parametrize("where", ["key", "tensor", "safetensors"])
def test_a_20_mib_name_gives_a_bounded_error_line(tmp_path: Path, where: str) -> None:
    huge = "n" * (20 << 20)
    path = tmp_path / ("huge.safetensors" if where == "safetensors" else "huge.gguf")
    if where == "key":
        path.write_bytes(gb.build_bytes([gb.kv_raw(huge, 99, b"")], []))  # unknown value type names the key
    elif where == "tensor":
        path.write_bytes(gb.build_bytes([], [Tensor(huge, [4], gb.F32, data=bytes(16))]))
    else:
        header = json.dumps({huge: {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}).encode()
        path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    result = cli(str(path))
    assert result.returncode == 2, result.stderr[:500]
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and len(lines[0]) < 1200 and "20,971,520 characters" in lines[0], lines[0][:500]


# ---- amplification ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many_tensors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 15 MB file of 200,000 one-value tensors."""
    path = tmp_path_factory.mktemp("many") / "many.gguf"
    one = np.float32(1.5).tobytes()
    tensors = [Tensor(f"blk.{i}.w", [1], gb.F32, data=one) for i in range(200_000)]
    path.write_bytes(gb.build_bytes([gb.kv("general.architecture", gb.STRING, "llama")], tensors))
    return path


def test_200k_tensors_json_is_complete(many_tensors: Path) -> None:
    result = cli(str(many_tensors), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n_tensors"] == len(report["tensors"]) == 200_000
    assert all(t["low16_zero"] == 1 for t in report["tensors"])  # 1.5 is BF16-exact


def test_200k_tensors_page_is_bounded(many_tensors: Path, tmp_path: Path) -> None:
    page = tmp_path / "many.html"
    result = cli(str(many_tensors), "--html", str(page))
    assert result.returncode == 0, result.stderr
    text = page.read_text()
    assert page.stat().st_size < 5 << 20, page.stat().st_size  # was 738 MB: a histogram per tensor
    assert "too many for a map" in text and "the 256 largest of 200,000" in text
    assert "all 200,000 F32 tensors" in text


def test_200k_tensors_plot_is_a_clean_refusal(many_tensors: Path, tmp_path: Path) -> None:
    result = cli(str(many_tensors), "--plot", str(tmp_path / "map.png"))
    assert result.returncode == 2 and "too many for a map" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and not (tmp_path / "map.png").exists()


# ---- threads ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("threads", ["1000000", "0", "-3", "1025"])
def test_absurd_thread_counts_are_a_usage_error(tmp_path: Path, threads: str) -> None:
    model = evil_model(tmp_path / "m.gguf")
    result = cli(str(model), "--threads", threads)
    assert result.returncode == 2 and "--threads must be between 1 and 1024" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_many_threads_are_capped_not_spawned(tmp_path: Path) -> None:
    """1,024 threads over a 96 MiB file: capped at the cores and chunks, and the counts are right."""
    model = tmp_path / "big.gguf"
    words = np.full(24 << 20, 1.25, dtype="<f4")
    model.write_bytes(gb.build_bytes([], [Tensor("w", [1024, len(words) // 1024], gb.F32, data=words.tobytes())]))
    for args in ([], ["--truncate", "bf16", "-o", str(tmp_path / "out.gguf")]):
        result = cli(str(model), "--threads", "1024", "--json", *args)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert (report["tensors"][0].get("low16_zero", 24 << 20), report.get("changed", 0)) == (24 << 20, 0)


def bidi_duplicate_key(path: Path) -> Path:
    key = "\u202e" * 300  # escapes to 1,800 characters: the bound is on what is printed
    path.write_bytes(gb.build_bytes([gb.kv(key, gb.STRING, "a"), gb.kv(key, gb.STRING, "b")], []))
    return path


def huge_shape(path: Path) -> Path:
    header = json.dumps({"x": {"dtype": "F32", "shape": [2**62] * 64, "data_offsets": [0, 16]}}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(16))
    return path


@pytest.mark.parametrize(
    ("make", "reason"),
    [(bidi_duplicate_key, "appears twice"), (huge_shape, "overflows a 64-bit element count")],
    ids=["escaped-name", "long-shape"],
)
def test_an_error_line_stays_bounded_and_keeps_its_reason(tmp_path: Path, make: Any, reason: str) -> None:
    path = make(tmp_path / ("m.safetensors" if make is huge_shape else "m.gguf"))
    result = cli(str(path))
    assert result.returncode == 2, result.stderr[:500]
    (line,) = result.stderr.splitlines()
    assert len(line) <= 1000 and line.endswith(reason) and not CONTROL.search(line), line


def test_a_cut_name_is_closed_with_the_quote_it_opened_with() -> None:
    from pyscan.text import quote

    shown = quote("it's" * 100)  # repr quotes it with ": a ' inside
    assert shown.startswith('"it\'s') and shown.endswith('…" (400 characters)') and len(shown) < 240, shown
