"""Scoring every system (evaluation.systems): which systems, the evaluation set, linear CKA to the base."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybridir_utils import evaluation
from hybridir_utils.errors import ExperimentError
from hybridir_utils.evaluation.systems import linear_cka


def test_linear_cka_is_rotation_invariant_and_hand_computed():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 4))
    rotation, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    assert linear_cka(base, 3.0 * base @ rotation) == pytest.approx(1.0)  # rotated and scaled: same geometry
    # hand case: centred x = [[-1, 0], [1, 0]], y keeps only the first axis -> CKA 1; an orthogonal one -> 0
    x = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
    y = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    # x'x = 2 I, y'y = diag(2, 0), y'x = diag(2, 0): ||y'x||^2 = 4, ||x'x|| = sqrt(8), ||y'y|| = 2 -> 4 / (2 sqrt 8)
    assert linear_cka(x, y) == pytest.approx(4 / (2 * np.sqrt(8)))
    assert linear_cka(x, y + 5.0) == pytest.approx(4 / (2 * np.sqrt(8)))  # a shift does not count: centred
    assert linear_cka(base, base) == pytest.approx(1.0)
    assert np.isnan(linear_cka(base, np.ones((50, 3))))  # another model family: no CKA


def test_evaluation_set_restricts_by_article(shared_data_dir, monkeypatch):
    monkeypatch.setenv("HYBRIDIR_DATA_DIR", str(shared_data_dir))
    ds = evaluation.evaluation_set("xquad-r", ["en", "th"], max_articles=3)
    assert ds.questions.article.nunique() == 3 == ds.candidates.article.nunique()
    again = evaluation.evaluation_set("xquad-r", ["en", "th"], max_articles=3)
    assert set(again.questions.article) == set(ds.questions.article)


def test_the_base_of_every_comparison_is_the_model_that_was_trained():
    runs = pd.DataFrame([{"label": "hybrid/general/s0", "system": "hybrid/general", "seed": 0, "model_dir": "m"}])
    systems = evaluation.systems_to_evaluate(runs, ["multilingual-e5-small"], "sentence-transformers/LaBSE")
    assert list(systems.label) == ["LaBSE", "multilingual-e5-small", "hybrid/general/s0"]
    assert systems.source.iloc[0] == "sentence-transformers/LaBSE"
    same = evaluation.systems_to_evaluate(runs, ["multilingual-e5-small", "use-multilingual"])
    assert list(same.label) == ["multilingual-e5-small", "use-multilingual", "hybrid/general/s0"]


def test_a_profile_scores_only_the_systems_it_names():
    runs = pd.DataFrame({"system": ["hybrid/general", "hybrid/news-in-domain", "hybrid/news-in-domain"],
                         "seed": [0, 0, 1]})  # fmt: skip
    assert evaluation.select_systems(runs, None) is runs
    picked = evaluation.select_systems(runs, ["hybrid/news-in-domain"])
    assert list(picked.seed) == [0, 1] and set(picked.system) == {"hybrid/news-in-domain"}
    with pytest.raises(ExperimentError, match=r"eval_systems \['hybrid/news'\]: no run of notebook 03; trained"):
        evaluation.select_systems(runs, ["hybrid/news", "hybrid/general"])


def test_interpolated_runs_are_also_scored_as_trained_after_every_interpolated_run():
    runs = pd.DataFrame([{"label": f"hybrid/general/s{k}", "system": "hybrid/general", "seed": k,
                          "model_dir": f"wise/s{k}", "trained_model_dir": f"run/s{k}"} for k in (0, 1)])  # fmt: skip
    systems = evaluation.systems_to_evaluate(runs, ["e5"], score_as_trained=True)
    assert list(systems.label) == ["e5", "hybrid/general/s0", "hybrid/general/s1", "hybrid/general@trained/s0",
                                   "hybrid/general@trained/s1"]  # fmt: skip
    assert list(systems.source) == ["e5", "wise/s0", "wise/s1", "run/s0", "run/s1"]
    assert len(evaluation.systems_to_evaluate(runs, ["e5"])) == 3  # not asked: the interpolated runs only
    as_trained = runs.assign(model_dir=runs.trained_model_dir)  # λ = 1: the interpolation is the run itself
    assert len(evaluation.systems_to_evaluate(as_trained, ["e5"], score_as_trained=True)) == 3
