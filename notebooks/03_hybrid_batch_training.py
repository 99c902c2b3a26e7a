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
# with probability α and cross-lingual (X-Y) otherwise. The grid is sampling {X-X-mono (α=1), X-Y (α=0),
# hybrid (α=0.5)} × seeds on the general pool, plus hybrid runs focused on a domain (in-domain, or weighted).
# Zero-shot protocol: train on MLQA-R, evaluate on XQuAD-R (articles shared by the two are dropped from training).
#
# **Inputs.** LAReQA files; `run_dir/02_domains/labels.parquet` (domain of every article).
#
# **Outputs** (under `run_dir/03_training/`): `models/<sampling>/<strategy>/s<seed>/model` (each with its
# config, loss log and model card), `runs.csv` (one row per run), `loss.parquet`; figures under `run_dir/figures/`.

# %%
from pathlib import Path

import pandas as pd

from hybridir_utils import domains, experiments, io, plots
from hybridir_utils.data import load_lareqa, training_pairs

# %% tags=["parameters"]
run_dir = "build/dev"  # output folder of this run (set by the pipeline)
base_model = "multilingual-e5-small"  # encoder to fine-tune (any name models.load_encoder accepts)
train_dataset = "mlqa-r"  # training data; the other LAReQA set is the zero-shot test set
train_languages = None  # training languages (None: all of the training set)
train_max_groups = None  # subsample to this many parallel question groups (None: all)
batch_size = 32  # pairs per batch (in-batch negatives: batch_size - 1)
max_steps = 40  # optimiser steps per run
max_seq_length = 96  # token cut-off (notebook 01 reports the share of longer texts)
seeds = [0, 1, 2]  # seeds of the main comparison
samplings = ["x-x-mono", "x-y", "hybrid"]  # sampling presets of the main comparison
domain_runs = ["science:in-domain", "science:weighted", "news:in-domain", "news:weighted"]  # domain-focused runs
domain_weight = 3.0  # oversampling weight of the target domain in weighted runs
domain_seeds = None  # seeds of the domain-focused runs (None: the first seed only)

# %%
out = Path(run_dir) / "03_training"
fig_dir = Path(run_dir) / "figures"
plots.theme()
labels = pd.read_parquet(Path(run_dir) / "02_domains" / "labels.parquet")

# %% [markdown]
# ## Training pairs
# Every (question in X, answer sentence in Y) of a group, with the domain of its article.

# %%
ds = load_lareqa(train_dataset, train_languages)
if train_max_groups:
    ds = ds.subset(max_questions_per_lang=train_max_groups, seed=0)
pairs = domains.attach_domains(training_pairs(ds), labels[labels.dataset == train_dataset])
pairs.groupby(["query_lang", "passage_lang"]).size().unstack(fill_value=0)

# %% [markdown]
# ## The grid

# %%
runs = experiments.grid(samplings, seeds, domain_runs, domain_seeds=seeds[:1] if domain_seeds is None else domain_seeds)
pd.DataFrame([{"label": r.label, "sampling": r.sampling, "domain": r.domain, "mode": r.mode} for r in runs])

# %%
base = dict(
    model=base_model,
    train_dataset=train_dataset,
    languages=train_languages,
    batch_size=batch_size,
    max_steps=max_steps,
    max_seq_length=max_seq_length,
    logging_steps=1,
    save_steps=max_steps,
)
table = experiments.train_grid(runs, pairs, base, out, weight=domain_weight)
table

# %% [markdown]
# ## Loss curves
# InfoNCE loss per step. X-Y batches hold more distinct texts per language pair and start from a higher loss:
# compare curves within a sampling, not across.

# %%
log = experiments.loss_log(table)
io.write_parquet(out / "loss.parquet", log)
fig = plots.loss_curves(log.assign(sampling=log.run.str.split("/").str[0]), hue="sampling", title="training loss")
plots.save_figure(fig, "03_loss_curves", fig_dir)
