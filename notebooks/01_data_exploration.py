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
# # 01 — Data exploration: XQuAD-R and MLQA-R
#
# **Purpose.** Know the retrieval data before training on it: questions and candidate sentences per language,
# sentence lengths in tokens (as e5 sees them, with its prompts), how parallel the data is (group sizes), which
# articles the two datasets share (train/test leakage), and a worked example.
#
# **Inputs.** LAReQA files (XQuAD-R, MLQA-R; located by `hybridir_utils.data`), the e5-small tokenizer.
#
# **Outputs** (under `run_dir/01_data/`): `summary.parquet` (counts per dataset and language),
# `token_lengths.parquet`, `article_overlap.csv`, `data.json` (max-length quantiles used by training, the file
# each language was loaded from);
# figures under `run_dir/figures/`.

# %%
from pathlib import Path
from typing import Optional  # the parameters' annotations (papermill reads no `X | None`)

import pandas as pd

from hybridir_utils import data, models, parameters, utils
from hybridir_utils.report import plots

# %% tags=["parameters"]
run_dir: str = "build/dev"  # output folder of this run (set by the pipeline)
xquad_languages: Optional[list[str]] = None  # XQuAD-R languages to explore (None: all 11)
mlqa_languages: Optional[list[str]] = None  # MLQA-R languages to explore (None: all 7)
encoder_name: str = "multilingual-e5-small"  # whose tokenizer measures lengths

# %%
parameters.check_given(globals())  # the pipeline's checks, also for defaults edited here
out = Path(run_dir) / "01_data"
fig_dir = Path(run_dir) / "figures"
plots.theme()
xquad = data.load_lareqa("xquad-r", xquad_languages)
mlqa = data.load_lareqa("mlqa-r", mlqa_languages)

# %% [markdown]
# ## Questions and candidates per language
# XQuAD-R is fully parallel (1,190 questions in every language, 48 articles); MLQA-R questions exist in 2–4
# languages each, and its candidate pools are larger (whole Wikipedia paragraphs of each language).

# %%
summary = pd.concat([data.describe(xquad), data.describe(mlqa)], ignore_index=True)
utils.write_parquet(out / "summary.parquet", summary)
summary

# %%
fig = plots.bar(summary, x="lang", y="candidates", hue="dataset", title="candidate sentences per language",
                xlabel="language", ylabel="candidate sentences in the pool")  # fmt: skip
plots.show(fig, "01_candidates_per_language", fig_dir)

# %% [markdown]
# *What to look at:* the pool size each query is ranked against. MLQA-R pools are several times larger than
# XQuAD-R's, so its mAP is not comparable with XQuAD-R's in level; languages missing from a dataset have no bar.

# %% [markdown]
# ## Answer sentences
# The relevant sentence of a question is the one that contains its answer text at the answer offset. The older
# rule (the first sentence span holding the answer start) picks the previous sentence when two spans share a
# boundary, as most do in zh. `changed`: labels that differ from that rule; `fallback`: answers that straddle a
# sentence break, so no sentence contains them and the span rule decides.

# %%
labels_report = pd.concat([data.answer_label_report(d.name, d.languages) for d in (xquad, mlqa)], ignore_index=True)
utils.atomic_write(out / "answer_labels.csv", lambda p: labels_report.to_csv(p, index=False))
labels_report.set_index(["dataset", "lang"]).T

# %% [markdown]
# ## Parallelism
# The number of languages each question group spans. Relevant sets in the multilingual pool have this size.

# %%
groups = pd.concat(
    [ds.groups().value_counts().rename_axis("languages").reset_index().assign(dataset=ds.name) for ds in (xquad, mlqa)]
)
groups

# %% [markdown]
# ## Sentence lengths in tokens
# Lengths include the `query: ` / `passage: ` prompts. The 99th percentile sets the training `max_seq_length`.

# %%
tokenizer = models.load_encoder(encoder_name).tokenizer
prompts = (models.E5_PROMPTS["query"], models.E5_PROMPTS["passage"])  # as the encoder sees the texts
lengths = pd.concat([data.token_lengths(d, tokenizer, prompts) for d in (xquad, mlqa)], ignore_index=True)
utils.write_parquet(out / "token_lengths.parquet", lengths)
quantiles = lengths.groupby(["dataset", "kind"]).tokens.quantile([0.5, 0.9, 0.99, 1.0]).unstack()
quantiles

# %%
fig = plots.histogram(lengths[lengths.tokens < 160], x="tokens", hue="kind", title="tokens per text (e5 tokenizer)",
                      xlabel="tokens per text, prompt included (texts under 160 tokens)")  # fmt: skip
plots.show(fig, "01_token_lengths", fig_dir)

# %% [markdown]
# *What to look at:* the right tail of the passage curve. Texts longer than the training `max_seq_length` are
# cut; the table above gives the share beyond each quantile, the plot shows whether the cut falls in the tail.

# %% [markdown]
# ## Article overlap between the datasets
# Training on MLQA-R and testing on XQuAD-R is zero-shot only if no article is shared; shared articles are
# dropped from training by notebook 03.

# %%
overlap = data.article_overlap(xquad, mlqa)
utils.atomic_write(out / "article_overlap.csv", lambda p: overlap.to_csv(p, index=False))
utils.write_json(
    out / "data.json",
    {
        "p99_tokens": {f"{d}/{k}": float(v) for (d, k), v in quantiles[0.99].items()},
        "shared_articles": overlap["xquad-r"].tolist(),
        "sources": {"xquad-r": xquad.files, "mlqa-r": mlqa.files},  # the file each language was loaded from
    },
)
overlap

# %% [markdown]
# ## An example group
# One question and its answer sentence in every language of the group.

# %%
data.examples(xquad)
