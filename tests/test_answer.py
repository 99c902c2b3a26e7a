"""The answer is written from the result tables alone, by rules fixed in advance; the README shows that text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybridir_utils import answer, config

GEN, IN, RND, CUL = "hybrid/general", "hybrid/news-in-domain", "hybrid/news-size-random", "hybrid/news-size-culture"


def _cmp(system, reference, setting, delta, lo, hi, p_holm, seeds=(None, None), slice_="all"):
    smin, smax = seeds if seeds[0] is not None else (delta, delta)
    return dict(system=system, reference=reference, dataset="xquad-r", setting=setting, slice=slice_, delta=delta,
                lo=lo, hi=hi, p=p_holm / 4, p_holm=p_holm, n_seeds=3, seed_delta_min=smin,
                seed_delta_max=smax)  # fmt: skip


def _tables(domain_cross=(0.012, 0.004, 0.020, 0.01), articles=7) -> dict[str, pd.DataFrame]:
    d, lo, hi, p = domain_cross
    comparisons = pd.DataFrame([
        _cmp(GEN, "e5", "cross", 0.020, 0.011, 0.030, 0.0002), _cmp(GEN, "e5", "mono", -0.004, -0.012, 0.003, 0.3),
        _cmp(IN, RND, "cross", d, lo, hi, p), _cmp(IN, RND, "mono", 0.001, -0.006, 0.008, 1.0),
        _cmp(RND, GEN, "cross", 0.010, 0.003, 0.017, 0.02, seeds=(-0.002, 0.02)),
        _cmp(IN, GEN, "cross", 0.022, 0.014, 0.030, 0.0002), _cmp(CUL, RND, "cross", -0.001, -0.008, 0.006, 1.0),
        _cmp(IN, "e5", "mono", -0.02, -0.03, -0.012, 0.001),
        _cmp(IN, RND, "cross", 0.015, 0.001, 0.03, 0.04, slice_="outside-exploration-8"),
    ] + ([_cmp(IN, RND, "cross", 0.01, -0.01, 0.03, 1.0, slice_="domain:news")] if articles >= 5 else []))  # fmt: skip
    drifts = (("e5", 0.0), (GEN, 0.03), (IN, 0.01), (RND, 0.012), (CUL, 0.011))
    levels = pd.DataFrame([dict(system=s, seed=0, dataset="xquad-r", setting="multi", map=0.5, r1=0.4, r10=0.8,
                                rank_distance=60.0, drift=dr, pool_size=4500.0) for s, dr in drifts])  # fmt: skip
    slices = pd.DataFrame([dict(system=s, dataset="xquad-r", setting="multi", domain="news", map=m, queries=300,
                                groups=100, articles=articles, seeds=3, status="ok" if articles >= 5 else
                                "too-few-articles") for s, m in ((IN, 0.61), (RND, 0.60))])  # fmt: skip
    recipe = pd.DataFrame(
        [
            dict(scale=None, lr=None, step=0, dev_mono=0.70, dev_cross=0.45, chosen=False, rule="r"),
            dict(scale=100.0, lr=3e-5, step=20, dev_mono=0.71, dev_cross=0.52, chosen=True, rule="r"),
            dict(scale=20.0, lr=3e-5, step=20, dev_mono=0.65, dev_cross=0.53, chosen=False, rule="r"),
        ]
    )
    return {"comparisons": comparisons, "levels": levels, "slices": slices, "recipe": recipe}  # fmt: skip


def test_domain_effect_is_claimed_against_the_size_matched_control():
    text = answer.answer(_tables(), "xquad-r", base="e5")
    assert text.startswith("**Answer.** news focus: cross-lingual mAP higher than a random pool of the same size "
                           "(+0.012), monolingual kept against it (+0.001); against the untrained base, monolingual "
                           "not kept (-0.020).")  # fmt: skip
    assert "Target: cross-lingual above the base (the rules above) met; monolingual within −0.01 of the base (CI " \
           "lower bound above −0.01) not met." in text  # the CI reaches -0.012  # fmt: skip
    assert "pool-size effect (random pool vs general), cross: +0.010 [+0.003, +0.017], p_Holm 0.02; seeds " \
           "disagree (-0.002 to +0.020) → no detectable difference" in text  # fmt: skip
    assert "other-domain control `hybrid/news-size-culture` vs random pool, cross" in text
    assert "`hybrid/news-in-domain` 0.0100, `hybrid/news-size-random` 0.0120" in text
    assert "on `domain:news` (cross, articles resampled): +0.010 [-0.010, +0.030], p_Holm 1 → no detectable" in text
    assert (
        "on `outside-exploration-8` (cross, articles resampled): +0.015 [+0.001, +0.030], p_Holm 0.04 → higher" in text
    )


@pytest.mark.parametrize(
    "cross, phrase",
    [((0.012, 0.004, 0.020, 0.06), "no detectable difference from"),  # CI excludes 0, but not after Holm
     ((0.012, -0.001, 0.020, 0.01), "no detectable difference from"),  # Holm passes, CI touches 0
     ((-0.012, -0.020, -0.004, 0.01), "lower than")],
)  # fmt: skip
def test_a_claim_needs_holm_and_a_ci_that_excludes_zero(cross, phrase):
    text = answer.answer(_tables(domain_cross=cross), "xquad-r", base="e5")
    assert f"news focus: cross-lingual mAP {phrase} a random pool" in text


def test_small_slices_get_no_claim_and_missing_controls_are_said():
    text = answer.answer(_tables(articles=3), "xquad-r", base="e5")
    assert "on `domain:news`: too few articles (3) for a claim." in text
    t = _tables()
    t["comparisons"] = t["comparisons"][t["comparisons"].reference != RND]
    assert "news: no size-matched control was trained, so no domain effect can be stated" in answer.answer(
        t, "xquad-r", base="e5"
    )


def test_recipe_lines_name_the_chosen_setting_and_its_dev_scores():
    (line,) = answer.recipe_lines(_tables()["recipe"])
    assert "scales {20, 100}, learning rates {3e-05}, steps {20}" in line
    assert "MNRL scale 100 (temperature 0.01), learning rate 3e-05, 20 steps" in line
    assert "monolingual mAP 0.700 → 0.710 and cross-lingual mAP 0.450 → 0.520" in line


def test_seeds_that_disagree_block_a_claim():
    row = pd.Series(_cmp(IN, RND, "cross", 0.012, 0.004, 0.020, 0.001, seeds=(-0.001, 0.03)))
    assert not answer.significant(row) and answer.verdict(row) == "no detectable difference"
    single = pd.Series(_cmp(IN, RND, "cross", 0.012, 0.004, 0.020, 0.001, seeds=(np.nan, np.nan)))
    assert answer.significant(single) and "seeds" not in answer.fmt(single)


def test_a_profile_without_domain_runs_says_so_and_reports_sampling():
    t = _tables()
    extra = [_cmp("x-y/general", GEN, k, 0.01, 0.005, 0.015, 0.01) for k in ("mono", "cross", "multi")]
    t["comparisons"] = pd.concat([t["comparisons"][~t["comparisons"].system.str.startswith("hybrid/news")],
                                  pd.DataFrame(extra)])  # fmt: skip
    t["levels"] = pd.concat([t["levels"], t["levels"].iloc[:1].assign(system="x-y/general", rank_distance=50.0)])
    text = answer.answer(t, "xquad-r", base="e5")
    assert text.startswith("**Answer.** This profile trains no domain-focused model")
    assert "- `x-y/general` against `hybrid/general`: mono +0.010" in text and "rank distance 50.0" in text


def test_missing_table_is_named(tmp_path):
    with pytest.raises(answer.AnswerError, match=r"levels\.csv not found"):
        answer.load(tmp_path)


def test_replace_section_needs_markers():
    readme = f"intro\n{answer.BEGIN}\nold\n{answer.END}\nrest\n"
    assert answer.replace_section(readme, "new\n") == f"intro\n{answer.BEGIN}\nnew\n{answer.END}\nrest\n"
    with pytest.raises(answer.AnswerError, match="no results markers"):
        answer.replace_section("no markers", "x")


def test_readme_results_are_generated_from_the_committed_cpu_tables():
    """Every number in the README's results section comes from results/cpu/*.csv (make readme rewrites it)."""
    readme = (config.root() / "README.md").read_text(encoding="utf-8")
    section = answer.render(config.root() / "results" / "cpu")
    assert answer.replace_section(readme, section) == readme, "README results are stale: run `make readme`"


def test_gpu_section_is_generated_from_the_gpu_tables_and_claims_nothing():
    readme = (config.root() / "README.md").read_text(encoding="utf-8")
    folder = config.root() / "results" / "gpu"
    section = answer.render_levels_only(folder)
    assert answer.replace_section(readme, section, "gpu") == readme, "README gpu results are stale"
    assert "No comparison of this profile is claimed" in section and "[+" not in section and "[-" not in section
    table = answer.seed_range_table(pd.read_csv(folder / "levels.csv"), "xquad-r").set_index("system")
    assert table.loc["hybrid/general", "seeds"] == 5 and table.loc["hybrid/general", "cross"].startswith("0.682 (")
