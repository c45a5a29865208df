"""Compare two GGUF files tensor by tensor, value by value, and their metadata.

Tensors are matched by name.  Common tensors of the same type and shape are
compared by value when the type has a plain element layout (F32, F16, BF16,
F64, I8-I64; two float types, F16 against F32, widened to float64 first) and
byte for byte otherwise (quantized blocks have no single byte
order to normalize, so their bytes are the only faithful comparison).

Value rule: two elements differ when their bit patterns, read in the file's
byte order, differ; except that two NaNs are equal whatever their payloads.
So +0 and -0 differ (their bits do), and a file and its byte-swapped twin hold
the same values.  A tensor whose bits differ while its values do not (+0 against
-0, quantized blocks that dequantize alike) is ``different`` with the relation
``equal-values``.  Statistics are computed in float64 (exact for every float
type, approximate for integers above 2**53):

* ``max_abs_diff``: max |a - b| over differing positions where neither is NaN
  (so +inf against a finite value gives inf; a NaN mismatch is counted in
  ``n_values_differ`` and ``n_nan_mismatch`` only);
* ``max_rel_diff``: max |a - b| / |a| over those positions where a is finite
  and nonzero (0 when there is none);
* ``rmse``: root mean square of a - b over every position where both are
  finite (None when there is none, e.g. an empty tensor).

Data is read from the zero-copy views of the two mappings in bounded chunks,
so memory stays bounded however large the files are.

Metadata is compared key by key: a key only in one file, a changed value type
or a changed value is a difference.  Scalars compare by value (floats by bits,
NaNs equal); arrays by their element bytes in native byte order (strings by
their bytes), so byte order alone is no metadata difference either.

``DiffReport.to_dict()`` is the ``--json`` object.  It holds only strict JSON:
non-finite floats become the strings ``"inf"``, ``"-inf"`` and ``"nan"``, and
``null`` means "does not apply".
"""

from __future__ import annotations

import bisect
import math
import os
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, Literal, NamedTuple

import numpy as np

from pyscan.diff.converter import expected_transform
from pyscan.diff.pairing import Pair, pair_tensors
from pyscan.diff.quant_error import ErrorStats
from pyscan.diff.relations import MAX_TRANSPOSED_ELEMENTS, Observer, Relation, Transform, relate, unexplained
from pyscan.diff.rows import readable
from pyscan.diff.scaled_sums import ScaledSum, add_squared_differences
from pyscan.diff.sides import Entry, ModelFacts, Side, SideFormat, file_side, open_side
from pyscan.diff.summary import relations_summary
from pyscan.json_text import json_float
from pyscan.parser.metadata import MetadataArray, MetadataEntry, ValueType
from pyscan.parser.model import ModelFile, TensorInfo
from pyscan.selection import chooses, nothing_selected
from pyscan.text import quote

CHUNK_ELEMENTS = 1 << 20  # about 50 MiB of float64 and mask temporaries per chunk
CHUNK_BYTES = 1 << 24  # for byte-compared tensors

Array = np.ndarray[Any, Any]

# Element types compared by value: native-order unsigned words -> numbers float64 can hold.
DECODERS: dict[str, Callable[[Array], Array]] = {
    "F32": lambda w: w.view(np.float32),
    "F16": lambda w: w.view(np.float16),
    "BF16": lambda w: (w.astype(np.uint32) << 16).view(np.float32),  # BF16 is the top half of an F32
    "F64": lambda w: w.view(np.float64),
    "I8": lambda w: w.view(np.int8),
    "I16": lambda w: w.view(np.int16),
    "I32": lambda w: w.view(np.int32),
    "I64": lambda w: w.view(np.int64),
    "U8": lambda w: w,  # the words are unsigned already (safetensors' unsigned dtypes)
    "U16": lambda w: w,
    "U32": lambda w: w,
    "U64": lambda w: w,
}

# Tensor statuses, as the JSON spells them.
TensorStatus = Literal[
    "identical", "different", "only_in_a", "only_in_b", "type_changed", "shape_changed", "not_compared"
]
MetadataStatus = Literal["only_in_a", "only_in_b", "type_changed", "value_changed"]
IDENTICAL: Final = "identical"
DIFFERENT: Final = "different"
ONLY_IN_A: Final = "only_in_a"
ONLY_IN_B: Final = "only_in_b"
TYPE_CHANGED: Final = "type_changed"
SHAPE_CHANGED: Final = "shape_changed"
NOT_COMPARED: Final = "not_compared"  # e.g. an unknown type whose bytes' extent is not in the file
EQUAL_VALUES: Final = "equal-values"  # the relation of a "different" tensor whose bits differ and values do not


def short_float(x: float) -> str:
    """repr when short ("1.0", "0.5", "inf"), else six significant digits kept visible ("2.00000")."""
    text = repr(float(x))
    return text if len(text) <= 10 else f"{x:#.6g}"


class TensorDiff:
    """One tensor name's comparison, filled in as it is compared.  Stats are None where they do not apply."""

    __slots__ = ("name", "status", "type_a", "type_b", "shape_a", "shape_b", "n_elements", "compared",
                 "n_values_differ", "n_nan_mismatch", "n_bytes_differ", "max_abs_diff", "max_rel_diff",
                 "rmse", "source", "relations", "how", "shift", "note", "errors")  # fmt: skip

    def __init__(
        self,
        name: str,
        status: TensorStatus,
        type_a: str | None,
        type_b: str | None,
        shape_a: tuple[int, ...] | None,
        shape_b: tuple[int, ...] | None,
        n_elements: int | None = None,
    ) -> None:
        self.name = name
        self.status = status
        self.type_a = type_a
        self.type_b = type_b
        self.shape_a = shape_a
        self.shape_b = shape_b
        self.n_elements = n_elements
        self.compared: str | None = None  # "values", "bytes", or None when the data was not compared
        self.n_values_differ: int | None = None
        self.n_nan_mismatch: int | None = None
        self.n_bytes_differ: int | None = None
        self.max_abs_diff: float | None = None
        self.max_rel_diff: float | None = None
        self.rmse: float | None = None
        self.source = name  # A's name for the tensor (a checkpoint's name when paired through TensorNameMap)
        self.relations: list[str] = []  # how B came from A (relations.py); empty when not compared
        self.how: str | None = None  # the rounding that reproduces B, for "rounded"
        self.shift: float | None = None  # the norm shift expected, for "shifted"
        self.note: str | None = None  # what a "different" tensor looks like instead
        self.errors: ErrorStats | None = None  # against A, for quantized and different tensors

    def __repr__(self) -> str:
        return f"TensorDiff({self.name!r}, {self.status})"

    @property
    def differs(self) -> bool:
        return self.status != IDENTICAL

    @property
    def type(self) -> str:
        return self.type_a or self.type_b or "?"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "type": self.type,
            "shape": list(self.shape_a if self.shape_a is not None else self.shape_b or ()),
            "type_a": self.type_a,
            "type_b": self.type_b,
            "shape_a": None if self.shape_a is None else list(self.shape_a),
            "shape_b": None if self.shape_b is None else list(self.shape_b),
            "n_elements": self.n_elements,
            "compared": self.compared,
            "n_values_differ": self.n_values_differ,
            "n_nan_mismatch": self.n_nan_mismatch,
            "n_bytes_differ": self.n_bytes_differ,
            "max_abs_diff": json_float(self.max_abs_diff),
            "max_rel_diff": json_float(self.max_rel_diff),
            "rmse": json_float(self.rmse),
            "source": self.source,
            "relations": list(self.relations),
            "how": self.how,
            "shift": self.shift,
            "note": self.note,
            **self._error_fields(),
        }

    def _error_fields(self) -> dict[str, Any]:
        e = self.errors
        if e is None:
            return dict.fromkeys(ERROR_FIELDS)
        return {
            "max_abs_error": json_float(e.max_abs if e.n else None),
            "rel_rmse": json_float(e.rel_rmse),
            "snr_db": json_float(e.snr_db),
            "cosine": json_float(e.cosine),
            "first_diff_index": e.first_diff,
            "n_skipped": e.n_skipped,
            # no finite pair (every pair skipped): a histogram of nothing is no figure either
            "error_histogram": e.histogram_dict() if e.n else None,
        }

    @property
    def remark(self) -> str | None:
        """The note (or the rounding), and how many non-finite pairs the errors leave out: inf is in no error."""
        skipped = self.errors.n_skipped if self.errors is not None else 0
        parts = [text for text in (self.note or self.how,) if text]
        if skipped:
            parts.append(f"{skipped:,} pair{'s' if skipped != 1 else ''} with a NaN or inf left out of the errors")
        return "; ".join(parts) or None

    def worst(self) -> float:
        """For ordering: different first, then the largest relative error."""
        e = self.errors
        rel = (e.rel_rmse if e is not None else None) or 0.0
        return (2.0 if "different" in self.relations or self.status != IDENTICAL and not self.relations else 0.0) + min(
            rel, 1.0
        )


ERROR_FIELDS = ("max_abs_error", "rel_rmse", "snr_db", "cosine", "first_diff_index", "n_skipped", "error_histogram")


class MetadataDifference(NamedTuple):
    """One metadata key that differs; values are short descriptions, None where absent."""

    key: str
    status: MetadataStatus
    type_a: str | None
    type_b: str | None
    value_a: str | None
    value_b: str | None
    json_a: Any = None  # the values as JSON gives them (arrays: their first items), None where absent
    json_b: Any = None
    count_a: int | None = None  # an array's element count, None for a scalar
    count_b: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "type_a": self.type_a,
            "type_b": self.type_b,
            "value_a": self.json_a,
            "value_b": self.json_b,
            "count_a": self.count_a,
            "count_b": self.count_b,
        }


class DiffReport:
    """Two files compared.  ``identical``: same tensor names, types, shapes, data and metadata.

    Header facts that do not change what the files hold (byte order, GGUF
    version) are reported in ``notes`` and do not make the files differ.
    """

    __slots__ = ("path_a", "path_b", "endianness_a", "endianness_b", "version_a", "version_b", "format_a",
                 "format_b", "tensors", "metadata_differences", "notes", "architecture", "mapped")  # fmt: skip

    def __init__(self, a: Side, b: Side) -> None:
        self.path_a, self.path_b = a.path, b.path
        self.endianness_a, self.endianness_b = a.byte_order, b.byte_order
        self.version_a, self.version_b = a.version, b.version  # None: safetensors or a checkpoint (no version)
        self.format_a: SideFormat = a.format
        self.format_b: SideFormat = b.format
        self.architecture: str | None = None  # the gguf-py architecture whose TensorNameMap paired the names
        self.mapped = False  # names paired through TensorNameMap: a source against its conversion
        self.tensors: list[TensorDiff] = []
        self.metadata_differences: list[MetadataDifference] = []
        self.notes: list[str] = []

    def __repr__(self) -> str:
        return f"DiffReport({self.path_a!r}, {self.path_b!r}: {self.summary})"

    @property
    def differing(self) -> list[TensorDiff]:
        """Tensors known to differ (not those left uncompared)."""
        return [t for t in self.tensors if t.differs and t.status != NOT_COMPARED]

    def with_status(self, *statuses: str) -> list[TensorDiff]:
        return [t for t in self.tensors if t.status in statuses]

    @property
    def tensors_identical(self) -> bool:
        """Same tensor names, types, shapes and data (metadata aside)."""
        # A tensor left uncompared could hide a difference: then the files are not known identical.
        return not any(t.differs for t in self.tensors)

    @property
    def identical(self) -> bool:
        return self.tensors_identical and not self.metadata_differences

    @property
    def n_tensors_differ(self) -> int:
        return len(self.differing)

    @property
    def n_values_differ(self) -> int:
        return sum(t.n_values_differ or 0 for t in self.tensors)

    @property
    def max_abs_diff(self) -> float:
        return max((t.max_abs_diff for t in self.tensors if t.max_abs_diff is not None), default=0.0)

    @property
    def summary(self) -> str:
        """One line: "identical", or what differs, e.g. "109 tensors differ, 14,189 values, max |d| = 1.0"."""
        if self.identical:
            return "identical"
        if self.mapped:  # a conversion differs from its source everywhere: what matters is how
            return self.relations_summary
        parts: list[str] = []
        n = self.n_tensors_differ
        if n:
            parts.append(f"{n:,} tensor{'s differ' if n != 1 else ' differs'}")
            if self.n_values_differ:
                parts += [f"{self.n_values_differ:,} values", f"max |d| = {short_float(self.max_abs_diff)}"]
            by_bytes = sum(1 for t in self.differing if t.compared == "bytes")
            if by_bytes:
                parts.append(f"{by_bytes:,} by bytes")
        unknown = len(self.with_status(NOT_COMPARED))
        if unknown:
            parts.append(f"{unknown:,} not compared (unknown type)")
        if not parts:
            parts.append("tensors identical")
        m = len(self.metadata_differences)
        if m:
            parts.append(f"{m:,} metadata key{'s differ' if m != 1 else ' differs'}")
        return ", ".join(parts)

    @property
    def relations_summary(self) -> str:
        """One line of what the pairs are, e.g. "201 tensors: 45 exact-cast from BF16, 135 quantized Q4_K (...)"."""
        return relations_summary(self.tensors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path_a": self.path_a,
            "path_b": self.path_b,
            "identical": self.identical,
            "summary": self.summary,
            "relations_summary": self.relations_summary,
            "architecture": self.architecture,
            "endianness_a": self.endianness_a,
            "endianness_b": self.endianness_b,
            "version_a": 0 if self.version_a is None else self.version_a,  # as documented: 0 for safetensors
            "version_b": 0 if self.version_b is None else self.version_b,
            "format_a": self.format_a,
            "format_b": self.format_b,
            "n_tensors_compared": len(self.tensors),
            "n_tensors_differ": self.n_tensors_differ,
            "n_values_differ": self.n_values_differ,
            "max_abs_diff": json_float(self.max_abs_diff),
            "tensors": [t.to_dict() for t in self.tensors],
            "metadata_differences": [m.to_dict() for m in self.metadata_differences],
            "notes": list(self.notes),
        }


def diff(
    path_a: str | os.PathLike[str],
    path_b: str | os.PathLike[str],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> DiffReport:
    """Compare two models (GGUF or safetensors files, checkpoint folders); globs choose the tensors.

    Raises PyscanError for an invalid file.
    """
    with open_side(path_a) as a, open_side(path_b) as b:
        return diff_sides(a, b, include, exclude)


def diff_files(a: ModelFile, b: ModelFile, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> DiffReport:
    return diff_sides(file_side(a), file_side(b), include, exclude)


def diff_sides(a: Side, b: Side, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> DiffReport:
    a.require_data()
    b.require_data()
    swapped = a.single is not None and b.single is None
    if swapped:  # the checkpoint is the source: the converter's transforms are expected from it to the file
        a, b = b, a
    report = DiffReport(a, b)
    if swapped:
        report.notes.append(
            f"the checkpoint folder is the source, so it is A here: {quote(b.path)} is compared with it"
        )
    if a.byte_order != b.byte_order:
        report.notes.append(f"byte order differs ({a.byte_order} vs {b.byte_order}): values compared, not bytes")
    pairing = pair_tensors(a, b)
    report.architecture, report.mapped = pairing.architecture, pairing.mapped
    if a.format != b.format:
        how = "compared by name"
        if pairing.mapped:
            how = f"paired through gguf-py's TensorNameMap ({pairing.architecture})"
        report.notes.append(f"formats differ ({a.format} vs {b.format}): tensors {how}")
    elif a.version != b.version:
        report.notes.append(f"GGUF version differs ({a.version} vs {b.version})")
    facts = _merged_facts(a, b)
    arch = pairing.architecture if pairing.mapped else None
    # By either name, per pair: --exclude 'model.layers.1.*' leaves out blk.1's pairs too (a pair kept
    # by its other name, it was ignored), and --include takes a pair by either.
    chosen = [pair for pair in pairing.pairs if chooses(_names(pair), include, exclude)]
    if (include or exclude) and not chosen:  # a typo in a glob must not read as "identical"
        raise nothing_selected(a.path, include, exclude, where="either model")
    for pair in chosen:
        if pair.b is None:
            assert pair.a is not None
            report.tensors.append(_only(pair.a[1], ONLY_IN_A))
        elif pair.a is None:
            report.tensors.append(_only(pair.b[1], ONLY_IN_B))
        else:
            result = compare_pair(pair.a, pair.b, arch, facts)
            if pairing.mapped and unexplained(result.relations, result.note):
                result.note = _found_elsewhere(pair.a, pair.b, a.entries, arch, facts) or result.note
            report.tensors.append(result)
    if a.single is not None and b.single is not None and not pairing.mapped:
        report.metadata_differences = compare_metadata(a.single, b.single)
    elif a.single is None or b.single is None:
        report.notes.append("metadata not compared: a checkpoint's config.json and GGUF metadata have no common keys")
    return report


MAX_ELSEWHERE = 16  # source tensors tried for a "different" one: its siblings in other layers


def _found_elsewhere(a: Entry, b: Entry, sources: list[Entry], arch: str | None, facts: ModelFacts) -> str | None:
    """A note when B is the conversion of another source tensor of its kind (another layer's, say)."""
    kind = re.sub(r"\d+", "#", a[1].name)
    siblings = [
        e for e in sources if e is not a and e[1].shape == a[1].shape and re.sub(r"\d+", "#", e[1].name) == kind
    ]
    for other in siblings[:MAX_ELSEWHERE]:
        try:
            relation = relate(other, b, expected_transform(arch, other[1], b[1], facts))
        except NotImplementedError:
            return None
        if relation.relations != ["different"]:
            return f"equals the source of another tensor: {quote(other[1].name)} ({', '.join(relation.relations)})"
    return None


def _names(pair: Pair) -> list[str]:
    return [e[1].name for e in (pair.a, pair.b) if e is not None]


def _merged_facts(a: Side, b: Side) -> ModelFacts:
    """Head counts for the permutation: the source's config first, else the GGUF metadata."""
    fa, fb = a.facts, b.facts
    return ModelFacts(fa.architecture or fb.architecture, fa.n_blocks or fb.n_blocks, fa.n_head or fb.n_head,
                      fa.n_kv_head or fb.n_kv_head)  # fmt: skip


def compare_pair(a: Entry, b: Entry, arch: str | None, facts: ModelFacts) -> TensorDiff:
    """One pair: the byte and value rule for same-typed tensors by name, the relations for everything else."""
    (file_a, ta), (file_b, tb) = a, b
    if arch is None and (ta.type_id, ta.type_name) == (tb.type_id, tb.type_name) and ta.shape == tb.shape:
        result = compare_tensor(file_a, ta, file_b, tb)
        if result.status == IDENTICAL:
            result.relations = ["identical"]
        elif result.status == DIFFERENT and readable(ta) and readable(tb):
            _relate_into(result, a, b, Transform())  # a second pass, for the errors: only differing tensors pay it
            if result.relations == ["identical"]:  # +0 against -0, or a zero-scale block's quants
                result.relations = [EQUAL_VALUES]
        elif result.status == DIFFERENT:
            result.relations = ["different"]
        return result
    result = TensorDiff(tb.name, DIFFERENT, ta.type_name, tb.type_name, ta.shape, tb.shape, tb.n_elements)
    result.source = ta.name
    transform = expected_transform(arch, ta, tb, facts)
    if not (readable(ta) and readable(tb)):
        result.status = TYPE_CHANGED if (ta.type_id, ta.type_name) != (tb.type_id, tb.type_name) else NOT_COMPARED
        return result
    if ta.shape != tb.shape and not transform.transposed:
        result.status = SHAPE_CHANGED
        return result
    if transform.transposed and ta.n_elements > MAX_TRANSPOSED_ELEMENTS:
        result.status = NOT_COMPARED
        result.note = "transposed and too large to compare whole"
        return result
    # F16 against F32 by name: counted as within one type, from the values relate reads anyway
    widened = (
        _ValueTally(DECODERS["F64"])
        if arch is None and ta.shape == tb.shape and {ta.type_name, tb.type_name} <= WIDENABLE
        else None
    )
    _relate_into(result, a, b, transform, counted=arch is not None, observe=widened.add_widened if widened else None)
    if widened is not None:
        _widened_into(widened, result)
    if arch is not None and unexplained(result.relations or [], result.note):
        _transposed_instead(result, a, b, transform)
    if result.relations == ["identical"] and _bits_differ(a, b):  # the relations compare values: +0 is -0 there
        result.relations = [EQUAL_VALUES]
    elif result.relations == ["identical"]:
        result.status = IDENTICAL
    elif transform.transposed and "transposed" not in (result.relations or ()):
        result.status = SHAPE_CHANGED  # 64x8 against 8x64, but not A transposed: reshaped, or another tensor
    elif arch is None and ta.type_name != tb.type_name:
        result.status = TYPE_CHANGED
    return result


def _relate_into(
    result: TensorDiff, a: Entry, b: Entry, transform: Transform, counted: bool = False, observe: Observer | None = None
) -> None:
    """The relation and errors into result; counted: its value counts too (a mapped pair has no other)."""
    try:
        relation = relate(a, b, transform, observe)
    except NotImplementedError:  # a type gguf.quants cannot dequantize
        result.status, result.note = NOT_COMPARED, f"gguf.quants cannot dequantize {a[1].type_name} or {b[1].type_name}"
        return
    _take_relation(result, relation, counted)


def _transposed_instead(result: TensorDiff, a: Entry, b: Entry, transform: Transform) -> None:
    """A square matrix the relations cannot explain, tried transposed: its shape cannot say so.

    llama.cpp's converter transposes GPT-2's (and Jais's) Conv1D weights; their shapes show it, except
    attn.c_proj's, which is n_embd x n_embd.  Tried only for an unexplained pair, and within the bound
    every transposed pair has (it is compared whole).
    """
    ta, tb = a[1], b[1]
    square = len(ta.shape) == 2 and ta.shape[0] == ta.shape[1] and ta.shape == tb.shape
    if not square or ta.n_elements > MAX_TRANSPOSED_ELEMENTS:
        return
    relation = relate(a, b, transform._replace(transposed=True, heads=None))  # (the first relate read both)
    if relation.relations != ["different"]:
        result.rmse = None  # the untransposed comparison's
        _take_relation(result, relation, counted=True)


def _take_relation(result: TensorDiff, relation: Relation, counted: bool) -> None:
    result.relations, result.how, result.shift = relation.relations, relation.how, relation.shift
    result.note = relation.note
    if counted:  # against A put through the converter's transforms
        result.n_values_differ, result.max_abs_diff = relation.stats.n_differ, relation.stats.max_diff
    if relation.relations != ["identical"]:
        result.errors = relation.stats
        if result.rmse is None:
            result.rmse = relation.stats.rmse


WIDENABLE: Final = frozenset({"F16", "BF16", "F32", "F64"})  # float64 holds each exactly


def _widened_into(tally: _ValueTally, result: TensorDiff) -> None:
    """Two float types' values, widened to float64, counted by the by-name value rule.

    Widening is exact and keeps the sign of zero, so the widened bits differ exactly where the
    values do (+0 against -0 too), and NaNs stay equal whatever their payloads.  The status stays
    the relations' (a type change); the RMSE is the relations' where no pair of values is finite.
    """
    status, rmse = result.status, result.rmse
    tally.into(result)
    result.status = status
    if result.rmse is None:
        result.rmse = rmse


def _bits_differ(a: Entry, b: Entry) -> bool:
    """Whether two tensors of one type and shape differ by the by-name rule (bits, NaN equal to NaN)."""
    (file_a, ta), (file_b, tb) = a, b
    probe = TensorDiff(tb.name, IDENTICAL, ta.type_name, tb.type_name, ta.shape, tb.shape)
    if ta.type_name in DECODERS:
        width = ta.nbytes // ta.n_elements if ta.nbytes and ta.n_elements else 1
        release = _releaser(file_a, ta, file_b, tb, width)
        _compare_values(file_a.words(ta), file_b.words(tb), DECODERS[ta.type_name], probe, release)
    else:
        _compare_bytes(_raw(file_a, ta), _raw(file_b, tb), probe, _releaser(file_a, ta, file_b, tb, 1))
    return probe.status == DIFFERENT


def _only(info: TensorInfo, status: TensorStatus) -> TensorDiff:
    if status == ONLY_IN_A:
        return TensorDiff(info.name, status, info.type_name, None, info.shape, None, info.n_elements)
    return TensorDiff(info.name, status, None, info.type_name, None, info.shape, info.n_elements)


def compare_tensor(a: ModelFile, ta: TensorInfo, b: ModelFile, tb: TensorInfo) -> TensorDiff:
    result = TensorDiff(ta.name, IDENTICAL, ta.type_name, tb.type_name, ta.shape, tb.shape)
    if (ta.type_id, ta.type_name) != (tb.type_id, tb.type_name):  # safetensors-only dtypes share id -1
        result.status = TYPE_CHANGED
    elif ta.shape != tb.shape:
        result.status = SHAPE_CHANGED
    else:
        result.n_elements = ta.n_elements
        if ta.nbytes is None:
            _compare_unknown(a, ta, b, tb, result)
        elif ta.type_name in DECODERS:
            width = ta.nbytes // ta.n_elements if ta.n_elements else 1
            _compare_values(a.words(ta), b.words(tb), DECODERS[ta.type_name], result, _releaser(a, ta, b, tb, width))
        else:
            _compare_bytes(_raw(a, ta), _raw(b, tb), result, _releaser(a, ta, b, tb, 1))
    return result


UNKNOWN_NOTE: Final = "type unknown to pyscan: its bytes differ, its values are not comparable"


def _extent(model: ModelFile, info: TensorInfo) -> int | None:
    """An unknown type's bytes: up to the next tensor's data, or the end of the file (padding included).

    The parser keeps the offsets in header order non-decreasing (ggml's rule), so a bisection finds
    the next one: a scan of every tensor per unknown one made 16,000 of them take 24 s.
    """
    after = bisect.bisect_right(model.tensors, info.offset, key=lambda t: t.offset)
    end = model.tensors[after].offset if after < len(model.tensors) else model.size
    return end - info.offset if info.offset <= end <= model.size else None


def _compare_unknown(a: ModelFile, ta: TensorInfo, b: ModelFile, tb: TensorInfo, result: TensorDiff) -> None:
    """Two tensors of one unknown type: only their bytes can be compared, over the extents the files give.

    Each extent holds the whole tensor (the next tensor's data cannot start inside it), so the shorter
    one's length holds it in both: past that is padding, which another alignment makes longer.
    """
    na, nb = _extent(a, ta), _extent(b, tb)
    if na is None or nb is None:
        result.status = NOT_COMPARED
        return
    n = min(na, nb)
    ra = np.frombuffer(a.mapping.buffer, dtype=np.uint8, count=n, offset=ta.offset)
    rb = np.frombuffer(b.mapping.buffer, dtype=np.uint8, count=n, offset=tb.offset)
    _compare_bytes(ra, rb, result, _releaser(a, ta, b, tb, 1))
    if result.status == DIFFERENT:
        result.note = UNKNOWN_NOTE


def _raw(gguf: ModelFile, info: TensorInfo) -> Array:
    assert info.nbytes is not None
    return np.frombuffer(gguf.mapping.buffer, dtype=np.uint8, count=info.nbytes, offset=info.offset)


def _chunks(n: int, step: int) -> Iterator[slice]:
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


Release = Callable[[slice], None]


def _releaser(a: ModelFile, ta: TensorInfo, b: ModelFile, tb: TensorInfo, width: int) -> Release:
    """Drops a compared chunk's pages from both mappings, as the scanner does: the resident set stays small."""

    def release(part: slice) -> None:
        n = part.stop - part.start
        a.mapping.release(ta.offset + part.start * width, n * width)
        b.mapping.release(tb.offset + part.start * width, n * width)

    return release


def _compare_values(
    wa: Array, wb: Array, decode: Callable[[Array], Array], result: TensorDiff, release: Release
) -> None:
    native = np.dtype(f"u{wa.dtype.itemsize}")
    tally = _ValueTally(decode)
    for part in _chunks(wa.size, CHUNK_ELEMENTS):
        # astype to native order: a byte-swapped twin compares equal.
        tally.add(wa[part].astype(native, copy=False), wb[part].astype(native, copy=False))
        release(part)
    tally.into(result)


class _ValueTally:
    """The by-name value rule and its statistics, summed over chunks of native-order words of one type."""

    __slots__ = ("decode", "n_differ", "n_nan_mismatch", "n_finite", "max_abs", "max_rel", "square_sum")

    def __init__(self, decode: Callable[[Array], Array]) -> None:
        self.decode = decode
        self.n_differ = self.n_nan_mismatch = self.n_finite = 0
        self.max_abs = self.max_rel = 0.0
        self.square_sum = ScaledSum()  # F64 differences of 1e200 square past float64, and of 1e-200 to zero

    def add(self, ba: Array, bb: Array) -> None:
        decode = self.decode
        if np.array_equal(ba, bb):  # the common case: only the finite count is needed
            self.n_finite += int(np.count_nonzero(np.isfinite(decode(ba))))
            return
        # "invalid" fires on casting signaling NaNs and on inf - inf: both expected here.
        with np.errstate(invalid="ignore", over="ignore"):
            fa, fb = decode(ba).astype(np.float64, copy=False), decode(bb).astype(np.float64, copy=False)
            delta = np.abs(fa - fb)  # NaN only where a NaN is involved or at equal infinities
        nan_a, nan_b = np.isnan(fa), np.isnan(fb)
        differ = (ba != bb) & ~(nan_a & nan_b)
        self.n_differ += int(np.count_nonzero(differ))
        self.n_nan_mismatch += int(np.count_nonzero(nan_a != nan_b))
        finite = np.isfinite(fa) & np.isfinite(fb)
        self.n_finite += int(np.count_nonzero(finite))
        if finite.any():
            add_squared_differences(self.square_sum, fa[finite], fb[finite], lambda e: float(np.sum(np.square(e))))
        numeric = differ & ~nan_a & ~nan_b
        if numeric.any():
            self.max_abs = max(self.max_abs, float(delta[numeric].max()))
        relative = numeric & np.isfinite(fa) & (fa != 0)
        if relative.any():
            with np.errstate(over="ignore"):
                self.max_rel = max(self.max_rel, float((delta[relative] / np.abs(fa[relative])).max()))

    def add_widened(self, fa: Array, fb: Array) -> None:
        """Two chunks of float64 values (two float types widened exactly: the sign of zero kept)."""
        self.add(fa.reshape(-1).view(np.uint64), fb.reshape(-1).view(np.uint64))

    def into(self, result: TensorDiff) -> None:
        result.compared = "values"
        result.n_values_differ, result.n_nan_mismatch = self.n_differ, self.n_nan_mismatch
        result.max_abs_diff, result.max_rel_diff = self.max_abs, self.max_rel
        result.rmse = self.square_sum.root_mean(self.n_finite) if self.n_finite else None
        if self.n_differ:
            result.status = DIFFERENT


def _compare_bytes(ra: Array, rb: Array, result: TensorDiff, release: Release) -> None:
    n_differ = 0
    for part in _chunks(ra.size, CHUNK_BYTES):
        if not np.array_equal(ra[part], rb[part]):
            n_differ += int(np.count_nonzero(ra[part] != rb[part]))
        release(part)
    result.compared = "bytes"
    result.n_bytes_differ = n_differ
    if n_differ:
        result.status = DIFFERENT


def compare_metadata(a: ModelFile, b: ModelFile) -> list[MetadataDifference]:
    """Keys in A's order, then keys only in B, each with both sides described."""
    found: list[MetadataDifference] = []
    for key, ea in a.metadata.items():
        eb = b.metadata.get(key)
        if eb is None:
            found.append(MetadataDifference(key, ONLY_IN_A, _type_name(ea), None, describe(ea), None, *_json(ea, None)))
            continue
        status: MetadataStatus
        if ea.type != eb.type or _element_type(ea) != _element_type(eb):
            status = TYPE_CHANGED
        elif _canonical(a, ea) != _canonical(b, eb):
            status = "value_changed"
        else:
            continue
        found.append(
            MetadataDifference(key, status, _type_name(ea), _type_name(eb), describe(ea), describe(eb), *_json(ea, eb))
        )
    for key, eb in b.metadata.items():
        if key not in a.metadata:
            found.append(MetadataDifference(key, ONLY_IN_B, None, _type_name(eb), None, describe(eb), *_json(None, eb)))
    return found


JSON_ARRAY_ITEMS = 16  # an array's first items in --json: a vocabulary has 262,144


def _json(ea: MetadataEntry | None, eb: MetadataEntry | None) -> tuple[Any, Any, int | None, int | None]:
    (va, ca), (vb, cb) = json_value(ea), json_value(eb)
    return va, vb, ca, cb


def json_value(entry: MetadataEntry | None) -> tuple[Any, int | None]:
    """A value as JSON carries it (floats strict, arrays their first items), and an array's count."""
    if entry is None:
        return None, None
    value = entry.value
    if isinstance(value, MetadataArray):
        if value.element_type == ValueType.STRING:
            head: list[Any] = value.to_list()[:JSON_ARRAY_ITEMS]
        else:
            head = value.to_numpy()[:JSON_ARRAY_ITEMS].tolist()
        return [json_float(x) if isinstance(x, float) else x for x in head], value.count
    return (json_float(value) if isinstance(value, float) else value), None


def _element_type(entry: MetadataEntry) -> ValueType | None:
    return entry.value.element_type if isinstance(entry.value, MetadataArray) else None


def _type_name(entry: MetadataEntry) -> str:
    element = _element_type(entry)
    return entry.type.name.lower() if element is None else f"array[{element.name.lower()}]"


def describe(entry: MetadataEntry, limit: int = 60) -> str:
    """A short text for a value: repr of a scalar (cut at `limit`), or an array's length and first items."""
    value = entry.value
    if isinstance(value, MetadataArray):
        head = value.to_list()[:3] if value.element_type == ValueType.STRING else value.to_numpy()[:3].tolist()
        text = f"{value.count:,} items: " + ", ".join(repr(x) for x in head) + (", ..." if value.count > 3 else "")
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _canonical(gguf: ModelFile, entry: MetadataEntry) -> object:
    """A form of a value equal between files exactly when the values are the same."""
    value = entry.value
    if isinstance(value, MetadataArray):
        return _array_bytes(gguf, value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else struct.pack("<d", value)  # bits: -0.0 is not 0.0
    return value


def _array_bytes(gguf: ModelFile, array: MetadataArray) -> bytes:
    """An array's elements as bytes in one byte order (strings: little-endian length prefixes)."""
    if array.element_type != ValueType.STRING:
        values = array.to_numpy()
        return values.astype(values.dtype.newbyteorder("<")).tobytes()
    raw = bytes(gguf.mapping.buffer[array.offset : array.offset + array.nbytes])
    if gguf.byte_order == "little":
        return raw
    # Big-endian length prefixes: rewrite them (bounds were checked when the file was parsed).
    out = bytearray()
    pos = 0
    for _ in range(array.count):
        (n,) = struct.unpack_from(">Q", raw, pos)
        out += struct.pack("<Q", n) + raw[pos + 8 : pos + 8 + n]
        pos += 8 + n
    return bytes(out)
