"""The planned comparisons and the domain-specificity interactions (analysis.effects): the plan, Holm over every
row, run-level permutations, and a gain on the pool's own topic told apart from a gain of the pool."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from doubles import topical_results

from hybridir_utils import naming
from hybridir_utils.analysis import effects
from hybridir_utils.errors import ExperimentError
from hybridir_utils.stats import groups as stats


def test_comparison_plan_states_each_question_once():
    trained = ["hybrid/general", "x-y/general", "hybrid/news-in-domain", "hybrid/news-size-random",
               "hybrid/news-size-culture", "hybrid/science-in-domain"]  # fmt: skip
    plan = effects.comparison_plan(trained, base="e5")
    pairs = set(zip(plan.system, plan.reference, strict=True))
    assert {(s, "e5") for s in trained} <= pairs
    assert ("hybrid/news-in-domain", "hybrid/news-size-random") in pairs
    assert ("hybrid/news-size-culture", "hybrid/news-size-random") in pairs
    assert ("hybrid/news-size-random", "hybrid/news-size-random") not in pairs
    assert not any(r == "hybrid/science-size-random" for r in plan.reference)  # no control trained: none stated
    assert ("x-y/general", "hybrid/general") in pairs and ("hybrid/general", "hybrid/general") not in pairs
    assert len(pairs) == len(plan) == 6 + 5 + 2


def _per_query(tmp_path, system: str, seed: int, shift: float) -> str:
    """A per-query table of 2 languages x 12 groups in 6 articles: AP rises with the group, shifted per system
    (on articles a0-a2 only, for the in-domain model)."""
    rows = [dict(qid=f"{x}:g{g}", query_lang=x, pool_lang=y, setting="cross" if x != y else "mono",
                 ap=min(1.0, 0.3 + 0.05 * g + (shift if g < 6 or "in-domain" not in system else 0.0)),
                 group=f"g{g}", article=f"a{g // 2}")
            for g in range(12) for x in ("en", "de") for y in ("en", "de")]  # fmt: skip
    path = tmp_path / f"{system.replace('/', '_')}-{seed}.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return str(path)


def test_comparisons_use_the_plan_and_holm_over_every_row(tmp_path):
    shifts = {"e5": 0.0, "hybrid/general": 0.02, "hybrid/news-in-domain": 0.03, "hybrid/news-size-random": 0.03}
    results = pd.DataFrame([dict(system=s, seed=k, dataset="xquad-r", per_query=_per_query(tmp_path, s, k, d))
                            for s, d in shifts.items() for k in ([0] if s == "e5" else [0, 1])])  # fmt: skip
    plan = effects.comparison_plan(list(shifts)[1:], base="e5")
    table = effects.comparisons(results, plan, ["xquad-r"], settings=("mono", "cross"), n_boot=300)
    whole = table[table.slice == "all"]
    assert len(whole) == 2 * len(plan) and whole.n_clusters.eq(12).all() and (whole.cluster == "group").all()
    row = whole[(whole.system == "hybrid/general") & (whole.reference == "e5") & (whole.setting == "cross")].iloc[0]
    assert row.delta == pytest.approx(0.02) and row.n_seeds == 2 and row.lo == pytest.approx(0.02)
    same = whole[(whole.system == "hybrid/news-in-domain") & (whole.reference == "hybrid/news-size-random")]
    assert (same.delta.abs() > 0).all()  # the in-domain model differs on a0-a2 only
    assert set(table.slice) == {"all"}  # a domain's own articles are the interactions' question, not a slice here
    np.testing.assert_allclose(table.p_holm, stats.holm(table.p.to_numpy()))  # one family: every row


def test_interaction_separates_a_domain_effect_from_a_pool_effect(tmp_path):
    """The in-domain pool gains only on news articles (a domain effect); the culture pool gains as much everywhere
    (a pool effect): only the first has an interaction, and only its row would be claimed."""
    gains = {"hybrid/news-size-random": (0.0, 0.0), "hybrid/news-in-domain": (0.05, 0.0),
             "hybrid/news-size-culture": (0.03, 0.03)}  # fmt: skip
    results = topical_results(tmp_path, gains)
    plan = effects.comparison_plan(list(gains), base="hybrid/news-size-random")
    table = effects.interactions(results, plan, "xquad-r", n_boot=300).set_index("system")
    news = table.loc["hybrid/news-in-domain"]
    assert news.topic == "news" and news.n_target_articles == 6 and news.n_other_articles == 6
    assert news.gain_target == pytest.approx(0.05) and news.gain_other == pytest.approx(0.0)
    assert news.interaction == pytest.approx(0.05) and news.lo > 0 and news.p_holm < 0.05
    culture = table.loc["hybrid/news-size-culture"]  # its topic is culture: no culture article in the test set
    assert culture.topic == "culture" and culture.status == "too-few-articles" and np.isnan(culture.interaction)
    gains_per_article = effects.article_gains(results, plan, "xquad-r")
    news_rows = gains_per_article[gains_per_article.system == "hybrid/news-in-domain"]
    assert news_rows.groupby("in_target").gain.mean().to_dict() == pytest.approx({True: 0.05, False: 0.0})


def test_run_means_comparisons_permute_the_runs():
    """From levels.csv alone: 3 runs against 3 separated runs give the smallest possible p, 2/20 = 0.1."""
    levels = pd.DataFrame([dict(system=s, seed=k, dataset="xquad-r", setting="cross", map=m)
                           for s, ms in (("hybrid/news-in-domain", (0.63, 0.62, 0.61)),
                                         ("hybrid/news-size-random", (0.60, 0.59, 0.58)), ("e5", (0.5,)))
                           for k, m in enumerate(ms)])  # fmt: skip
    plan = effects.comparison_plan(["hybrid/news-in-domain", "hybrid/news-size-random"], base="e5")
    table = effects.run_means_comparisons(levels, plan, settings=("cross",)).set_index(["system", "reference"])
    row = table.loc[("hybrid/news-in-domain", "hybrid/news-size-random")]
    assert row.delta == pytest.approx(0.03) and row.p_perm == pytest.approx(0.1)
    assert row.run_sd == pytest.approx(0.01) and row.n_seeds == row.n_ref_seeds == 3
    base = table.loc[("hybrid/news-in-domain", "e5")]
    assert base.p_perm == pytest.approx(2 / 8) and base.n_ref_seeds == 1  # 3 sign flips: 2 of 8 as extreme


def test_compare_leaves_out_queries_whose_metric_is_undefined(tmp_path):
    """Rank distance is undefined for a group with one answer in the pool (NaN): those queries are dropped for every
    system, not an error and not a zero."""
    frames = []
    for system, shift in (("e5", 0.0), ("hybrid/general", 5.0)):
        rows = [dict(qid=f"{x}:g{g}", query_lang=x, pool_lang="multi", setting="multi", ap=0.5, group=f"g{g}",
                     article=f"a{g}", rank_distance=np.nan if g < 2 else 10.0 + g + shift)
                for g in range(8) for x in ("en", "de")]  # fmt: skip
        path = tmp_path / f"{system.replace('/', '_')}.parquet"
        pd.DataFrame(rows).to_parquet(path)
        frames.append(dict(system=system, seed=0, dataset="xquad-r", per_query=str(path)))
    table = effects.compare(pd.DataFrame(frames), "xquad-r", "multi", "e5", metric="rank_distance", n_boot=200)
    row = table.set_index("system").loc["hybrid/general"]
    assert row.n_rows == 12 and row.delta == pytest.approx(5.0)  # 16 queries, the 4 of groups g0 and g1 left out


def test_interpolated_systems_are_paired_with_their_runs_as_trained_and_a_full_plan_is_optional():
    shipped = ["hybrid/general", "hybrid/news-in-domain", "hybrid/news-size-random"]
    systems = ["e5", *shipped, *(naming.as_trained(s) for s in shipped)]
    plan = effects.comparison_plan(systems, base="e5")
    paired = plan[plan.question == effects.INTERPOLATION_QUESTION]
    assert list(zip(paired.system, paired.reference, strict=True)) == [(s, naming.as_trained(s)) for s in shipped]
    assert not plan[plan.question != effects.INTERPOLATION_QUESTION].system.map(naming.is_as_trained).any()
    full = effects.comparison_plan(systems, base="e5", as_trained_plan="all")
    as_trained = full[full.system.map(naming.is_as_trained)]
    assert ("hybrid/news-in-domain@trained", "hybrid/news-size-random@trained") in set(
        zip(as_trained.system, as_trained.reference, strict=True))  # fmt: skip
    assert ("hybrid/news-in-domain@trained", "hybrid/general@trained") in set(
        zip(as_trained.system, as_trained.reference, strict=True))  # fmt: skip
    assert len(full) == len(plan) + len(as_trained) and len(as_trained) == len(plan) - len(paired)
    with pytest.raises(ExperimentError, match="as_trained_plan"):
        effects.comparison_plan(systems, base="e5", as_trained_plan="some")


def _paired_results(tmp_path, run_shift: dict[int, float], gain: float) -> pd.DataFrame:
    """Three runs as trained (AP with a per-run offset) and their interpolation: the same run plus ``gain`` on
    mono and cross, and rank distance lower by 10; the base scored once."""
    rows = []
    for system, seeds, plus in (("e5", [0], None), ("hybrid/general@trained", [0, 1, 2], 0.0),
                                ("hybrid/general", [0, 1, 2], gain)):  # fmt: skip
        for k in seeds:
            offset = 0.0 if plus is None else run_shift[k] + plus
            table = pd.DataFrame(
                [
                    dict(
                        qid=f"{x}:g{g}",
                        query_lang=x,
                        pool_lang=y if s != "multi" else "multi",
                        setting=s,
                        ap=0.3 + 0.04 * g + offset,
                        group=f"g{g}",
                        article=f"a{g // 3}",
                        rank_distance=50.0 - (10 * (plus is not None and plus > 0)) + g,
                    )
                    for g in range(12)
                    for x in ("en", "de")
                    for y, s in (
                        ("en", "mono" if x == "en" else "cross"),
                        ("de", "mono" if x == "de" else "cross"),
                        ("multi", "multi"),
                    )
                ]
            )
            path = tmp_path / f"{system.replace('/', '_')}-{k}.parquet"
            table.drop_duplicates(["qid", "pool_lang"]).to_parquet(path)
            rows.append(dict(system=system, seed=k, dataset="xquad-r", per_query=str(path)))
    return pd.DataFrame(rows)


def test_wiseft_against_the_same_runs_is_paired_run_by_run(tmp_path):
    """Runs differ a lot from each other (0.00 / 0.05 / 0.10) but WiSE-FT adds exactly 0.02 to each: paired by run,
    the difference is 0.02 with no run-level spread; unpaired, the run spread would swamp it."""
    results = _paired_results(tmp_path, {0: 0.0, 1: 0.05, 2: 0.10}, gain=0.02)
    plan = effects.comparison_plan(results.system.unique(), base="e5")
    table = effects.comparisons(results, plan, ["xquad-r"], n_boot=400)
    paired = table[table.question == effects.INTERPOLATION_QUESTION].set_index("setting")
    assert set(paired.index) == {"mono", "cross", "multi", "rank_distance"}  # rank distance only for these rows
    assert paired.loc["cross", "delta"] == pytest.approx(0.02) and paired.loc["cross", "hi"] - paired.loc[
        "cross", "lo"] == pytest.approx(0.0, abs=1e-9)  # fmt: skip
    assert paired.loc["rank_distance", "delta"] == pytest.approx(-10.0)
    assert paired.loc["cross", "p_perm"] == pytest.approx(0.25)  # 3 paired runs: 2 of 2^3 sign flips as extreme
    assert paired.loc["cross", "run_sd"] == pytest.approx(0.05) and paired.loc["cross", "n_ref_seeds"] == 3
    unpaired = table[(table.system == "hybrid/general") & (table.reference == "e5") & (table.setting == "cross")]
    assert unpaired.iloc[0].hi - unpaired.iloc[0].lo > 0.1  # the same runs against the base carry the run spread
    noisy = table.se > 1e-9
    assert (table.mde_holm[noisy] > table.mde[noisy]).all()  # Holm's strictest step needs a larger difference


def test_pairing_refuses_systems_with_other_runs(tmp_path):
    results = _paired_results(tmp_path, {0: 0.0, 1: 0.05, 2: 0.10}, gain=0.02)
    results = results[~((results.system == "hybrid/general") & (results.seed == 2))]
    plan = effects.comparison_plan(results.system.unique(), base="e5")
    with pytest.raises(ExperimentError, match="not the same runs"):
        effects.comparisons(results, plan, ["xquad-r"], n_boot=50)
