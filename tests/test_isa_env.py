"""PYSCAN_ISA as the C library reads it: pyscan_isa_default() (what kernel_bench and the fuzzer use)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from pyscan import native

# In a fresh process: the C default is chosen once, at its first call.
PROBE = "from pyscan import native; print(native.ISA_NAMES[native.lib.pyscan_isa_default()])"


def c_default(value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYSCAN_ISA"}
    if value is not None:
        env["PYSCAN_ISA"] = value
    # Outside the source tree, so `-c` imports the installed pyscan, not the uncompiled sources.
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir()
    )
    return result.stdout.strip()


def best() -> str:
    return native.available_isas()[-1]  # the table runs from narrowest to widest


@pytest.mark.parametrize("isa", native.available_isas())
def test_c_default_follows_pyscan_isa(isa: str) -> None:
    assert c_default(isa) == isa
    assert c_default(f"  {isa.upper()}\t") == isa  # as Python reads it: case and blanks ignored


@pytest.mark.parametrize("value", [None, "", "   ", "avx1024", "scalar2", "sca"])
def test_c_default_is_the_best_path_otherwise(value: str | None) -> None:
    assert c_default(value) == best()


def test_an_unavailable_path_falls_back_to_the_best() -> None:
    missing = [name for name in native.ISA_NAMES if name not in native.available_isas()]
    if not missing:
        pytest.skip("every path runs here")
    assert c_default(missing[0]) == best()
