"""The GGUF parser: header, metadata and tensor infos, validated against the file size."""

from pyscan.parser.ggml_types import GGML_TYPES, GGMLType, type_label
from pyscan.parser.metadata import MetadataArray, MetadataEntry, ValueType
from pyscan.parser.reader import GGUFFile, TensorInfo, open_gguf, open_model

__all__ = [
    "GGML_TYPES",
    "GGMLType",
    "GGUFFile",
    "MetadataArray",
    "MetadataEntry",
    "TensorInfo",
    "ValueType",
    "open_gguf",
    "open_model",
    "type_label",
]
