"""The experiment grid, the seed-and-query bootstrap, and the report helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybridir_utils import evaluation, result_tables
from hybridir_utils.analysis import effects
from hybridir_utils.errors import ExperimentError
from hybridir_utils.evaluation import stats
from hybridir_utils.evaluation.systems import linear_cka
from hybridir_utils.report import summaries
from hybridir_utils.training import experiment_grid
from hybridir_utils.training.experiment_grid import TrainingSpec, grid


def test_grid_main_comparison_plus_domain_runs():
    runs = grid(["x-x-mono", "x-y", "hybrid"], [0, 1, 2], ["science:in-domain", "news:weighted"], domain_seeds=[0])
    assert len(runs) == 9 + 2
    assert runs[-1] == TrainingSpec("hybrid", "news", "weighted", 0)
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


def test_size_matched_control_runs_parse_and_name_their_system():
    runs = grid(["hybrid"], [0], ["news:size-random", "news:size-culture"], domain_seeds=[0, 1])
    assert [r.label for r in runs[1:3]] == ["hybrid/news-size-random/s0", "hybrid/news-size-random/s1"]
    assert runs[-1].system == "hybrid/news-size-culture"
    with pytest.raises(ExperimentError, match="another domain than 'news'"):
        grid(["hybrid"], [0], ["news:size-news"])
    with pytest.raises(ValueError, match="sports"):
        grid(["hybrid"], [0], ["news:size-sports"])


def test_the_alpha_curve_trains_named_alpha_points_with_their_own_seeds():
    runs = grid(["x-x-mono", "x-y", "hybrid", "alpha0.25", "alpha0.75"], [0, 1, 2, 3], alpha_curve_seeds=[0, 1])
    seeds = {system: sorted(r.seed for r in runs if r.system == system) for system in {r.system for r in runs}}
    assert seeds["hybrid/general"] == [0, 1, 2, 3] and seeds["alpha0.25/general"] == [0, 1]
    assert seeds["alpha0.75/general"] == [0, 1] and len(runs) == 3 * 4 + 2 * 2
    assert TrainingSpec.from_system("alpha0.25/general") == TrainingSpec("alpha0.25")
    with pytest.raises(ExperimentError, match=r"unknown sampling preset\(s\) \['alpha1.5', 'alphabet'\]"):
        grid(["alpha1.5", "alphabet"], [0])


def test_topic_controls_may_take_fewer_seeds_than_the_headline_arms():
    specs = ["news:in-domain", "news:size-random", "news:size-culture", "news:size-geography"]
    runs = grid(["hybrid"], [0, 1, 2], specs, domain_seeds=[0, 1, 2, 3], topic_control_seeds=[0, 1])
    seeds = {system: sorted(r.seed for r in runs if r.system == system) for system in {r.system for r in runs}}
    assert seeds == {"hybrid/general": [0, 1, 2], "hybrid/news-in-domain": [0, 1, 2, 3],
                     "hybrid/news-size-random": [0, 1, 2, 3], "hybrid/news-size-culture": [0, 1],
                     "hybrid/news-size-geography": [0, 1]}  # fmt: skip
    assert grid(["hybrid"], [0], specs, domain_seeds=[0, 1]) == grid(["hybrid"], [0], specs, domain_seeds=[0, 1],
                                                                   topic_control_seeds=None)  # fmt: skip


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


def test_write_table_rounds_floats_and_replaces_atomically(tmp_path):
    table = pd.DataFrame({"system": ["a"], "map": [0.123456789], "rank_distance": [61.23456], "seed": [0]})
    path = result_tables.write_table(tmp_path / "results" / "cpu", "levels", table)
    assert path.read_text() == "system,map,rank_distance,seed\na,0.1235,61.23,0\n"
    assert [p.name for p in path.parent.iterdir()] == ["levels.csv"]  # no temporary file left behind


def test_paper_anchors_parse_all_rows():
    paper = summaries.paper_anchors()
    assert len(paper) == 12
    hybrid = paper[(paper.model == "LaBSE (paper)") & (paper.batches == "hybrid") & (paper.dataset == "xquad-r")]
    assert hybrid[["mono_map", "cross_map", "multi_map", "rank_distance"]].iloc[0].tolist() == [
        0.817,
        0.767,
        0.682,
        221.1,
    ]


def test_evaluation_set_restricts_by_article(shared_data_dir, monkeypatch):
    monkeypatch.setenv("HYBRIDIR_DATA_DIR", str(shared_data_dir))
    ds = evaluation.evaluation_set("xquad-r", ["en", "th"], max_articles=3)
    assert ds.questions.article.nunique() == 3 == ds.candidates.article.nunique()
    again = evaluation.evaluation_set("xquad-r", ["en", "th"], max_articles=3)
    assert set(again.questions.article) == set(ds.questions.article)


def test_ci_table_puts_levels_and_intervals_side_by_side():
    comparisons = pd.DataFrame(
        [dict(system=sys, setting=st, dataset="xquad-r", reference="hybrid/general", n_seeds=3, mean=m, delta=d,
              lo=d - 0.01, hi=d + 0.01)
         for sys, d in (("hybrid/general", 0.0), ("hybrid/news-weighted", 0.02))
         for st, m in (("mono", 0.8), ("cross", 0.7), ("multi", 0.5))]
    )  # fmt: skip
    table = summaries.ci_table(comparisons, "xquad-r", "hybrid/general")
    assert list(table.columns[:4]) == ["system", "seeds", "mono", "Δmono [95% CI]"]
    news = table.set_index("system").loc["hybrid/news-weighted"]
    assert news.cross == 0.7 and news["Δcross [95% CI]"] == "+0.020 [+0.010, +0.030]"
    with pytest.raises(ValueError, match="'mlqa-r' against 'hybrid/general'"):
        summaries.ci_table(comparisons, "mlqa-r", "hybrid/general")


@pytest.mark.parametrize(
    "spec", [TrainingSpec("hybrid"), TrainingSpec("x-x-mono"), TrainingSpec("hybrid", "news", "in-domain"),
             TrainingSpec("hybrid", "news", "size-random"), TrainingSpec("hybrid", "science", "weighted"),
             TrainingSpec("hybrid", "news", "size-culture")],
)  # fmt: skip
def test_training_spec_from_system_inverts_system(spec):
    assert TrainingSpec.from_system(spec.system) == spec


# ------------------------------------------------------------------ batch size checked for the whole grid up front
def _domain_pairs(per_lang: dict[str, int], n_general: int = 60) -> pd.DataFrame:
    """Every (X, Y) pair of each group; news groups exist only in the languages listed with their counts."""
    rows, g = [], 0
    langs = sorted(per_lang)
    for _ in range(n_general):
        rows += [(f"q{g}-{x}", f"p{g}-{y}", x, y, f"g{g}", f"a{g}", "science") for x in langs for y in langs]
        g += 1
    for lang, count in per_lang.items():
        for _ in range(count):
            rows += [(f"q{g}-{lang}", f"p{g}-{lang}", lang, lang, f"g{g}", f"a{g}", "news")]
            rows += [(f"q{g}-{lang}", f"p{g}-en", lang, "en", f"g{g}", f"a{g}", "news")] if lang != "en" else []
            g += 1
    return pd.DataFrame(rows, columns=["query", "passage", "query_lang", "passage_lang", "group", "article", "domain"])


def test_strict_batch_policy_names_every_run_that_cannot_fill_a_batch_before_training():
    pairs = _domain_pairs({"en": 30, "de": 12})
    runs = grid(["hybrid"], [0], ["news:in-domain"], domain_seeds=[0, 1])
    assert experiment_grid.grid_batch_size(runs, pairs, 8) == 8
    with pytest.raises(ExperimentError, match=r"batch_size=16 .* 2 run\(s\).*news-in-domain/s0.*news-in-domain/s1"):
        experiment_grid.grid_batch_size(runs, pairs, 16)


def test_shrink_batch_policy_gives_every_run_the_largest_size_all_can_fill():
    pairs = _domain_pairs({"en": 30, "de": 12})
    runs = grid(["hybrid"], [0], ["news:in-domain", "news:size-random"], domain_seeds=[0])
    size = experiment_grid.grid_batch_size(runs, pairs, 100, policy="shrink")
    assert 1 < size <= 12  # German news groups bound a German monolingual batch
    assert experiment_grid.infeasible_runs(runs, pairs, size) == {}
    assert "hybrid/news-in-domain/s0" in experiment_grid.infeasible_runs(runs, pairs, size + 1)
    with pytest.raises(ExperimentError, match="batch_policy 'largest'"):
        experiment_grid.grid_batch_size(runs, pairs, 100, policy="largest")


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


def _topical_results(tmp_path, gains: dict[str, tuple[float, float]], seeds=(0, 1, 2)) -> pd.DataFrame:
    """Per-query tables of 2 languages x 24 groups in 12 articles (a0-a5 news, a6-a11 science); each system gains
    (on news articles, elsewhere) over the control, plus a small per-seed offset (run-to-run variance)."""
    frames = []
    for system, (on_news, elsewhere) in gains.items():
        for seed in seeds:
            rows = [dict(qid=f"{x}:g{g}", query_lang=x, pool_lang=y, setting="cross" if x != y else "mono",
                         ap=0.3 + 0.01 * g + 0.002 * seed + (on_news if g < 12 else elsewhere), group=f"g{g}",
                         article=f"a{g // 2}", domain="news" if g < 12 else "science")
                    for g in range(24) for x in ("en", "de") for y in ("en", "de")]  # fmt: skip
            path = tmp_path / f"{system.replace('/', '_')}-{seed}.parquet"
            pd.DataFrame(rows).to_parquet(path)
            frames.append(dict(system=system, seed=seed, dataset="xquad-r", per_query=str(path)))
    return pd.DataFrame(frames)


def test_interaction_separates_a_domain_effect_from_a_pool_effect(tmp_path):
    """The in-domain pool gains only on news articles (a domain effect); the culture pool gains as much everywhere
    (a pool effect): only the first has an interaction, and only its row would be claimed."""
    gains = {"hybrid/news-size-random": (0.0, 0.0), "hybrid/news-in-domain": (0.05, 0.0),
             "hybrid/news-size-culture": (0.03, 0.03)}  # fmt: skip
    results = _topical_results(tmp_path, gains)
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


def test_topic_of_names_the_pool_topic():
    assert effects.topic_of("hybrid/news-in-domain") == "news"
    assert effects.topic_of("hybrid/news-size-culture") == "culture"
    assert effects.topic_of("hybrid/news-size-random") is None and effects.topic_of("hybrid/general") is None


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


@pytest.fixture
def tiny_domain_pairs():
    """40 groups in en and de: news groups g0-g19 in 10 articles of 2, the rest culture in 20 articles of 1-2."""
    rows = [{"query": f"q{g}{x}", "passage": f"p{g}{y}", "query_lang": x, "passage_lang": y, "group": f"g{g}",
             "article": f"n{g // 2}" if g < 20 else f"c{(g - 20) * 2 // 3}", "domain": "news" if g < 20 else "culture"}
            for g in range(40) for x in ("en", "de") for y in ("en", "de")]  # fmt: skip
    return pd.DataFrame(rows)


def test_every_domain_arm_draws_anew_per_seed_at_one_size(tiny_domain_pairs):
    runs = [TrainingSpec("hybrid", "news", "in-domain", s) for s in (0, 1)] + [
        TrainingSpec("hybrid", "news", "size-random", 0)
    ]
    size = experiment_grid.draw_size(runs, tiny_domain_pairs)
    n_news = tiny_domain_pairs[tiny_domain_pairs.domain == "news"].group.nunique()
    assert size == int(0.8 * n_news)
    a, b, control = (experiment_grid.training_pool(r, tiny_domain_pairs, 3.0, 2, size) for r in runs)
    assert set(a.pairs.group) != set(b.pairs.group)  # seed 0 and seed 1 draw different news groups
    assert a.pairs.group.nunique() == control.pairs.group.nunique() == size
    assert a.pairs.article.nunique() == control.pairs.article.nunique()  # the same article structure


def test_per_language_differences_against_the_base_mark_unseen_languages(tmp_path):
    gains = {"e5": (0.0, 0.0), "hybrid/news-in-domain": (0.05, 0.0)}
    results = _topical_results(tmp_path, gains, seeds=(0,))
    table = summaries.per_language(results, "xquad-r", "e5", seen=["en"]).set_index(["system", "setting", "lang"])
    row = table.loc[("hybrid/news-in-domain", "mono", "de")]
    assert row.delta_vs_base == pytest.approx(0.025) and not row.seen  # half of the groups (news) gain 0.05
    assert table.loc[("hybrid/news-in-domain", "cross", "en")].seen and table.loc[("e5", "mono", "en")]["map"] > 0
    with pytest.raises(ValueError, match="base 'nope'"):
        summaries.per_language(results, "xquad-r", "nope")


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
