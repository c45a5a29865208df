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
