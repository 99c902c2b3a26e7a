"""The effects the answer states: planned comparisons with run-level intervals, and domain-specificity tests.

Why run level: the claim is about a *training method*, so a trained system is a population of runs, and a new
seed (a new pool draw, a new batch order, a new initialisation of nothing but the order of updates) moves its score
as much as a new draw of test questions does. Every comparison here is :func:`stats.runs.run_bootstrap` (seeds
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

from hybridir_utils import naming
from hybridir_utils.errors import ExperimentError, SamplerConfigError
from hybridir_utils.sampling.alpha import sampling_alpha
from hybridir_utils.stats.groups import holm
from hybridir_utils.stats.runs import (
    interaction_bootstrap,
    minimum_detectable_effect,
    paired_run_bootstrap,
    per_article_gain,
    run_bootstrap,
    run_permutation_p,
    t_interval,
)

CONTROL_QUESTION = "vs size-matched random"
INTERPOLATION_QUESTION = "vs as trained"  # a WiSE-FT model against the same run as trained, paired by run
RANK_DISTANCE = "rank_distance"  # the setting of rank-distance rows (per query in the multilingual pool)
COLUMNS = ["system", "reference", "question", "dataset", "setting", "slice", "mean", "delta", "lo", "hi", "p",
           "p_holm", "p_perm", "n_seeds", "n_ref_seeds", "run_sd", "ref_run_sd", "se", "df", "mde", "mde_holm",
           "cluster", "n_clusters"]  # fmt: skip


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
    """``stats.runs.run_bootstrap`` of every system against ``reference`` on one dataset and setting.

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


def comparison_plan(systems, base: str, general: str | None = None, as_trained_plan: str = "interpolation"):
    """The (system, reference) pairs the answer states, and why; Holm corrects over all of them together.

    Every trained system against the untrained base; every other system against general hybrid training; each
    in-domain model and each other-domain control against the random size-matched control of its target domain.
    Where runs were interpolated (WiSE-FT), each interpolated system against the same runs as trained
    (``naming.as_trained``), paired by run; ``as_trained_plan`` "all" also gives the as-trained variants the plan
    above among themselves (the paper's comparison as trained, beside it after WiSE-FT).
    """
    if as_trained_plan not in naming.AS_TRAINED_PLANS:
        raise ExperimentError(f"as_trained_plan must be one of {naming.AS_TRAINED_PLANS}, got {as_trained_plan!r}")
    general = naming.general() if general is None else general
    trained = [s for s in dict.fromkeys(systems) if naming.is_trained(s)]  # frozen models are references only
    variants = [s for s in trained if naming.is_as_trained(s)]
    shipped = [s for s in trained if not naming.is_as_trained(s)]
    rows = _plan(shipped, base, general)
    if as_trained_plan == "all":
        rows += _plan(variants, base, naming.as_trained(general))
    rows += [(s, naming.as_trained(s), INTERPOLATION_QUESTION) for s in shipped if naming.as_trained(s) in variants]
    return pd.DataFrame(rows, columns=["system", "reference", "question"])


def _plan(systems: list[str], base: str, general: str) -> list[tuple[str, str, str]]:
    rows = [(s, base, "vs base") for s in systems]
    rows += [(s, general, "vs general") for s in systems if s != general and general in systems]
    controls = [(s, naming.random_control_of(s)) for s in systems]
    return rows + [(s, c, CONTROL_QUESTION) for s, c in controls if c is not None and c in systems]


def compare_paired(matrix, system: str, reference: str, n_boot: int = 5000, seed: int = 0) -> dict:
    """``stats.paired_run_bootstrap`` of ``system`` against ``reference`` on one (dataset, setting, metric) matrix
    (``per_query_matrix``): the two are the same runs (run i of one is run i of the other), so the difference is
    taken run by run. Queries where the metric is undefined for either are left out."""
    scores, attrs = matrix
    a, b = scores[system], scores[reference]
    if a.shape[0] != b.shape[0]:
        raise ExperimentError(f"{system} has {a.shape[0]} runs, {reference} {b.shape[0]}: they are not the same runs")
    keep = np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0)
    row = paired_run_bootstrap(a[:, keep], b[:, keep], attrs.stratum[keep].to_numpy(), attrs.group[keep].to_numpy(),
                               n_boot=n_boot, seed=seed)  # fmt: skip
    return {**row, "system": system, "reference": reference, "n_ref_seeds": b.shape[0]}


def comparisons(results, plan, datasets, settings=("mono", "cross", "multi"), n_boot=5000):
    """``results/<profile>/comparisons.csv``: each planned pair per dataset and setting (cluster: question group),
    with run-level intervals (:func:`stats.runs.run_bootstrap`; paired by run for the interpolation rows, which also
    compare rank distance) and Holm-adjusted p over every row together, and ``mde_holm``, the difference detected
    with 80% power at Holm's strictest step (two-sided 5% over the number of rows): what the claim rule can see.
    Whether a gain is about a domain's own articles is :func:`interactions`, not a slice of this table."""
    paired = plan[plan.question == INTERPOLATION_QUESTION]
    planned = plan[plan.question != INTERPOLATION_QUESTION]
    frames = []
    for dataset in datasets:
        for setting in (*settings, *([RANK_DISTANCE] if len(paired) else [])):
            scored, metric = ("multi", RANK_DISTANCE) if setting == RANK_DISTANCE else (setting, "ap")
            matrix = per_query_matrix(results, dataset, scored, metric)
            for reference, wanted in planned.groupby("reference", sort=False) if setting != RANK_DISTANCE else ():
                table = compare(results, dataset, setting, reference, n_boot=n_boot, matrix=matrix)
                frames.append(table.merge(wanted, on=["system", "reference"]))
            rows = [{**compare_paired(matrix, r.system, r.reference, n_boot), "question": r.question}
                    for r in paired.itertuples()]  # fmt: skip
            frames.append(pd.DataFrame(rows).assign(dataset=dataset, setting=setting, metric=metric))
    out = pd.concat([f for f in frames if len(f)], ignore_index=True).assign(slice="all", cluster="group")
    out["p_holm"] = holm(out.p.to_numpy())
    out["mde_holm"] = [
        minimum_detectable_effect(se, df, alpha=0.05 / len(out)) for se, df in zip(out.se, out.df, strict=True)
    ]
    return out[COLUMNS]


INTERACTION_COLUMNS = ["system", "reference", "topic", "dataset", "setting", "gain_target", "gain_other",
                       "interaction", "lo", "hi", "p", "p_holm", "p_perm", "se", "df", "mde", "n_target_articles",
                       "n_other_articles", "status"]  # fmt: skip


def interactions(results, plan, dataset: str, settings=("cross",), n_boot=5000, min_articles: int = 2):
    """``results/<profile>/interactions.csv``: for every topical pool against its random control, the gain on the
    test articles of the pool's topic minus the gain on the other articles (``stats.runs.interaction_bootstrap``:
    seeds and articles resampled, and a randomisation test over which articles are on-topic). A side with fewer
    than ``min_articles`` articles gets status ``too-few-articles`` and no numbers. Holm over the rows."""
    rows = []
    for setting in settings:
        scores, attrs = per_query_matrix(results, dataset, setting)
        if attrs.domain.isna().all():
            raise ExperimentError(f"the per-query tables of {dataset!r} have no domain column: score with domain_of=")
        for r in plan[plan.question == CONTROL_QUESTION].itertuples():
            topic = naming.topic_of(r.system)
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
        topic = naming.topic_of(r.system)
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
            lo, hi = t_interval(mean, _sd(values.to_numpy()) / np.sqrt(n), n - 1, ci)  # NaN with one run
            rows.append({"sampling": sampling, "alpha": alpha, "measure": measure, "mean": mean, "lo": lo, "hi": hi,
                         "runs": n})  # fmt: skip
    curve = pd.DataFrame(rows, columns=["sampling", "alpha", "measure", "mean", "lo", "hi", "runs"])
    return curve.sort_values(["measure", "alpha"], ignore_index=True) if curve.alpha.nunique() >= 3 else curve.iloc[:0]
