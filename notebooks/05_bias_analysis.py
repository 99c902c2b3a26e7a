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
# # 05 — Language bias and the answer to the research question
#
# **Purpose.** Measure how language-biased each model is in the multilingual pool — rank distance (per query:
# max rank minus min rank of its parallel answer sentences; Huang et al. 2023), language preference (share of
# the query's own language in the top 10 against its share of the pool), X×Y mAP heatmaps — and answer the
# project's question: *does domain adaptation inside hybrid batch training (science or news focus) improve
# zero-shot cross-lingual retrieval while keeping monolingual accuracy?*
#
# **Inputs.** `run_dir/04_eval/` (results, per-query and per-pair tables, language preference);
# `results_dir/*.csv` (the answer is written from these tables only).
#
# **Outputs** (under `run_dir/05_bias/`): `rank_distance.parquet`, `language_preference.parquet`,
# `answer.md`; heatmaps and bias figures under `run_dir/figures/`.

# %%
from pathlib import Path
from typing import Optional  # the parameters' annotations (papermill reads no `X | None`)

import pandas as pd
from IPython.display import Markdown

from hybridir_utils import analysis, data, evaluation, naming, parameters, report, result_tables, utils
from hybridir_utils.report import plots

# %% tags=["parameters"]
run_dir: str = "build/dev"  # output folder of this run (set by the pipeline)
results_dir: str = "results/dev"  # result tables of this profile (set by the pipeline)
n_boot: int = 5000  # bootstrap replicates for confidence intervals
base_model: str = "multilingual-e5-small"  # the model notebook 03 fine-tuned: the base of every comparison
train_languages: Optional[list[str]] = None  # the training languages (None: every language of the training set)
train_dataset: str = "mlqa-r"  # the training set (its languages are the "seen" ones)

# %%
parameters.check_given(globals())  # the pipeline's checks, also for defaults edited here
eval_dir = Path(run_dir) / "04_eval"
out = Path(run_dir) / "05_bias"
fig_dir = Path(run_dir) / "figures"
plots.theme()
results = pd.read_parquet(eval_dir / "results.parquet")
tables = report.answer.load(results_dir)
test_set = results.dataset.iloc[0]

# %% [markdown]
# ## Rank distance
# Lower is less biased: a language-agnostic model ranks all translations of the answer next to each other.
# Mean over queries, macro over query languages, with a run-level 95% CI (each system's runs and the question
# groups resampled).

# %%
rank_distance = pd.concat(
    [analysis.compare(results, d, "multi", evaluation.base_label(base_model), metric="rank_distance", n_boot=n_boot)
     for d in results.dataset.unique()],
    ignore_index=True,
)  # fmt: skip
utils.write_parquet(out / "rank_distance.parquet", rank_distance)
rank_distance.pivot_table(index="system", columns="dataset", values=["mean", "ci_low", "ci_high"], sort=False).round(1)

# %%
fig = plots.interval_bars(rank_distance, value="mean", low="ci_low", high="ci_high", label="system", hue="dataset",
                          title="rank distance (lower = less bias)",
                          xlabel="rank distance, mean over queries (error bars: 95% CI)")  # fmt: skip
plots.show(fig, "05_rank_distance", fig_dir)

# %% [markdown]
# *What to look at:* trained models against the untrained base (first bar): shorter bars rank the translations
# of an answer closer together. The bars are each system's level; whether two systems differ is the paired
# difference (the table above), not whether their bars overlap.

# %% [markdown]
# ## Beside the paper
# The paper's pools hold all 11 XQuAD-R languages (13,014 candidates); ours fewer, and rank distance grows with
# the pool, so it is also shown divided by the pool size.

# %%
report.tables.paper_table(tables["levels"], test_set)

# %% [markdown]
# ## Language preference
# Share of the query's own language among the top 10 of the multilingual pool, divided by that language's
# share of the pool: 1 means no preference, above 1 a preference for the query's language.

# %%
preference = report.language_preference(results)
utils.write_parquet(out / "language_preference.parquet", preference)
preference.pivot_table(index="system", columns="dataset", values="own_language_preference", sort=False).round(2)

# %% [markdown]
# ## X × Y mAP heatmaps
# Rows: query language, columns: pool language (XQuAD-R). Base model, the general hybrid model (else the first
# trained system scored: a profile may score only some), and their difference.

# %%
trained = [s for s in results.system.unique() if naming.is_trained(s) and not naming.is_as_trained(s)]
shown = naming.general() if naming.general() in trained else trained[0]
matrices = report.map_matrices(results, "xquad-r", [evaluation.base_label(base_model), shown])
for name, matrix in matrices.items():
    diff = name == "difference"
    title = f"XQuAD-R mAP: {shown} minus base" if diff else f"XQuAD-R mAP: {name}"
    fig = plots.heatmap(matrix, title=title, cmap="RdBu_r" if diff else "viridis", center=0 if diff else None,
                        cbar_label="difference in mAP" if diff else "mAP")  # fmt: skip
    plots.show(fig, f"05_heatmap_{name.replace('/', '_')}", fig_dir)
matrices["difference"].round(3)

# %% [markdown]
# *What to look at:* in the difference map, red cells are (query, pool) language pairs that training improved,
# blue ones it hurt. The diagonal is monolingual retrieval: its colour shows whether monolingual accuracy is kept.

# %% [markdown]
# ## Where is monolingual accuracy lost? Per language, seen and unseen
# Per query language: each system's mono and cross mAP (mean over its runs) minus the base's, every system at the
# one evaluation cut-off. A loss spread over every language points at the training itself (recipe, temperature);
# a loss in the languages never seen in training, or in those with long texts (see `truncation.csv`), points at
# what those languages lack.

# %%
seen = train_languages or data.LANGUAGES[train_dataset]
languages = report.per_language(results, test_set, evaluation.base_label(base_model), seen=seen)
result_tables.write_table(results_dir, "languages", languages)
by_language = {}
for setting, word in (("mono", "monolingual"), ("cross", "cross-lingual")):
    wide = languages[languages.setting == setting].pivot_table(index="system", columns="lang",
                                                               values="delta_vs_base", sort=False)  # fmt: skip
    wide = wide.rename(columns=lambda x: x if x in seen else f"{x} (unseen)").rename_axis(columns="query language")
    fig = plots.heatmap(wide, title=f"{test_set}: {word} mAP minus the base, per query language", cmap="RdBu_r",
                        center=0, cbar_label="difference in mAP")  # fmt: skip
    plots.show(fig, f"05_{setting}_by_language", fig_dir)
    by_language[setting] = wide
pd.concat(by_language, axis=1).round(3)

# %% [markdown]
# *What to look at:* blue cells are languages where a system ranks answers worse than the base (first map:
# monolingual, second: cross-lingual); a column blue for every system is a language training hurts whatever the
# pool; "(unseen)" marks languages no training pair was in: compare its cells with the seen columns.

# %% [markdown]
# ## The answer
# Written from `results_dir/*.csv` alone (`hybridir_utils.report.answer`; RESULTS.md's section of the profile is the
# same text): a difference is claimed only when its Holm-adjusted p is below 0.05, its run-level 95% CI excludes zero
# and the permutation test on run means agrees; a domain effect also needs the gain to be larger on the domain's
# own test articles (the interaction).

# %%
tables = report.answer.load(results_dir)  # again: languages.csv is written now (the claims on unseen languages read it)
text = report.answer.answer(tables, test_set, base=evaluation.base_label(base_model))
utils.write_text(out / "answer.md", text)
Markdown(text)
