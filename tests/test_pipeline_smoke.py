"""The whole smoke pipeline, as CI and a user run it: five notebooks, real data, a real model, real training."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hybridir_utils import pipeline


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    build = tmp_path_factory.mktemp("build")
    mp = pytest.MonkeyPatch()
    mp.setenv("HYBRIDIR_BUILD_DIR", str(build))
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


@pytest.mark.slow
def test_smoke_metrics_are_in_range(smoke_run):
    out, _ = smoke_run
    results = pd.read_parquet(out / "04_eval" / "results.parquet")
    runs = pd.read_csv(out / "03_training" / "runs.csv")
    assert len(runs) == 4 and set(results.label) == {"multilingual-e5-small", "use-multilingual", *runs.label}
    for col in ("mono_map", "cross_map", "multi_map"):
        assert results[col].between(0, 1).all()
    base = results[(results.label == "multilingual-e5-small") & (results.dataset == "xquad-r")].iloc[0]
    assert base.mono_map > 0.6 and base.cross_map > 0.5  # a real multilingual model, not a random one
    assert (results.rank_distance >= 0).all()
    comparisons = pd.read_parquet(out / "04_eval" / "comparisons.parquet")
    assert (comparisons.diff_ci_low <= comparisons.diff_ci_high).all()
    miracl = pd.read_parquet(out / "04_eval" / "miracl.parquet")
    assert set(miracl.retriever) == {"dense", "bm25"} and miracl["ndcg@10"].between(0, 1).all()
    answer = (out / "05_bias" / "answer.md").read_text()
    assert "**Answer.**" in answer and "hybrid/science-weighted" in answer
