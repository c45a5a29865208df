"""Which tensor of A goes with which of B: by name, or through gguf-py's TensorNameMap across naming schemes.

Two files that share most names (two GGUF files, two checkpoints) pair by name.  A checkpoint
(or a lone safetensors file) against a GGUF file shares no names: each side's names are mapped
to GGUF names with ``gguf.get_tensor_name_map(arch, n_blocks).get_name(name, (".weight", ".bias"))``
(a GGUF name maps to itself), and tensors pair by the mapped name.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pyscan.diff.sides import Entry, Side

SUFFIXES = (".weight", ".bias")
MAX_MAPPED_BLOCKS = 1024
# config.json model_type values whose GGUF architecture has another name.
MODEL_TYPES = {"gemma3_text": "gemma3", "mistral": "llama", "qwen2_moe": "qwen2moe", "gpt_neox": "gptneox"}


class Pair(NamedTuple):
    a: Entry | None
    b: Entry | None
    name: str  # B's name where B has the tensor (the GGUF name), else A's


class Pairing(NamedTuple):
    pairs: list[Pair]
    mapped: bool  # names went through TensorNameMap
    architecture: str | None  # the gguf-py architecture name used, None when paired by name


def gguf_architecture(a: Side, b: Side) -> Any:
    """gguf.MODEL_ARCH for the pair: from a GGUF side's metadata first, else a config.json model_type."""
    import gguf

    by_name = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}
    for side in (b, a) if b.format == "gguf" else (a, b):
        name = side.facts.architecture
        if name is not None:
            found = by_name.get(MODEL_TYPES.get(name, name))
            if found is not None:
                return found
    return None


def pair_tensors(a: Side, b: Side) -> Pairing:
    names_a = [t.name for _, t in a.entries]
    names_b = {t.name for _, t in b.entries}
    shared = sum(1 for n in names_a if n in names_b)
    if a.format == b.format or shared * 2 >= max(len(names_a), len(names_b), 1):
        return Pairing(_by(a.entries, b.entries, lambda n: n, lambda n: n), False, None)
    import gguf

    arch = gguf_architecture(a, b)
    if arch is None:
        return Pairing(_by(a.entries, b.entries, lambda n: n, lambda n: n), False, None)
    name_map = gguf.get_tensor_name_map(arch, _blocks_to_map(a, b))

    def mapped(name: str) -> str:
        found = name_map.get_name(name, try_suffixes=SUFFIXES)
        return found if isinstance(found, str) else name

    return Pairing(_by(a.entries, b.entries, mapped, mapped), True, gguf.MODEL_ARCH_NAMES[arch])


def _blocks_to_map(a: Side, b: Side) -> int:
    """The blocks the name map covers: those the files declare, but no more than their names use.

    The map costs ~0.5 ms and ~70 KB per block (gguf-py builds every name of every block): a
    declared 65,536 blocks took 55 s and 3.2 GB for a two-block model.  So the count is cut to one
    past the highest number in a name, and to MAX_MAPPED_BLOCKS (~0.5 s), far above real models
    (126 blocks in Llama 3.1 405B); tensors of blocks past it pair by their own names.
    """
    declared = max(a.facts.n_blocks or 0, b.facts.n_blocks or 0)
    used = 0
    for side in (a, b):
        for _, tensor in side.entries:
            for part in tensor.name.split("."):
                if part.isascii() and part.isdigit() and len(part) <= 9:  # (longer: no block of any map)
                    used = max(used, int(part) + 1)
    return min(declared or used, used, MAX_MAPPED_BLOCKS)


def _by(entries_a: list[Entry], entries_b: list[Entry], key_a: Any, key_b: Any) -> list[Pair]:
    """Pairs in A's order, then B's unpaired tensors; a key taken twice pairs only its first tensor."""
    by_key: dict[str, Entry] = {}
    for entry in entries_b:
        by_key.setdefault(key_b(entry[1].name), entry)
    used: set[int] = set()
    pairs: list[Pair] = []
    for entry in entries_a:
        other = by_key.get(key_a(entry[1].name))
        if other is not None and id(other) not in used:
            used.add(id(other))
            pairs.append(Pair(entry, other, other[1].name))
        else:
            pairs.append(Pair(entry, None, entry[1].name))
    pairs += [Pair(None, e, e[1].name) for e in entries_b if id(e) not in used]
    return pairs
