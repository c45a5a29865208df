"""Open a model file: map it, tell GGUF from safetensors by their first bytes, parse it, check it."""

from __future__ import annotations

import os
from collections.abc import Callable

from pyscan.errors import PyscanError
from pyscan.native import Mapping, map_file
from pyscan.parser.gguf import MAGIC, parse_gguf
from pyscan.parser.model import ModelFile


def open_model(path: str | os.PathLike[str], writable: bool = False, header_only: bool = False) -> ModelFile:
    """Map and parse a GGUF or safetensors file, told apart by their first bytes.

    header_only: a file whose tensor data is missing or cut still opens (``missing`` names
    those tensors, and reading them is an error): the header of a partial download.
    """
    mapping = map_file(path, writable)
    # safetensors starts with a little-endian u64 header length, then the JSON header's "{"; a file
    # named .safetensors that is not GGUF is read as one, so that its error says what is wrong there.
    looks_like_safetensors = mapping.size > 8 and mapping.buffer[8] == ord("{")
    if bytes(mapping.buffer[:4]) != MAGIC and (looks_like_safetensors or os.fspath(path).endswith(".safetensors")):
        from pyscan.parser.safetensors import parse_safetensors

        return _checked(mapping, lambda m: parse_safetensors(m, header_only))
    return _checked(mapping, lambda m: parse_gguf(m, header_only))


def _checked(mapping: Mapping, parse_mapping: Callable[[Mapping], ModelFile]) -> ModelFile:
    """Parse, then make sure the header was read from the file and not from the zero pages of a shrunk one."""
    try:
        model = parse_mapping(mapping)
    except PyscanError:
        mapping.check()  # a header that reads as garbage because the file shrank: say that instead
        raise
    mapping.check()
    return model
