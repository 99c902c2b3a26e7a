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
# # 02 — Domain selection: label articles, audit the labels, build domain-focused pools
#
# **Purpose.** The research question asks whether focusing hybrid batch training on a domain (science, news)
# helps zero-shot cross-lingual retrieval. That needs domain labels we can trust: every XQuAD-R and MLQA-R article
# is labelled by zero-shot embedding classification (title + opening sentences of every language version vs
# multilingual domain descriptions, combined across languages), audited against the project's 48-title gold
# set, then turned into training pools for notebook 03.
#
# **Inputs.** LAReQA files; `data/domains/` (gold set, seed titles, overrides); the e5-small encoder.
#
# Then the test set's articles are split once, by domain, into a **zero-shot dev** (where the recipe and WiSE-FT's λ
# are chosen: it shares the test's shift) and the test proper, before any system is scored.
#
# **Outputs** (under `run_dir/02_domains/`): `labels.parquet` (article, dataset, domain, confidence, margin,
# method), `audit.json`, `zero_shot_split.csv` (article, domain, part, dataset), `distribution.csv`, `support.csv`,
# `pools.json`; `results_dir/split.csv`; figures under `run_dir/figures/`.

# %%
from pathlib import Path
from typing import Optional  # the parameters' annotations (papermill reads no `X | None`)

import pandas as pd

from hybridir_utils import data, domains, models, parameters, result_tables, training, utils
from hybridir_utils.report import plots

# %% tags=["parameters"]
run_dir: str = "build/dev"  # output folder of this run (set by the pipeline)
results_dir: str = "results/dev"  # result tables of this profile (set by the pipeline)
xquad_languages: Optional[list[str]] = None  # XQuAD-R language versions used for labelling (None: all 11)
mlqa_languages: Optional[list[str]] = None  # MLQA-R language versions used for labelling (None: all 7)
encoder_name: str = "multilingual-e5-small"  # the zero-shot classifier's encoder
target_domains: list[str] = ["science", "news"]  # domains to focus training on
domain_weight: float = 3.0  # oversampling weight of the target domain in "weighted" pools
batch_size: int = 32  # training batch size: a pool needs at least this many groups
train_dataset: str = "mlqa-r"  # the training set whose pools are built
dev_share: float = 0.15  # share of training articles held out for the recipe (notebook 03): pools use the rest
dev_seed: int = 0  # seed of the dev split
domain_runs: list[str] = ["news:in-domain", "news:size-random"]  # the pools notebook 03 trains (seed 0 shown here)
domain_groups: Optional[int] = None  # question groups each domain arm draws per seed (None: 80% of the smallest target)
zero_shot_dev_share: float = 0.3333  # share of the test set's articles held out (per domain) as the zero-shot dev
zero_shot_dev_seed: int = 0  # seed of that split (fixed before any score is seen)

# %%
parameters.check_given(globals())  # the pipeline's checks, also for defaults edited here
out = Path(run_dir) / "02_domains"
fig_dir = Path(run_dir) / "figures"
plots.theme()
encoder = models.load_encoder(encoder_name)
datasets = {
    "xquad-r": data.load_lareqa("xquad-r", xquad_languages),
    "mlqa-r": data.load_lareqa("mlqa-r", mlqa_languages),
}

# %% [markdown]
# ## Labels for every article
# One row per article and dataset; `confidence` is the combined probability of the chosen domain, `margin` its
# lead over the runner-up (labels with a small margin are flagged `uncertain`).

# %%
classifier = domains.DomainClassifier(encoder)
labels = pd.concat(
    [domains.label_articles(ds, classifier=classifier).assign(dataset=name) for name, ds in datasets.items()],
    ignore_index=True,
)
utils.write_parquet(out / "labels.parquet", labels)
labels[["dataset", "article", "domain", "confidence", "margin", "uncertain", "source"]].head(10)

# %% [markdown]
# ## Audit against the gold set
# The 48 XQuAD-R titles were labelled by hand once (`data/domains/xquad_gold.csv`, with a rationale each). The
# classifier never sees these labels: its prototypes come from separate seed titles (`data/domains/seeds.csv`).

# %%
audit = domains.audit(labels[labels.dataset == "xquad-r"])
utils.write_json(out / "audit.json", {"accuracy": audit["accuracy"], "n": audit["n"], "method": labels.method.iloc[0],
                                   "errors": audit["errors"].to_dict("records")})  # fmt: skip
print(f"agreement with the gold set: {audit['accuracy']:.1%} of {audit['n']} articles")
audit["confusion"]

# %%
fig = plots.heatmap(audit["confusion"], title="gold (rows) vs predicted (columns)", fmt="d", cmap="Blues",
                    cbar_label="articles")  # fmt: skip
plots.show(fig, "02_domain_confusion", fig_dir)
audit["errors"]

# %% [markdown]
# *What to look at:* the diagonal holds the articles labelled as the gold set says; an off-diagonal cell in a
# target domain's row or column is an article its pool wrongly misses or holds (listed in the table above).

# %% [markdown]
# ## The zero-shot dev: a third of the test set's articles, held out by domain
# The recipe and WiSE-FT's λ protect zero-shot behaviour, so they must be chosen on data that shares the test's
# shift (another source than training, a language never trained on), which held-out training articles cannot show.
# The test set's articles are split once, here, before any system is scored: within each domain label a seeded
# share goes to the dev (`data.zero_shot_split`), so every domain keeps the same share of test articles for the
# interactions. Notebook 03 chooses on the dev part only; notebook 04 scores the test part only.

# %%
test_name = data.ZERO_SHOT_EVAL[train_dataset]
split = data.zero_shot_split(labels[labels.dataset == test_name], zero_shot_dev_share, zero_shot_dev_seed)
split = split.assign(dataset=test_name)
utils.atomic_write(out / "zero_shot_split.csv", lambda p: split.to_csv(p, index=False))
result_tables.write_table(results_dir, "split", split)
split.pivot_table(index="domain", columns="part", values="article", aggfunc="count", fill_value=0)

# %% [markdown]
# ## Domain distribution of training and test data
# Counted in question groups (the independent units: translations of one question share a group).

# %%
labelled = {name: domains.attach_domains(ds.questions, labels[labels.dataset == name]) for name, ds in datasets.items()}
distribution = pd.concat(
    [domains.domain_distribution(q).assign(dataset=name) for name, q in labelled.items()], ignore_index=True
)
utils.atomic_write(out / "distribution.csv", lambda p: distribution.to_csv(p, index=False))
distribution.pivot(index="domain", columns="dataset", values="groups")

# %%
fig = plots.bar(distribution, x="domain", y="group_share", hue="dataset", title="share of question groups per domain",
                xlabel="domain (zero-shot label of the article)", ylabel="share of question groups")  # fmt: skip
plots.show(fig, "02_domain_distribution", fig_dir)

# %% [markdown]
# *What to look at:* whether each target domain is present in both the training set (MLQA-R) and the test set
# (XQuAD-R); a domain that is rare in training cannot fill a pool, one rare in testing cannot carry a slice.

# %% [markdown]
# ## Can each domain carry a pool and a per-domain evaluation?
# `too-few-groups`: fewer groups than a batch; `too-few-queries`: too few for a meaningful confidence interval.

# %%
support = pd.concat(
    [domains.check_domain_support(q, batch_size=batch_size).assign(dataset=name) for name, q in labelled.items()],
    ignore_index=True,
)
utils.atomic_write(out / "support.csv", lambda p: support.to_csv(p, index=False))
support.pivot(index="domain", columns="dataset", values="status")

# %% [markdown]
# ## Training pools for the target domains, and their controls (seed 0; every seed draws anew)
# On the training split (the dev articles are held out). Every domain arm draws the same number S of question
# groups per seed: `in-domain` from the target's articles (whole articles), `size-random` from random articles
# and `size-<other>` from another domain's, each copying the in-domain draw's article structure (as many articles,
# the same groups per article, language sets matched). `articles` and `same_article_share` (the share of group
# pairs from one article) should be equal across the arms of a target; `language_set_tvd` is 0 when a pool's
# language coverage equals the in-domain pool's.

# %%
train_ds, _ = data.split_articles(datasets[train_dataset], dev_share, dev_seed)
train_ds, _ = data.without_eval_articles(train_ds, data.ZERO_SHOT_EVAL[train_dataset])
train_pairs = domains.attach_domains(data.training_pairs(train_ds), labels[labels.dataset == train_dataset])
runs = [training.TrainingSpec("hybrid", *domains.parse_domain_run(spec)) for spec in domain_runs]
size = training.draw_size(runs, train_pairs, domain_groups)
pools = {r.system: training.training_pool(r, train_pairs, domain_weight, batch_size, size) for r in runs}
summary = {name: domains.matched_pool_summary(p, train_pairs) for name, p in pools.items()}
utils.write_json(out / "pools.json", {"target_domains": target_domains, "weight": domain_weight, "draw_size": size,
                                   "pools": summary})  # fmt: skip
pd.DataFrame.from_dict(summary, orient="index").reindex(columns=["groups", "articles", "same_article_share", "pairs",
                                                                 "target_group_share", "language_set_tvd"])  # fmt: skip

# %% [markdown]
# ## Can each pool fill a monolingual batch in every language?
# Question groups per language with a monolingual pair (an upper bound: groups sharing an answer count once).

# %%
tables = {"general": train_pairs, **{name: p.pairs for name, p in pools.items()}}
support = pd.concat({name: domains.language_support(t, batch_size) for name, t in tables.items()})
support.reset_index(level=0, names="pool").pivot(index="pool", columns="lang", values="groups")
