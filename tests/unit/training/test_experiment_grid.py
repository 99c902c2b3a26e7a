"""The experiment grid, the seed-and-query bootstrap, and the report helpers."""

from __future__ import annotations

import pandas as pd
import pytest

from hybridir_utils.errors import ExperimentError
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
