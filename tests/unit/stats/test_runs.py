"""Run-level inference (stats.runs): hand cases, simulated data with known truth (coverage of the
two-level bootstrap and of the interaction test), bad inputs named."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from doubles import GROUPS, STRATA, A, B, simulate_clustered

from hybridir_utils.stats import runs as seed_level

try:  # a transitive dependency (scipy, scikit-learn); only to keep the coverage tests fast
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None
from hybridir_utils.stats import groups as stats


def test_run_permutation_p_hand_cases():
    # 3 vs 3 fully separated runs: 2 of the C(6, 3) = 20 relabellings (this one and its mirror) are as extreme
    assert seed_level.run_permutation_p([3, 4, 5], [0, 1, 2]) == pytest.approx(0.1)
    assert seed_level.run_permutation_p([0, 1, 2], [3, 4, 5]) == pytest.approx(0.1)  # two-sided
    # 2 vs 2, a = [1, 3], b = [0, 2], observed 2 - 1 = 1; the 6 splits' first pairs and differences: {1,3} 1,
    # {0,2} -1, {1,0} -2, {3,2} 2, {1,2} 0, {3,0} 0 -> 4 of 6 at least as extreme
    assert seed_level.run_permutation_p([1, 3], [0, 2]) == pytest.approx(4 / 6)
    # a frozen reference (one run): sign flips of the 4 positive differences; only all + and all - are as extreme
    assert seed_level.run_permutation_p([1.1, 1.2, 1.3, 1.4], [1.0]) == pytest.approx(2 / 16)
    assert seed_level.run_permutation_p([1.0], [1.1, 1.2, 1.3, 1.4]) == pytest.approx(2 / 16)
    # differences [1, -1, 2, 2], sum 4: flipped sums x + y, x = +-1 +-1 in {-2, 0, 0, 2}, y = +-2 +-2 in
    # {-4, 0, 0, 4}; |x + y| >= 4 needs y = +-4 and x != -+2: 3 + 3 of 16
    assert seed_level.run_permutation_p([2.0, 0.0, 3.0, 3.0], [1.0]) == pytest.approx(6 / 16)
    assert np.isnan(seed_level.run_permutation_p([1.0], [2.0]))
    # Monte Carlo beyond MAX_RELABELLINGS: 12 vs 12 (C(24, 12) = 2.7e6), deterministic, close to the exact value
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.3, 1, 12), rng.normal(0, 1, 12)
    p = seed_level.run_permutation_p(a, b)
    assert p == seed_level.run_permutation_p(a, b) and 0 < p < 1


def test_minimum_detectable_effect_hand_value():
    assert seed_level.minimum_detectable_effect(0.01, np.inf) == pytest.approx((1.959964 + 0.841621) * 0.01, abs=1e-8)
    # a few runs: t quantiles, larger (df = 4: 2.776445 + 0.940965)
    assert seed_level.minimum_detectable_effect(0.01, 4) == pytest.approx((2.776445 + 0.940965) * 0.01, abs=1e-7)


def test_welch_df_hand_case():
    # two equal run components of n = 4 runs (0, 1, 0, 1: s^2/n = (1/3)/4 = 1/12), no group part: (2v)^2/(2v^2/3) = 6
    runs = np.array([0.0, 1.0, 0.0, 1.0])
    level = seed_level._Level(np.zeros(3), np.zeros(3), 0.5, runs)
    assert seed_level._welch_df([(0.0, np.inf)], [level, level]) == pytest.approx(6.0)
    frozen = seed_level._Level(np.zeros(3), np.zeros(3), 0.0, np.zeros(1))
    v = 1 / 12
    assert seed_level._welch_df([(1.0, np.inf)], [level, frozen]) == pytest.approx((1 + v) ** 2 / (v**2 / 3))
    assert seed_level._welch_df([(0.3, np.inf)], [frozen]) == np.inf  # no run level: the normal
    # a run variance clipped to 0 net of the group noise still has a finite df: its estimate is uncertain
    clipped = seed_level._Level(np.zeros(3), np.zeros(3), 0.0, runs)
    assert np.isfinite(seed_level._welch_df([(0.0, np.inf)], [clipped, clipped]))


def _run_table(scores, reference="a", **kw):
    return seed_level.run_bootstrap(scores, STRATA, GROUPS, reference, **kw).set_index("system")


def test_run_bootstrap_columns_point_estimates_and_identical_system():
    c = np.array([A, A + 0.2])  # per-seed macro means 0.35, 0.55
    t = _run_table({"a": A, "b": B, "c": c, "c2": c.copy()}, n_boot=300)
    assert list(t.reset_index().columns) == [
        *["system", "n_seeds", "n_rows", "n_clusters", "mean", "ci_low", "ci_high", "delta", "lo", "hi", "p"],
        *["se", "df", "run_sd", "ref_run_sd", "p_perm", "mde"],
    ]
    assert t.loc["b", "mean"] == pytest.approx(0.55) and t.loc["b", "delta"] == pytest.approx(0.20)
    assert t.loc["b", "run_sd"] == pytest.approx(np.std([0.6, 0.5], ddof=1))
    assert np.isnan(t.loc["b", "ref_run_sd"]) and np.isnan(t.loc["a", "run_sd"])  # one seed: no run SD
    ref = t.loc["a"]
    assert (ref.delta, ref.lo, ref.hi, ref.p, ref.p_perm) == (0.0, 0.0, 0.0, 1.0, 1.0)
    # an identical copy of a two-seed system, against it: delta 0, p 1 (its seeds are still drawn independently)
    t = _run_table({"c": c, "c2": c.copy(), "a": A}, reference="c", n_boot=300)
    assert t.loc["c2", "delta"] == 0 and t.loc["c2", "p"] == 1.0 and t.loc["c2", "p_perm"] == 1.0
    assert t.loc["c2", "lo"] < 0 < t.loc["c2", "hi"]
    # one seed each, identical: nothing varies
    row = _run_table({"a": A, "copy": A.copy()}, n_boot=300).loc["copy"]
    assert (row.delta, row.lo, row.hi, row.p, row.se) == (0, 0, 0, 1.0, 0)


def test_one_seed_each_reduces_to_the_cluster_bootstrap_draw():
    # no seed level: the same group draws as cluster_bootstrap (same seed), so se is the SD of its replicate deltas
    scores, strata, groups = simulate_clustered(np.random.default_rng(3))
    row = seed_level.run_bootstrap(scores, strata, groups, "a", n_boot=2000, seed=9).iloc[1]
    cells = stats.Cells.of(strata, groups, len(groups))
    boot = stats._bootstrap(cells, np.column_stack([scores["a"], scores["b"] - scores["a"]]), 2000, 9)
    assert row.se == pytest.approx(boot[:, 1].std(ddof=1), rel=1e-9)
    assert row.df == np.inf and np.isnan(row.p_perm)
    ref = stats.cluster_bootstrap(scores, strata, groups, "a", n_boot=2000, seed=9).iloc[1]
    assert row.lo == pytest.approx(ref.lo, abs=0.15 * row.se) and row.hi == pytest.approx(ref.hi, abs=0.15 * row.se)


def test_seeds_are_not_paired_by_index_and_the_resample_is_inflated():
    # a and b share their per-seed offsets seed by seed; b = a + 0.1 exactly otherwise. Pairing seeds by index would
    # cancel the offsets (se 0); independent runs have run variance s^2 / n on each side, s^2 = var(0, .1, .2, .3).
    offsets = np.array([0.0, 0.1, 0.2, 0.3])[:, None]
    a = A + offsets
    row = _run_table({"a": a, "b": a + 0.1}, n_boot=20_000).loc["b"]
    s2 = np.var(offsets, ddof=1)
    # a plain resample would give sqrt(3/4) of this (13 % less): the n/(n-1) inflation is what makes it match
    assert row.se == pytest.approx(np.sqrt(2 * s2 / 4), rel=0.03)
    assert row.df == pytest.approx(6.0)  # Welch with equal variances, n = 4 each, no group-level variance
    assert row.lo == pytest.approx(0.1 - 2.446912 * row.se, abs=1e-6)  # t_{6, 0.975}, not the normal 1.96
    assert row.run_sd == pytest.approx(row.ref_run_sd) == pytest.approx(np.sqrt(s2))


def _simulate_runs(rng, sigma_run, delta=0.02, n_groups=80, n_strata=4, n_seeds=6, row_sd=0.1):
    """Rows = group x stratum; score = group + stratum + system effect + one random effect per run (system, seed)
    + row noise (per run). The target is the method difference over the population of runs and groups: delta."""
    groups = np.repeat(np.arange(n_groups), n_strata)
    strata = np.tile(np.arange(n_strata), n_groups)
    base = rng.normal(0.5, 0.15, n_groups)[groups] + rng.normal(0, 0.1, n_strata)[strata]
    scores = {}
    for name, effect in (("a", 0.0), ("b", delta)):
        run = rng.normal(0, sigma_run, (n_seeds, 1))
        scores[name] = base + effect + run + rng.normal(0, row_sd, (n_seeds, len(base)))
    return scores, strata, groups


def _coverage(sigma_run, n_sim, seed, group_only=True):
    rng = np.random.default_rng(seed)
    runs = groups_only = 0
    with threadpool_limits(1) if threadpool_limits else contextlib.nullcontext():
        for i in range(n_sim):
            scores, strata, groups = _simulate_runs(rng, sigma_run)
            row = seed_level.run_bootstrap(scores, strata, groups, "a", n_boot=300, seed=i).iloc[1]
            runs += row.lo <= 0.02 <= row.hi
            if group_only:
                row = stats.cluster_bootstrap(scores, strata, groups, "a", n_boot=300, seed=i).iloc[1]
                groups_only += row.lo <= 0.02 <= row.hi
    return runs / n_sim, groups_only / n_sim


def test_two_level_ci_covers_the_method_difference_and_group_only_does_not():
    # 6 runs per system with run effects of SD 0.015: the delta varies from run set to run set by
    # sqrt(2 x 0.015^2 / 6) = 0.009, which the group-only bootstrap of seed-averaged rows cannot see.
    two_level, group_only = _coverage(sigma_run=0.015, n_sim=1000, seed=20240612)
    assert 0.93 <= two_level <= 0.97, two_level
    assert group_only < 0.70, group_only


def test_two_level_ci_does_not_over_cover_without_run_effects():
    # No run effect: the runs differ only by per-row noise, which the group draw already counts. Resampling seeds on
    # top without netting it out counts it twice (coverage 1.000 in this setting); netted out, about 0.97.
    two_level, _ = _coverage(sigma_run=0.0, n_sim=1000, seed=20240613, group_only=False)
    assert 0.93 <= two_level <= 0.985, two_level


def test_run_bootstrap_deterministic_given_the_seed():
    scores, strata, groups = _simulate_runs(np.random.default_rng(5), 0.01)
    first = seed_level.run_bootstrap(scores, strata, groups, "a", n_boot=300, seed=4)
    assert first.equals(seed_level.run_bootstrap(scores, strata, groups, "a", n_boot=300, seed=4))
    other = seed_level.run_bootstrap(scores, strata, groups, "a", n_boot=300, seed=5)
    assert first.lo.iloc[1] != other.lo.iloc[1] and first["mean"].equals(other["mean"])


def _simulate_articles(rng, gain_target, gain_other, n_articles=40, n_target=10, n_seeds=5, sigma_run=0.01):
    """Articles x 6 questions x 3 strata; the first n_target articles are the target domain."""
    per_article = 18
    articles = np.repeat(np.arange(n_articles), per_article)
    strata = np.tile(np.arange(3), n_articles * 6)
    target = articles < n_target
    base = rng.normal(0.5, 0.1, n_articles)[articles] + rng.normal(0, 0.05, len(articles))
    gain = np.where(target, gain_target, gain_other) + rng.normal(0, 0.02, n_articles)[articles]
    ref = base + rng.normal(0, sigma_run, (n_seeds, 1)) + rng.normal(0, 0.05, (n_seeds, len(base)))
    system = base + gain + rng.normal(0, sigma_run, (n_seeds, 1)) + rng.normal(0, 0.05, (n_seeds, len(base)))
    return system, ref, strata, articles, target


def test_interaction_covers_a_large_effect_and_not_zero_when_gains_are_equal():
    system, ref, strata, articles, target = _simulate_articles(np.random.default_rng(1), 0.08, 0.01)
    out = seed_level.interaction_bootstrap(system, ref, strata, articles, target, n_boot=2000, seed=0)
    assert set(out) == {
        *["gain_target", "gain_other", "interaction", "lo", "hi", "p", "se", "df", "p_perm", "mde"],
        *["n_target_articles", "n_other_articles"],
    }
    assert out["interaction"] == pytest.approx(out["gain_target"] - out["gain_other"])
    assert 0 < out["lo"] <= 0.07 <= out["hi"] and out["p"] < 0.001 and out["p_perm"] < 0.001
    assert (out["n_target_articles"], out["n_other_articles"]) == (10, 30)
    system, ref, strata, articles, target = _simulate_articles(np.random.default_rng(2), 0.03, 0.03)
    out = seed_level.interaction_bootstrap(system, ref, strata, articles, target, n_boot=2000, seed=0)
    assert out["lo"] <= 0 <= out["hi"] and out["p"] > 0.05 and out["gain_target"] > 0.02


def test_interaction_coverage():
    # 16 articles, 4 target: C(16, 4) = 1820 relabellings, enumerated (the Monte Carlo path costs ~0.1 s a call)
    rng = np.random.default_rng(20240614)
    covered = 0
    with threadpool_limits(1) if threadpool_limits else contextlib.nullcontext():
        for i in range(300):
            system, ref, strata, articles, target = _simulate_articles(rng, 0.04, 0.01, n_articles=16, n_target=4)
            out = seed_level.interaction_bootstrap(system, ref, strata, articles, target, n_boot=300, seed=i)
            covered += out["lo"] <= 0.03 <= out["hi"]
    assert 0.91 <= covered / 300 <= 0.99, covered / 300


def test_interaction_randomisation_p_and_per_article_gain_hand_case():
    # 4 articles, one row each; gains 0.3, 0.2 (target) and 0.0, 0.1: observed 0.25 - 0.05 = 0.2. Of the 6
    # relabellings, |difference| >= 0.2 for this one and its mirror: p = 2/6.
    ref = np.array([0.5, 0.4, 0.6, 0.2])
    gains = np.array([0.3, 0.2, 0.0, 0.1])
    system = np.array([ref + gains, ref + gains])  # two identical seeds
    articles, target, strata = np.array(["w", "x", "y", "z"]), np.array([True, True, False, False]), np.zeros(4)
    out = seed_level.interaction_bootstrap(system, ref, strata, articles, target, n_boot=200)
    assert out["p_perm"] == pytest.approx(2 / 6)
    assert out["interaction"] == pytest.approx(0.2)
    table = seed_level.per_article_gain(system, ref, articles, target)
    assert table.article.tolist() == ["w", "x", "y", "z"] and table.in_target.tolist() == [True, True, False, False]
    np.testing.assert_allclose(table.gain, gains)
    assert table.n_rows.tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scores": {"a": A, "b": A[:4]}}, r"^scores\['b'\]: has 4 rows but scores\['a'\] has 5"),
        ({"scores": {"a": A, "b": np.array([0.1, np.nan, 0.3, 0.4, 0.5])}}, r"^scores\['b'\]: contains NaN"),
        ({"strata": STRATA[:4]}, r"^strata: expected 5 labels"),
        ({"clusters": GROUPS[:3]}, r"^clusters: expected 5 labels"),
        ({"reference": "z"}, r"^reference: 'z' is not among the systems \['a', 'b'\]"),
        ({"n_boot": 0}, r"^n_boot: expected an integer >= 1"),
    ],
)
def test_run_bootstrap_bad_inputs_name_the_input(kwargs, message):
    args = {"scores": {"a": A, "b": B}, "strata": STRATA, "clusters": GROUPS, "reference": "a", "n_boot": 10}
    with pytest.raises(ValueError, match=message):
        seed_level.run_bootstrap(**{**args, **kwargs})


IA_REF = np.array([0.5, 0.4, 0.6, 0.2, 0.3, 0.1])


IA_ARTICLES = np.array(["w", "w", "x", "y", "z", "z"])  # w, x target; y, z not


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reference": IA_REF[:5]}, r"^reference: has 5 rows but system has 6"),
        ({"system": np.array([0.1, np.nan, 0.3, 0.4, 0.5, 0.6])}, r"^system: contains NaN"),
        ({"articles": IA_ARTICLES[:4]}, r"^articles: expected 6 labels"),
        ({"strata": np.zeros(4)}, r"^strata: expected 6 labels"),
        ({"in_target": np.array([1, 1, 1, 0, 0, 0])}, r"^in_target: expected 6 booleans"),
        ({"in_target": np.array([True, False, True, False, False, False])}, r"^in_target: must be constant within"),
        ({"in_target": np.array([True, True, False, False, False, False])}, r"^in_target: needs at least 2 articles"),
        ({"ci": 0.0}, r"^ci: expected a confidence level"),
    ],
)
def test_interaction_bad_inputs_name_the_input(kwargs, message):
    args = {
        **{"system": IA_REF + 0.1, "reference": IA_REF, "strata": np.zeros(6), "articles": IA_ARTICLES},
        **{"in_target": np.array([True, True, True, False, False, False]), "n_boot": 10},
    }
    with pytest.raises(ValueError, match=message):
        seed_level.interaction_bootstrap(**{**args, **kwargs})


def test_run_permutation_p_rejects_empty_and_nan():
    with pytest.raises(ValueError, match=r"^a, b: expected non-empty"):
        seed_level.run_permutation_p([], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"^a, b: expected non-empty"):
        seed_level.run_permutation_p([np.nan, 1.0], [1.0, 2.0])


def test_interaction_few_articles_get_the_small_sample_correction_and_t_interval():
    # One seed each, one row per article; the 4 other articles gain exactly 0.1, so all variance is the target part's:
    # a resample of its 4 gains has variance pvar / 4, inflated by 4/3 to the unbiased var(ddof=1) / 4, with 3 df.
    gains = np.array([0.30, 0.10, 0.25, 0.05, 0.1, 0.1, 0.1, 0.1])
    ref = np.linspace(0.2, 0.6, 8)
    target = np.arange(8) < 4
    out = seed_level.interaction_bootstrap(ref + gains, ref, np.zeros(8), np.arange(8), target, n_boot=20_000)
    assert out["interaction"] == pytest.approx(gains[:4].mean() - 0.1)
    assert out["se"] == pytest.approx(gains[:4].std(ddof=1) / 2, rel=0.03)
    assert out["df"] == pytest.approx(3.0)
    assert out["lo"] == pytest.approx(out["interaction"] - 3.182446 * out["se"], abs=1e-6)
