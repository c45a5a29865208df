"""The parent's handle on one engine process (pyscan.eval.child): requests out, answers and arrays in.

A child that dies (a crash in llama.cpp, an abort, the OOM killer) shows up as a closed pipe; that
becomes one PyscanError naming the model and the signal, never a traceback.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Any

from pyscan.errors import PyscanError

MISSING_EXTRA = (
    "pyscan eval and experiment need llama-cpp-python: pip install 'pyscan[eval]' (on CPUs with AVX-512/AMX "
    'build it with CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir \'pyscan[eval]\')'
)


class Engine:
    """One model loaded in its own llama-cpp-python process."""

    def __init__(self, path: str, ctx: int, threads: int) -> None:
        self.path = path
        # The child's stderr (llama.cpp's log) goes to a file, not a pipe nobody drains.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._process = subprocess.Popen(
            [sys.executable, "-m", "pyscan.eval.child", path, str(ctx), str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._requests: IO[bytes] = self._process.stdin
        self._answers: IO[bytes] = self._process.stdout
        hello = self._receive("loading the model")
        self.n_vocab: int = hello["n_vocab"]
        self.bos: int = hello["bos"]

    def tokenize(self, text: str) -> list[int]:
        tokens: list[int] = self._ask(("tokenize", text), "tokenizing the text")["tokens"]
        return tokens

    def score(self, tokens: list[int]) -> Any:
        """The float32 logits (rows: positions len/2 .. len-2) of one chunk."""
        return self._ask(("score", tokens), "evaluating a chunk")["array_value"]

    def score_blocks(self, tokens: list[int], rows: int) -> Iterator[tuple[int, Any]]:
        """The same logits as score(), as (first row, float32 array of up to rows rows), read as they come.

        Each block lives in one buffer, overwritten by the next: use it before asking for the next one.
        The whole chunk of a candidate (256 MiB at --ctx 512 with a 262,144-token vocabulary) never
        exists in this process.  Consume the iterator to its end before the next request.
        """
        import numpy as np

        doing = "evaluating a chunk"
        header = self._ask(("score", tokens), doing, read_array=False)
        dtype, (n, vocab) = header["array"]
        buffer = np.empty((max(1, min(rows, n)), vocab), dtype=np.dtype(dtype))
        for start in range(0, n, rows):
            block = buffer[: min(rows, n - start)]
            try:
                self._fill(block)
            except (EOFError, OSError):
                raise PyscanError(self.path, f"the inference engine {self._death()} while {doing}", "io") from None
            yield start, block

    def generate(self, prompt: str, n_tokens: int) -> dict[str, Any]:
        return self._ask(("generate", prompt, n_tokens), "generating")

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                pickle.dump(("quit",), self._requests)
                self._requests.close()
            except OSError:
                pass
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None and self._process.poll() is None:
            self._process.kill()  # interrupted or failed: do not wait for a chunk to finish
            self._process.wait()
        self.close()

    def _ask(self, request: tuple[Any, ...], doing: str, read_array: bool = True) -> dict[str, Any]:
        try:
            pickle.dump(request, self._requests, protocol=pickle.HIGHEST_PROTOCOL)
            self._requests.flush()
        except OSError:
            pass  # the child is gone: _receive says how
        return self._receive(doing, read_array)

    def _receive(self, doing: str, read_array: bool = True) -> dict[str, Any]:
        try:
            header: dict[str, Any] = pickle.load(self._answers)
            if "array" in header and read_array:
                header["array_value"] = self._read_array(*header["array"])
        except (EOFError, OSError, pickle.UnpicklingError):
            raise PyscanError(self.path, f"the inference engine {self._death()} while {doing}", "io") from None
        if "error" in header:
            if header["error"] == "missing":
                raise PyscanError(None, MISSING_EXTRA, "usage")
            detail = " ".join(str(header["detail"]).split())
            raise PyscanError(self.path, f"the inference engine failed while {doing}: {detail}", "format")
        return header

    def _read_array(self, dtype: str, shape: tuple[int, ...]) -> Any:
        import numpy as np

        array = np.empty(shape, dtype=np.dtype(dtype))
        self._fill(array)
        return array

    def _fill(self, array: Any) -> None:
        """Read exactly array's bytes from the pipe into it (EOFError if the child is gone)."""
        view = memoryview(array.data).cast("B")
        done = 0
        while done < len(view):
            n = self._answers.readinto(view[done:])  # type: ignore[attr-defined]
            if not n:
                raise EOFError
            done += n

    def _death(self) -> str:
        try:
            code = self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return "stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"crashed ({name})"
        return f"exited with status {code}"


def engine_threads(threads: int | None) -> int:
    return threads if threads else max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
