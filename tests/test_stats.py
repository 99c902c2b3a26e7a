"""Significance tests over queries: bootstrap and randomisation on synthetic cases with a known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybridir_utils import stats


def _systems(n=400, shift=0.05, seed=1):
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 1, n)
    return base + shift + rng.normal(0, 0.1, n), base  # a is better than b by `shift` on average


def test_identical_systems_have_p_one():
    a = np.random.default_rng(0).uniform(size=200)
    boot = stats.paired_bootstrap(a, a.copy(), n_boot=2000)
    assert boot["diff"] == 0 and boot["ci_low"] == 0 and boot["ci_high"] == 0
    assert boot["p_value"] == 1.0
    assert stats.randomisation_test(a, a.copy(), n_perm=2000)["p_value"] == 1.0


def test_bootstrap_ci_covers_true_difference_and_detects_it():
    a, b = _systems()
    boot = stats.paired_bootstrap(a, b, n_boot=4000, seed=3)
    assert boot["ci_low"] < 0.05 < boot["ci_high"]
    assert boot["ci_low"] > 0 and boot["p_value"] < 0.01
    assert stats.randomisation_test(a, b, n_perm=4000)["p_value"] < 0.01
    # no real difference: not significant
    c, d = _systems(shift=0.0, seed=5)
    assert stats.paired_bootstrap(c, d, n_boot=2000)["p_value"] > 0.05


def test_ci_coverage_is_close_to_nominal():
    rng = np.random.default_rng(7)
    covered = 0
    for rep in range(100):
        x = rng.exponential(1.0, 150)  # true mean 1, skewed like AP
        ci = stats.bootstrap_ci(x, n_boot=800, seed=rep)
        covered += ci["ci_low"] <= 1.0 <= ci["ci_high"]
    assert 85 <= covered <= 100


def test_seeded_and_reproducible():
    a, b = _systems(n=100)
    assert stats.paired_bootstrap(a, b, seed=4) == stats.paired_bootstrap(a, b, seed=4)
    assert stats.paired_bootstrap(a, b, seed=4)["ci_low"] != stats.paired_bootstrap(a, b, seed=5)["ci_low"]
    assert stats.randomisation_test(a, b, seed=2) == stats.randomisation_test(a, b, seed=2)


def test_strata_give_the_macro_mean():
    a = np.array([1.0, 1.0, 1.0, 0.0])
    strata = np.array(["en", "en", "en", "de"])
    assert stats.bootstrap_ci(a, n_boot=200, strata=strata)["mean"] == pytest.approx(0.5)  # macro, not 0.75
    boot = stats.paired_bootstrap(a, np.zeros(4), n_boot=500, strata=strata)
    assert boot["diff"] == pytest.approx(0.5)
    assert boot["ci_low"] == boot["ci_high"] == pytest.approx(0.5)  # constant within strata: no variance


def test_holm_hand_case():
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])


def test_comparison_table():
    a, b = _systems(n=300)
    idx = [f"q{i}" for i in range(300)]
    table = stats.comparison_table({"base": pd.Series(b, idx), "new": pd.Series(a, idx)}, "base", n_boot=1000)
    assert table.system.tolist() == ["base", "new"]
    ref, new = table.iloc[0], table.iloc[1]
    assert ref["diff"] == 0 and ref["p_bootstrap"] == 1
    assert new["diff"] == pytest.approx(a.mean() - b.mean())
    assert new["diff_ci_low"] > 0 and new["p_bootstrap"] < 0.01 and new["p_holm"] == new["p_bootstrap"]
    assert new["ci_low"] < new["mean"] < new["ci_high"]


def test_per_query_scores_from_evaluation_tables():
    rows = pd.DataFrame(
        {
            "qid": ["en:1", "en:1", "de:1"],
            "query_lang": ["en", "en", "de"],
            "pool_lang": ["multi", "de", "multi"],
            "setting": ["multi", "cross", "multi"],
            "ap": [0.5, 0.2, 1.0],
        }
    )
    wide, strata = stats.per_query_scores({"x": rows, "y": rows.assign(ap=rows.ap / 2)})
    assert wide.loc["en:1@multi"].tolist() == [0.5, 0.25] and len(wide) == 2
    assert strata["de:1@multi"] == "de>multi"


def test_bad_inputs():
    with pytest.raises(ValueError, match="align them"):
        stats.paired_bootstrap([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        stats.bootstrap_ci([1.0, np.nan])
    with pytest.raises(ValueError, match="covers 1 queries"):
        stats.comparison_table({"a": pd.Series([1.0, 2.0], ["q1", "q2"]), "b": pd.Series([1.0], ["q1"])}, "a")
    with pytest.raises(KeyError, match="reference system 'c'"):
        stats.comparison_table({"a": pd.Series([1.0], ["q1"])}, "c")
