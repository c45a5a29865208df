"""A file that shrinks while it is mapped: a clean error, never a SIGBUS, and no output left behind.

Each case runs in its own process, so a SIGBUS that got through would show as a signal exit.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runner import python_script as run

from pyscan.demo import write_tinyllama_like

SCAN = """
import os, sys
from pyscan.errors import PyscanError
from pyscan.parser import open_model
from pyscan.scan import scan_file
gguf = open_model(sys.argv[1])
os.truncate(sys.argv[1], gguf.data_offset + 4096)  # the tensors' pages now lie past the end
try:
    scan_file(gguf, threads=int(sys.argv[2]))
except PyscanError as error:
    print(error)
    sys.exit(2)
"""

WRITE = """
import os, sys
from pyscan.cli.main import main
from pyscan.writer import output
real = output.rewrite_tensors
def shrink_then_rewrite(gguf, *args, **kwargs):
    if kwargs.get("sink") is not None:
        os.truncate(gguf.path, gguf.data_offset + 4096)
    return real(gguf, *args, **kwargs)
output.rewrite_tensors = shrink_then_rewrite
sys.exit(main([sys.argv[1], *sys.argv[2:]]))
"""


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    write_tinyllama_like(path)
    return path


@pytest.mark.parametrize("threads", ["1", "2"])
def test_scan_of_a_shrunk_file_is_an_error_not_a_crash(model: Path, threads: str) -> None:
    result = run(SCAN, str(model), threads)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "shrank" in result.stdout and str(model) in result.stdout


@pytest.mark.parametrize("mode", [["--truncate", "bf16"], ["--fake-quant", "int8"], ["--round", "fp16"]])
def test_write_from_a_shrinking_file_leaves_nothing(model: Path, tmp_path: Path, mode: list[str]) -> None:
    out = tmp_path / "out.gguf"
    result = run(WRITE, str(model), *mode, "-o", str(out))
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "shrank" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".pyscan-" in p.name]


def test_a_sigbus_outside_pyscan_still_kills(tmp_path: Path) -> None:
    """The guard only catches faults inside kernel calls; any other SIGBUS keeps its default action."""
    script = (
        "import os, signal, pyscan.native as n; n.count_into(n.new_counts(), n.F32, 0, 0, False); "
        "os.kill(os.getpid(), signal.SIGBUS)"
    )
    result = run(script)
    # SIGBUS kills it (-7); under AddressSanitizer, ASan's own handler reports the BUS and aborts (-6).
    assert result.returncode == -7 or (result.returncode == -6 and "AddressSanitizer: BUS" in result.stderr)
