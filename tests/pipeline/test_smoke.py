"""The whole smoke pipeline, as CI and a user run it: five notebooks, real data, a real model, real training."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from hybridir_utils import naming
from hybridir_utils.pipeline import runner
from hybridir_utils.report import answer
from hybridir_utils.utils import paths


@pytest.mark.slow
def test_smoke_pipeline_produces_the_report(smoke_run):
    out, index = smoke_run
    html = index.read_text()
    for name in runner.NOTEBOOKS:
        assert (out / f"{name}.ipynb").is_file() and f'href="{name}.html"' in html
        assert (out / f"{name}.html").stat().st_size > 10_000
    assert not list(out.glob("*.failed.ipynb")) and not list(out.glob("*.running.ipynb"))
    timings = json.loads((out / "pipeline.json").read_text())["seconds"]
    assert set(timings) == set(runner.NOTEBOOKS)
    assert len(list((out / "figures").glob("*.png"))) >= 10
    sources = json.loads((out / "01_data" / "data.json").read_text())["sources"]  # where the data came from
    assert set(sources["xquad-r"]) == {"en", "de", "zh"} and sources["mlqa-r"]["en"].endswith("mlqa-r/en.json")


@pytest.mark.slow
def test_smoke_metrics_are_in_range(smoke_run):
    out, _ = smoke_run
    results = pd.read_parquet(out / "04_eval" / "results.parquet")
    runs = pd.read_csv(out / "03_training" / "runs.csv")
    as_trained = {naming.run_label(naming.as_trained(s), k) for s, k in zip(runs.system, runs.seed, strict=True)}
    assert len(runs) == 3 and set(results.label) == {"multilingual-e5-small", "use-multilingual", *runs.label,
                                                     *as_trained}  # fmt: skip
    for col in ("mono_map", "cross_map", "multi_map"):
        assert results[col].between(0, 1).all()
    base = results[(results.label == "multilingual-e5-small") & (results.dataset == "xquad-r")].iloc[0]
    assert base.mono_map > 0.6 and base.cross_map > 0.5  # a real multilingual model, not a random one
    assert (results.rank_distance >= 0).all()
    comparisons = pd.read_parquet(out / "04_eval" / "comparisons.parquet")
    assert (comparisons.lo <= comparisons.hi).all() and (comparisons.p_holm >= comparisons.p).all()
    miracl = pd.read_parquet(out / "04_eval" / "miracl.parquet")
    assert set(miracl.retriever) == {"dense", "bm25"} and miracl["ndcg@10"].between(0, 1).all()
    assert set(miracl.label) == {*results.label, "bm25"}  # every system and seed, BM25 once
    answer = (out / "05_bias" / "answer.md").read_text()
    assert "**Answer.**" in answer and "hybrid/science-size-random" in answer and "**Recipe" in answer


@pytest.mark.slow
def test_smoke_writes_the_result_tables(smoke_run):
    out, _ = smoke_run
    tables = {name: pd.read_csv(out.parent / "results" / "smoke" / f"{name}.csv") for name in answer.TABLES}
    assert list(tables["levels"].columns) == ["system", "seed", "dataset", "setting", "map", "r1", "r10",
                                              "rank_distance", "cka", "pool_size"]  # fmt: skip
    run_level = {"delta", "lo", "hi", "p", "p_holm", "p_perm", "n_seeds", "n_ref_seeds", "run_sd", "se", "df", "mde"}
    assert run_level <= set(tables["comparisons"]) and (tables["comparisons"].mde >= 0).all()
    assert tables["recipe"].chosen.sum() == 1 and (tables["recipe"].step == 0).sum() == 1
    trained = tables["levels"][tables["levels"].system.str.contains("/")]
    assert trained.cka.between(0, 1).all() and (trained.cka < 1).all()
    assert set(tables["slices"].status) <= {"ok", "too-few-articles"}
    science = tables["interactions"].set_index("system").loc["hybrid/science-in-domain"]
    assert science.status == "ok" and science.n_target_articles == 5 and science.n_other_articles == 3  # test part
    training = tables["training"].set_index("system")
    assert training.loc["hybrid/science-in-domain", "groups"] == training.loc["hybrid/science-size-random", "groups"]
    assert (tables["truncation"].cutoff == 512).all() and tables["truncation"].share_cut.between(0, 1).all()


@pytest.mark.slow
def test_every_arm_is_scored_as_its_wise_ft_interpolation(smoke_run):
    """WiSE-FT: λ chosen on dev (wiseft.csv) is applied to every run; notebook 04 scores the interpolated models."""
    out, _ = smoke_run
    curve = pd.read_csv(out.parent / "results" / "smoke" / "wiseft.csv")
    lam = float(curve[curve.chosen].lam.iloc[0])
    runs = pd.read_csv(out / "03_training" / "runs.csv")
    assert (runs.wise_lambda == lam).all() and lam < 1
    assert (runs.model_dir != runs.trained_model_dir).all()  # the interpolated copies, saved apart
    assert all(json.loads((Path(d) / "wiseft.json").read_text())["lambda"] == lam for d in runs.model_dir)


@pytest.mark.slow
@pytest.mark.parametrize("name", [*answer.TABLES, "miracl", "wiseft", "languages"])
def test_smoke_tables_equal_the_committed_ones(smoke_run, name):
    """A refactor must not move a number: this run's table is byte-identical to results/smoke/<name>.csv.

    (results/cpu cannot be rerun inside CI; tests/unit/report/test_answer.py ties RESULTS.md to those committed
    tables.)
    """
    out, _ = smoke_run
    fresh = (out.parent / "results" / "smoke" / f"{name}.csv").read_text(encoding="utf-8")
    committed_path = paths.root() / "results" / "smoke" / f"{name}.csv"
    committed = committed_path.read_text(encoding="utf-8")
    changed = [(a, b) for a, b in zip(committed.splitlines(), fresh.splitlines(), strict=False) if a != b]
    assert fresh == committed, f"{name}.csv differs from {committed_path} (first of {len(changed)}): {changed[:1]}"


@pytest.mark.slow
def test_a_smoke_run_leaves_the_checkout_clean(smoke_run):
    """Every file the run writes into results/smoke/ is committed there (and byte-identical: the test above) or
    ignored by git, so `make reproduce PROFILE=smoke` on a clean clone leaves `git status` clean."""
    out, _ = smoke_run
    written = sorted(p.name for p in (out.parent / "results" / "smoke").iterdir())
    files = [f"results/smoke/{name}" for name in written]
    tracked = set(subprocess.run(["git", "ls-files", "--", *files], cwd=paths.root(), capture_output=True,
                                 text=True, check=True).stdout.split())  # fmt: skip
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *files], cwd=paths.root(), capture_output=True,
                             text=True).stdout.split()  # fmt: skip
    assert "results/smoke/environment.json" in ignored  # machine-specific: never committed
    assert [p for p in files if p not in tracked and p not in ignored] == []


@pytest.mark.slow
def test_every_run_trains_with_the_chosen_recipe_and_no_test_article(smoke_run):
    out, _ = smoke_run
    chosen = json.loads((out / "03_training" / "recipe.json").read_text())
    for model_dir in pd.read_csv(out / "03_training" / "runs.csv").trained_model_dir:
        cfg = json.loads((Path(model_dir) / "train_config.json").read_text())
        assert (cfg["scale"], cfg["lr"], cfg["max_steps"]) == (chosen["scale"], chosen["lr"], chosen["max_steps"])
        info = json.loads((Path(model_dir) / "train_info.json").read_text())
        assert info["dropped_test_articles"] == []  # removed before the pools were built, not by train()


# Figures each rendered notebook shows inline (04: one CI plot per reference: the base, hybrid/general and the
# science-size random pool, and the per-article gains; 05: rank distance, three heatmaps, mono and cross per language).
INLINE_FIGURES = {"01_data_exploration": 2, "02_domain_selection": 2, "03_hybrid_batch_training": 3,
                  "04_evaluation": 8, "05_bias_analysis": 6}  # fmt: skip


@pytest.mark.slow
def test_every_figure_is_inline_in_the_rendered_notebooks_and_the_report(smoke_run):
    out, index = smoke_run
    saved = {p.stem for p in (out / "figures").glob("*.png")}
    assert saved == {p.stem for p in (out / "figures").glob("*.pdf")}  # the one helper writes both
    assert len(saved) == sum(INLINE_FIGURES.values())
    for name, expected in INLINE_FIGURES.items():
        html = (out / f"{name}.html").read_text()
        assert html.count("<img ") == expected, name
        assert html.count('src="data:image/png;base64,') == expected, name  # embedded: the page stands alone
        assert "[PosixPath(" not in html
    report = (out / "report.html").read_text()
    key = index.read_text().count("<img ")
    assert key >= 4 and report.count("<img ") == sum(INLINE_FIGURES.values()) + key
    assert "http://" not in report.replace("http://www.w3.org", "") and "https://cdn" not in report


@pytest.mark.slow
def test_the_index_holds_the_answer_parameters_and_timings(smoke_run):
    out, index = smoke_run
    html = index.read_text()
    record = json.loads((out / "pipeline.json").read_text())
    assert "<blockquote>Does domain adaptation" in html and "<strong>Answer.</strong>" in html
    assert "Δcross [95% CI]" in html and f"<code>{record['commit']}</code>" in html
    assert record["machine"]["cpu_model"] in html and record["machine"]["device"] in html
    for name in runner.NOTEBOOKS:
        assert record["notebooks"][name]["seconds"] > 0 and f'href="{name}.html"' in html
    assert "<code>batch_size = 8</code>" in html and "<code>n_boot = 1000</code>" in html


@pytest.mark.slow
def test_a_partial_rerun_keeps_the_earlier_entries(smoke_run, monkeypatch):
    out, _ = smoke_run
    before = json.loads((out / "pipeline.json").read_text())["notebooks"]
    monkeypatch.setenv("HYBRIDIR_BUILD_DIR", str(out.parent))
    monkeypatch.setenv("HYBRIDIR_RESULTS_DIR", str(out.parent / "results"))
    index = runner.run("smoke", only=["05"], timeout=900)
    after = json.loads((out / "pipeline.json").read_text())
    assert set(after["notebooks"]) == set(runner.NOTEBOOKS) == set(after["seconds"])
    for name in runner.NOTEBOOKS[:4]:
        assert after["notebooks"][name] == before[name]  # not rerun: timing, parameters and commit kept
    assert after["notebooks"]["05_bias_analysis"]["finished"] >= before["05_bias_analysis"]["finished"]
    html = index.read_text()
    assert all(f'href="{name}.html"' in html for name in runner.NOTEBOOKS)
    assert (out / "report.html").read_text().count('<a id="') == len(runner.NOTEBOOKS)


@pytest.mark.slow
def test_confirm_scores_the_trained_models_on_new_languages_without_training(smoke_run, monkeypatch):
    """The ``confirm`` profile's path over the smoke models: notebooks 04-05 only, other test languages, only the
    named arms, the source's recipe and training tables carried; H1's verdict read from its tables."""
    from hybridir_utils.report import confirmation

    out, _ = smoke_run
    monkeypatch.setenv("HYBRIDIR_BUILD_DIR", str(out.parent))
    monkeypatch.setenv("HYBRIDIR_RESULTS_DIR", str(out.parent / "results"))
    arms = ["hybrid/science-in-domain", "hybrid/science-size-random"]
    overrides = {"models_from": "smoke", "eval_languages": {"xquad-r": ["es", "el"]}, "eval_systems": arms,
                 "eval_max_articles": 8, "n_boot": 200}  # fmt: skip
    runner.run("confirm", overrides, timeout=900)
    confirm = out.parent / "confirm"
    assert sorted(p.stem for p in confirm.glob("*.ipynb")) == ["04_evaluation", "05_bias_analysis"]
    assert (confirm / "03_training").is_symlink()
    results = out.parent / "results" / "confirm"
    levels = pd.read_csv(results / "levels.csv")
    assert set(levels.system) == {"multilingual-e5-small", *arms}  # general training and USE-m not scored
    languages = pd.read_csv(results / "truncation.csv").lang
    assert set(languages) == {"es", "el"}
    smoke_results = out.parent / "results" / "smoke"
    assert (results / "recipe.csv").read_text() == (smoke_results / "recipe.csv").read_text()
    text = confirmation.render(results, arm=arms[0], control=arms[1])
    assert "**H1 is not supported**" in text  # one run per arm: the permutation p is never below 0.05
    assert "languages el, es" in text
