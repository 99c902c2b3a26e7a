"""The whole smoke pipeline, as CI and a user run it: five notebooks, real data, a real model, real training."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hybridir_utils import answer, pipeline


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    build = tmp_path_factory.mktemp("build")
    mp = pytest.MonkeyPatch()
    mp.setenv("HYBRIDIR_BUILD_DIR", str(build))
    mp.setenv("HYBRIDIR_RESULTS_DIR", str(build / "results"))
    try:
        index = pipeline.run("smoke", timeout=900)
    finally:
        mp.undo()
    return build / "smoke", index


@pytest.mark.slow
def test_smoke_pipeline_produces_the_report(smoke_run):
    out, index = smoke_run
    html = index.read_text()
    for name in pipeline.NOTEBOOKS:
        assert (out / f"{name}.ipynb").is_file() and f'href="{name}.html"' in html
        assert (out / f"{name}.html").stat().st_size > 10_000
    assert not list(out.glob("*.failed.ipynb")) and not list(out.glob("*.running.ipynb"))
    timings = json.loads((out / "pipeline.json").read_text())["seconds"]
    assert set(timings) == set(pipeline.NOTEBOOKS)
    assert len(list((out / "figures").glob("*.png"))) >= 10
    sources = json.loads((out / "01_data" / "data.json").read_text())["sources"]  # where the data came from
    assert set(sources["xquad-r"]) == {"en", "de", "zh"} and sources["mlqa-r"]["en"].endswith("mlqa-r/en.json")


@pytest.mark.slow
def test_smoke_metrics_are_in_range(smoke_run):
    out, _ = smoke_run
    results = pd.read_parquet(out / "04_eval" / "results.parquet")
    runs = pd.read_csv(out / "03_training" / "runs.csv")
    assert len(runs) == 3 and set(results.label) == {"multilingual-e5-small", "use-multilingual", *runs.label}
    for col in ("mono_map", "cross_map", "multi_map"):
        assert results[col].between(0, 1).all()
    base = results[(results.label == "multilingual-e5-small") & (results.dataset == "xquad-r")].iloc[0]
    assert base.mono_map > 0.6 and base.cross_map > 0.5  # a real multilingual model, not a random one
    assert (results.rank_distance >= 0).all()
    comparisons = pd.read_parquet(out / "04_eval" / "comparisons.parquet")
    assert (comparisons.lo <= comparisons.hi).all() and (comparisons.p_holm >= comparisons.p).all()
    miracl = pd.read_parquet(out / "04_eval" / "miracl.parquet")
    assert set(miracl.retriever) == {"dense", "bm25"} and miracl["ndcg@10"].between(0, 1).all()
    answer = (out / "05_bias" / "answer.md").read_text()
    assert "**Answer.**" in answer and "hybrid/science-size-random" in answer and "**Recipe" in answer


@pytest.mark.slow
def test_smoke_writes_the_result_tables(smoke_run):
    out, _ = smoke_run
    tables = {name: pd.read_csv(out.parent / "results" / "smoke" / f"{name}.csv") for name in answer.TABLES}
    assert list(tables["levels"].columns) == ["system", "seed", "dataset", "setting", "map", "r1", "r10",
                                              "rank_distance", "drift", "pool_size"]  # fmt: skip
    assert {"system", "reference", "delta", "lo", "hi", "p", "p_holm", "n_seeds"} <= set(tables["comparisons"])
    assert tables["recipe"].chosen.sum() == 1 and (tables["recipe"].step == 0).sum() == 1
    trained = tables["levels"][tables["levels"].system.str.contains("/")]
    assert trained.drift.between(0, 1).all() and (trained.drift > 0).all()
    assert set(tables["slices"].status) <= {"ok", "too-few-articles"}


@pytest.mark.slow
def test_every_run_trains_with_the_chosen_recipe_and_no_test_article(smoke_run):
    out, _ = smoke_run
    chosen = json.loads((out / "03_training" / "recipe.json").read_text())
    for model_dir in pd.read_csv(out / "03_training" / "runs.csv").model_dir:
        cfg = json.loads((Path(model_dir) / "train_config.json").read_text())
        assert (cfg["scale"], cfg["lr"], cfg["max_steps"]) == (chosen["scale"], chosen["lr"], chosen["max_steps"])
        info = json.loads((Path(model_dir) / "train_info.json").read_text())
        assert info["dropped_test_articles"] == []  # removed before the pools were built, not by train()
