"""A model file, whatever its format: header facts, metadata, tensor infos, zero-copy views.

The GGUF reader (parser/gguf.py) and the safetensors reader (parser/safetensors.py) both give a
ModelFile; parser/opener.py tells the formats apart.  Consumers ask ``format``, never the version.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:  # numpy is imported only for to_numpy(): it costs ~100 ms at start-up
    import numpy as np

from pyscan.errors import PyscanError
from pyscan.native import Mapping
from pyscan.parser.ggml_types import GGMLType
from pyscan.parser.metadata import MetadataEntry, MetadataValue
from pyscan.text import quote

ModelFormat = Literal["gguf", "safetensors"]

# numpy dtypes of the tensor types that have a plain element layout.
PLAIN_DTYPES: dict[str, str] = {
    "U8": "u1", "U16": "u2", "U32": "u4", "U64": "u8", "BOOL": "?",  # safetensors only
    "F32": "f4", "F16": "f2", "F64": "f8", "I8": "i1", "I16": "i2", "I32": "i4", "I64": "i8",
}  # fmt: skip


class TensorInfo(NamedTuple):
    """One tensor as the header describes it.

    ``shape`` lists dimensions innermost first (ne0 = row length), as GGUF
    stores them; ``offset`` is absolute.  ``nbytes`` and ``ggml_type`` are None
    for a type id pyscan does not know: such a tensor is listed, never read.
    """

    name: str
    type_id: int | None  # None: a dtype GGUF has no id for (safetensors U8, BOOL, ...)
    type_name: str
    shape: tuple[int, ...]
    n_elements: int
    offset: int
    nbytes: int | None
    ggml_type: GGMLType | None


class ModelFile:
    """A parsed model file over a memory mapping.  Use ``pyscan.open(path)``.

    ``version`` is the GGUF version (2 or 3), None for safetensors (which has none); ``alignment``
    is GGUF's data alignment, 1 for safetensors (which promises none).
    """

    __slots__ = ("path", "size", "version", "byte_order", "alignment", "data_offset", "metadata", "tensors",
                 "_mapping", "format", "missing")  # fmt: skip

    def __init__(
        self,
        path: str,
        size: int,
        version: int | None,
        byte_order: str,  # "little" or "big"
        alignment: int,
        data_offset: int,
        metadata: dict[str, MetadataEntry],
        tensors: list[TensorInfo],
        mapping: Mapping | None,
        format: ModelFormat = "gguf",
    ) -> None:
        self.path = path
        self.size = size
        self.version = version
        self.byte_order = byte_order
        self.alignment = alignment
        self.data_offset = data_offset
        self.metadata = metadata
        self.tensors = tensors
        self._mapping = mapping
        self.format = format
        # Tensors whose data is not (all) in the file; only a header-only open allows any.
        self.missing = frozenset(t.name for t in tensors if t.offset + (t.nbytes or 0) > size)

    def __repr__(self) -> str:
        state = "" if self._mapping is not None else ", closed"
        return (
            f"ModelFile({self.path!r}, {self.format}{'' if self.version is None else f' v{self.version}'}, "
            f"{self.byte_order}-endian, "
            f"{len(self.tensors)} tensors, {len(self.metadata)} metadata keys{state})"
        )

    @property
    def n_kv(self) -> int:
        return len(self.metadata)

    @property
    def described_size(self) -> int:
        """The size the header describes: the end of the last tensor's data (at least the header)."""
        return max([self.data_offset, *(t.offset + (t.nbytes or 0) for t in self.tensors)])

    def require_data(self) -> None:
        """Raise unless every tensor's data is in the file (a header-only open of a cut file is not)."""
        if self.missing:
            first = next(t for t in self.tensors if t.name in self.missing)
            raise PyscanError(
                self.path, f"tensor {quote(first.name)} and {len(self.missing) - 1:,} more: their data is not in the "
                "file (opened header-only)", "usage",
            )  # fmt: skip

    @property
    def swap(self) -> bool:
        """True when the file's byte order differs from this machine's."""
        return self.byte_order != sys.byteorder

    @property
    def mapping(self) -> Mapping:
        if self._mapping is None:
            raise PyscanError(self.path, "the file has been closed", "usage")
        return self._mapping

    def value(self, key: str) -> MetadataValue | None:
        entry = self.metadata.get(key)
        return None if entry is None else entry.value

    def tensor(self, name: str) -> TensorInfo:
        for info in self.tensors:
            if info.name == name:
                return info
        raise KeyError(name)

    def to_numpy(self, tensor: TensorInfo | str) -> np.ndarray[Any, Any]:
        """A zero-copy, read-only view of a plain-typed tensor, numpy shape order.

        BF16 comes back as ml_dtypes.bfloat16, the same values from either byte order: from a file
        in the other order than this machine's, as a read-only copy (ml_dtypes' bfloat16 has no
        byte order but the machine's, so the words are swapped into one).
        """
        import numpy as np

        info = self.tensor(tensor) if isinstance(tensor, str) else tensor
        self._require_data(info)
        order = "<" if self.byte_order == "little" else ">"
        if info.type_name in PLAIN_DTYPES:
            dtype: Any = np.dtype(order + PLAIN_DTYPES[info.type_name])
        elif info.type_name == "BF16":
            dtype = np.dtype(order + "u2")  # the words, in the file's order
        else:
            raise PyscanError(
                self.path, f"tensor {quote(info.name)} of type {info.type_name} has no plain element layout", "usage"
            )
        array = np.frombuffer(self.mapping.buffer, dtype=dtype, count=info.n_elements, offset=info.offset)
        if info.type_name == "BF16":
            import ml_dtypes

            if self.swap:  # ml_dtypes' bfloat16 knows only this machine's byte order: swap into a copy
                array = array.astype(np.uint16)
                array.flags.writeable = False  # read-only, as the views are: a write could not reach the file
            array = array.view(ml_dtypes.bfloat16)
        try:
            return array.reshape(tuple(reversed(info.shape)) or ())
        except ValueError:  # e.g. [2^62, 0]: no elements, but a shape numpy cannot index
            raise PyscanError(
                self.path, f"tensor {quote(info.name)} has a shape numpy cannot represent: {list(info.shape)}", "usage"
            ) from None

    def words(self, tensor: TensorInfo) -> np.ndarray[Any, Any]:
        """A plain-typed tensor as a flat zero-copy view of unsigned words in the file's byte order.

        Straight from the bytes, with no shape: a zero-element shape like [2^62, 0] has none numpy can hold.
        """
        import numpy as np

        if tensor.nbytes is None:
            raise PyscanError(self.path, f"tensor {quote(tensor.name)} has no known size", "usage")
        self._require_data(tensor)
        width = tensor.nbytes // tensor.n_elements if tensor.n_elements else 1
        order = "<" if self.byte_order == "little" else ">"
        return np.frombuffer(
            self.mapping.buffer, dtype=np.dtype(f"{order}u{width}"), count=tensor.n_elements, offset=tensor.offset
        )

    def joined_words(self, tensors: Sequence[TensorInfo]) -> np.ndarray[Any, Any]:
        """The words() of tensors of one element width, one after the other, in a new array.

        Gathered with one index array rather than a view per tensor: 200,000 tiny tensors take
        ~0.05 s here, ~1 s through words() and a concatenate.
        """
        import numpy as np

        if not tensors:
            return np.zeros(0, dtype=np.uint8)
        for tensor in tensors:
            if tensor.nbytes is None:
                raise PyscanError(self.path, f"tensor {quote(tensor.name)} has no known size", "usage")
            self._require_data(tensor)
        widths = {(t.nbytes or 0) // t.n_elements if t.n_elements else 1 for t in tensors}
        width = widths.pop()
        starts = np.array([t.offset for t in tensors], dtype=np.int64)
        if widths or (starts % width != starts[0] % width).any():
            views = [self.words(t) for t in tensors]  # no common grid of words: one view each
            return np.concatenate(views, dtype=views[0].dtype)  # (concatenate alone gives native order)
        lengths = np.array([t.n_elements for t in tensors], dtype=np.int64)
        skew = int(starts[0] % width)
        order = "<" if self.byte_order == "little" else ">"
        grid = np.frombuffer(self.mapping.buffer, dtype=f"{order}u{width}", offset=skew,
                             count=(self.size - skew) // width)  # fmt: skip
        # Word index of each value: its tensor's first word plus its place in the tensor.
        first_words = (starts - skew) // width
        index = np.repeat(first_words - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))
        return grid[index]

    def _require_data(self, info: TensorInfo) -> None:
        if info.offset + (info.nbytes or 0) > self.size:
            raise PyscanError(self.path, f"tensor {quote(info.name)}: its data is not in the file (cut short)", "usage")

    def check(self) -> None:
        """Raise the one-line PyscanError if the file shrank while it was read (what was read is not data)."""
        if self._mapping is not None:
            self._mapping.check()

    def close(self) -> None:
        """Drop this file's hold on the mapping; views made from it stay valid."""
        self._mapping = None

    def __enter__(self) -> ModelFile:
        return self

    def __exit__(self, *exc: object) -> None:
        # Whatever the block computed or failed with, zeros read from a shrunk file explain it first.
        try:
            self.check()
        finally:
            self.close()
