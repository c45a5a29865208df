"""The command-line tool end to end, as a user runs it: a separate process, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import gguf
import numpy as np
import pytest
from cli_runner import pyscan_cli
from models import write, write_mixed

from pyscan.demo import write_tinyllama_like


@pytest.fixture(scope="module")
def tinyllama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "tinyllama.gguf"
    write_tinyllama_like(path)
    return path


def test_demo_shows_the_seed_finding() -> None:
    result = pyscan_cli("--demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for line in ("Q4_K      135", "F32        45", "Q6_K       21"):
        assert line in out
    assert "blk.*.attn_norm.weight       22   F32              256     100.00%" in out
    assert "All 45 F32 tensors are already BF16-exact: --truncate bf16 would change nothing." in out


@pytest.mark.parametrize(
    "options",
    [["--truncate", "bf16"], ["--round", "fp16"], ["--fake-quant", "int8"], ["--group-size", "32"], ["-o", "x.gguf"],
     ["--in-place"], ["--dry-run"], ["--fsync"], ["--header-only"], ["--jsonl"], ["--jobs", "2"], ["--jobs", "0"],
     ["--resume", "r.jsonl"], ["--dask-scheduler", "127.0.0.1:1"]],
)  # fmt: skip
def test_demo_refuses_what_it_would_ignore(options: list[str], tmp_path: Path) -> None:
    # (file names inside tmp_path: nothing may be written there)
    result = pyscan_cli("--demo", *(str(tmp_path / o) if o.endswith((".gguf", ".jsonl")) else o for o in options))
    assert result.returncode == 2 and result.stdout == "", result.stdout
    assert result.stderr == f"pyscan: {options[0]} does not go with --demo\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options", [["-o", "x.gguf"], ["--in-place"], ["--dry-run"], ["--fsync"], ["--header-only"],
                                     ["--force"], ["--header-only", "--jsonl"]])  # fmt: skip
def test_a_batch_refuses_what_it_would_ignore(options: list[str], tinyllama: Path) -> None:
    result = pyscan_cli(str(tinyllama.parent), *options)
    assert result.returncode == 2 and result.stdout == "", result.stdout
    assert result.stderr.startswith(f"pyscan: {tinyllama.parent}: {options[0]} goes with one file's report, not a")


@pytest.mark.parametrize(
    "options",
    [
        ["--html", ""], ["--plot", ""], ["--truncate", "bf16", "-o", ""], ["--jsonl", "--resume", ""],
        ["diff", "{model}", "--html", ""], ["eval", "{model}", "--text", ""], ["eval", "{model}", "--html", ""],
        ["experiment", "-o", ""], ["experiment", "--html", ""],
    ],
)  # fmt: skip
def test_an_empty_file_name_is_an_error_not_an_option_left_out(options: list[str], tinyllama: Path) -> None:
    # (--html "" wrote no page and exited 0: an unset $VAR in a script must not pass for "no page")
    command = options[:1] if options[0] in ("diff", "eval", "experiment") else []
    rest = [str(tinyllama) if o == "{model}" else o for o in options[len(command) :]]
    result = pyscan_cli(*command, str(tinyllama), *rest)
    assert result.returncode == 2 and result.stdout == "", result
    assert result.stderr.count("\n") == 1 and "an empty name names no file" in result.stderr, result.stderr


def test_human_report_groups_by_name_pattern(tinyllama: Path) -> None:
    result = pyscan_cli(str(tinyllama))
    assert result.returncode == 0 and result.stderr == ""
    assert "GGUF v3, little-endian, alignment 32" in result.stdout
    assert "blk.*.ffn_norm.weight" in result.stdout and "blk.3.ffn_norm.weight" not in result.stdout
    per_tensor = pyscan_cli(str(tinyllama), "--per-tensor")
    assert all(f"blk.{i}.ffn_norm.weight" in per_tensor.stdout for i in range(22))


def test_json_report_schema_matches_gguf_reader(tinyllama: Path) -> None:
    result = pyscan_cli(str(tinyllama), "--json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    reader = gguf.GGUFReader(tinyllama)
    assert report["path"] == str(tinyllama)
    assert (report["version"], report["endianness"], report["alignment"]) == (3, "little", 32)
    assert report["n_tensors"] == len(reader.tensors) == 201
    assert report["n_kv"] == len([key for key in reader.fields if not key.startswith("GGUF.")])
    assert report["tensor_types"] == {"Q4_K": 135, "F32": 45, "Q6_K": 21}
    for mine, theirs in zip(report["tensors"], reader.tensors, strict=True):
        assert mine["name"] == theirs.name
        assert mine["type"] == theirs.tensor_type.name
        assert mine["shape"] == [int(d) for d in theirs.shape]
        assert mine["n_elements"] == theirs.n_elements
        assert mine["offset"] == theirs.data_offset
        assert mine["nbytes"] == theirs.n_bytes
        if mine["type"] == "F32":
            assert mine["scanned"] and mine["low16_zero"] == mine["n_elements"]
            assert {"fp16_exact", "nan", "inf", "zero", "subnormal", "low16_zero_minus_one"} <= set(mine)
        else:
            assert not mine["scanned"] and "low16_zero" not in mine


def test_include_exclude_on_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.gguf"
    write_mixed(path)
    result = pyscan_cli(str(path), "--json", "--include", "blk.*", "--include", "half.*", "--exclude", "blk.1.*")
    scanned = {t["name"] for t in json.loads(result.stdout)["tensors"] if t["scanned"]}
    assert "half.weight" in scanned and "blk.2.random.weight" in scanned
    assert "blk.1.random.weight" not in scanned and "specials.weight" not in scanned


def test_version_names_kernels() -> None:
    result = pyscan_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("pyscan ") and "kernel " in result.stdout and "scalar" in result.stdout
    forced = pyscan_cli("--version", env={"PYSCAN_ISA": "scalar"})
    assert "(kernel scalar;" in forced.stdout


@pytest.mark.parametrize(
    "isa", ["bogus", "neon" if sys.platform != "darwin" and os.uname().machine == "x86_64" else "avx2"]
)
@pytest.mark.parametrize("command", ["scan", "diff", "eval", "experiment"])
def test_bad_pyscan_isa_is_one_line_and_exit_2(isa: str, command: str, tinyllama: Path) -> None:
    words = {"scan": [], "diff": ["diff", str(tinyllama)], "eval": ["eval", str(tinyllama)]}.get(command, [command])
    result = pyscan_cli(*words, str(tinyllama), env={"PYSCAN_ISA": isa})  # (diff went on: exit 0)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "PYSCAN_ISA" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "content",
    [b"", b"GGUF", b"GGML" + bytes(40), b"GGUF\x01\x00\x00\x00" + bytes(16)],
    ids=["empty", "magic-only", "bad-magic", "version-1"],
)
def test_bad_file_is_one_line_naming_it(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    for extra in ([], ["--json"]):
        result = pyscan_cli(str(path), *extra)
        assert result.returncode == 2
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"pyscan: {path}: ")
        assert "Traceback" not in result.stderr


def test_missing_file_and_folder(tmp_path: Path) -> None:
    for path, words in ((tmp_path / "nope.gguf", "no such file"), (tmp_path, "folder")):
        result = pyscan_cli(str(path))
        assert result.returncode == 2 and words in result.stderr and str(path) in result.stderr


def test_usage_errors_exit_2() -> None:
    assert pyscan_cli().returncode == 2
    assert pyscan_cli("--threads", "0", "x.gguf").returncode == 2


# Start-up is most of a small run (cp of a 668 MB file takes ~180 ms; Python's start-up
# and imports were ~60 ms of pyscan's), so the common commands keep heavy imports out.
HEAVY_IMPORTS = ("dataclasses", "inspect", "shutil", "numpy", "gguf", "tqdm", "concurrent.futures")
# Measured against what a bare interpreter already holds (site may import shutil, say): only what
# pyscan itself adds counts.
IMPORTS_AFTER = """
import sys
already = set(sys.modules)
from pyscan.cli.main import main
main(sys.argv[1:])
print(" ".join(sorted(m for m in {heavy!r} if m in sys.modules and m not in already)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "extra",
    [[], ["--truncate", "bf16", "--dry-run"], ["--round", "fp16", "-o", "OUT"]],
    ids=["scan", "dry-run", "write"],
)
def test_common_commands_leave_heavy_modules_unimported(extra: list[str], tinyllama: Path, tmp_path: Path) -> None:
    arguments = [str(tmp_path / "out.gguf") if word == "OUT" else word for word in extra]
    script = IMPORTS_AFTER.format(heavy=HEAVY_IMPORTS)
    result = subprocess.run(
        [sys.executable, "-c", script, str(tinyllama), "--quiet", *arguments],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""  # the names of any heavy modules that were imported


def test_json_is_imported_only_for_json(tinyllama: Path, tmp_path: Path) -> None:
    script = IMPORTS_AFTER.format(heavy=("json",))
    for extra, expected in (([], ""), (["--json"], "json")):
        result = subprocess.run(
            [sys.executable, "-c", script, str(tinyllama), *extra],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,  # outside the source tree: import the installed pyscan
        )
        assert result.returncode == 0 and result.stderr.strip() == expected


def test_help_is_wrapped_to_the_terminal_width() -> None:
    for command in ([], ["diff"]):
        usage_lines = {}
        for columns in (50, 120):
            result = pyscan_cli(*command, "--help", env={"COLUMNS": str(columns)})
            assert result.returncode == 0
            usage = result.stdout.split("\n\n")[0].splitlines()
            assert max(len(line) for line in usage) <= columns
            usage_lines[columns] = len(usage)
        assert usage_lines[50] > usage_lines[120]


@pytest.mark.parametrize("extra", [["--version"], ["FILE", "--per-tensor"]], ids=["buffered", "written-at-once"])
def test_a_reader_that_goes_away_is_no_error(extra: list[str], tinyllama: Path) -> None:
    """`pyscan ... | head -c0`: the pipe closes before pyscan writes; exit 0, nothing on stderr.

    A short report stays in stdout's buffer until exit, a long one is written while pyscan runs.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "pyscan", *[str(tinyllama) if word == "FILE" else word for word in extra]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tempfile.gettempdir(),
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},  # stdout buffered, as usual
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the report is written
    errors = process.stderr.read()
    assert process.wait(timeout=300) == 0
    assert errors == b""


@pytest.mark.parametrize(
    "args",
    [["--include", "nomatch*"], ["--exclude", "*"], ["--include", "nomatch*", "--truncate", "bf16", "--dry-run"],
     ["--include", "*.q.weight", "--truncate", "bf16", "-o", "OUT"]],  # matches only a quantized tensor
    ids=["include", "exclude-all", "rewrite", "rewrite-no-f32"],
)  # fmt: skip
def test_globs_that_select_nothing_are_a_usage_error(tinyllama: Path, tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "out.gguf"
    result = pyscan_cli(str(tinyllama), *[str(out) if a == "OUT" else a for a in args])
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "select no" in result.stderr and ("nomatch*" in result.stderr or "'*'" in result.stderr or "q.weight" in
                                              result.stderr)  # fmt: skip
    assert not out.exists()


@pytest.mark.parametrize("args", [["--bogus"], [], ["--threads", "x", "m.gguf"], ["diff"], ["diff", "a"]])
def test_usage_errors_are_one_line(args: list[str]) -> None:
    result = pyscan_cli(*args)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "error:" in result.stderr and "--help)" in result.stderr


@pytest.mark.parametrize(
    ("options", "usage"),
    [(["-q", "diff"], "pyscan diff A B [options]"), (["--json", "diff"], "pyscan diff A B [options]"),
     (["--threads", "1", "eval"], "pyscan eval BASE CANDIDATE... [options]"),
     (["-q", "experiment"], "pyscan experiment MODEL [options]")],
)  # fmt: skip
def test_a_subcommand_after_an_option_is_refused(tinyllama: Path, options: list[str], usage: str) -> None:
    """`pyscan -q diff A A` scanned "diff" as a file and exited 1, diff's "different"; now a usage error."""
    result = pyscan_cli(*options, str(tinyllama), str(tinyllama))
    assert result.returncode == 2 and result.stdout == "", result
    assert result.stderr.splitlines() == [f"pyscan: {options[-1]}: a subcommand comes first: {usage}"]


def test_a_file_named_like_a_subcommand_is_still_scanned(tmp_path: Path) -> None:
    write(tmp_path / "diff", [("w", np.arange(64, dtype=np.float32).reshape(2, 32), None)])

    def in_its_folder(*words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pyscan", *words], capture_output=True, text=True, check=False,
                              cwd=tmp_path)  # fmt: skip

    assert in_its_folder("-q", "diff").returncode == 0
    result = in_its_folder("--json", "diff")
    assert result.returncode == 0 and json.loads(result.stdout)["n_tensors"] == 1, result
    # an option's value is not a file name: `--include diff` takes the word, the file comes next
    result = pyscan_cli("--include", "w*", "--exclude", "diff", str(tmp_path / "diff"))
    assert result.returncode == 0, result


def test_help_names_diff_and_repeats_no_section() -> None:
    text = pyscan_cli("--help").stdout
    assert "pyscan diff A B" in text
    headings = [line.rstrip(":") for line in text.splitlines() if line and not line.startswith(" ") and
                line.endswith(":")]  # fmt: skip
    assert len(headings) == len(set(headings)), headings
    assert "safetensors" in pyscan_cli("diff", "--help").stdout and "2 invalid" in pyscan_cli("diff", "--help").stdout


# ---- the text report's table and paragraphs ------------------------------------------------------


def pattern_rows(out: str) -> list[tuple[str, str, int]]:
    """(pattern, type, count) of the report's table by name pattern, in order."""
    lines = out.split("Tensors by name pattern\n", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    return [(cells[0], cells[2], int(cells[1].replace(",", ""))) for cells in (line.split() for line in lines)]


def test_a_patterns_types_are_adjacent_rows(tinyllama: Path) -> None:
    # The demo keeps attn_v and ffn_down at Q6_K in 10 layers and Q4_K in 12 (llama.cpp's Q4_K_M rule).
    reader = gguf.GGUFReader(tinyllama)
    expected: dict[tuple[str, str], int] = {}
    for t in reader.tensors:
        key = (".".join("*" if p.isdigit() else p for p in t.name.split(".")), t.tensor_type.name)
        expected[key] = expected.get(key, 0) + 1
    rows = pattern_rows(pyscan_cli(str(tinyllama)).stdout)
    assert {(p, t): n for p, t, n in rows} == expected
    patterns = [p for p, _, _ in rows]
    for pattern in set(patterns):  # one run of rows per pattern
        first, last = patterns.index(pattern), len(patterns) - 1 - patterns[::-1].index(pattern)
        assert set(patterns[first : last + 1]) == {pattern}, pattern
    attn_v = [(t, n) for p, t, n in rows if p == "blk.*.attn_v.weight"]
    assert attn_v == [("Q4_K", 12), ("Q6_K", 10)]  # most tensors first
    assert [p for p in dict.fromkeys(patterns)] == list(dict.fromkeys(p for p, _ in expected))  # file order


def plus_one_model(path: Path) -> None:
    """Two F32 tensors of BF16 weights stored as w + 1: the verdict is a long paragraph."""
    import ml_dtypes
    import numpy as np
    from models import write

    w = np.linspace(0.25, 3.0, 64, dtype=np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)
    write(path, [("blk.0.norm.weight", w + np.float32(1), None), ("blk.1.norm.weight", w[::-1] + np.float32(1), None)])


def verdict_lines(out: str) -> list[str]:
    return out.split("\n\n")[-1].rstrip("\n").splitlines()


def test_verdict_wraps_at_columns_and_at_100_off_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "plus-one.gguf"
    plus_one_model(path)
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    lines = {}
    for columns in ("60", None):
        result = subprocess.run(
            [sys.executable, "-m", "pyscan", str(path)], capture_output=True, text=True, check=False,
            cwd=tempfile.gettempdir(), env={**env, "COLUMNS": columns} if columns else env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        lines[columns] = verdict_lines(result.stdout)
    assert max(map(len, lines["60"])) <= 60 and len(lines["60"]) > len(lines[None]) > 1
    assert max(map(len, lines[None])) <= 100  # piped: still a paragraph people can read
    assert " ".join(lines["60"]) == " ".join(lines[None])  # the same words, only the breaks differ
    assert lines["60"][0].startswith("Verdict: None of the 2 F32 tensors is BF16-exact")


def test_verdict_wraps_at_the_terminals_width(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    path = tmp_path / "plus-one.gguf"
    plus_one_model(path)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 72, 0, 0))  # 40 rows, 72 columns
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pyscan", str(path), "--quiet"], stdout=follower, stderr=subprocess.PIPE,
            cwd=tempfile.gettempdir(), env={k: v for k, v in os.environ.items() if k != "COLUMNS"}, timeout=300,
            check=False,
        )  # fmt: skip
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed and everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    assert done.returncode == 0, done.stderr
    out = b"".join(chunks).decode().replace("\r\n", "\n")
    lines = verdict_lines(out)
    assert len(lines) > 3 and max(map(len, lines)) <= 72 and max(map(len, lines)) > 60


def test_counts_of_one_are_singular(tmp_path: Path) -> None:
    import numpy as np
    from models import write

    path = tmp_path / "one.gguf"
    write(path, [("w", np.ones(4, dtype=np.float32), None)])  # GGUFWriter adds general.architecture: 1 key
    out = pyscan_cli(str(path)).stdout
    assert ", 1 tensor, 1 metadata key" in out and "scanned 1 float tensor with" in out
    assert "The F32 tensor is already BF16-exact" in out
    dry = pyscan_cli(str(path), "--round", "m3", "--dry-run").stdout
    assert "of 1 F32 tensor changed" in dry
    batch = pyscan_cli(str(path), str(tmp_path))  # a file and a folder holding it: a batch of one file
    assert "1 file scanned" in batch.stdout and "1 files" not in batch.stdout, batch.stdout + batch.stderr
