"""``pyscan FILE --header-only``: the header of a file, scanning nothing; it works on a cut download."""

from __future__ import annotations

from typing import Any

from pyscan.formatting import human_size, plural, shape_text, table, terminal_text
from pyscan.parser.metadata import MetadataArray, MetadataEntry
from pyscan.parser.model import ModelFile

VALUE_LIMIT = 60  # characters of a metadata value in the text report


def _value_text(entry: MetadataEntry) -> str:
    value = entry.value
    if isinstance(value, MetadataArray):  # not decoded: a vocabulary has 262,144 strings
        return f"[{value.count:,} x {value.element_type.name.lower()}]"
    text = repr(value)
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "…"


def _value_json(entry: MetadataEntry) -> Any:
    value = entry.value
    if isinstance(value, MetadataArray):
        return {"array_of": value.element_type.name.lower(), "count": value.count}
    return value


def header_dict(model: ModelFile) -> dict[str, Any]:
    """The --header-only --json object."""
    missing = model.missing
    return {
        "path": model.path,
        "format": model.format,
        "size": model.size,
        "described_size": model.described_size,
        "complete": not missing,
        "version": 0 if model.version is None else model.version,
        "endianness": model.byte_order,
        "alignment": model.alignment,
        "n_tensors": len(model.tensors),
        "n_tensors_complete": len(model.tensors) - len(missing),
        "n_kv": model.n_kv,
        "metadata": {key: {"type": entry.type.name.lower(), "value": _value_json(entry)}
                     for key, entry in model.metadata.items()},  # fmt: skip
        "tensors": [
            {"name": t.name, "type": t.type_name, "shape": list(t.shape), "n_elements": t.n_elements,
             "offset": t.offset, "nbytes": t.nbytes, "complete": t.name not in missing}
            for t in model.tensors
        ],  # fmt: skip
    }


def render_header(model: ModelFile) -> str:
    missing = model.missing
    kind = f"GGUF v{model.version}, {model.byte_order}-endian" if model.format == "gguf" else model.format
    out = [
        model.path,
        f"  {kind}, {human_size(model.size)}, {plural(len(model.tensors), 'tensor')}, "
        f"{plural(model.n_kv, 'metadata key')}",
    ]
    if missing:
        out.append(
            f"  truncated: {human_size(model.size)} of the {human_size(model.described_size)} the header describes; "
            f"{len(model.tensors) - len(missing):,} of {plural(len(model.tensors), 'tensor')} complete"
        )
    else:
        out.append("  complete: every tensor's data is in the file")
    out += ["", "Metadata"]
    rows = [[key, entry.type.name.lower(), _value_text(entry)] for key, entry in model.metadata.items()]
    out += ["  " + line.rstrip() for line in table(["key", "type", "value"], rows, left=3)]
    out += ["", "Tensors"]
    rows = [
        [t.name, t.type_name, shape_text(t.shape), f"{t.offset:,}", "-" if t.nbytes is None else f"{t.nbytes:,}",
         "cut" if t.name in missing else "ok"]
        for t in model.tensors
    ]  # fmt: skip
    out += ["  " + line.rstrip() for line in table(["name", "type", "shape", "offset", "bytes", "data"], rows, left=3)]
    return terminal_text(out)
