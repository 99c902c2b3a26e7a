"""The paper's claims judged from hand-made sampling tables whose verdicts are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybridir_utils.analysis import claims
from hybridir_utils.analysis.claims import CONTRADICTED, HYBRID, NOT_SUPPORTED, NOT_TESTABLE, SUPPORTED

BASE = "multilingual-e5-small"


def _row(system, reference, setting, delta, half=0.01, p=0.001, p_perm=0.002):
    return dict(system=system, reference=reference, dataset="xquad-r", setting=setting, slice="all", delta=delta,
                lo=delta - half, hi=delta + half, p=p, p_holm=p, p_perm=p_perm, mde=0.012, n_seeds=6,
                n_ref_seeds=6, run_sd=0.005, ref_run_sd=0.005)  # fmt: skip


def _tables(mono_gap=-0.03, cross_gap=-0.02, curve=None, flat_half=0.004, th_mono=-0.036, base_gain=0.05):
    """X-X-mono and X-Y compared with hybrid as the plan writes them (other minus hybrid); ``curve``: α points;
    hybrid against the base (cross-lingual, all languages) and its unseen language th (mono / cross gains)."""
    rows = [_row(f"{s}/general", HYBRID, setting, gap) for s, gap in (("x-x-mono", mono_gap), ("x-y", cross_gap))
            for setting in ("mono", "cross", "multi")]  # fmt: skip
    rows += [_row(HYBRID, BASE, "cross", base_gain)] if base_gain is not None else []
    for point, delta in (curve or {}).items():
        rows += [_row(f"{point}/general", HYBRID, s, delta, half=flat_half, p=0.6, p_perm=0.5)
                 for s in ("mono", "cross", "multi")]  # fmt: skip
    levels = pd.DataFrame([dict(system=s, seed=k, dataset="xquad-r", setting="multi", rank_distance=r + k)
                           for s, r in ((HYBRID, 90.0), ("x-x-mono/general", 300.0), (BASE, 470.0))
                           for k in range(6)])  # fmt: skip
    th = (("cross", 0.08), ("mono", th_mono))
    languages = pd.DataFrame([dict(system=HYBRID, setting=s, lang="th", dataset="xquad-r", seen=False, map=0.7,
                                   runs=6, delta_vs_base=d) for s, d in th])  # fmt: skip
    return {"comparisons": pd.DataFrame(rows), "levels": levels, "languages": languages}


def test_hybrid_above_both_in_every_setting_supports_claims_1_and_2():
    full = claims.claims_table(_tables())
    table = full.set_index("claim")
    assert table.loc[1, "verdict as trained"] == SUPPORTED and table.loc[2, "verdict as trained"] == SUPPORTED
    assert "multi: hybrid − x-x-mono +0.030 [+0.020, +0.040]" in table.loc[1, "evidence"]  # flipped to hybrid − other
    assert list(full.claim) == [1, 2, 3, 4, 5, 6]
    differs = full.set_index("claim").our_setting
    assert "hybrid batches, which may favour hybrid" in differs[1] and differs[4].startswith("unseen here: th only")


def test_a_sampling_claimed_above_hybrid_contradicts_and_a_null_does_not_support():
    assert claims.claims_table(_tables(cross_gap=+0.02)).set_index("claim").loc[1, "verdict as trained"] == CONTRADICTED
    tables = _tables()
    tables["comparisons"].loc[tables["comparisons"].system == "x-y/general", ["p_holm", "p_perm"]] = 0.5
    table = claims.claims_table(tables).set_index("claim")
    assert table.loc[1, "verdict as trained"] == NOT_SUPPORTED and table.loc[2, "verdict as trained"] == NOT_SUPPORTED


def test_rank_distance_unseen_languages_and_the_data_claim():
    table = claims.claims_table(_tables()).set_index("claim")
    assert table.loc[3, "verdict as trained"] == SUPPORTED and "92.5 vs X-X-mono 302.5" in table.loc[3, "evidence"]
    assert table.loc[4, "verdict as trained"] == NOT_SUPPORTED  # th gains cross-lingually but loses 0.036 monolingual
    assert "th: cross +0.080, mono -0.036" in table.loc[4, "evidence"]
    assert table.loc[5, "verdict as trained"] == SUPPORTED and claims.DATA_TEST in table.loc[5, "source"]
    assert "34 of 15,747 pairs" in table.loc[5, "evidence"]


def test_zero_shot_needs_the_claimed_gain_over_the_base_and_unseen_languages_kept():
    def verdict(**kw):
        return claims.claims_table(_tables(**kw)).set_index("claim").loc[4, "verdict as trained"]

    assert verdict(th_mono=-0.005) == SUPPORTED  # claimed cross gain, th cross up and mono within the margin
    assert verdict(th_mono=-0.005, base_gain=-0.05) == CONTRADICTED
    assert verdict(th_mono=-0.005, base_gain=None) == NOT_TESTABLE
    tables = _tables(th_mono=-0.005)
    tables["comparisons"].loc[tables["comparisons"].reference == BASE, "p_holm"] = 0.3  # the gain is not claimed
    assert claims.claims_table(tables).set_index("claim").loc[4, "verdict as trained"] == NOT_SUPPORTED


def test_the_alpha_curve_is_flat_only_inside_the_margin_and_untestable_outside_the_papers_range():
    assert claims.claims_table(_tables()).set_index("claim").loc[6, "verdict as trained"] == NOT_TESTABLE
    flat = claims.claims_table(_tables(curve={"alpha0.45": 0.001, "alpha0.55": -0.002})).set_index("claim")
    assert flat.loc[6, "verdict as trained"] == SUPPORTED and "alpha0.45" in flat.loc[6, "source"]
    wide = claims.claims_table(_tables(curve={"alpha0.45": 0.001}, flat_half=0.02)).set_index("claim")
    assert wide.loc[6, "verdict as trained"] == NOT_SUPPORTED  # no detectable difference, but not shown to be flat
    tables = _tables(curve={"alpha0.45": -0.03})
    tables["comparisons"].loc[tables["comparisons"].system == "alpha0.45/general", ["p_holm", "p_perm"]] = 0.001
    assert claims.claims_table(tables).set_index("claim").loc[6, "verdict as trained"] == CONTRADICTED
    # 0.25 and 0.75 lie outside the paper's 0.4-0.6: whatever they show, the claim is not tested by them
    outside = claims.claims_table(_tables(curve={"alpha0.25": 0.001, "alpha0.75": -0.002})).set_index("claim")
    assert outside.loc[6, "verdict as trained"] == NOT_TESTABLE
    assert "no α inside the paper's 0.4-0.6" in outside.loc[6, "evidence"] and "alpha0.25" in outside.loc[6, "source"]


def test_missing_rows_are_not_testable_not_a_verdict():
    tables = _tables()
    tables["comparisons"] = tables["comparisons"][tables["comparisons"].system != "x-y/general"]
    tables["levels"] = tables["levels"][tables["levels"].seed == 0]
    table = claims.claims_table(tables).set_index("claim")
    assert table.loc[1, "verdict as trained"] == NOT_TESTABLE and table.loc[3, "verdict as trained"] == NOT_TESTABLE
    assert np.isin(table["verdict as trained"], [SUPPORTED, CONTRADICTED, NOT_SUPPORTED, NOT_TESTABLE]).all()


def test_the_alpha_curve_has_run_level_intervals_and_needs_three_alphas(tmp_path):
    from hybridir_utils.analysis import effects
    from hybridir_utils.report import plots

    rows = [dict(system=f"{s}/general", seed=k, dataset="xquad-r", setting=setting, map=m + 0.01 * k,
                 rank_distance=100.0 + k) for s, m in (("x-y", 0.6), ("alpha0.25", 0.62), ("hybrid", 0.63))
            for k in range(3) for setting in ("mono", "cross", "multi")]  # fmt: skip
    rows += [dict(system=BASE, seed=0, dataset="xquad-r", setting="multi", map=0.3, rank_distance=470.0)]
    curve = effects.alpha_curve(pd.DataFrame(rows), "xquad-r")
    cross = curve[curve.measure == "cross"].set_index("alpha")
    assert list(cross.index) == [0.0, 0.25, 0.5] and cross.loc[0.25, "mean"] == pytest.approx(0.63)
    half = 4.302652729911275 * 0.01 / np.sqrt(3)  # t(0.975, 2) x SD of the runs 0.62, 0.63, 0.64 / sqrt(3)
    assert cross.loc[0.25, "hi"] - cross.loc[0.25, "mean"] == pytest.approx(half)
    assert set(curve.measure) == {"mono", "cross", "multi", "rank distance"} and (curve.runs == 3).all()
    two = pd.DataFrame([r for r in rows if not r["system"].startswith("alpha")])
    assert effects.alpha_curve(two, "xquad-r").empty  # two α values are no curve
    plots.save_figure(plots.alpha_curve(curve), "alpha_curve", tmp_path)
    assert (tmp_path / "alpha_curve.png").stat().st_size > 0


def test_claims_are_judged_as_trained_and_after_wiseft_when_the_runs_were_interpolated():
    """As trained X-Y beats hybrid cross-lingually (claim 2 contradicted); after WiSE-FT hybrid wins everywhere."""
    trained = _tables(cross_gap=+0.02)
    after = _tables()
    rename = lambda t: t.assign(**{c: t[c].map(lambda v: v + "@trained" if "/" in v else v)  # noqa: E731
                                   for c in ("system", "reference") if c in t})  # fmt: skip
    tables = {name: pd.concat([rename(trained[name]), after[name]], ignore_index=True) for name in after}
    table = claims.claims_table(tables).set_index("claim")
    assert table.loc[2, "verdict as trained"] == CONTRADICTED and table.loc[2, "verdict after WiSE-FT"] == SUPPORTED
    assert "cross: hybrid − x-y -0.020" in table.loc[2, "evidence"]  # as trained
    assert "cross: hybrid − x-y +0.020" in table.loc[2, "evidence after WiSE-FT"]
    assert claims.variants(tables) == [claims.AS_TRAINED, claims.AFTER_WISEFT]
    assert claims.variants(after) == [claims.AS_TRAINED] and "verdict after WiSE-FT" not in claims.claims_table(after)
