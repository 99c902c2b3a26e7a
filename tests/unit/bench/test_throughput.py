"""Tests for models.backends (token-length batching, ONNX / int8 encoders) and the throughput benchmark."""

from __future__ import annotations

import argparse
import copy
import json

import numpy as np
import pytest
import torch

from hybridir_utils import errors
from hybridir_utils.bench.throughput import add_arguments, bench_throughput
from hybridir_utils.models import backends, loading

# Mixed scripts: character counts are a poor proxy for token counts here, which is what token batching fixes.
MIXED = [
    "北京是中华人民共和国的首都，也是全国的政治、文化、国际交往和科技创新中心。",
    "The cat sits on the mat and looks out of the window at the birds in the garden.",
    "机器学习是人工智能的一个分支。",
    "Der schnelle braune Fuchs springt über den faulen Hund, der in der Sonne schläft.",
    "東京は日本の首都です。",
    "A short one.",
    "Москва — столица России и крупнейший город страны.",
    "ok",
]


# ---------------------------------------------------------------------------------------------- bad input


def test_unknown_backend_is_named():
    with pytest.raises(errors.BackendError, match="'tensorrt'"):
        loading.load_encoder(loading.E5_NAME, backend="tensorrt")
    with pytest.raises(ValueError, match="onnx-int4"):
        backends.check_backend("onnx-int4")


def test_use_encoder_refuses_a_backend():
    with pytest.raises(ValueError, match="use-multilingual"):
        loading.load_encoder(loading.USE_NAME, backend="onnx")


def test_bench_rejects_unknown_backend():
    args = add_arguments(argparse.ArgumentParser()).parse_args(["--backends", "torch", "fp8"])
    with pytest.raises(errors.BackendError, match="'fp8'"):
        bench_throughput(args)


# ---------------------------------------------------------------------------------------------- token batching


def _padded_positions(model, texts, batch_size):
    """Token positions (real + padding) the transformer computes while encoding ``texts``."""
    seen = []
    hook = model[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]["input_ids"].numel()))
    try:
        emb = model.encode(texts, prompt_name="passage", batch_size=batch_size, normalize_embeddings=True)
    finally:
        hook.remove()
    return sum(seen), emb


def test_token_batching_cuts_padding_and_keeps_embeddings(e5_model):
    model = e5_model
    assert "_input_length" in vars(model), "load_encoder should switch token-length batching on by default"
    hook = vars(model)["_input_length"]
    lengths = [len(model.tokenizer("passage: " + t)["input_ids"]) for t in MIXED]
    # the best possible padding for batches of 2: consecutive pairs of the token-sorted lengths
    ordered = sorted(lengths, reverse=True)
    optimum = sum(2 * ordered[i] for i in range(0, len(ordered), 2))

    token_positions, token_emb = _padded_positions(model, MIXED, batch_size=2)
    del model._input_length  # back to sentence-transformers' character-count sort
    try:
        char_positions, char_emb = _padded_positions(model, MIXED, batch_size=2)
    finally:
        model._input_length = hook
    assert token_positions == optimum
    assert char_positions > token_positions
    np.testing.assert_allclose(token_emb, char_emb, atol=2e-5)


def test_token_batching_keeps_the_fingerprint(e5_model):
    plain = loading.load_encoder(loading.E5_NAME, token_batching=False)
    assert "_input_length" not in vars(plain)
    assert loading.fingerprint(plain) == loading.fingerprint(e5_model)


# ------------------------------------------------------------------------------------- ONNX export (tiny model)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, e5_model):
    """A 2-layer random BERT with the e5 tokenizer, as a model folder; its exports go to a throw-away models dir
    (``<folder>/../models``) shared by this module's tests."""
    from transformers import BertConfig, BertModel

    root = tmp_path_factory.mktemp("tiny")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HYBRIDIR_MODELS_DIR", str(root / "models"))
        torch.manual_seed(0)
        tok = e5_model.tokenizer
        cfg = BertConfig(
            vocab_size=len(tok),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=128,
            pad_token_id=tok.pad_token_id,
        )
        folder = root / "tiny-e5"
        BertModel(cfg).save_pretrained(folder)
        tok.save_pretrained(folder)
        yield folder


def _cosines(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_onnx_export_reproduces_torch_and_is_reused(tiny_model_dir):
    ref_model = loading.load_encoder(str(tiny_model_dir))
    ref = ref_model.encode(MIXED, batch_size=3)
    onnx_model = loading.load_encoder(str(tiny_model_dir), backend="onnx")
    assert isinstance(onnx_model[0].model, backends.OnnxTransformer)
    got = onnx_model.encode(MIXED, batch_size=3)
    assert _cosines(ref, got).min() > 0.9999
    np.testing.assert_allclose(got, ref, atol=1e-4)
    np.testing.assert_allclose(copy.deepcopy(onnx_model).encode(MIXED, batch_size=3), got, atol=1e-6)

    exports = list((tiny_model_dir.parent / "models" / "onnx").iterdir())
    assert not [p for p in exports if p.name.startswith(".")]  # no temporary folder left behind
    (export,) = [p for p in exports if "-onnx-ort" in p.name]
    report = json.loads((export / "export.json").read_text())
    assert report["fused_operators"]["Attention"] == 2 and report["min_cosine"] > 0.9999
    graph = export / "model.onnx"
    mtime = graph.stat().st_mtime_ns
    loading.load_encoder(str(tiny_model_dir), backend="onnx")  # second load: the graph is reused, not rebuilt
    assert graph.stat().st_mtime_ns == mtime


def test_backends_get_distinct_fingerprints(tiny_model_dir):
    prints = {b: loading.fingerprint(loading.load_encoder(str(tiny_model_dir), backend=b)) for b in backends.BACKENDS}
    assert len(set(prints.values())) == len(backends.BACKENDS)
    assert prints["torch"].startswith("st-") and prints["onnx-int8"].startswith("st-onnx-int8-")
    # stable across loads, so the embedding cache of a backend is found again
    assert loading.fingerprint(loading.load_encoder(str(tiny_model_dir), backend="onnx-int8")) == prints["onnx-int8"]


def test_inference_backend_keeps_use_on_its_own_path():
    assert loading.inference_backend(loading.USE_NAME, "onnx") == "torch"
    assert loading.inference_backend("some/model-dir", "onnx") == "onnx"
    with pytest.raises(errors.BackendError, match="'fp8'"):
        loading.inference_backend("some/model-dir", "fp8")


def test_evaluate_systems_uses_the_requested_backend(tiny_model_dir, xquad_small, tmp_cache, tmp_path):
    """Notebook 04's ``encode_backend``: same mAP on onnx as on torch, separate caches, backend recorded."""
    import pandas as pd

    from hybridir_utils.evaluation.systems import evaluate_systems

    systems = pd.DataFrame([{"label": "tiny", "system": "tiny", "seed": 0, "source": str(tiny_model_dir)}])
    ds = {"xquad-r": xquad_small.subset(max_questions_per_lang=6, seed=0)}
    got = {b: evaluate_systems(systems, ds, tmp_path / b, backend=b, batch_size=4) for b in ("torch", "onnx")}
    assert got["onnx"].backend.tolist() == ["onnx"]
    assert abs(got["onnx"].multi_map.iloc[0] - got["torch"].multi_map.iloc[0]) < 1e-3
    assert json.loads((tmp_path / "onnx" / "tiny" / "xquad-r" / "metrics.json").read_text())["batch_size"] == 4
    assert len([p for p in tmp_cache.rglob("*") if p.is_dir() and any(p.glob("*.npz"))]) == 2  # one per backend


def test_int8_backends_stay_close_to_torch(tiny_model_dir):
    ref = loading.load_encoder(str(tiny_model_dir)).encode(MIXED)
    for backend in ("onnx-int8", "torch-int8"):
        got = loading.load_encoder(str(tiny_model_dir), backend=backend).encode(MIXED)
        cos = _cosines(ref, got)
        assert cos.min() > 0.95, backend
        assert not np.allclose(got, ref, atol=1e-6), f"{backend} did not quantise anything"


def test_failed_self_check_leaves_nothing(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRIDIR_MODELS_DIR", str(tmp_path / "models"))  # an export of its own
    monkeypatch.setitem(backends._MIN_COSINE, "onnx", 1.01)  # no export can pass this
    with pytest.raises(errors.BackendError, match="does not reproduce the torch model"):
        loading.load_encoder(str(tiny_model_dir), backend="onnx")
    assert list((tmp_path / "models" / "onnx").iterdir()) == []


def test_converted_model_cannot_be_converted_again(tiny_model_dir):
    model = loading.load_encoder(str(tiny_model_dir), backend="torch-int8")
    with pytest.raises(errors.BackendError, match="already converted"):
        backends.apply_backend(model, "onnx")


# ---------------------------------------------------------------------------------------------- mAP on real data


def _maps(encoder, ds, out_dir, batch_size, use_cache=True):
    from hybridir_utils.evaluation.lareqa import evaluate_lareqa

    m = evaluate_lareqa(
        encoder, ds, out_dir, settings=("mono", "multi"), batch_size=batch_size, write_runs=False,
        use_cache=use_cache, show_progress_bar=False,
    )  # fmt: skip
    return m["mono_map"], m["multi_map"]


@pytest.fixture(scope="module")
def reference_maps(tmp_path_factory, xquad_small):
    """mAP of the plain fp32 torch encoder (character-sorted batches of 64: the evaluation path before)."""
    plain = loading.load_encoder(loading.E5_NAME, token_batching=False)
    return _maps(plain, xquad_small, tmp_path_factory.mktemp("ref"), batch_size=64, use_cache=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "tolerance"),
    [
        ("torch", 0.005),  # token batching + batch 16: same embeddings, different batches
        ("onnx", 0.005),
        # int8 is opt-in because it moves mAP: measured -0.006 multi on this subset, -0.012 on 8 articles
        ("onnx-int8", 0.02),
    ],
)
def test_backend_map_matches_fp32(backend, tolerance, reference_maps, xquad_small, tmp_cache, tmp_path):
    encoder = loading.load_encoder(loading.E5_NAME, backend=backend)
    mono, multi = _maps(encoder, xquad_small, tmp_path / "out", batch_size=16)
    ref_mono, ref_multi = reference_maps
    assert abs(mono - ref_mono) <= tolerance
    assert abs(multi - ref_multi) <= tolerance
    if backend != "onnx-int8":
        assert abs(multi - ref_multi) <= 1e-3  # fp32 paths: only float rounding differs
    # each backend has its own embedding cache folder
    folders = [p.name for p in tmp_cache.rglob("*") if p.is_dir() and any(p.glob("*.npz"))]
    assert folders == [loading.fingerprint(encoder)]
