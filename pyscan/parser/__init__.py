"""Reading model files: GGUF (parser/gguf.py) and safetensors (parser/safetensors.py) into one ModelFile.

``open_model(path)`` (``pyscan.open``) maps a file, tells the formats apart and parses it; every
count, length, offset and size is checked against the file before it is used.
"""

from pyscan.parser.ggml_types import GGML_TYPES, GGMLType, type_label
from pyscan.parser.metadata import MetadataArray, MetadataEntry, ValueType
from pyscan.parser.model import ModelFile, TensorInfo
from pyscan.parser.opener import open_model

__all__ = [
    "GGML_TYPES",
    "GGMLType",
    "MetadataArray",
    "MetadataEntry",
    "ModelFile",
    "TensorInfo",
    "ValueType",
    "open_model",
    "type_label",
]
