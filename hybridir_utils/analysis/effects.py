"""The effects the answer states: planned comparisons with run-level intervals, and domain-specificity tests.

Why run level: the claim is about a *training method*, so a trained system is a population of runs, and a new
seed (a new pool draw, a new batch order, a new initialisation of nothing but the order of updates) moves its score
as much as a new draw of test questions does. Every comparison here is :func:`seed_level.run_bootstrap` (seeds
resampled within each system, question groups resampled once for all systems), checked by an exact permutation test
on the run means, with the run-level SD of both sides and the minimum detectable effect, so that a null says what the
design could have seen. Holm corrects over every row of ``comparisons.csv`` together.

Why interactions: a domain-focused pool that beats its control on *every* kind of article shows something about the
pool (size, structure, language mix), not about the domain. :func:`interactions` asks whether the gain is larger on
the test articles of the pool's own topic than on the others (an article-clustered two-level bootstrap and a
randomisation test over which articles count as on-topic); the answer claims a domain effect only with it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hybridir_utils.analysis.seed_level import _t_interval, interaction_bootstrap, per_article_gain, run_bootstrap
from hybridir_utils.domains.pools import CONTROL_PREFIX, RANDOM_CONTROL
from hybridir_utils.errors import ExperimentError, SamplerConfigError
from hybridir_utils.evaluation.stats import holm
from hybridir_utils.sampling.alpha import sampling_alpha
from hybridir_utils.training.experiment_grid import TrainingSpec

CONTROL_QUESTION = "vs size-matched random"
COLUMNS = ["system", "reference", "question", "dataset", "setting", "slice", "mean", "delta", "lo", "hi", "p",
           "p_holm", "p_perm", "n_seeds", "n_ref_seeds", "run_sd", "ref_run_sd", "se", "df", "mde", "cluster",
           "n_clusters"]  # fmt: skip


def per_query_matrix(results: pd.DataFrame, dataset: str, setting: str, metric: str = "ap"):
    """Per system, a [seeds x queries] array of ``metric`` on one query order, and the queries' attributes.

    A query key is ``<qid>@<pool>``. The attributes hold each query's stratum, the (query language, pool language)
    pair (means are macro means over pairs, as in LAReQA), its question group (the unit of independence: one group
    is asked in every language, so it appears in every stratum), its article and, when scored, its domain.
    """
    rows = results[results.dataset == dataset]
    if rows.empty:
        raise ExperimentError(f"no results for dataset {dataset!r}")
    tables = {}
    for r in rows.itertuples():
        pq = pd.read_parquet(r.per_query)
        pq = pq[pq.setting == setting]
        tables[(r.system, r.seed)] = pq.set_index(pq.qid + "@" + pq.pool_lang)
    index = next(iter(tables.values())).index
    for key, t in tables.items():
        if len(t.index) != len(index) or not t.index.isin(index).all():
            raise ExperimentError(f"system {key[0]} seed {key[1]} was scored on other {setting} queries of {dataset}")
    first = next(iter(tables.values())).loc[index]
    attrs = pd.DataFrame({"stratum": (first.query_lang + ">" + first.pool_lang).to_numpy(),
                          "group": first.group.to_numpy(), "article": first.article.to_numpy(),
                          "domain": first["domain"].to_numpy() if "domain" in first else None})  # fmt: skip
    systems = {}
    for (system, _seed), t in sorted(tables.items(), key=lambda kv: kv[0][1]):
        systems.setdefault(system, []).append(t.loc[index, metric].to_numpy(float))
    return {k: np.vstack(v) for k, v in systems.items()}, attrs


def compare(results, dataset, setting, reference, metric="ap", n_boot=5000, seed=0, articles=None, cluster="group",
            matrix=None):  # fmt: skip
    """``seed_level.run_bootstrap`` of every system against ``reference`` on one dataset and setting.

    ``articles`` restricts the comparison to queries of those articles (a slice); queries where ``metric`` is
    undefined for any system (NaN) are left out for all; ``cluster`` is the resampled
    unit (``group``, or ``article`` for slices, where questions of one article are not independent). ``matrix``:
    the ``per_query_matrix`` of (dataset, setting, metric) when the caller already has it (reading every system's
    per-query table again for each reference cost minutes on 11-language pools).
    """
    scores, attrs = matrix if matrix is not None else per_query_matrix(results, dataset, setting, metric)
    keep = attrs.article.isin(articles).to_numpy() if articles is not None else np.ones(len(attrs), bool)
    # a metric undefined for some queries (rank distance of a group with one answer in the pool) leaves them out,
    # for every system alike
    keep = keep & np.logical_and.reduce([np.isfinite(mat).all(axis=0) for mat in scores.values()])
    scores = {name: mat[:, keep] for name, mat in scores.items()}
    table = run_bootstrap(scores, attrs.stratum[keep].to_numpy(), attrs[cluster][keep].to_numpy(), reference,
                          n_boot=n_boot, seed=seed)  # fmt: skip
    n_ref = scores[reference].shape[0]
    return table.assign(dataset=dataset, setting=setting, metric=metric, reference=reference, n_ref_seeds=n_ref)


def comparison_plan(trained, base: str, general: str = "hybrid/general") -> pd.DataFrame:
    """The (system, reference) pairs the answer states, and why; Holm corrects over all of them together.

    Every trained system against the untrained base; every other system against general hybrid training; each
    in-domain model and each other-domain control against the random size-matched control of its target domain.
    """
    trained = list(dict.fromkeys(trained))
    rows = [(s, base, "vs base") for s in trained]
    rows += [(s, general, "vs general") for s in trained if s != general and general in trained]
    for s in trained:
        run = TrainingSpec.from_system(s)
        control = TrainingSpec("hybrid", run.domain, f"{CONTROL_PREFIX}{RANDOM_CONTROL}").system
        if (run.mode == "in-domain" or (run.mode.startswith(CONTROL_PREFIX) and s != control)) and control in trained:
            rows.append((s, control, CONTROL_QUESTION))
    return pd.DataFrame(rows, columns=["system", "reference", "question"])


def comparisons(results, plan, datasets, settings=("mono", "cross", "multi"), n_boot=5000):
    """``results/<profile>/comparisons.csv``: each planned pair per dataset and setting (cluster: question group),
    with run-level intervals (:func:`seed_level.run_bootstrap`) and Holm-adjusted p over every row together. Whether a
    gain is about a domain's own articles is :func:`interactions` (articles resampled with their small-sample
    correction), not a slice of this table."""
    frames = []
    for dataset in datasets:
        for setting in settings:
            matrix = per_query_matrix(results, dataset, setting)
            for reference, wanted in plan.groupby("reference", sort=False):
                table = compare(results, dataset, setting, reference, n_boot=n_boot, matrix=matrix)
                frames.append(table.merge(wanted, on=["system", "reference"]).assign(slice="all", cluster="group"))
    out = pd.concat(frames, ignore_index=True)
    out["p_holm"] = holm(out.p.to_numpy())
    return out[COLUMNS]


def topic_of(system: str) -> str | None:
    """The topic a pool is focused on: the target of an in-domain pool, the domain of an other-domain control
    (``hybrid/news-size-culture`` -> culture); None for general training and random controls."""
    run = TrainingSpec.from_system(system)
    if run.mode == "in-domain":
        return run.domain
    control = run.mode[len(CONTROL_PREFIX) :] if run.mode.startswith(CONTROL_PREFIX) else None
    return control if control not in (None, RANDOM_CONTROL) else None


INTERACTION_COLUMNS = ["system", "reference", "topic", "dataset", "setting", "gain_target", "gain_other",
                       "interaction", "lo", "hi", "p", "p_holm", "p_perm", "se", "df", "mde", "n_target_articles",
                       "n_other_articles", "status"]  # fmt: skip


def interactions(results, plan, dataset: str, settings=("cross",), n_boot=5000, min_articles: int = 2):
    """``results/<profile>/interactions.csv``: for every topical pool against its random control, the gain on the
    test articles of the pool's topic minus the gain on the other articles (``seed_level.interaction_bootstrap``:
    seeds and articles resampled, and a randomisation test over which articles are on-topic). A side with fewer
    than ``min_articles`` articles gets status ``too-few-articles`` and no numbers. Holm over the rows."""
    rows = []
    for setting in settings:
        scores, attrs = per_query_matrix(results, dataset, setting)
        if attrs.domain.isna().all():
            raise ExperimentError(f"the per-query tables of {dataset!r} have no domain column: score with domain_of=")
        for r in plan[plan.question == CONTROL_QUESTION].itertuples():
            topic = topic_of(r.system)
            if topic is None:
                continue
            in_target = (attrs.domain == topic).to_numpy()
            n_in, n_out = attrs.article[in_target].nunique(), attrs.article[~in_target].nunique()
            row = {"system": r.system, "reference": r.reference, "topic": topic, "dataset": dataset,
                   "setting": setting, "n_target_articles": n_in, "n_other_articles": n_out}  # fmt: skip
            if min(n_in, n_out) < min_articles:
                rows.append({**row, "status": "too-few-articles"})
                continue
            stat = interaction_bootstrap(scores[r.system], scores[r.reference], attrs.stratum.to_numpy(),
                                         attrs.article.to_numpy(), in_target, n_boot=n_boot)  # fmt: skip
            rows.append({**row, **{k: v for k, v in stat.items() if not k.startswith("n_")}, "status": "ok"})
    out = pd.DataFrame(rows).reindex(columns=INTERACTION_COLUMNS)
    ok = out.status == "ok"
    out.loc[ok, "p_holm"] = holm(out.loc[ok, "p"].to_numpy()) if ok.any() else []
    return out


def article_gains(results, plan, dataset: str, setting: str = "cross", min_articles: int = 2) -> pd.DataFrame:
    """Per topical pool and test article: the seed-averaged gain over its random control, and whether the article
    is on the pool's topic (the per-article figure of the interaction; pools whose topic has fewer than
    ``min_articles`` test articles, on either side, are left out as in :func:`interactions`)."""
    scores, attrs = per_query_matrix(results, dataset, setting)
    frames = []
    for r in plan[plan.question == CONTROL_QUESTION].itertuples():
        topic = topic_of(r.system)
        in_target = (attrs.domain == topic).to_numpy()
        sides = (attrs.article[in_target].nunique(), attrs.article[~in_target].nunique())
        if topic is not None and min(sides) >= min_articles:
            gain = per_article_gain(scores[r.system], scores[r.reference], attrs.article.to_numpy(), in_target)
            frames.append(gain.assign(system=r.system, reference=r.reference, topic=topic, setting=setting))
    if not frames:
        raise ExperimentError("no topical pool with test articles on its topic: nothing to plot per article")
    return pd.concat(frames, ignore_index=True)


RUN_MEANS_COLUMNS = ["system", "reference", "question", "dataset", "setting", "n_seeds", "n_ref_seeds", "mean",
                     "delta", "run_sd", "ref_run_sd", "p_perm", "mde"]  # fmt: skip


def run_means_comparisons(levels: pd.DataFrame, plan: pd.DataFrame, settings=("mono", "cross", "multi")):
    """The planned comparisons from ``levels.csv`` alone (one macro mAP per run), for result folders without
    per-query tables: the difference of run means, each side's run SD, the exact permutation p on the run means
    (sign flips against a one-run reference) and the minimum detectable effect of a Welch t test on the runs.

    Only the run level: the question-group sampling the two-level bootstrap adds is not in it, so it is a floor
    on the uncertainty, never a claim on its own. With 3 runs per arm the smallest possible p is 0.1.
    """
    from hybridir_utils.analysis.seed_level import minimum_detectable_effect, run_permutation_p

    rows = []
    for (dataset, setting), lv in levels[levels.setting.isin(settings)].groupby(["dataset", "setting"], sort=False):
        runs = lv.groupby("system", sort=False)["map"].apply(lambda v: v.to_numpy(float))
        for r in plan.itertuples():
            if r.system not in runs or r.reference not in runs:
                continue
            a, b = runs[r.system], runs[r.reference]
            var = [x.var(ddof=1) / len(x) if len(x) > 1 else 0.0 for x in (a, b)]
            se = float(np.sqrt(sum(var)))
            denom = sum(v**2 / (len(x) - 1) for v, x in zip(var, (a, b), strict=True) if len(x) > 1)
            df = sum(var) ** 2 / denom if denom > 0 else float("inf")
            rows.append({"system": r.system, "reference": r.reference, "question": r.question, "dataset": dataset,
                         "setting": setting, "n_seeds": len(a), "n_ref_seeds": len(b), "mean": a.mean(),
                         "delta": a.mean() - b.mean(), "run_sd": _sd(a), "ref_run_sd": _sd(b),
                         "p_perm": run_permutation_p(a, b), "mde": minimum_detectable_effect(se, df)})  # fmt: skip
    return pd.DataFrame(rows, columns=RUN_MEANS_COLUMNS)


def _sd(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def alpha_curve(levels: pd.DataFrame, dataset: str, ci: float = 0.95) -> pd.DataFrame:
    """The α curve: per general-pool sampling with a known α (presets and ``alpha<α>`` points), the run mean of
    mono / cross / multi mAP and of rank distance, with a t interval over the runs (it widens when runs disagree;
    NaN with one run). Columns: sampling, alpha, measure, mean, lo, hi, runs; empty when fewer than 3 α values."""
    rows = []
    for system, runs in levels[levels.dataset == dataset].groupby("system", sort=False):
        sampling, _, strategy = system.partition("/")
        try:
            alpha = sampling_alpha(sampling)
        except SamplerConfigError:
            continue  # the base model and other frozen systems
        if strategy != "general":
            continue
        per_run = {s: g.groupby("seed")["map"].mean() for s, g in runs.groupby("setting")}
        per_run["rank distance"] = runs[runs.setting == "multi"].groupby("seed").rank_distance.mean()
        for measure, values in per_run.items():
            n, mean = len(values), float(values.mean())
            lo, hi = _t_interval(mean, _sd(values.to_numpy()) / np.sqrt(n), n - 1, ci)  # NaN with one run
            rows.append({"sampling": sampling, "alpha": alpha, "measure": measure, "mean": mean, "lo": lo, "hi": hi,
                         "runs": n})  # fmt: skip
    curve = pd.DataFrame(rows, columns=["sampling", "alpha", "measure", "mean", "lo", "hi", "runs"])
    return curve.sort_values(["measure", "alpha"], ignore_index=True) if curve.alpha.nunique() >= 3 else curve.iloc[:0]
