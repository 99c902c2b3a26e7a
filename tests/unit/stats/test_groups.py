"""Paired cluster bootstrap and Holm: hand-computed cases, coverage on simulated clustered data, bad inputs."""

from __future__ import annotations

import contextlib
import itertools

import numpy as np
import pytest
from doubles import GROUPS, STRATA, A, B, simulate_clustered

from hybridir_utils.stats import groups as stats

try:  # a transitive dependency (scipy, scikit-learn); only to keep the coverage test fast
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None


def _table(scores, reference="a", **kw):
    return stats.cluster_bootstrap(scores, STRATA, GROUPS, reference, **kw).set_index("system")


def test_hand_computed_point_estimates_and_delta():
    t = _table({"a": A, "b": B}, n_boot=200)
    assert list(t.reset_index().columns) == [
        "system",
        "n_seeds",
        "n_rows",
        "n_clusters",
        "mean",
        "ci_low",
        "ci_high",
        "delta",
        "lo",
        "hi",
        "p",
        "seed_delta_min",
        "seed_delta_max",
    ]
    assert t.loc["a", "mean"] == pytest.approx(0.35)  # macro over strata, not the row mean 0.32
    assert t.loc["b", "mean"] == pytest.approx(0.55)  # of the seed-averaged rows
    assert t.loc["b", "delta"] == pytest.approx(0.20)
    assert t.loc["b", ["n_seeds", "n_rows", "n_clusters"]].tolist() == [2, 5, 3]
    ref = t.loc["a"]
    assert (ref.delta, ref.lo, ref.hi, ref.p) == (0.0, 0.0, 0.0, 1.0)
    assert ref.ci_low <= ref["mean"] <= ref.ci_high


def test_identical_systems_have_zero_delta_and_p_one():
    t = _table({"a": A, "copy": A.copy()}, n_boot=500)
    row = t.loc["copy"]
    assert row.delta == 0 and row.lo == 0 and row.hi == 0 and row.p == 1.0
    assert row.seed_delta_min == row.seed_delta_max == 0


def _macro_hand(values, counts):
    """Macro mean over strata with positive weight; ``counts`` = how often each group was drawn."""
    weight = {g: c for g, c in zip(["g1", "g2", "g3"], counts, strict=True)}
    strata_means = []
    for s in ["s1", "s2"]:
        rows = [i for i in range(5) if STRATA[i] == s]
        w = sum(weight[GROUPS[i]] for i in rows)
        if w:
            strata_means.append(sum(weight[GROUPS[i]] * values[i] for i in rows) / w)
    return sum(strata_means) / len(strata_means)


def test_replicates_resample_whole_groups_across_strata():
    # All 10 multisets of 3 groups: the bootstrap distribution of the delta takes only these values, so its
    # extreme percentiles are the extremes over them. The maximum, 0.6, is {g3, g3, g3}, where s2 is empty and s1
    # alone counts (averaging in the empty s2 as 0 would give 0.3).
    d = B.mean(axis=0) - A
    possible = []
    for draw in itertools.combinations_with_replacement(range(3), 3):
        possible.append(_macro_hand(d, np.bincount(draw, minlength=3)))
    row = _table({"a": A, "b": B}, n_boot=20_000, ci=0.9999).loc["b"]
    assert row.lo == pytest.approx(min(possible)) and row.hi == pytest.approx(max(possible))
    assert max(possible) == pytest.approx(0.6) == _macro_hand(d, [0, 0, 3])


def test_seed_delta_range():
    # b (2 seeds) vs a (1 seed): a is compared with each seed of b -> 0.6 - 0.35, 0.5 - 0.35
    t = _table({"a": A, "b": B}, n_boot=50)
    assert t.loc["b", "seed_delta_min"] == pytest.approx(0.15)
    assert t.loc["b", "seed_delta_max"] == pytest.approx(0.25)
    assert t.loc["a", "seed_delta_min"] == t.loc["a", "seed_delta_max"] == 0
    # same number of seeds: paired by index. c seeds have macro 0.35 and 0.55 -> b - c = 0.6 - 0.35, 0.5 - 0.55
    c = np.array([A, A + np.array([0.2, 0.2, 0.2, 0.2, 0.2])])
    t = _table({"c": c, "b": B}, reference="c", n_boot=50)
    assert t.loc["b", "seed_delta_min"] == pytest.approx(-0.05)
    assert t.loc["b", "seed_delta_max"] == pytest.approx(0.25)
    assert t.loc["b", "delta"] == pytest.approx(0.10)  # 0.55 - 0.45, the seed means
    # several seeds on both sides but different counts: no pairing, NaN
    t = _table({"c": c, "b3": np.vstack([B, B[:1]])}, reference="c", n_boot=50)
    assert np.isnan(t.loc["b3", "seed_delta_min"]) and np.isnan(t.loc["b3", "seed_delta_max"])


def test_deterministic_given_the_seed():
    scores, strata, groups = simulate_clustered(np.random.default_rng(1))
    scores["c"] = np.vstack([scores["b"], scores["b"] + 0.01])
    first = stats.cluster_bootstrap(scores, strata, groups, "a", n_boot=300, seed=4)
    assert first.equals(stats.cluster_bootstrap(scores, strata, groups, "a", n_boot=300, seed=4))
    other = stats.cluster_bootstrap(scores, strata, groups, "a", n_boot=300, seed=5)
    assert (first.ci_low != other.ci_low).all() and (first.lo != other.lo).iloc[1:].all()
    assert first["mean"].equals(other["mean"])  # the point estimates do not depend on the seed


def test_cluster_ci_covers_the_true_effect_and_per_query_ci_does_not():
    # Rows of a group share its effect, so the delta's spread is set by the 100 groups, not the 800 rows: the
    # group-level CI covers the true effect at the nominal rate, the per-row CI (rows as clusters) far less often.
    rng = np.random.default_rng(20240611)
    n_sim, effect = 500, 0.05
    cover_cluster = cover_rows = 0
    # 1000 calls on small matrices: BLAS threads cost more than they save here
    with threadpool_limits(1) if threadpool_limits else contextlib.nullcontext():
        for i in range(n_sim):
            scores, strata, groups = simulate_clustered(rng, n_groups=100, effect=effect)
            row = stats.cluster_bootstrap(scores, strata, groups, "a", n_boot=1000, seed=i).iloc[1]
            cover_cluster += row.lo <= effect <= row.hi
            row = stats.cluster_bootstrap(scores, strata, np.arange(len(groups)), "a", n_boot=400, seed=i).iloc[1]
            cover_rows += row.lo <= effect <= row.hi
    assert 0.92 <= cover_cluster / n_sim <= 0.98, cover_cluster / n_sim
    assert cover_rows / n_sim < 0.85, cover_rows / n_sim


def test_holm_hand_case():
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01, 2 x 0.03, 1 x 0.04 = 0.03, 0.06, 0.04 -> monotone 0.03, 0.06, 0.06
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(stats.holm([0.4, 0.5]), [0.8, 0.8])
    np.testing.assert_allclose(stats.holm([0.6, 0.02]), [0.6, 0.04])
    np.testing.assert_allclose(stats.holm([0.7, 0.6]), [1.0, 1.0])  # 2 x 0.6 = 1.2, capped at 1
    assert stats.holm([]).size == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scores": {}}, r"^scores: expected a non-empty mapping"),
        ({"scores": {"a": A, "b": np.array([0.1, np.nan, 0.3, 0.4, 0.5])}}, r"^scores\['b'\]: contains NaN"),
        ({"scores": {"a": A, "b": np.array([0.1, np.inf, 0.3, 0.4, 0.5])}}, r"^scores\['b'\]: contains NaN"),
        ({"scores": {"a": A, "b": A[:4]}}, r"^scores\['b'\]: has 4 rows but scores\['a'\] has 5"),
        ({"scores": {"a": A, "b": np.zeros((1, 1, 5))}}, r"^scores\['b'\]: expected a non-empty"),
        ({"strata": STRATA[:4]}, r"^strata: expected 5 labels"),
        ({"clusters": GROUPS[:3]}, r"^clusters: expected 5 labels"),
        ({"reference": "z"}, r"^reference: 'z' is not among the systems \['a', 'b'\]"),
        ({"n_boot": 0}, r"^n_boot: expected an integer >= 1"),
        ({"ci": 1.0}, r"^ci: expected a confidence level"),
    ],
)
def test_bad_inputs_name_the_input(kwargs, message):
    args = {"scores": {"a": A, "b": B}, "strata": STRATA, "clusters": GROUPS, "reference": "a", "n_boot": 10}
    with pytest.raises(ValueError, match=message):
        stats.cluster_bootstrap(**{**args, **kwargs})


def test_holm_rejects_values_outside_unit_interval():
    with pytest.raises(ValueError, match=r"^p_values"):
        stats.holm([0.1, np.nan])


# ---- run-level inference (stats.runs): seeds are runs of a training method, resampled per system ----


def test_macro_mean_se_matches_the_textbook_value_on_independent_clusters():
    """One stratum, one row per cluster: the bootstrap SE of the mean is sd(v) / sqrt(n) (ddof 0); identical
    clusters give 0; two strata with every cluster in both average the strata first."""
    v = np.random.default_rng(1).normal(size=400)
    se = stats.macro_mean_se(v, np.zeros(400), np.arange(400), n_boot=4000)
    assert se == pytest.approx(v.std() / np.sqrt(400), rel=0.08)
    assert stats.macro_mean_se(np.ones(50), np.zeros(50), np.arange(50), n_boot=200) == 0.0
    with pytest.raises(ValueError, match="clusters"):
        stats.macro_mean_se(v, np.zeros(400), np.arange(3), n_boot=10)
