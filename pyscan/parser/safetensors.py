"""The safetensors reader (being written): parse_safetensors(mapping) -> GGUFFile(format="safetensors")."""

from __future__ import annotations

from pyscan.errors import PyscanError
from pyscan.native import Mapping
from pyscan.parser.reader import GGUFFile


def parse_safetensors(mapping: Mapping) -> GGUFFile:
    raise PyscanError(mapping.path, "safetensors files are not supported yet")
