"""Metadata values: scalars decoded at parse time, arrays located but decoded only on request."""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:  # numpy is imported only when an array is asked for: it costs ~100 ms at start-up
    import numpy as np


class ValueType(IntEnum):
    """GGUF metadata value types, numbered as in the spec."""

    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


# struct / numpy codes of the fixed-size value types.
SCALAR_CODES: dict[ValueType, str] = {
    ValueType.UINT8: "B", ValueType.INT8: "b", ValueType.UINT16: "H", ValueType.INT16: "h",
    ValueType.UINT32: "I", ValueType.INT32: "i", ValueType.FLOAT32: "f", ValueType.BOOL: "B",
    ValueType.UINT64: "Q", ValueType.INT64: "q", ValueType.FLOAT64: "d",
}  # fmt: skip
SCALAR_SIZES: dict[ValueType, int] = {t: struct.calcsize(c) for t, c in SCALAR_CODES.items()}


class MetadataArray:
    """An array value, located in the file but not decoded.

    ``to_numpy()`` gives numeric arrays as a zero-copy view; ``to_list()``
    decodes any array (strings as UTF-8, invalid bytes replaced).
    """

    __slots__ = ("element_type", "count", "offset", "nbytes", "_buf", "_byte_order")

    def __init__(
        self,
        element_type: ValueType,
        count: int,
        offset: int,  # absolute, of the first element
        nbytes: int,
        buf: memoryview,
        byte_order: Literal["<", ">"],
    ) -> None:
        self.element_type = element_type
        self.count = count
        self.offset = offset
        self.nbytes = nbytes
        self._buf = buf
        self._byte_order = byte_order

    def __repr__(self) -> str:
        return f"MetadataArray({self.element_type.name}, count={self.count}, offset={self.offset})"

    def __len__(self) -> int:
        return self.count

    def to_numpy(self) -> np.ndarray[Any, Any]:
        if self.element_type == ValueType.STRING:
            raise TypeError("a string array has no numpy form; use to_list()")
        import numpy as np

        dtype = np.dtype(SCALAR_CODES[self.element_type]).newbyteorder(self._byte_order)
        array = np.frombuffer(self._buf, dtype=dtype, count=self.count, offset=self.offset)
        return array.astype(bool) if self.element_type == ValueType.BOOL else array

    def same_elements(self, other: MetadataArray) -> bool:
        """Whether two arrays hold the same elements: their stored bytes compared where the byte order
        is the same (a vocabulary of 262,144 strings is not decoded), the decoded values otherwise."""
        if (self.element_type, self.count) != (other.element_type, other.count):
            return False
        if self._byte_order == other._byte_order:
            mine = self._buf[self.offset : self.offset + self.nbytes]
            return self.nbytes == other.nbytes and mine == other._buf[other.offset : other.offset + other.nbytes]
        return self.to_list() == other.to_list()

    def to_list(self) -> list[Any]:
        if self.element_type != ValueType.STRING:
            return list(self.to_numpy().tolist())
        length = struct.Struct(self._byte_order + "Q")
        items: list[Any] = []
        pos = self.offset
        for _ in range(self.count):  # bounds were checked when the file was parsed
            (n,) = length.unpack_from(self._buf, pos)
            items.append(bytes(self._buf[pos + 8 : pos + 8 + n]).decode("utf-8", "replace"))
            pos += 8 + n
        return items


MetadataValue = int | float | bool | str | MetadataArray


class MetadataEntry(NamedTuple):
    key: str
    type: ValueType
    value: MetadataValue
