"""Run the pyscan command line as a user does: a separate process, outside the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile


def pyscan_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`python -m pyscan ARGS`; run from the temp folder so `-m pyscan` finds the installed package."""
    return subprocess.run(
        [sys.executable, "-m", "pyscan", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        cwd=tempfile.gettempdir(),
    )


def python_script(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -c SCRIPT ARGS` outside the source tree: a test's own driver around the installed pyscan."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd=tempfile.gettempdir(),
    )
