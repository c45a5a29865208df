"""Generate the C source of the cffi binding ``pyscan._native`` (API mode).

Run by CMake at build time: ``python cffi_build.py OUTPUT.c``.  The
declarations come from the region of pyscan.h between the cffi markers, so the
header is the single source of truth and the compiler checks the binding
against it.
"""

import pathlib
import sys

import cffi

HEADER = pathlib.Path(__file__).with_name("pyscan.h")


def declarations() -> str:
    text = HEADER.read_text()
    start = text.index("/* cffi:begin */") + len("/* cffi:begin */")
    return text[start : text.index("/* cffi:end */")]


def main(output: str) -> None:
    ffi = cffi.FFI()
    ffi.cdef(declarations())
    ffi.set_source("pyscan._native", '#include "pyscan.h"')
    ffi.emit_c_code(output)


if __name__ == "__main__":
    main(sys.argv[1])
