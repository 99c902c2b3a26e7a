"""Re-scoring an evaluation's TREC files (pytrec_eval) against its own tables, on a hand-made evaluation folder:
the numbers below are computed by hand, so the check is tested without the evaluation code it checks."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from hybridir_utils.errors import EvaluationError
from hybridir_utils.retrieval import trec
from hybridir_utils.retrieval.rescore import independent_rescore
from hybridir_utils.utils import atomic

# multi pool: q1 (en) finds its relevant b, d at ranks 2 and 4: AP (1/2 + 2/4) / 2 = 0.5, rank distance 2;
# q2 (de) has x tied with y: trec_eval's order puts y (the larger id) first, so x is at rank 2: AP 0.5.
RUNS = {
    "multi": {"q1": {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6}, "q2": {"x": 0.5, "y": 0.5, "z": 0.1}},
    "mono": {"q1@en": {"a": 0.9, "b": 0.8}, "q2@de": {"x": 0.5, "w": 0.4}},
}
QRELS = {
    "multi": {"q1": {"b": 1, "d": 1}, "q2": {"x": 1}},
    "mono": {"q1@en": {"b": 1}, "q2@de": {"x": 1}},
}
PER_QUERY = [  # qid, query_lang, pool_lang, setting, ap, r1, r10, rank_distance
    ("q1", "en", "multi", "multi", 0.5, 0.0, 1.0, 2.0),
    ("q2", "de", "multi", "multi", 0.5, 0.0, 1.0, math.nan),
    ("q1", "en", "en", "mono", 0.5, 0.0, 1.0, math.nan),
    ("q2", "de", "de", "mono", 1.0, 1.0, 1.0, math.nan),
]


@pytest.fixture
def evaluation(tmp_path):
    """An evaluation folder as ``evaluate_lareqa`` writes it: metrics.json, per_query.parquet, runs and qrels."""
    files = {"per_query": "per_query.parquet", "runs": {}, "qrels": {}}
    for setting in RUNS:
        files["runs"][setting], files["qrels"][setting] = f"runs/{setting}.trec", f"runs/{setting}.qrels"
        trec.write_run(tmp_path / files["runs"][setting], RUNS[setting], "hand")
        trec.write_qrels(tmp_path / files["qrels"][setting], QRELS[setting])
    columns = ["qid", "query_lang", "pool_lang", "setting", "ap", "r1", "r10", "rank_distance"]
    atomic.write_parquet(tmp_path / files["per_query"], pd.DataFrame(PER_QUERY, columns=columns))
    atomic.write_json(tmp_path / "metrics.json", {"files": files, "multi_map": 0.5, "mono_map": 0.75})
    return tmp_path


def test_rescore_reproduces_hand_computed_metrics(evaluation):
    report = independent_rescore(evaluation)
    assert report["agrees"]
    assert report["multi"]["map"] == pytest.approx(0.5) and report["mono"]["map"] == pytest.approx(0.75)
    assert report["multi"]["n_queries"] == 2 and report["mono"]["n_queries"] == 2
    assert all(v == pytest.approx(0.0, abs=1e-12) for s in RUNS for v in report[s]["max_abs_diff"].values())
    assert report["multi"]["max_abs_diff"]["rank_distance"] == 0  # q2's NaN (one relevant) matches NaN
    assert "rank_distance" not in report["mono"]["max_abs_diff"]


def test_rescore_detects_tampered_per_query_values(evaluation):
    per_query = pd.read_parquet(evaluation / "per_query.parquet")
    per_query.loc[0, "ap"] += 0.01
    per_query.to_parquet(evaluation / "per_query.parquet")
    with pytest.raises(EvaluationError, match="disagree"):
        independent_rescore(evaluation)
    report = independent_rescore(evaluation, check=False)
    assert not report["agrees"] and report["multi"]["max_abs_diff"]["ap"] == pytest.approx(0.01)
    assert independent_rescore(evaluation, tolerance=0.02)["agrees"]


def test_rescore_detects_a_wrong_macro_mean(evaluation):
    metrics = atomic.read_json(evaluation / "metrics.json")
    atomic.write_json(evaluation / "metrics.json", {**metrics, "mono_map": 0.7})
    report = independent_rescore(evaluation, check=False)
    assert not report["agrees"] and report["mono"]["max_abs_diff"]["macro_map"] == pytest.approx(0.05)


def test_rescore_needs_run_files_with_every_query(evaluation):
    trec.write_run(evaluation / "runs" / "mono.trec", {"q1@en": RUNS["mono"]["q1@en"]}, "hand")
    with pytest.raises(EvaluationError, match=r"no ranking for 1 queries, e\.g\. \['q2@de'\]"):
        independent_rescore(evaluation)
    metrics = atomic.read_json(evaluation / "metrics.json")
    atomic.write_json(evaluation / "metrics.json", {**metrics, "files": {"per_query": "per_query.parquet"}})
    with pytest.raises(EvaluationError, match="wrote no run files"):
        independent_rescore(evaluation)
