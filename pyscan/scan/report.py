"""The scan report: plain typed objects with ``to_dict()`` for JSON.

The dict form is a public interface (see the README's JSON schema): add keys,
never rename or remove them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pyscan.parser.model import ModelFormat
from pyscan.scan.verdict import classify

# The counts reported for each scanned element type, in this order.
COUNTS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "F32": ("low16_zero", "bf16_exact", "fp16_exact", "low16_zero_minus_one", "nan", "inf", "zero", "subnormal"),
    "F16": ("bf16_exact", "nan", "inf", "zero", "subnormal"),
    "BF16": ("bf16_exact", "fp16_exact", "nan", "inf", "zero", "subnormal"),
}
SCANNED_TYPES = frozenset(COUNTS_BY_TYPE)


class TensorReport:
    """One tensor: its header facts and, for F32/F16/BF16 tensors scanned, the counts."""

    __slots__ = ("name", "type", "shape", "n_elements", "offset", "nbytes", "counts", "byte_order_suspect")

    def __init__(
        self,
        name: str,
        type: str,
        shape: tuple[int, ...],
        n_elements: int,
        offset: int,
        nbytes: int | None,
        counts: dict[str, int] | None = None,
        byte_order_suspect: bool = False,  # reads far more plausibly in the other byte order
    ) -> None:
        self.name = name
        self.type = type
        self.shape = shape
        self.n_elements = n_elements
        self.offset = offset
        self.nbytes = nbytes
        self.counts = counts
        self.byte_order_suspect = byte_order_suspect

    def __repr__(self) -> str:
        return f"TensorReport({self.name!r}, {self.type}, shape={list(self.shape)}, counts={self.counts})"

    @property
    def scanned(self) -> bool:
        return self.counts is not None

    def count(self, key: str) -> int:
        return 0 if self.counts is None else self.counts.get(key, 0)

    def fraction(self, key: str) -> float | None:
        """count / n_elements, or None when not scanned or when the count does not apply."""
        if self.counts is None or key not in self.counts:
            return None
        return self.counts[key] / self.n_elements if self.n_elements else 1.0

    def to_dict(self) -> dict[str, Any]:
        if self.counts is None:
            return {"name": self.name, "type": self.type, "shape": list(self.shape), "n_elements": self.n_elements,
                    "offset": self.offset, "nbytes": self.nbytes, "scanned": False}  # fmt: skip
        return {"name": self.name, "type": self.type, "shape": list(self.shape), "n_elements": self.n_elements,
                "offset": self.offset, "nbytes": self.nbytes, "scanned": True, **self.counts,
                "byte_order_suspect": self.byte_order_suspect}  # fmt: skip


class FileReport:
    """A whole file: header facts, type distribution, every tensor."""

    __slots__ = ("path", "size", "version", "endianness", "alignment", "n_kv", "architecture", "model_name",
                 "kernel", "tensors", "warnings", "format", "plus_one_max_abs_error")  # fmt: skip

    def __init__(
        self,
        path: str,
        size: int,
        version: int | None,  # the GGUF version; 0 for safetensors, which has none
        endianness: str,
        alignment: int,
        n_kv: int,
        architecture: str | None,
        model_name: str | None,
        kernel: str,
        format: ModelFormat = "gguf",
    ) -> None:
        self.path = path
        self.size = size
        self.version = version
        self.endianness = endianness
        self.alignment = alignment
        self.n_kv = n_kv
        self.architecture = architecture
        self.model_name = model_name
        self.kernel = kernel
        self.format = format
        self.tensors: list[TensorReport] = []
        self.warnings: list[str] = []
        self.plus_one_max_abs_error: float | None = None  # see pyscan.scan.verdict.truncation_error

    def __repr__(self) -> str:
        return f"FileReport({self.path!r}, {self.n_tensors} tensors, {len(self.scanned())} scanned)"

    @property
    def n_tensors(self) -> int:
        return len(self.tensors)

    @property
    def tensor_types(self) -> dict[str, int]:
        """Type name -> number of tensors, most common first."""
        return dict(Counter(t.type for t in self.tensors).most_common())

    def scanned(self, type_name: str | None = None) -> list[TensorReport]:
        return [t for t in self.tensors if t.scanned and (type_name is None or t.type == type_name)]

    def to_dict(self, tensor_records: bool = True) -> dict[str, Any]:
        """The JSON document; tensor_records=False leaves "tensors" empty (report_json fills it faster)."""
        return {
            "path": self.path,
            "format": self.format,
            "size": self.size,
            "version": 0 if self.version is None else self.version,  # as documented: 0 for safetensors
            "endianness": self.endianness,
            "alignment": self.alignment,
            "n_tensors": self.n_tensors,
            "n_kv": self.n_kv,
            "architecture": self.architecture,
            "name": self.model_name,
            "kernel": self.kernel,
            "tensor_types": self.tensor_types,
            "tensors": [t.to_dict() for t in self.tensors] if tensor_records else [],
            "warnings": self.warnings,
            "verdict": verdict_dict(self),
        }


def verdict_dict(report: FileReport) -> dict[str, Any]:
    """The --json "verdict" object: what explains the F32 values, and the counts behind it."""
    return classify(report.tensors, report.plus_one_max_abs_error).to_dict()
