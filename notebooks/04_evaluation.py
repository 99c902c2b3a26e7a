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
# # 04 — Evaluation: LAReQA protocol on XQuAD-R and MLQA-R (and MIRACL when given)
#
# **Purpose.** Score the frozen baselines (multilingual-e5-small, USE-multilingual) and every model trained by
# notebook 03 with the LAReQA protocol (Roy et al. 2020): mono (X=Y) and cross (X≠Y) mAP over the whole pool of
# language Y, and the multilingual pool of all languages; Recall@1/10; mAP per domain slice; linear CKA to the
# base model. Every system is scored at one token cut-off. Every comparison has a run-level 95% confidence
# interval (each system's runs and, once for all systems, the question groups resampled), an exact permutation
# test on the run means, the run SDs and the minimum detectable effect, and a Holm-adjusted p over every
# comparison stated; whether a domain pool's gain belongs to its own articles is the interaction test. Where
# the runs were interpolated (WiSE-FT), each run is scored twice, interpolated and as trained, and the two are
# compared run by run; a diagnostic then draws WiSE-FT's λ curve on the test beside the dev curve that chose λ.
# The paper's numbers are shown beside ours.
#
# **Inputs.** LAReQA files; `run_dir/02_domains/labels.parquet` and `zero_shot_split.csv` (the test part is
# scored, never the dev part); `run_dir/03_training/runs.csv` and `wiseft/`; optionally MIRACL (the hub's files, or
# local topics/qrels/corpus files).
#
# **Outputs** (under `run_dir/04_eval/`): `<label>/<dataset>/` (metrics.json, per-query and per-pair tables,
# TREC run and qrels files), `results.parquet`, `comparisons.parquet`, `domain_slices.parquet`,
# `miracl.parquet` (when run); `results_dir/{levels,comparisons,interactions,slices,truncation}.csv` (and
# `wiseft_test.csv`, `miracl.csv` when run); figures under `run_dir/figures/`.

# %%
from pathlib import Path
from typing import Optional  # the parameters' annotations (papermill reads no `X | None`)

import pandas as pd

from hybridir_utils import (
    analysis,
    data,
    evaluation,
    models,
    parameters,
    pipeline,
    report,
    result_tables,
    training,
    utils,
)
from hybridir_utils.report import plots

# %% tags=["parameters"]
run_dir: str = "build/dev"  # output folder of this run (set by the pipeline)
results_dir: str = "results/dev"  # result tables of this profile (set by the pipeline)
eval_languages: dict[str, Optional[list[str]]] = {"xquad-r": None, "mlqa-r": None}  # dataset -> languages (None: all)
eval_max_articles: Optional[int] = None  # evaluate on this many articles per dataset (seeded choice; None: all)
base_model: str = "multilingual-e5-small"  # the model notebook 03 fine-tuned: the base of every comparison
eval_max_seq_length: int = 512  # token cut-off at which every system is scored (one for all)
eval_systems: Optional[list[str]] = None  # trained systems scored (None: every run of notebook 03)
baselines: list[str] = ["multilingual-e5-small", "use-multilingual"]  # other frozen models, scored beside it
n_boot: int = 5000  # bootstrap replicates for confidence intervals
encode_backend: str = "torch"  # inference backend of e5 / trained models: torch, onnx (same numbers), onnx-int8
encode_batch_size: int = 64  # encode batch size (16 pads less with token-length batching)
score_as_trained: bool = True  # runs interpolated by WiSE-FT are also scored as trained (<system>@trained)
as_trained_plan: str = "interpolation"  # as-trained rows: "interpolation" (paired with their WiSE-FT) or "all" (a plan)
wise_test_runs: int = 0  # swept runs whose whole λ grid is also scored on the test, after the choice (diagnostic)
mono_margin: float = 0.01  # the λ rule's monolingual margin (marked on the test-side diagnostic)
write_runs: bool = True  # TREC run files (False: none; a large pool's runs cost minutes)
score_systems: bool = True  # False: read the scores in 04_eval/ (a GPU archive, `make gpu-results`), compute none
precision: str = "fp32"  # encoding precision: fp32, bf16, auto (bf16 on a GPU; environment.resolve_precision)
miracl_dir: Optional[str] = None  # MIRACL: None (skip), "hub", or a folder of local topics/qrels/corpus files
miracl_languages: Optional[list[str]] = None  # MIRACL languages

# %%
parameters.check_given(globals())  # the pipeline's checks, also for defaults edited here
out = Path(run_dir) / "04_eval"
fig_dir = Path(run_dir) / "figures"
plots.theme()
labels = pd.read_parquet(Path(run_dir) / "02_domains" / "labels.parquet")
runs = evaluation.select_systems(evaluation.read_runs(Path(run_dir) / "03_training" / "runs.csv"), eval_systems)
split = pd.read_csv(Path(run_dir) / "02_domains" / "zero_shot_split.csv")  # the test part only: the dev chose
datasets = {name: evaluation.evaluation_set(name, langs, eval_max_articles, split=split)
            for name, langs in eval_languages.items()}  # fmt: skip
domain_of = dict(zip(labels.article, labels.domain, strict=False))
pd.DataFrame({name: {"languages": len(ds.languages), "questions": len(ds.questions),
                     "candidates": len(ds.candidates)} for name, ds in datasets.items()})  # fmt: skip

# %% [markdown]
# ## One cut-off for every system
# Every system, the untrained base included, is scored at `eval_max_seq_length` tokens (a trained model keeps its
# training cut-off only for training). The share of test texts longer than that, per language, is the part of the
# test set scored on a text's beginning only (`truncation.csv`).

# %%
tokenizer = models.load_encoder(base_model).tokenizer
prompts = (models.E5_PROMPTS["query"], models.E5_PROMPTS["passage"])  # as the encoder sees the texts
lengths = pd.concat([data.token_lengths(ds, tokenizer, prompts) for ds in datasets.values()], ignore_index=True)
truncation = data.truncated_share(lengths, eval_max_seq_length)
result_tables.write_table(results_dir, "truncation", truncation)
truncation.pivot_table(index="lang", columns=["dataset", "kind"], values="share_cut").round(4)

# %% [markdown]
# ## Scores of every system
# Baselines first, then each trained run (sampling / domain strategy / seed). Embeddings are cached per model
# and backend; `encode_backend` "onnx" gives the same mAP as torch (checked by a test) and encodes faster, but
# exports each model once first (~45 s on 2 cores), so it pays off only on large pools. On a lent GPU the pipeline
# stops after this cell (`--until scores`) and the scores travel back as an archive (`hybridir_utils.pipeline.archive`).

# %% tags=["scores"]
base, test_set = evaluation.base_label(base_model), next(iter(datasets))
systems = evaluation.systems_to_evaluate(runs, baselines, base_model, score_as_trained=score_as_trained)
options = dict(backend=encode_backend, precision=precision, batch_size=encode_batch_size, write_runs=write_runs,
               max_seq_length=eval_max_seq_length)  # fmt: skip
if score_systems:
    results = evaluation.evaluate_systems(systems, datasets, out, domain_of=domain_of, base=base, **options)
    utils.write_json(Path(results_dir) / "environment.json", {**utils.read_json(out / "environment.json"),
                                                           "commit": pipeline.git_commit()})  # fmt: skip
else:  # scored on another machine (its environment.json came with the scores): read them, compute none
    results = evaluation.read_scores(out, systems, list(datasets))
summary = results.groupby(["dataset", "system"], sort=False)[["mono_map", "cross_map", "multi_map", "rank_distance"]]
summary.mean().round(3)

# %% [markdown]
# ## The paper's numbers beside ours
# Elmahdy, Lin, Ahmad (2024), Table: macro mAP of XLM-R and LaBSE fine-tuned at batch 100 on translated data
# for thousands of steps. Ours: e5-small, CPU budget, MLQA-R training data — compare directions, not levels.

# %%
paper = report.paper_anchors()
ours = summary.mean().reset_index().assign(batches=lambda t: t.system).rename(columns={"system": "model"})
pd.concat([paper, ours], ignore_index=True).round(3)

# %% [markdown]
# ## Levels
# One row per (system, seed, dataset, setting): mAP, R@1, R@10, rank distance (multilingual pool), and `cka`, the
# linear CKA between the model's and the base model's embeddings of the test pool's candidates (1: the base's
# similarity structure kept up to rotation and scale; a rotation-invariant measure of how far training moved it).

# %%
levels = result_tables.levels(results)
result_tables.write_table(results_dir, "levels", levels)
levels.groupby(["dataset", "setting", "system"], sort=False)[["map", "cka"]].mean().unstack("setting").round(3)

# %% [markdown]
# ## The α curve
# Drawn when the profile trains three α values or more on the general pool (the `sampling` profile: X-Y = 0,
# 0.25, hybrid = 0.5, 0.75, X-X-mono = 1): run means with 95% t intervals over the runs.

# %%
curve = analysis.alpha_curve(levels, next(iter(datasets)))
if len(curve):
    plots.show(plots.alpha_curve(curve), "04_alpha_curve", fig_dir)
curve.round(3) if len(curve) else "fewer than three α values trained: no α curve"

# %% [markdown]
# *What to look at:* where the intervals of neighbouring α overlap the hybrid point (dashed line), the curve is flat
# there; the paper reports it flat between 0.4 and 0.6. The comparisons below test each point against hybrid.

# %% [markdown]
# ## Comparisons with run-level 95% confidence intervals
# The planned comparisons (`analysis.comparison_plan`): every trained system against the untrained base, every
# other system against general hybrid training, and each in-domain model (and other-domain control) against the
# random pool of the same size and article structure. Two-level bootstrap: each replicate resamples every
# system's seeds (its training runs) and, once for all systems, the question groups; `p_perm` is the exact
# permutation test on the run means, `run_sd` the spread of the runs, `mde` the smallest difference this design
# detects with 80% power (`mde_holm`: at Holm's strictest step, what the claim rule can see). Holm corrects over
# every row. Where runs were interpolated, each interpolated system is also compared with the same runs as trained
# (`vs as trained`: paired run by run, rank distance included). Whether a gain belongs to a domain's own articles
# is the interaction below, not a slice of this table.

# %%
plan = analysis.comparison_plan(systems.system.unique(), base=base, as_trained_plan=as_trained_plan)
comparisons = analysis.comparisons(results, plan, list(datasets), n_boot=n_boot)
utils.write_parquet(out / "comparisons.parquet", comparisons)
result_tables.write_table(results_dir, "comparisons", comparisons)
report.ci_table(comparisons[comparisons.slice == "all"], test_set, base)

# %%
shown = comparisons[(comparisons.dataset == test_set) & (comparisons.slice == "all")]
planned = shown[shown.question != analysis.INTERPOLATION_QUESTION]
for reference in planned.reference.unique():
    rows = planned[(planned.setting == "cross") & (planned.reference == reference)]
    fig = plots.ci_plot(rows, title=f"{test_set}: cross-lingual mAP minus {reference} (95% CI)",
                        xlabel=f"cross-lingual macro mAP minus {reference} (95% CI)")  # fmt: skip
    plots.show(fig, f"04_cross_vs_{reference.replace('/', '_')}_{test_set}", fig_dir)
paired = shown[(shown.question == analysis.INTERPOLATION_QUESTION) & shown.setting.isin(["mono", "cross"])]
if len(paired):
    fig = plots.ci_plot(paired.assign(system=paired.system + " (" + paired.setting + ")"),
                        title=f"{test_set}: WiSE-FT minus the same runs as trained (paired, 95% CI)",
                        xlabel="macro mAP, interpolated minus as trained (95% CI)")  # fmt: skip
    plots.show(fig, f"04_wiseft_vs_as_trained_{test_set}", fig_dir)

# %% [markdown]
# *What to look at:* a system whose interval lies wholly right of the dashed zero line beats the reference on
# cross-lingual mAP; an interval that crosses it shows no detectable difference. One plot per reference: the
# base model, general hybrid training, and each domain's size-matched random pool; the last plot (when runs were
# interpolated) shows what WiSE-FT itself changed, monolingual and cross-lingual, run by run.

# %% [markdown]
# ## Is a gain about the domain? The interaction
# A topical pool (in-domain, or another domain's control) against its random control: the gain on the test
# articles of the pool's own topic minus the gain on the other articles, with seeds and articles resampled
# (`p_perm`: randomisation over which articles count as on-topic). A domain effect is claimed only when this is
# positive; a gain as large everywhere is a pool effect, not a domain effect.

# %%
interactions = analysis.interactions(results, plan, test_set, n_boot=n_boot)
result_tables.write_table(results_dir, "interactions", interactions)
gains = analysis.article_gains(results, plan, test_set) if (interactions.status == "ok").any() else None
interactions

# %%
if gains is not None:
    fig = plots.article_gains(gains, title=f"{test_set}: cross-lingual gain over the random control, per article")
    plots.show(fig, f"04_article_gains_{test_set}", fig_dir)

# %% [markdown]
# *What to look at:* each dot is one test article (seed-averaged gain of the pool over its random control); the
# coloured dots are articles of the pool's own topic. A domain effect puts the coloured dots to the right of the
# grey ones; dots spread evenly around one shifted centre mean a pool effect.

# %% [markdown]
# ## WiSE-FT's λ on the test: a diagnostic, drawn after the choice
# λ was chosen in notebook 03 on the zero-shot dev and recorded there (`wiseft/choice.json`) before any test score.
# Here every λ of the grid is also scored on the test for the first `wise_test_runs` of the runs that chose it, and
# the two curves are drawn side by side. The test curve never feeds a choice: it shows whether the dev tracks the
# test. A λ already scored above (the chosen one, 1 = as trained, 0 = the base) is read from the embedding cache.

# %%
choice_file = Path(run_dir) / "03_training" / "wiseft" / "choice.json"
if wise_test_runs and score_systems and choice_file.is_file():
    choice, dev_curve = utils.read_json(choice_file), result_tables.read(results_dir, "wiseft")
    swept = runs[runs.label.isin(choice["runs"])].head(wise_test_runs)
    test_sweep = training.wiseft.lambda_sweep(base_model, swept.trained_model_dir, datasets[test_set],
                                              sorted(dev_curve.lam), out / "wiseft_test", batch_size=encode_batch_size,
                                              max_seq_length=eval_max_seq_length)  # fmt: skip
    test_curve = training.wiseft.curve(test_sweep, "test", n_boot=n_boot)
    test_curve = training.wiseft.marked(test_curve, choice, mono_margin)
    result_tables.write_table(results_dir, "wiseft_test", test_curve)
    fig = plots.wiseft_curves(dev_curve, test_curve, mono_margin,
                              title="WiSE-FT: dev (chooses λ) and test (diagnostic), change from the base")  # fmt: skip
    plots.show(fig, "04_wiseft_dev_vs_test", fig_dir)
    shown = test_curve
else:
    shown = "no test-side λ curve (wise_test_runs 0, no WiSE-FT, or scores read from an archive)"
shown

# %% [markdown]
# *What to look at:* where the red (test) curve follows the blue (dev) one, the dev saw the shift the test has;
# where the red band falls below the dashed margin at the starred λ, the test does not keep what the dev kept.

# %% [markdown]
# ## mAP by domain slice
# Does a science- or news-focused model gain on its own domain? Slices of fewer than 5 articles are marked
# "too-few-articles": no claim is made about them.

# %%
slices = report.domain_slices(results, setting="multi")
utils.write_parquet(out / "domain_slices.parquet", slices)
result_tables.write_table(results_dir, "slices", slices)
slices.pivot_table(index="system", columns=["dataset", "domain"], values="map", sort=False).round(3)

# %% [markdown]
# ## MIRACL
# nDCG@10 of every system on MIRACL dev (baselines, general hybrid training, the domain variants and their
# size-matched controls; a trained system is the mean over its seeds, as in the tables above; `seeds` counts them),
# with BM25 as a lexical reference; `macro` is the mean over languages. Recall@100 and every seed's row are in
# `04_eval/miracl.parquet`. A language whose files fail to load is a warning and a column of NaN, not a crash.
#
# **Caveat.** MIRACL dev is not zero-shot for e5 models: multilingual-e5 was fine-tuned on MIRACL's training split
# (Wang et al. 2024), so multilingual-e5-small and every model trained from it have seen MIRACL's distribution
# (LaBSE and XLM-R have no such exposure as far as documented; BM25 is untrained). Compare the e5-based systems
# with each other, not with published zero-shot numbers. Every system is scored (domain variants and their
# size-matched controls included, each averaged over its seeds), so the table can show whether a domain-focused
# model keeps general monolingual retrieval (MIRACL: Wikipedia, queries and passages in one language) against its
# controls. It cannot show a cross-lingual or an in-domain gain (MIRACL has neither), and it carries no confidence
# intervals: a difference here is descriptive, not a claim.

# %%
miracl = evaluation.evaluate_miracl_systems(systems, miracl_dir, miracl_languages, out / "miracl",
                                            backend=encode_backend, precision=precision,
                                            max_seq_length=eval_max_seq_length)  # fmt: skip
if miracl is not None:
    utils.write_parquet(out / "miracl.parquet", miracl)
    result_tables.write_table(results_dir, "miracl", report.miracl_levels(miracl))
report.miracl_summary(miracl).round(3) if miracl is not None else "MIRACL not run (miracl_dir is None)"
