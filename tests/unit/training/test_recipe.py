"""The recipe is chosen on dev scores by a rule fixed in advance; the sweep's step-k scores are k-step runs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hybridir_utils import errors
from hybridir_utils.data.lareqa_loader import load_lareqa, training_pairs
from hybridir_utils.data.splits import split_articles
from hybridir_utils.training import recipe

DEV = "xquad-r zero-shot dev articles (en th zh)"


def _sweep(rows) -> pd.DataFrame:
    base = [dict(scale=None, lr=None, step=0, dev_mono=0.70, dev_cross=0.45, seconds=0.0)]
    cols = ("scale", "lr", "step", "dev_mono", "dev_cross")
    return pd.DataFrame(base + [dict(zip(cols, r, strict=True), seconds=1.0) for r in rows])


def test_choose_takes_best_cross_among_settings_that_keep_mono():
    lose_mono = (20, 3e-5, 20, 0.65, 0.60)  # the best cross, but it loses mono: excluded
    table = _sweep([lose_mono, (100, 3e-5, 20, 0.695, 0.55), (100, 1e-5, 40, 0.71, 0.55), (100, 3e-5, 10, 0.70, 0.50)])
    chosen = recipe.choose(table, mono_margin=0.01)
    assert (chosen["scale"], chosen["lr"], chosen["max_steps"]) == (100.0, 3e-5, 20)  # tie on cross: fewer steps
    assert chosen["rule"] == "keeps-mono" and chosen["base_dev_cross"] == 0.45


def test_choose_falls_back_to_the_best_mean_and_says_so():
    chosen = recipe.choose(_sweep([(20, 3e-5, 20, 0.60, 0.60), (20, 1e-4, 20, 0.50, 0.65)]), mono_margin=0.01)
    assert chosen["lr"] == 3e-5 and chosen["rule"].startswith("best-mean")


def test_recipe_table_marks_one_chosen_row_without_timings():
    table = _sweep([(100, 3e-5, 10, 0.70, 0.50), (100, 3e-5, 20, 0.70, 0.52)])
    out = recipe.table(table, recipe.choose(table), DEV)
    assert out.chosen.tolist() == [False, False, True] and "seconds" not in out


@pytest.mark.parametrize(
    "table, match",
    [(_sweep([]), "at least one trained row"), (_sweep([(1, 1, 1, 1, 1)]).drop(columns="dev_cross"), "dev_cross")],
)
def test_choose_rejects_malformed_tables(table, match):
    with pytest.raises(errors.RecipeError, match=match):
        recipe.choose(table)


def test_settings_validate_the_grid():
    assert recipe.settings([20, 100], [1e-5]) == [{"scale": 20.0, "lr": 1e-5}, {"scale": 100.0, "lr": 1e-5}]
    with pytest.raises(errors.RecipeError, match="positive scales"):
        recipe.settings([0], [1e-5])


def _committed(tmp_path, monkeypatch, table: pd.DataFrame) -> None:
    monkeypatch.setenv("HYBRIDIR_RESULTS_DIR", str(tmp_path))
    (tmp_path / "other").mkdir(parents=True)
    table.to_csv(tmp_path / "other" / "recipe.csv", index=False)


def test_reuse_gives_the_committed_sweep_and_the_recipe_the_rule_picks(tmp_path, monkeypatch):
    table = _sweep([(20, 3e-5, 20, 0.70, 0.50), (20, 3e-5, 40, 0.70, 0.52), (20, 1e-4, 20, 0.60, 0.60),
                    (20, 1e-4, 40, 0.60, 0.62)])  # fmt: skip
    _committed(tmp_path, monkeypatch, recipe.table(table, recipe.choose(table), DEV))
    sweep, chosen = recipe.reuse("other", [20], [3e-5, 1e-4], [20, 40], mono_margin=0.01, dev=DEV)
    assert (chosen["lr"], chosen["max_steps"]) == (3e-5, 40) and len(sweep) == 5
    # re-written, the reused sweep is the committed table again
    assert recipe.table(sweep, chosen, DEV).equals(pd.read_csv(tmp_path / "other" / "recipe.csv"))


def test_reuse_refuses_another_grid_a_stale_choice_and_a_missing_table(tmp_path, monkeypatch):
    table = _sweep([(20, 3e-5, 20, 0.70, 0.50), (20, 3e-5, 40, 0.70, 0.52)])
    committed = recipe.table(table, recipe.choose(table), DEV)
    _committed(tmp_path, monkeypatch, committed)
    with pytest.raises(errors.RecipeError, match=r"recipe_from='other'.*this profile asks for"):
        recipe.reuse("other", [20, 100], [3e-5], [20, 40], mono_margin=0.01, dev=DEV)
    needle = r"was scored on \['xquad-r zero-shot dev.*this profile's dev is 'mlqa"
    with pytest.raises(errors.RecipeError, match=needle):
        recipe.reuse("other", [20], [3e-5], [20, 40], mono_margin=0.01, dev="mlqa-r dev articles")
    _committed(tmp_path / "c", monkeypatch, committed.drop(columns="dev"))  # an earlier design's table
    with pytest.raises(errors.RecipeError, match=r"a dev it does not record"):
        recipe.reuse("other", [20], [3e-5], [20, 40], mono_margin=0.01, dev=DEV)
    with pytest.raises(errors.RecipeError, match=r"recipe_from='nowhere': no .*recipe\.csv"):
        recipe.reuse("nowhere", [20], [3e-5], [20, 40], mono_margin=0.01, dev=DEV)
    _committed(tmp_path / "b", monkeypatch, committed.assign(chosen=[False, True, False]))  # marks 20 steps
    with pytest.raises(errors.RecipeError, match=r"the rule .* picks scale 20\.0, lr 3e-05, 40 steps"):
        recipe.reuse("other", [20], [3e-5], [20, 40], mono_margin=0.01, dev=DEV)


@pytest.mark.slow
def test_step_k_of_a_sweep_run_is_a_run_of_k_steps(tmp_path, shared_data_dir, e5_model):
    """The constant learning rate after warm-up makes one sweep run score every length exactly."""
    ds = load_lareqa("mlqa-r", ["en", "de"], data_dir=shared_data_dir).subset(max_questions_per_lang=60, seed=0)
    train_ds, dev_ds = split_articles(ds, 0.25, seed=0)
    pairs, dev = training_pairs(train_ds), dev_ds
    base = dict(batch_size=4, max_seq_length=32, lr_scheduler="constant_with_warmup", warmup_steps=1,
                preset="hybrid", lr=1e-4, scale=100.0, logging_steps=1)  # fmt: skip
    swept = recipe.sweep(base | {"model": "multilingual-e5-small"}, pairs, dev, [100], [1e-4], [2, 3], tmp_path / "s")
    from hybridir_utils.models.loading import load_encoder
    from hybridir_utils.training.trainer import train

    model = train({**base, "max_steps": 2, "output_dir": str(tmp_path / "two")}, pairs=pairs)
    two = recipe.dev_scores(load_encoder(str(model)), dev, tmp_path / "eval", batch_size=16)
    at_two = swept[swept.step == 2].iloc[0]
    assert (at_two.dev_mono, at_two.dev_cross) == pytest.approx((two["dev_mono"], two["dev_cross"]), abs=1e-6)
    run = tmp_path / "s" / "scale100-lr0.0001"
    assert not (run / "model").exists() and not (run / "checkpoints").exists()  # sweep weights are not kept
    assert json.loads((run / "train_info.json").read_text())["steps"] == 3  # the run's facts are


RECIPE_KEYS = ("base_model", "train_dataset", "train_languages", "train_max_groups", "batch_size", "max_seq_length",
               "eval_max_seq_length", "dev_share", "dev_seed", "dev_languages", "sweep_scales", "sweep_lrs",
               "sweep_steps", "warmup_steps", "mono_margin", "precision")  # fmt: skip


def test_a_profile_that_reuses_a_recipe_shares_what_chose_it():
    """recipe_from is sound only when the recipe would come out the same: same data, dev split, grid and rule."""
    from hybridir_utils.pipeline import runner
    from hybridir_utils.utils import paths

    reusing = {p.stem: runner.load_profile(p.stem) for p in paths.params_dir().glob("*.yaml")}
    reusing = {name: params for name, params in reusing.items() if params.get("recipe_from")}
    assert "sampling" in reusing
    for name, params in reusing.items():
        source = runner.load_profile(params["recipe_from"])
        assert not source.get("recipe_from"), f"{name}: its recipe's profile reuses one itself"
        differ = {k: (params.get(k), source.get(k)) for k in RECIPE_KEYS if params.get(k) != source.get(k)}
        assert not differ, f"{name} reuses {params['recipe_from']}'s recipe but differs in {differ}"
