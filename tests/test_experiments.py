"""The experiment grid, the seed-and-query bootstrap, and the report helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybridir_utils import experiments, report
from hybridir_utils.experiments import ExperimentError, Run, grid, hierarchical_bootstrap


def test_grid_main_comparison_plus_domain_runs():
    runs = grid(["x-x-mono", "x-y", "hybrid"], [0, 1, 2], ["science:in-domain", "news:weighted"], domain_seeds=[0])
    assert len(runs) == 9 + 2
    assert runs[-1] == Run("hybrid", "news", "weighted", 0)
    assert runs[-1].label == "hybrid/news-weighted/s0" and runs[0].system == "x-x-mono/general"
    assert len({r.label for r in runs}) == len(runs)


@pytest.mark.parametrize(
    "spec, match",
    [("science", "expected '<domain>:in-domain'"), ("science:general", "expected"), ("sports:weighted", "sports")],
)
def test_bad_domain_run(spec, match):
    with pytest.raises(ValueError, match=match):
        grid(["hybrid"], [0], [spec])


def test_unknown_sampling():
    with pytest.raises(ExperimentError, match=r"unknown sampling preset\(s\) \['mono'\]"):
        grid(["mono"], [0])


def _synthetic(effect: float, seed_sd: float, n: int = 400, seeds: int = 3, rng_seed: int = 0):
    rng = np.random.default_rng(rng_seed)
    base = rng.beta(2, 2, n)
    ref = base + rng.normal(0, seed_sd, (seeds, 1)) + rng.normal(0, 0.05, (seeds, n))
    other = base + effect + rng.normal(0, seed_sd, (seeds, 1)) + rng.normal(0, 0.05, (seeds, n))
    return {"ref": ref, "other": other, "same": ref.copy()}, np.repeat(["en>de", "de>en"], n // 2)


def test_bootstrap_ci_covers_true_difference_and_identical_is_p1():
    scores, strata = _synthetic(effect=0.03, seed_sd=0.0)
    table = hierarchical_bootstrap(scores, "ref", strata, n_boot=1000).set_index("system")
    assert table.loc["other", "diff_ci_low"] < 0.03 < table.loc["other", "diff_ci_high"]
    assert table.loc["other", "p_value"] < 0.01
    assert table.loc["same", "p_value"] == 1.0 and table.loc["same", "diff"] == 0.0


def test_seed_variance_widens_the_interval():
    quiet, strata = _synthetic(effect=0.03, seed_sd=0.0)
    noisy, _ = _synthetic(effect=0.03, seed_sd=0.05)
    width = {}
    for name, scores in (("quiet", quiet), ("noisy", noisy)):
        row = hierarchical_bootstrap(scores, "ref", strata, n_boot=1000).set_index("system").loc["other"]
        width[name] = row.diff_ci_high - row.diff_ci_low
    assert width["noisy"] > 2 * width["quiet"]


def test_bootstrap_is_deterministic_and_checks_reference():
    scores, strata = _synthetic(0.01, 0.01)
    a = hierarchical_bootstrap(scores, "ref", strata, n_boot=200, seed=3)
    assert a.equals(hierarchical_bootstrap(scores, "ref", strata, n_boot=200, seed=3))
    with pytest.raises(ExperimentError, match="reference system 'hybrid' not among"):
        hierarchical_bootstrap(scores, "hybrid", strata)


def test_macro_mean_over_strata():
    scores = {"a": np.array([[1.0, 1.0, 1.0, 0.0]])}  # stratum x: 1, 1, 1 -> 1.0; stratum y: 0 -> 0.0
    row = hierarchical_bootstrap(scores, "a", ["x", "x", "x", "y"], n_boot=10).iloc[0]
    assert row["mean"] == pytest.approx(0.5)  # macro over strata, not the micro mean 0.75


def test_paper_anchors_parse_all_rows():
    paper = report.paper_anchors()
    assert len(paper) == 12
    hybrid = paper[(paper.model == "LaBSE (paper)") & (paper.batches == "hybrid") & (paper.dataset == "xquad-r")]
    assert hybrid[["mono_map", "cross_map", "multi_map", "rank_distance"]].iloc[0].tolist() == [
        0.817,
        0.767,
        0.682,
        221.1,
    ]


def _comparisons(cross_ci, mono_ci, p_value=0.001, base_ci=None):
    """Comparison rows of one domain-focused model against hybrid/general (and, with ``base_ci``, both models
    against the untrained base)."""
    rows = []
    for setting, (lo, hi) in (("cross", cross_ci), ("mono", mono_ci)):
        rows.append(
            dict(system="hybrid/science-weighted", setting=setting, dataset="xquad-r", reference="hybrid/general",
                 diff=(lo + hi) / 2, diff_ci_low=lo, diff_ci_high=hi, p_value=p_value)
        )  # fmt: skip
        for system, (blo, bhi) in (base_ci or {}).items():
            rows.append(
                dict(system=system, setting=setting, dataset="xquad-r", reference="e5", diff=(blo + bhi) / 2,
                     diff_ci_low=blo, diff_ci_high=bhi, p_value=p_value)
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_answer_follows_the_confidence_intervals():
    slices = pd.DataFrame({"dataset": ["xquad-r"], "domain": ["news"], "status": ["too-few-queries"]})
    yes = report.answer(_comparisons((0.01, 0.03), (-0.005, 0.004)), slices, None, "xquad-r")
    assert "cross-lingual improves" in yes and ": kept." in yes and "retrieval for `hybrid/science-weighted`;" in yes
    assert "too few queries for a meaningful CI: news" in yes
    no = report.answer(_comparisons((-0.01, 0.02), (-0.03, -0.02)), slices, None, "xquad-r")
    assert "no detectable difference" in no and "not shown to be kept" in no and "no domain-focused variant" in no
    assert "Against the untrained" not in yes  # no base named: no base paragraph


def test_answer_applies_bonferroni_and_places_models_against_the_base():
    slices = pd.DataFrame({"dataset": [], "domain": [], "status": []})
    # one variant tested: p 0.03 survives Bonferroni (x1); the CI excludes zero either way
    one = report.answer(_comparisons((0.01, 0.03), (0.0, 0.01), p_value=0.03), slices, None, "xquad-r")
    assert "p = 0.0300" in one and "all of them also after a Bonferroni correction for 1 comparisons" in one
    extra = _comparisons((0.01, 0.03), (0.0, 0.01), p_value=0.03).assign(system="hybrid/news-weighted")
    two = report.answer(pd.concat([_comparisons((0.01, 0.03), (0.0, 0.01), 0.03), extra]), slices, None, "xquad-r")
    assert "none of them also after a Bonferroni correction for 2 comparisons" in two  # 0.03 x 2 > 0.05
    below = {"hybrid/general": (-0.02, -0.01), "hybrid/science-weighted": (-0.015, -0.002)}
    text = report.answer(_comparisons((0.01, 0.03), (0.0, 0.01), base_ci=below), slices, None, "xquad-r", base="e5")
    assert "**Against the untrained `e5`**" in text
    assert "- cross-lingual: `hybrid/general` -0.015, CI -0.020 to -0.010; domain-focused models below the base " \
           "1 of 1, above it 0 of 1." in text  # fmt: skip
    assert "means losing less of what the base model had" in text


def test_evaluation_set_restricts_by_article(shared_data_dir, monkeypatch):
    monkeypatch.setenv("HYBRIDIR_DATA_DIR", str(shared_data_dir))
    ds = experiments.evaluation_set("xquad-r", ["en", "th"], max_articles=3)
    assert ds.questions.article.nunique() == 3 == ds.candidates.article.nunique()
    again = experiments.evaluation_set("xquad-r", ["en", "th"], max_articles=3)
    assert set(again.questions.article) == set(ds.questions.article)


def test_ci_table_puts_levels_and_intervals_side_by_side():
    comparisons = pd.DataFrame(
        [dict(system=sys, setting=st, dataset="xquad-r", reference="hybrid/general", seeds=3, mean=m, diff=d,
              diff_ci_low=d - 0.01, diff_ci_high=d + 0.01)
         for sys, d in (("hybrid/general", 0.0), ("hybrid/news-weighted", 0.02))
         for st, m in (("mono", 0.8), ("cross", 0.7), ("multi", 0.5))]
    )  # fmt: skip
    table = report.ci_table(comparisons, "xquad-r", "hybrid/general")
    assert list(table.columns[:4]) == ["system", "seeds", "mono", "Δmono [95% CI]"]
    news = table.set_index("system").loc["hybrid/news-weighted"]
    assert news.cross == 0.7 and news["Δcross [95% CI]"] == "+0.020 [+0.010, +0.030]"
    with pytest.raises(ValueError, match="'mlqa-r' against 'hybrid/general'"):
        report.ci_table(comparisons, "mlqa-r", "hybrid/general")
