"""The trainer's LAReQA evaluator gives the project's numbers (evaluate_lareqa) under the trainer's metric names."""

from __future__ import annotations

import pandas as pd
import pytest

from hybridir_utils.evaluation.evaluator import SUMMARY, LAReQAEvaluator, per_language
from hybridir_utils.evaluation.lareqa import evaluate_lareqa


def test_per_language_scores_by_hand():
    rows = [("mono", "en", "en", 1.0), ("mono", "en", "en", 0.5), ("mono", "de", "de", 0.0),
            ("cross", "en", "de", 1.0), ("cross", "en", "de", 0.0), ("cross", "en", "zh", 1.0),
            ("multi", "en", "multi", 0.25)]  # fmt: skip
    table = pd.DataFrame(rows, columns=["setting", "query_lang", "pool_lang", "ap"])
    # cross en: the mean over pool languages (de 0.5, zh 1.0), not over queries (2/3)
    assert per_language(table) == {"mono_map_en": 0.75, "mono_map_de": 0.0, "cross_map_en": 0.75,
                                   "multi_map_en": 0.25}  # fmt: skip


def test_refuses_other_data_and_an_unknown_primary_metric(xquad_small):
    with pytest.raises(TypeError, match="LAReQAData"):
        LAReQAEvaluator(pd.DataFrame())
    with pytest.raises(ValueError, match="primary_metric 'ndcg' is not one of"):
        LAReQAEvaluator(xquad_small, primary_metric="ndcg")
    assert not LAReQAEvaluator(xquad_small, primary_metric="rank_distance").greater_is_better


def test_equals_the_project_evaluation_on_the_same_data(xquad_small, e5_model, tmp_path, tmp_cache):
    evaluator = LAReQAEvaluator(xquad_small, name="xq", keep_dir=tmp_path / "kept")
    got = evaluator(e5_model, steps=7)
    want = evaluate_lareqa(e5_model, xquad_small, tmp_path / "ref", batch_size=16, use_cache=False, write_runs=False)
    assert {k: got[f"xq_{k}"] for k in SUMMARY} == pytest.approx({k: want[k] for k in SUMMARY}, abs=1e-6)
    assert {lang: got[f"xq_multi_map_{lang}"] for lang in xquad_small.languages} == pytest.approx(
        want["multi_map_by_lang"], abs=1e-6
    )
    assert evaluator.primary_metric == "xq_multi_map" and (tmp_path / "kept" / "xq-step7" / "metrics.json").is_file()
    assert {f"xq_{s}_map_{lang}" for s in ("mono", "cross") for lang in ("en", "de", "zh")} <= set(got)
