"""Where pyscan may write: never over an input or a device, never over a file that appeared meanwhile.

Every output (-o, --html, --plot, the --resume report) follows pyscan.writer.atomic's rules; these
tests try to break them through the command line, with real links, device nodes, FIFOs, a real
second writer and leftovers of a killed run.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cli_runner import pyscan_cli as cli

from pyscan.demo import write_tinyllama_like


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".pyscan-" in p.name)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    write_tinyllama_like(path)
    return path


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


# ---- an output that is an input ----------------------------------------------------------------


@pytest.mark.parametrize("option", ["--html", "--plot"])
@pytest.mark.parametrize("spelling", ["same", "symlink", "hardlink"])
def test_a_picture_over_the_model_is_refused(model: Path, tmp_path: Path, option: str, spelling: str) -> None:
    target = {"same": model, "symlink": tmp_path / "link.gguf", "hardlink": tmp_path / "hard.gguf"}[spelling]
    if spelling == "symlink":
        target.symlink_to(model)
    if spelling == "hardlink":
        os.link(model, target)
    before = digest(model)
    for force in ([], ["--force"]):
        assert_refused(cli(str(model), option, str(target), *force), "input")
    assert digest(model) == before and temporaries(tmp_path) == []


def test_a_diff_page_over_either_input_is_refused(model: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.gguf"
    other.write_bytes(model.read_bytes())
    before = digest(model)
    for target in (model, other):
        assert_refused(cli("diff", str(model), str(other), "--html", str(target), "--force"), "input")
    assert digest(model) == before == digest(other)


@pytest.mark.parametrize("options", [["--json"], ["--header-only"], ["--header-only", "--json"]])
def test_stdout_appended_to_the_model_is_refused(model: Path, options: list[str]) -> None:
    before = digest(model)
    with open(model, "a") as appended:
        result = subprocess.run(
            [sys.executable, "-m", "pyscan", str(model), *options], stdout=appended, stderr=subprocess.PIPE,
            text=True, check=False, timeout=60, cwd=tempfile.gettempdir(),
        )  # fmt: skip
    assert_refused(result, "standard output")
    assert digest(model) == before


def run_appending(
    args: list[str], stderr_into: Path, stdout_into: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """`pyscan ARGS 2>> stderr_into` (and `>> stdout_into`, else stdout piped back)."""
    with open(stderr_into, "ab") as err, open(stdout_into or os.devnull, "ab") as out:
        return subprocess.run(
            [sys.executable, "-m", "pyscan", *args], stdout=out if stdout_into else subprocess.PIPE, stderr=err,
            check=False, timeout=120, cwd=tempfile.gettempdir(),
        )  # fmt: skip


def refused_on_stdout(result: subprocess.CompletedProcess[bytes]) -> None:
    assert result.returncode == 2, result
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyscan: standard error is redirected into an input"), lines
    assert len(lines[0]) <= 1000


@pytest.mark.parametrize(
    "options",
    [[], ["--json"], ["--header-only"], ["--per-tensor"], ["--no-such-option"], ["--threads", "0"], ["--help"]],
)
def test_stderr_appended_to_the_model_is_refused(model: Path, options: list[str]) -> None:
    # The error line, an argparse complaint, a warning or the bar would otherwise grow the model itself.
    before = digest(model)
    refused_on_stdout(run_appending([str(model), *options], stderr_into=model))
    assert digest(model) == before
    # both streams into the model: nothing is written anywhere, the status alone says it
    result = run_appending([str(model), *options], stderr_into=model, stdout_into=model)
    assert result.returncode == 2 and digest(model) == before


def test_stderr_appended_to_any_input_is_refused(model: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.gguf"
    other.write_bytes(model.read_bytes())
    text = tmp_path / "t.txt"
    text.write_text("some text to score " * 50)
    report = tmp_path / "r.jsonl"
    report.write_text("")
    link = tmp_path / "hard.gguf"
    os.link(model, link)
    cases = [
        (["diff", str(model), str(other)], other),
        (["diff", str(model), str(other), "--json"], model),
        (["eval", str(model), str(other), f"--text={text}"], text),  # an option's value, spelled --opt=FILE
        (["experiment", str(model), "--text", str(text)], text),
        ([str(tmp_path), "--jsonl"], other),  # a file found in a folder: known only after the walk
        ([str(model), str(other), "--resume", str(report)], report),
        ([str(model), "--truncate", "bf16", "--dry-run"], link),  # another name of the input
    ]
    for args, into in cases:
        before = into.read_bytes()
        refused_on_stdout(run_appending(args, stderr_into=into))
        assert into.read_bytes() == before, args


def test_stdout_appended_to_an_input_is_refused_before_argparse(model: Path) -> None:
    before = digest(model)
    with open(model, "ab") as appended:  # --help would print its page into the model
        result = subprocess.run(
            [sys.executable, "-m", "pyscan", str(model), "--help"], stdout=appended, stderr=subprocess.PIPE,
            text=True, check=False, timeout=60, cwd=tempfile.gettempdir(),
        )  # fmt: skip
    assert_refused(result, "standard output is redirected into an input")
    assert digest(model) == before


def test_stderr_appended_to_an_output_is_refused(model: Path, tmp_path: Path) -> None:
    """`--html r.html 2>> r.html`: the "already exists" refusal would have grown the page it keeps."""
    for option in ("--html", "--plot", "-o"):
        page = tmp_path / "kept.out"
        page.write_bytes(b"keep me")
        extra = ["--truncate", "bf16"] if option == "-o" else []
        for spelling in ([option, str(page)], [f"{option}={page}"] if option != "-o" else ["-o", str(page)]):
            result = run_appending([str(model), *extra, *spelling], stderr_into=page)
            assert result.returncode == 2, result
            assert result.stdout.decode().startswith("pyscan: standard error is redirected into a file this command")
            assert page.read_bytes() == b"keep me", spelling


def test_a_subcommand_name_is_not_taken_for_a_file(model: Path, tmp_path: Path) -> None:
    """`pyscan diff A B 2> diff` in a folder: the word diff names the subcommand, not the file stderr went to."""
    into = tmp_path / "diff"
    into.write_bytes(b"")
    with open(into, "ab") as err:
        result = subprocess.run(
            [sys.executable, "-m", "pyscan", "diff", str(model), str(model)], stdout=subprocess.PIPE, stderr=err,
            check=False, timeout=120, cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 0 and result.stdout.decode().startswith("identical"), result


def run_with_closed(fd: int, args: list[str]) -> subprocess.CompletedProcess[str]:
    """`pyscan ARGS >&-` (fd 1) or `2>&-` (fd 2): the stream closed, not redirected."""
    return subprocess.run(
        ["sh", "-c", f'exec "$@" {fd}>&-', "sh", sys.executable, "-m", "pyscan", *args],
        stdout=subprocess.PIPE if fd != 1 else None, stderr=subprocess.PIPE if fd != 2 else None,
        text=True, check=False, timeout=120, cwd=tempfile.gettempdir(),
    )  # fmt: skip


def test_a_closed_stdout_is_refused_and_nothing_is_written(model: Path, tmp_path: Path) -> None:
    """`pyscan m.gguf >&-` ended in a traceback (sys.stdout was None), exit 1."""
    out = tmp_path / "out.gguf"
    for args in ([str(model)], [str(model), "--json"], [str(model), "--truncate", "bf16", "-o", str(out)]):
        result = run_with_closed(1, args)
        assert_refused(result, "standard output is closed")
        assert not out.exists() and temporaries(tmp_path) == []


def test_a_closed_stderr_leaves_the_work_done_and_the_status(model: Path, tmp_path: Path) -> None:
    """`pyscan m.gguf 2>&-` was an internal error (sys.stderr was None), exit 2 for a good file. Its fd is
    reopened on /dev/null, so the output's temporary file cannot take fd 2 and receive an error line."""
    import gguf
    import numpy as np

    result = run_with_closed(2, [str(model)])
    assert result.returncode == 0 and result.stdout.startswith(str(model)), result
    assert run_with_closed(2, [str(model), "--no-such-option"]).returncode == 2
    out = tmp_path / "out.gguf"
    result = run_with_closed(2, [str(model), "--truncate", "bf16", "-o", str(out)])
    assert result.returncode == 0, result
    before, after = gguf.GGUFReader(model), gguf.GGUFReader(out)
    for a, b in zip(before.tensors, after.tensors, strict=True):
        if a.tensor_type == gguf.GGMLQuantizationType.F32:
            want = np.asarray(a.data).view(np.uint32) & np.uint32(0xFFFF0000)
            np.testing.assert_array_equal(np.asarray(b.data).view(np.uint32), want)
        else:
            assert bytes(np.asarray(a.data).view(np.uint8)) == bytes(np.asarray(b.data).view(np.uint8))
    assert out.stat().st_size == model.stat().st_size and temporaries(tmp_path) == []


# ---- an output that is not a regular file --------------------------------------------------------


def special_file(tmp_path: Path) -> Path:
    """A character device node where we may make one (root), else a FIFO: neither may become a file."""
    path = tmp_path / "node"
    if os.geteuid() == 0:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    else:
        os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["--html", "{node}"],
        ["--html", "{node}", "--force"],
        ["--plot", "{node}", "--force"],
        ["--truncate", "bf16", "-o", "{node}", "--force"],
        ["--truncate", "bf16", "-o", "{node}"],
    ],
    ids=["html", "html-force", "plot-force", "o-force", "o"],
)
def test_a_device_or_fifo_is_never_replaced(model: Path, tmp_path: Path, args: list[str]) -> None:
    node = special_file(tmp_path)
    kind = stat.S_IFMT(os.lstat(node).st_mode)
    result = cli(str(model), *[a.format(node=node) for a in args], timeout=60)
    assert_refused(result, "not a regular file")
    assert stat.S_IFMT(os.lstat(node).st_mode) == kind and temporaries(tmp_path) == []


def test_an_existing_picture_is_replaced_only_with_force(model: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text("keep me")
    assert_refused(cli(str(model), "--html", str(page)), "already exists", "--force")
    assert page.read_text() == "keep me"
    result = cli(str(model), "--html", str(page), "--force")
    assert result.returncode == 0, result.stderr
    assert page.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    "args",
    [["--truncate", "bf16", "-o"], ["--html"], ["--plot"]],
    ids=["o", "html", "plot"],
)
@pytest.mark.parametrize("points_to", ["file", "nothing", "stdout"])
def test_a_link_is_never_replaced(model: Path, tmp_path: Path, args: list[str], points_to: str) -> None:
    """A rename over a link replaces the link: `-o /dev/stdout --force` would replace the system's /dev/stdout."""
    other, captured = tmp_path / "other.gguf", tmp_path / "stdout.txt"
    other.write_bytes(b"keep me")
    link = tmp_path / "link"
    link.symlink_to({"file": other, "nothing": tmp_path / "gone", "stdout": Path("/proc/self/fd/1")}[points_to])
    for force in ([], ["--force"]):
        with open(captured, "w") as stdout:
            result = subprocess.run(
                [sys.executable, "-m", "pyscan", str(model), "-q", *args, str(link), *force], stdout=stdout,
                stderr=subprocess.PIPE, text=True, check=False, timeout=120, cwd=tempfile.gettempdir(),
            )  # fmt: skip
        assert_refused(result, "symbolic link")
        assert link.is_symlink() and other.read_bytes() == b"keep me" and captured.read_text() == ""
    assert sorted(p.name for p in tmp_path.iterdir() if ".pyscan-" in p.name or p.name == "gone") == []


@pytest.mark.parametrize("name_bytes", [230, 231, 254, 255])
@pytest.mark.parametrize("option", [["--truncate", "bf16", "-o"], ["--html"]], ids=["o", "html"])
def test_names_up_to_name_max_are_written(model: Path, tmp_path: Path, name_bytes: int, option: list[str]) -> None:
    """The temporary name adds 25 bytes to the target's; a name of 231-255 bytes is still legal and written.
    Two-byte characters put a cut of the name in the middle of one."""
    stem = "é" * ((name_bytes - len(".gguf")) // 2) + "x" * ((name_bytes - len(".gguf")) % 2)
    target = tmp_path / f"{stem}.gguf"
    assert len(os.fsencode(target.name)) == name_bytes
    result = cli(str(model), *option, str(target))
    assert result.returncode == 0, result.stderr
    assert target.stat().st_size > 0 and temporaries(tmp_path) == []
    result = cli(str(model), *option, str(target), "--force")  # and replaced
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert temporaries(tmp_path) == []


# ---- an output that appears meanwhile -------------------------------------------------------------

# Run the command line; just before OUT is published, another "process" puts its own file at OUT.
APPEARS_MEANWHILE = """
import os, sys
from pyscan.writer import output
real = output._check_copy
def check_then_race(gguf, temporary, out):
    real(gguf, temporary, out)
    if os.path.exists(out):
        os.unlink(out)  # (the other writer's file takes the old one's place: a new inode)
    with open(out, "w") as other:
        other.write("the other writer's file")
output._check_copy = check_then_race
from pyscan.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    ("force", "existing", "said"),
    [(False, False, "appeared while"), (True, False, "appeared while"), (True, True, "was replaced or changed while")],
)
def test_an_out_that_appears_during_the_write_is_never_replaced(
    model: Path, tmp_path: Path, force: bool, existing: bool, said: str
) -> None:
    out = tmp_path / "out.gguf"
    if existing:
        out.write_text("the old file, which --force may replace")
    result = subprocess.run(
        [sys.executable, "-c", APPEARS_MEANWHILE, str(model), "--truncate", "bf16", "-o", str(out),
         *(["--force"] if force else [])],
        capture_output=True, text=True, check=False, timeout=120, cwd=tempfile.gettempdir(),
    )  # fmt: skip
    assert_refused(result, said)
    assert out.read_text() == "the other writer's file" and temporaries(tmp_path) == []


# ---- leftovers of a killed run ----------------------------------------------------------------------


def test_a_dead_runs_leftover_is_removed_and_named(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.gguf"
    stale = tmp_path / ".out.gguf.0123456789ab.pyscan-tmp"
    stale.write_bytes(b"half of a model")  # nobody holds its lock: its writer is gone
    result = cli(str(model), "--truncate", "bf16", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert f"removed {str(stale)!r}" in result.stderr and "killed" in result.stderr
    assert not stale.exists() and out.exists() and temporaries(tmp_path) == []


# Run the command line and die (as SIGKILL would) once OUT's temporary file is written, before the rename.
DIES_BEFORE_RENAME = """
import os, sys
from pyscan.writer import output
output._check_copy = lambda gguf, temporary, out: os._exit(9)
from pyscan.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("name_bytes", [12, 255])
def test_a_killed_runs_leftover_is_found_for_any_name(model: Path, tmp_path: Path, name_bytes: int) -> None:
    """The leftover of a write that died is removed by the next write to the same target, also where
    the target's name is too long to be part of its temporary name whole (cut inside a character)."""
    stem = "é" * ((name_bytes - len(".gguf")) // 2) + "x" * ((name_bytes - len(".gguf")) % 2)
    out = tmp_path / f"{stem}.gguf"
    killed = subprocess.run(
        [sys.executable, "-c", DIES_BEFORE_RENAME, str(model), "--truncate", "bf16", "-o", str(out)],
        capture_output=True, text=True, check=False, timeout=120, cwd=tempfile.gettempdir(),
    )  # fmt: skip
    assert killed.returncode == 9 and len(temporaries(tmp_path)) == 1, (killed.returncode, killed.stderr)
    result = cli(str(model), "--truncate", "bf16", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "removed" in result.stderr and "killed" in result.stderr, result.stderr
    assert out.exists() and temporaries(tmp_path) == []


def test_a_live_writers_temporary_file_is_left_alone(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.gguf"
    live = tmp_path / ".out.gguf.ba9876543210.pyscan-tmp"
    live.write_bytes(b"being written")
    with open(live, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running pyscan holds it
        result = cli(str(model), "--truncate", "bf16", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "being written by another running pyscan" in result.stderr
    assert live.read_bytes() == b"being written" and out.exists()


# ---- options that would be ignored ----------------------------------------------------------------


@pytest.mark.parametrize("write", [["--dry-run"], ["-o", "{tmp}/out.gguf"], ["--in-place"]])
@pytest.mark.parametrize("picture", ["--html", "--plot"])
def test_pictures_with_a_rewrite_are_a_usage_error(model: Path, tmp_path: Path, write: list[str], picture: str) -> None:
    before = digest(model)
    args = [a.format(tmp=tmp_path) for a in write]
    assert_refused(cli(str(model), "--truncate", "bf16", *args, picture, str(tmp_path / "p")), "describe a scan")
    assert digest(model) == before and not (tmp_path / "p").exists() and not (tmp_path / "out.gguf").exists()


SHRINK_IN_PLACE = """
import os, sys
from pyscan.writer import output
real = output.rewrite_tensors
def shrink_then_rewrite(gguf, *args, **kwargs):
    os.truncate(gguf.path, gguf.data_offset + 4096)
    return real(gguf, *args, **kwargs)
output.rewrite_tensors = shrink_then_rewrite
from pyscan.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_shrink_during_in_place_says_what_may_be_rewritten(model: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SHRINK_IN_PLACE, str(model), "--truncate", "m3", "--in-place"],
        capture_output=True, text=True, check=False, timeout=120, cwd=tempfile.gettempdir(),
    )  # fmt: skip
    assert_refused(result, "shrank", "may already be rewritten")
    assert "nothing was written" not in result.stderr


# ---- file modes: the umask applied by the kernel, never changed -------------------------------------

NO_UMASK_CALLS = """
import os, sys
os.umask(0o027)
def refuse(mask):
    raise AssertionError("os.umask called: it changes the mask of every thread of the process")
os.umask = refuse
from pyscan.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("output", [["--truncate", "bf16", "-o", "{tmp}/out.gguf"], ["--html", "{tmp}/out.html"]])
def test_outputs_get_the_umask_without_touching_it(model: Path, tmp_path: Path, output: list[str]) -> None:
    args = [a.format(tmp=tmp_path) for a in output]
    result = subprocess.run(
        [sys.executable, "-c", NO_UMASK_CALLS, str(model), *args],
        capture_output=True, text=True, check=False, timeout=120, cwd=tempfile.gettempdir(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = Path(args[-1])
    assert stat.S_IMODE(written.stat().st_mode) == 0o666 & ~0o027


def test_leftovers_of_another_target_are_not_touched(model: Path, tmp_path: Path) -> None:
    other = tmp_path / ".out.gguf.bak.0123456789ab.pyscan-tmp"  # a dead write of 'out.gguf.bak'
    other.write_bytes(b"not ours")
    result = cli(str(model), "--truncate", "bf16", "-o", str(tmp_path / "out.gguf"))
    assert result.returncode == 0 and "removed" not in result.stderr
    assert other.read_bytes() == b"not ours"


# An input named like a leftover of the target (a copy, a restored backup) is the user's file, not ours.


def low_halves_all_zero(path: Path) -> bool:
    """Whether every F32 tensor of path holds bf16 values only (read by the gguf package, not pyscan)."""
    import gguf
    import numpy as np

    tensors = [t for t in gguf.GGUFReader(path).tensors if t.tensor_type == gguf.GGMLQuantizationType.F32]
    return bool(tensors) and all(not np.any(np.asarray(t.data).view(np.uint32) & 0xFFFF) for t in tensors)


@pytest.mark.parametrize("spelling", ["same", "hardlink"])
def test_an_input_named_like_a_leftover_of_the_output_is_kept(model: Path, tmp_path: Path, spelling: str) -> None:
    out = tmp_path / "out.gguf"
    lookalike = tmp_path / ".out.gguf.0123456789ab.pyscan-tmp"
    os.link(model, lookalike)  # no lock held on it: it looks like a dead run's
    before = digest(model)
    source = lookalike if spelling == "same" else model
    result = cli(str(source), "--truncate", "bf16", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "removed" not in result.stderr and "input" in result.stderr, result.stderr
    assert lookalike.exists() and digest(lookalike) == before and digest(model) == before
    assert low_halves_all_zero(out)


def test_an_input_named_like_a_leftover_of_the_page_is_kept(model: Path, tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    lookalike = tmp_path / ".r.html.0123456789ab.pyscan-tmp"
    lookalike.write_bytes(model.read_bytes())
    before = digest(lookalike)
    result = cli("diff", str(model), str(lookalike), "--html", str(page))
    assert result.returncode == 0, result.stderr
    assert "removed" not in result.stderr, result.stderr
    assert lookalike.exists() and digest(lookalike) == before
    assert page.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")


def test_rewrite_file_keeps_an_input_named_like_a_leftover(model: Path, tmp_path: Path) -> None:
    import warnings

    import pyscan

    out = tmp_path / "out.gguf"
    lookalike = tmp_path / ".out.gguf.0123456789ab.pyscan-tmp"
    lookalike.write_bytes(model.read_bytes())
    before = digest(lookalike)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        pyscan.rewrite_file(lookalike, pyscan.parse_mode(truncate="bf16"), output=out)
    assert lookalike.exists() and digest(lookalike) == before
    assert low_halves_all_zero(out)


def test_a_checkpoint_shard_named_like_a_leftover_of_the_page_is_kept(tmp_path: Path) -> None:
    import json
    import shutil

    import checkpoints as ck

    folder = tmp_path / "hf"
    ck.write_checkpoint(folder, "llama", shards=2)
    old, lookalike = "model-00002-of-00002.safetensors", ".r.html.0123456789ab.pyscan-tmp"
    (folder / old).rename(folder / lookalike)
    index = folder / "model.safetensors.index.json"
    weight_map = json.loads(index.read_text())["weight_map"]
    index.write_text(json.dumps({"weight_map": {k: lookalike if v == old else v for k, v in weight_map.items()}}))
    shutil.copytree(folder, tmp_path / "copy")
    before = digest(folder / lookalike)
    result = cli("diff", str(folder), str(tmp_path / "copy"), "--html", str(folder / "r.html"))
    assert result.returncode == 0, result.stderr
    assert "removed" not in result.stderr, result.stderr
    assert (folder / lookalike).exists() and digest(folder / lookalike) == before
    assert (folder / "r.html").exists()
