# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (hybridir)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 — Hybrid batch training
#
# **Purpose.** Fine-tune the bi-encoder with in-batch-negative InfoNCE (MultipleNegativesRankingLoss) on
# hybrid batches (Elmahdy, Lin, Ahmad 2024): a batch is monolingual (X-X-mono, one language drawn uniformly)
# with probability α and cross-lingual (X-Y) otherwise. First the **recipe** (MNRL scale = 1/temperature,
# learning rate, steps) is chosen on the *zero-shot dev* (a third of the test set's articles, held out by notebook
# 02; never the test part). Then the grid:
# sampling presets on the general pool, and domain-focused hybrid runs with their **controls**: for each target
# domain and run, a new draw of S question groups from the domain, and controls of the same size and article
# structure from random articles and from other topics, so a domain effect is separated from pool size and from
# how many in-batch negatives share an article. Then WiSE-FT's λ is chosen on the same dev, by a rule fixed before
# the sweep, and every run is interpolated with it.
# Zero-shot protocol: train on MLQA-R, evaluate on XQuAD-R (articles shared by the two are dropped from training).
#
# **Inputs.** LAReQA files; `run_dir/02_domains/labels.parquet` (domain of every article) and
# `zero_shot_split.csv` (the dev articles).
#
# **Outputs** (under `run_dir/03_training/`): `sweep/` (dev scores of every setting), `recipe.json`,
# `models/<sampling>/<strategy>/s<seed>/model` (each with its config, loss log and model card), `wiseft/` (the
# λ sweep, `choice.json` and the interpolated models), `runs.csv` (the models notebook 04 scores), `loss.parquet`;
# `results_dir/{recipe,training,wiseft}.csv`; figures under `run_dir/figures/`.

# %%
from pathlib import Path
from typing import Optional  # the parameters' annotations (papermill reads no `X | None`)

import pandas as pd

from hybridir_utils import data, domains, parameters, result_tables, training, utils
from hybridir_utils.report import plots

# %% tags=["parameters"]
run_dir: str = "build/dev"  # output folder of this run (set by the pipeline)
results_dir: str = "results/dev"  # result tables of this profile (set by the pipeline)
base_model: str = "multilingual-e5-small"  # encoder to fine-tune (any name models.load_encoder accepts)
train_dataset: str = "mlqa-r"  # training data; the other LAReQA set is the zero-shot test set
train_languages: Optional[list[str]] = None  # training languages (None: all of the training set)
train_max_groups: Optional[int] = None  # subsample to this many parallel question groups (None: all)
batch_size: int = 16  # pairs per batch (in-batch negatives: batch_size - 1)
batch_policy: str = "strict"  # a run that cannot fill batch_size: "strict" stops before training, "shrink" lowers all
precision: str = "fp32"  # training precision: fp32, bf16, auto (bf16 on a GPU; environment.resolve_precision)
max_seq_length: int = 96  # token cut-off of training (notebook 01 reports the share of longer texts)
eval_max_seq_length: int = 512  # token cut-off of every dev (and test) score, one for all models
dev_share: float = 0.15  # share of training articles held out of training (the in-distribution dev)
dev_seed: int = 0  # seed of that split
dev_set: str = "zero-shot"  # where recipe and λ are chosen: "zero-shot" (test set's dev part) or "training" (held out)
dev_languages: list[str] = ["en", "zh", "th"]  # languages of the dev pools (mono and cross mAP)
sweep_scales: list[float] = [20.0, 100.0]  # MNRL logit scales (1 / temperature; e5 was trained with 100)
sweep_lrs: list[float] = [1e-5, 3e-5, 1e-4]  # learning rates
sweep_steps: list[int] = [10, 20, 40]  # step counts scored on dev (one run per setting, constant learning rate)
warmup_steps: int = 3  # linear warm-up, then a constant learning rate
mono_margin: float = 0.01  # the recipe must keep dev monolingual mAP within this of the untrained model
recipe_from: Optional[str] = None  # profile whose committed recipe.csv is reused (same data, dev, grid, rule): no sweep
seeds: list[int] = [0, 1, 2]  # seeds of the main comparison
samplings: list[str] = ["hybrid"]  # samplings on the general pool: x-x-mono, x-y, hybrid, or alpha<α> (e.g. alpha0.25)
alpha_curve_seeds: Optional[list[int]] = None  # seeds of the alpha<α> samplings (None: the same as `seeds`)
domain_runs: list[str] = ["news:in-domain", "news:size-random"]  # domain-focused runs and their size-matched controls
domain_weight: float = 3.0  # oversampling weight of the target domain in weighted runs
domain_seeds: Optional[list[int]] = None  # seeds of the domain-focused runs (None: the same as `seeds`)
topic_control_seeds: Optional[list[int]] = None  # seeds of the size-<other domain> controls (None: domain_seeds)
wise_lambdas: list[float] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]  # WiSE-FT's λ grid on dev (empty: off)
wise_runs: int = 3  # runs of hybrid/general the WiSE-FT sweep is paired over (runs are the unit of its interval)
wiseft_from: Optional[str] = None  # profile whose committed λ curve is reused (the same runs, checked): no λ sweep
n_boot: int = 5000  # bootstrap replicates of the λ curve's paired intervals
domain_groups: Optional[int] = None  # question groups each domain arm draws per seed (None: 80% of the smallest target)

# %%
parameters.check_given(globals())  # the pipeline's checks, also for defaults edited here
out = Path(run_dir) / "03_training"
fig_dir = Path(run_dir) / "figures"
plots.theme()
labels = pd.read_parquet(Path(run_dir) / "02_domains" / "labels.parquet")

# %% [markdown]
# ## Training pairs and the dev
# Every (question in X, answer sentence in Y) of a group, with the domain of its article. A seeded share of the
# training articles is held out whole (no system trains on them; with `dev_set = "training"` they are the dev, as in
# the earlier design). Articles that the test set also holds are removed from both sides first, so domain pools and
# their controls are built on exactly what is trained on. The dev that chooses is, by default, the **zero-shot dev**:
# the test set's dev articles (notebook 02), in `dev_languages`, one of them never trained on; the test part is
# never scored here.

# %%
ds = data.load_lareqa(train_dataset, train_languages)
if train_max_groups:
    ds = ds.subset(max_questions_per_lang=train_max_groups, seed=0)
test_name = data.ZERO_SHOT_EVAL[train_dataset]
train_ds, held_ds = data.split_articles(ds, dev_share, dev_seed)
(train_ds, dropped), (held_ds, held_dropped) = (data.without_eval_articles(d, test_name)
                                                for d in (train_ds, held_ds))  # fmt: skip
if dev_set == "zero-shot":
    split = pd.read_csv(Path(run_dir) / "02_domains" / "zero_shot_split.csv")
    dev = data.split_part(data.load_lareqa(test_name, dev_languages), split, "dev")
else:
    dev = held_ds.subset(dev_languages)
dev_name = f"{dev.name} {'zero-shot ' if dev_set == 'zero-shot' else ''}dev articles ({' '.join(dev.languages)})"
pairs = domains.attach_domains(data.training_pairs(train_ds), labels[labels.dataset == train_dataset])
print(f"test-set articles removed: {dropped} from train, {held_dropped} from the held-out training articles")
pd.DataFrame({name: {"articles": d.questions.article.nunique(), "groups": d.questions.group.nunique(),
                     "questions": len(d.questions), "candidates": len(d.candidates)}
              for name, d in (("train", train_ds), ("held out of training", held_ds), (dev_name, dev))})  # fmt: skip

# %% [markdown]
# ## The grid, checked before any training
# Sampling presets on the general pool and the domain-focused runs with their controls: every domain arm draws
# the same number S of question groups anew for each seed (`<domain>-in-domain` from the target's articles,
# `<domain>-size-random` and `<domain>-size-<other>` copying that draw's article structure from random or
# another domain's articles), so an arm differs from its control only in domain. Every run's pool must fill a
# batch in every language its batches draw; with `batch_policy = "shrink"` all runs (and the sweep) use the largest
# batch size that every run can fill, so the systems of a comparison never differ in batch size.

# %%
runs = training.grid(samplings, seeds, domain_runs, domain_seeds=seeds if domain_seeds is None else domain_seeds,
                        topic_control_seeds=topic_control_seeds, alpha_curve_seeds=alpha_curve_seeds)  # fmt: skip
size = training.draw_size(runs, pairs, domain_groups)
batch = training.grid_batch_size(runs, pairs, batch_size, domain_weight, batch_policy, size=size)
print(f"batch size: {batch} (asked: {batch_size}, policy: {batch_policy}); domain arms draw {size} groups per seed")
pd.DataFrame([{"label": r.label, "sampling": r.sampling, "domain": r.domain, "mode": r.mode} for r in runs])

# %% [markdown]
# ## The recipe, chosen on dev
# General hybrid batches (α = 0.5, seed 0) for every (scale, learning rate); dev mono and cross mAP after each
# step count, and the untrained model (step 0). Rule, fixed before the sweep: the highest dev cross-lingual mAP
# among settings that keep dev monolingual mAP within `mono_margin` of the untrained model; if none does, the best
# mean of the two (`recipe.choose`). WiSE-FT (below) is what then protects monolingual accuracy.
# With `recipe_from`, another profile's committed sweep is reused (same data, dev split, grid and rule) and the
# rule re-applied to it: the same recipe without paying for the sweep again.

# %%
sweep_base = dict(model=base_model, train_dataset=train_dataset, languages=train_languages, batch_size=batch,
                  max_seq_length=max_seq_length, logging_steps=1, lr_scheduler="constant_with_warmup",
                  warmup_steps=warmup_steps, preset="hybrid", seed=0, precision=precision)  # fmt: skip
if recipe_from:  # same data, dev split, grid and rule as that profile: its committed sweep, re-judged by the rule
    sweep, chosen = training.recipe.reuse(recipe_from, sweep_scales, sweep_lrs, sweep_steps, mono_margin, dev_name)
else:
    sweep = training.recipe.sweep(sweep_base, pairs, dev, sweep_scales, sweep_lrs, sweep_steps, out / "sweep",
                         max_seq_length=eval_max_seq_length)  # fmt: skip
    chosen = training.recipe.choose(sweep, mono_margin)
utils.write_json(out / "recipe.json", {**chosen, "batch_size": batch})
result_tables.write_table(results_dir, "recipe", training.recipe.table(sweep, chosen, dev_name))
sweep.pivot_table(index=["scale", "lr"], columns="step", values=["dev_mono", "dev_cross"]).round(3)

# %%
fig = plots.sweep(sweep, chosen, title=f"recipe sweep on the {dev_name}")
plots.show(fig, "03_recipe_sweep", fig_dir)
pd.Series(chosen)

# %% [markdown]
# *What to look at:* the star (the chosen setting) should sit high in the right panel (cross-lingual gained)
# while staying near or above the dashed line in the left one (monolingual kept within `mono_margin`).

# %% [markdown]
# ## Training the grid
# Every run uses the chosen recipe. A finished run is reused (same config), an interrupted one resumes from its
# last checkpoint, so a rerun after a crash or a cell timeout trains only what is missing.

# %%
base = {**sweep_base, "scale": chosen["scale"], "lr": chosen["lr"], "max_steps": chosen["max_steps"],
        "save_steps": chosen["max_steps"]}  # fmt: skip
table = training.train_grid(runs, pairs, base, out, weight=domain_weight, size=size)
result_tables.write_table(results_dir, "training", training.training_table(table))
table

# %% [markdown]
# ## Loss curves
# InfoNCE loss per step. X-Y batches hold more distinct texts per language pair and start from a higher loss:
# compare curves within a sampling, not across.

# %%
log = training.loss_log(table)
utils.write_parquet(out / "loss.parquet", log)
fig = plots.loss_curves(log.assign(system=log.run.str.rsplit("/", n=1).str[0]), hue="system", title="training loss")
plots.show(fig, "03_loss_curves", fig_dir)

# %% [markdown]
# *What to look at:* every curve should fall; the band (several seeds) shows seed-to-seed spread. Small pools
# (in-domain, size-matched controls) repeat their groups sooner, so their loss can fall faster without meaning
# a better model: compare them on the test set (notebook 04), not here.

# %% [markdown]
# ## Keeping the base's monolingual accuracy: WiSE-FT, chosen on the zero-shot dev
# Fine-tuning a strong zero-shot retriever erodes what it did well. WiSE-FT (Wortsman et al. 2022) interpolates the
# weights, θ = (1 − λ)·θ_base + λ·θ_trained, at no training cost: each λ of the grid costs one dev scoring. Rule,
# written before the sweep (`wiseft.choose_lambda`): among λ whose dev monolingual mAP is not below the base's by
# more than `mono_margin` — judged by the *paired* 95% interval of the difference (same dev questions; the
# `wise_runs` runs of general hybrid training are the unit) — the highest mean dev cross-lingual mAP; ties to the
# smaller λ. The choice is recorded (`wiseft/choice.json`) before notebook 04 scores anything on the test part;
# every trained run of every arm is then interpolated with that one λ, and notebook 04 scores both each
# interpolated model and the same run as trained.

# %%
general = table[table.system == "hybrid/general"].head(wise_runs)
if wise_lambdas and len(general):
    if wiseft_from:  # the same runs, dev and grid as that profile: its curve, re-judged by the rule
        wise, lam = training.wiseft.reuse(wiseft_from, wise_lambdas, len(general), mono_margin, dev_name)
        training.wiseft.check_same_runs(training.training_table(table), wiseft_from, "hybrid/general", general.seed)
    else:
        sweep_scores = training.wiseft.lambda_sweep(base_model, general.model_dir, dev, wise_lambdas, out / "wiseft",
                                                    max_seq_length=eval_max_seq_length)  # fmt: skip
        wise = training.wiseft.curve(sweep_scores, "dev", n_boot=n_boot)
        lam = training.wiseft.choose_lambda(wise, mono_margin)
    lam = {**lam, "dev": dev_name}
    wise = training.wiseft.marked(wise.drop(columns=["qualifies", "chosen", "dev"], errors="ignore"), lam, mono_margin)
    utils.write_json(out / "wiseft" / "choice.json", {**lam, "runs": list(general.label)})
    result_tables.write_table(results_dir, "wiseft", wise)
    table = training.wiseft.interpolate_runs(table, base_model, lam["lam"], out / "wiseft" / "models")
    result_tables.write_table(results_dir, "training", training.training_table(table))
    utils.atomic_write(out / "runs.csv", lambda p: table.to_csv(p, index=False))
    plots.show(plots.wiseft_curves(wise, margin=mono_margin), "03_wiseft_dev", fig_dir)
    shown = wise
else:
    shown = "WiSE-FT off (no wise_lambdas, or no hybrid/general run): notebook 04 scores the trained models"
shown

# %% [markdown]
# *What to look at:* the left panel's band must stay above the dashed margin for a λ to qualify; among those, the
# star sits where the right panel (cross-lingual gain over the base) is highest. λ = 1 is the model as trained.
