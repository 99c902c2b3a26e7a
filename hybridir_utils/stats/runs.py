"""Run-level inference: the uncertainty of a *training method*, seeds included, on top of the cluster draw of
:mod:`stats.groups`.

Why (read before changing it):

- **The claim is about a training method, so a new seed is part of the next experiment.** :func:`stats.groups.
  cluster_bootstrap` averages the seeds and resamples question groups only: its interval says how much *these*
  runs could move under new questions, not how much the method could. :func:`run_bootstrap` is a two-level
  bootstrap: each replicate draws question groups once (shared by every system and stratum, paired as in
  ``stats``) and, independently per system, that system's seeds with replacement. Seeds are never paired by index:
  seed 0 of system A shares no randomness with seed 0 of system B.
- **For fixed group weights the macro mean of a seed average is the average of per-seed macro means** (the
  denominators are the same), so a replicate computes one macro mean per seed per system and then resamples seeds.
- **Small-sample and crossed-design corrections of the seed level.** A plain resample of n run means understates
  the variance of their mean by (n-1)/n, so the seed-level deviations are inflated by sqrt(n/(n-1)). And the
  spread of per-seed means on the data, s^2, holds two things: the run effect (what a new seed changes everywhere)
  and the seed-specific per-question noise, which the group draw already counts (a group's rows carry it into the
  seed average). Resampling both levels counts that noise twice (the "pigeonhole" bootstrap of crossed designs is
  conservative for this reason); with few runs and little run effect the interval would over-cover. So the
  run-level variance used is ``max(s^2 - w, 0)``, with ``w`` the group-draw variance of one seed's deviation from
  the seed mean (times n/(n-1)): a moment estimate of the run effect alone. A system with one seed (a frozen base
  model) has no run variance.
- **A t interval, not percentiles.** With 3 to 10 runs per system the run variance is itself uncertain; the
  interval is ``delta +- t * se`` (se: the SD of the replicate differences) with a Welch-Satterthwaite df from the
  run-level components (n-1 df each; the group-level component counts as infinite df, so with no run variance
  the interval is the normal one). Percentiles of a 3-seed resample would be far too narrow.
- **An exact permutation test on run means checks the bootstrap** (:func:`run_permutation_p`): it assumes
  nothing about the groups and, with few runs, says honestly how small a p can be (3 vs 3 runs: never below 0.1).
- **The minimum detectable effect** (80 % power, two-sided 5 %) states what a null result could have seen.
- **Domain specificity is an interaction** (:func:`interaction_bootstrap`): a domain-focused model should gain
  more on its target domain's articles than elsewhere, relative to its control; articles are resampled within
  the target and non-target parts, seeds within each system.

Vectorised numpy, seeded: the same inputs and seed give identical output; memory per replicate chunk is bounded
as in ``stats`` (the per-cell sums, clusters x strata x seeds of all systems, are held once).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from hybridir_utils.stats.groups import (
    CHUNK_CELLS,
    GROUP_COLUMNS,
    Cells,
    check_options,
    check_scores,
    cluster_weights,
    codes,
    macro_means,
)

__all__ = [
    "interaction_bootstrap",
    "minimum_detectable_effect",
    "paired_run_bootstrap",
    "per_article_gain",
    "run_bootstrap",
    "run_permutation_p",
    "smallest_permutation_p",
    "t_interval",
]

MAX_RELABELLINGS = 200_000  # exact enumeration up to this many relabellings / sign flips, else Monte Carlo draws
_TOL = 1e-12  # float noise must not turn "as extreme as observed" into "less extreme"
# the group-level table's columns up to the p-value, then what the run level adds (no per-seed sign range)
_COLUMNS = [*GROUP_COLUMNS[: GROUP_COLUMNS.index("p") + 1], "se", "df", "run_sd", "ref_run_sd", "p_perm", "mde"]


def run_bootstrap(
    scores: Mapping[str, np.ndarray],
    strata,
    clusters,
    reference: str,
    n_boot: int = 5000,
    seed: int = 0,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Two-level bootstrap (question groups, and each system's seeds) of every system's macro mean and of its
    difference to ``reference``: the primary analysis for trained systems (see the module docstring).

    Inputs as :func:`stats.groups.cluster_bootstrap`: system -> [n_seeds, n_rows] scores on the same rows, one
    stratum and one cluster label per row; the statistic is the macro mean over strata of the per-stratum mean.

    Returns one row per system, in input order: ``n_seeds``, ``n_rows``, ``n_clusters``, ``mean`` (mean of the
    per-seed macro means) with its t interval ``ci_low`` / ``ci_high``; ``delta`` to the reference with its t
    interval ``lo`` / ``hi``, two-sided t ``p``, ``se`` and Welch-Satterthwaite ``df``; ``run_sd`` /
    ``ref_run_sd`` (SD, ddof=1, of the per-seed macro means; NaN with one seed); ``p_perm``
    (:func:`run_permutation_p` on the per-seed macro means) and ``mde`` (:func:`minimum_detectable_effect`). The
    reference row has delta 0, lo = hi = 0, p = p_perm = 1, se 0, df and mde NaN.
    """
    mats = check_scores(scores)
    n_rows = next(iter(mats.values())).shape[1]
    cells = Cells.of(strata, clusters, n_rows)
    check_options(mats, reference, n_boot, ci)
    cluster_rng, seed_rng = _rngs(seed)
    reps = _per_seed_replicates(cells, mats, n_boot, cluster_rng)
    levels = {name: _resample_seeds(reps[name], cells.macro_mean(mats[name].T), seed_rng) for name in mats}
    ref = levels[reference]
    rows = []
    for name, level in levels.items():
        size = {"n_seeds": level.n, "n_rows": n_rows, "n_clusters": cells.n_clusters}
        ci_low, ci_high = t_interval(level.mean, np.std(level.boot, ddof=_ddof(level.boot)), level.df(), ci)
        if name == reference:
            diff = {"delta": 0.0, "lo": 0.0, "hi": 0.0, "p": 1.0, "se": 0.0, "df": math.nan}
            extra = {"p_perm": 1.0, "mde": math.nan}
        else:
            diff = _difference(level, ref, ci)
            extra = {"p_perm": run_permutation_p(level.runs, ref.runs, seed=seed)}
            extra["mde"] = minimum_detectable_effect(diff["se"], diff["df"])
        spread = {"run_sd": level.run_sd, "ref_run_sd": ref.run_sd}
        rows.append({"system": name, **size, "mean": level.mean, "ci_low": ci_low, "ci_high": ci_high, **diff})
        rows[-1].update(spread | extra)
    return pd.DataFrame(rows, columns=_COLUMNS)


def paired_run_bootstrap(
    system: np.ndarray,
    reference: np.ndarray,
    strata,
    clusters,
    n_boot: int = 5000,
    seed: int = 0,
    ci: float = 0.95,
) -> dict:
    """:func:`run_bootstrap` of ``system`` minus ``reference`` when run i of one *is* run i of the other (a model
    interpolated toward its base and the same run as trained): the unit is the run's paired difference, so the run
    level resampled is the spread of those differences, and ``p_perm`` is the sign-flip test of the per-run
    differences. Both are [n_seeds, n_rows] on the same rows, in the same run order.

    Returns one row (a dict) of :func:`run_bootstrap`'s columns for ``system``: ``mean`` its level, ``delta`` the
    mean paired difference with its t interval, ``run_sd`` / ``ref_run_sd`` each side's SD of run means and
    ``pair_sd`` the SD of the paired differences (what the interval is made of)."""
    mats = check_scores({"system": system, "reference": reference})
    a, b = mats["system"], mats["reference"]
    if a.shape != b.shape:
        raise ValueError(f"paired runs: system has {a.shape[0]} runs, reference {b.shape[0]}; pair them run by run")
    table = run_bootstrap({"difference": a - b, "zero": np.zeros((1, a.shape[1]))}, strata, clusters, "zero",
                          n_boot=n_boot, seed=seed, ci=ci)  # fmt: skip
    row = table.iloc[0].to_dict()
    cells = Cells.of(strata, clusters, a.shape[1])
    runs_a, runs_b = cells.macro_mean(a.T), cells.macro_mean(b.T)
    sd = lambda v: float(v.std(ddof=1)) if len(v) > 1 else math.nan  # noqa: E731
    return {**row, "system": "system", "n_seeds": a.shape[0], "mean": float(runs_a.mean()),
            "ci_low": math.nan, "ci_high": math.nan, "run_sd": sd(runs_a), "ref_run_sd": sd(runs_b),
            "pair_sd": row["run_sd"]}  # fmt: skip


@dataclass(frozen=True)
class _Level:
    """One system's replicates: ``boot`` (groups and seeds resampled), ``centre`` (groups only: the mean of all its
    seeds under the replicate's group weights), ``run_var`` (the run-level variance component of its mean, s^2/n
    net of the group-level noise) and its per-seed statistics on the data, ``runs``."""

    boot: np.ndarray
    centre: np.ndarray
    run_var: float
    runs: np.ndarray

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def mean(self) -> float:
        return float(self.runs.mean())

    @property
    def run_sd(self) -> float:
        return float(self.runs.std(ddof=1)) if self.n > 1 else math.nan

    def df(self) -> float:
        return _welch_df([(float(np.var(self.centre, ddof=_ddof(self.centre))), math.inf)], [self])


def _rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The group draw uses ``default_rng(seed)`` as :func:`stats.groups.cluster_bootstrap` does (one seed per
    system then gives its draws exactly); the seed draw has its own stream, so adding seeds does not move the group
    draw."""
    return np.random.default_rng(seed), np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])


def _ddof(values: np.ndarray) -> int:
    return 1 if len(values) > 1 else 0


def _per_seed_replicates(cells: Cells, mats: dict[str, np.ndarray], n_boot: int, rng) -> dict[str, np.ndarray]:
    """name -> [n_boot, n_seeds]: the macro mean of every seed of every system in every replicate, one group draw
    per replicate shared by all; replicates go in chunks of about ``CHUNK_CELLS`` floats."""
    sums = {name: cells.sums(mat.T) for name, mat in mats.items()}
    width = max(mat.shape[0] for mat in mats.values())
    out = {name: np.empty((n_boot, mat.shape[0])) for name, mat in mats.items()}
    chunk = max(1, CHUNK_CELLS // max(cells.n_clusters, cells.n_strata * width))
    for start in range(0, n_boot, chunk):
        n = min(chunk, n_boot - start)
        weights = cluster_weights(rng, n, cells.n_clusters)
        for name in mats:
            out[name][start : start + n] = macro_means(weights, sums[name], cells.counts)
    return out


def _resample_seeds(rep: np.ndarray, runs: np.ndarray, rng: np.random.Generator) -> _Level:
    """Resample the seeds of one system within each replicate ([n_boot, n_seeds] -> _Level).

    The seed-level deviation (mean of the drawn seeds minus the mean of all) is scaled so that its variance is the
    run-level variance net of the group-level noise, ``max(s^2 - w, 0) / n``, with the (n-1)/n resampling shortfall
    undone (see the module docstring); one seed: no seed level.
    """
    n = rep.shape[1]
    centre = rep.mean(axis=1)
    if n == 1:
        return _Level(centre, centre, 0.0, runs)
    s2 = float(runs.var(ddof=1))
    noise = n / (n - 1) * float((rep - centre[:, None]).var(axis=0, ddof=_ddof(rep)).mean())
    net = max(s2 - noise, 0.0)
    scale = math.sqrt(n / (n - 1) * net / s2) if s2 > 0 else 0.0
    drawn = np.take_along_axis(rep, rng.integers(0, n, size=rep.shape), axis=1).mean(axis=1)
    return _Level(centre + scale * (drawn - centre), centre, net / n, runs)


def _welch_df(cluster: list[tuple[float, float]], levels: list[_Level]) -> float:
    """Welch-Satterthwaite df of a sum of variance components: ``cluster`` as (variance, df) pairs (infinite df for
    many groups) and each level's run component with n-1 df. The run component enters with the spread of its
    runs as observed (s^2/n), not net of the group noise: when the net run variance is clipped to 0 with few runs,
    its estimate is still uncertain, and a df of infinity (the normal quantile) would make the interval too narrow;
    infinite only when no level has two runs or every run mean is equal."""
    parts = [*cluster, *((float(level.runs.var(ddof=1)) / level.n, level.n - 1) for level in levels if level.n > 1)]
    den = sum(var * var / dof for var, dof in parts if math.isfinite(dof))
    num = sum(var for var, _ in parts)
    return num * num / den if den > 0 else math.inf


def t_interval(centre: float, se: float, df: float, ci: float) -> tuple[float, float]:
    half = float(student_t.ppf((1 + ci) / 2, df)) * se
    return centre - half, centre + half


def _difference(system: _Level, reference: _Level, ci: float, cluster: list[tuple[float, float]] | None = None) -> dict:
    """delta (data), its t interval, two-sided t p, se (SD of replicate differences) and Welch df; ``cluster``: the
    group-level (variance, df) components, by default the replicate variance of the seed-mean difference with
    infinite df."""
    diffs = system.boot - reference.boot
    se = float(np.std(diffs, ddof=_ddof(diffs)))
    if cluster is None:
        centre = system.centre - reference.centre
        cluster = [(float(np.var(centre, ddof=_ddof(centre))), math.inf)]
    df = _welch_df(cluster, [system, reference])
    delta = system.mean - reference.mean
    lo, hi = t_interval(delta, se, df, ci)
    if se > 0:
        p = float(2 * student_t.sf(abs(delta) / se, df))
    else:  # no variation at all: a difference is certain, no difference is no evidence
        p = 1.0 if abs(delta) <= _TOL else 0.0
    return {"delta": delta, "lo": lo, "hi": hi, "p": p, "se": se, "df": df}


def minimum_detectable_effect(se: float, df: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The true difference a two-sided level-``alpha`` t test with this ``se`` and ``df`` detects with probability
    ``power``: ``(t_{df,1-alpha/2} + t_{df,power}) * se``. A null result says little about effects below it."""
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha, power: expected values strictly between 0 and 1, got {alpha!r}, {power!r}")
    return float((student_t.ppf(1 - alpha / 2, df) + student_t.ppf(power, df)) * se)


def smallest_permutation_p(n: int, m: int) -> float:
    """The smallest two-sided p :func:`run_permutation_p` can give for n against m runs (sign flips of n runs
    against a one-run reference): what a design of that many runs could ever show. With n == m the mirrored
    labelling is as extreme as the observed one (2 of C(2n, n)); with n != m it need not be (1 of C(n+m, n))."""
    if m == 1:
        return 2 / 2**n
    return (2 if n == m else 1) / math.comb(n + m, n)


def run_permutation_p(a, b, seed: int = 0) -> float:
    """Two-sided exact permutation p of the difference of mean run statistics (e.g. per-seed macro means).

    Both sides with >= 2 runs: every relabelling of the pooled runs into groups of the two sizes, on |mean(a) -
    mean(b)|. One side with a single run (a frozen model: a fixed value) and the other with n >= 2: the sign-flip
    test of the n differences to that value (2^n flips). p is the share of relabellings at least as extreme as the
    observed one, which is included (so 3 vs 3 separated runs can never give less than 2/20 = 0.1). Exact up to
    ``MAX_RELABELLINGS`` relabellings, else that many seeded Monte Carlo draws, p = (1 + #extreme) / (1 + draws).
    NaN when neither applies (one run each).
    """
    a, b = (np.asarray(x, dtype=float).reshape(-1) for x in (a, b))
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or not len(a) or not len(b):
        raise ValueError("a, b: expected non-empty arrays of finite run statistics")
    rng = np.random.default_rng(seed)
    if len(a) >= 2 and len(b) >= 2:
        return _relabel_p(np.concatenate([a, b]), len(a), rng)
    if len(a) + len(b) >= 3:  # one side is a single, fixed run
        diffs = a - b[0] if len(b) == 1 else b - a[0]
        return _sign_flip_p(diffs, rng)
    return math.nan


def _relabel_p(values: np.ndarray, k: int, rng: np.random.Generator) -> float:
    """Two-sided p of mean(values[:k]) - mean(values[k:]) over relabellings of which k values form the first group."""
    n, total = len(values), float(values.sum())

    def diff(first_sums):
        return first_sums / k - (total - first_sums) / (n - k)

    observed = abs(diff(float(values[:k].sum())))
    if math.comb(n, k) <= MAX_RELABELLINGS:
        chosen = np.array(list(itertools.combinations(range(n), k)), dtype=np.intp)
        return float(np.mean(np.abs(diff(values[chosen].sum(axis=1))) >= observed - _TOL))
    extreme = 0
    for start in range(0, MAX_RELABELLINGS, 10_000):
        m = min(10_000, MAX_RELABELLINGS - start)
        chosen = rng.random((m, n)).argsort(axis=1)[:, :k]
        extreme += int((np.abs(diff(values[chosen].sum(axis=1))) >= observed - _TOL).sum())
    return (1 + extreme) / (1 + MAX_RELABELLINGS)


def _sign_flip_p(diffs: np.ndarray, rng: np.random.Generator) -> float:
    """Two-sided sign-flip p of |mean(diffs)|: under no difference each diff is as likely negated."""
    n = len(diffs)
    observed = abs(float(diffs.mean()))
    if 2**n <= MAX_RELABELLINGS:
        signs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2.0 - 1.0
        return float(np.mean(np.abs(signs @ diffs / n) >= observed - _TOL))
    signs = rng.choice([-1.0, 1.0], size=(MAX_RELABELLINGS, n))
    return (1 + int((np.abs(signs @ diffs / n) >= observed - _TOL).sum())) / (1 + MAX_RELABELLINGS)


def interaction_bootstrap(
    system,
    reference,
    strata,
    articles,
    in_target,
    n_boot: int = 5000,
    seed: int = 0,
    ci: float = 0.95,
) -> dict:
    """The domain-specificity test: does ``system`` gain more over ``reference`` on target-domain articles than on
    the others? A target gain alone could be a general gain; the interaction separates the two.

    Args:
        system, reference: [n_seeds, n_rows] per-query scores (e.g. AP) of the domain-focused model and its
            control on the same rows (1-d: one seed).
        strata: one label per row; each part's statistic is the macro mean over its strata.
        articles: one label per row (the unit resampled); in_target: one bool per row, constant within an article.

    Statistic: (macro-mean difference on target rows) - (macro-mean difference on the other rows). Two-level
    bootstrap: articles with replacement within each part, each system's seeds as in :func:`run_bootstrap`; t
    interval and p with the Welch df. A domain may hold only a handful of articles, so unlike ``run_bootstrap``
    each part's article-level deviations are inflated by sqrt(k/(k-1)) and its variance gets k-1 df (without
    this, 4 target articles covered 0.90 instead of 0.95 in simulation). Needs >= 2 articles in each part.
    ``p_perm``: randomisation test on the seed-averaged per-article gains
    (:func:`per_article_gain`; statistic: mean target gain - mean other gain over articles, unweighted), relabelling
    which articles are target (same count): exact up to ``MAX_RELABELLINGS``, else seeded Monte Carlo.

    Returns gain_target, gain_other, interaction, lo, hi, p, se, df, p_perm, mde, n_target_articles,
    n_other_articles.
    """
    mats, target = _check_interaction(system, reference, strata, articles, in_target)
    check_options(mats, "reference", n_boot, ci)
    strata, articles = np.asarray(strata), np.asarray(articles)
    cluster_rng, seed_rng = _rngs(seed)
    parts = {
        part: _interaction_part(strata, articles, mats, mask, n_boot, cluster_rng)
        for part, mask in (("target", target), ("other", ~target))
    }
    levels, cluster = _interaction_levels(parts, seed_rng)
    runs = {part: parts[part][1] for part in parts}
    diff = _difference(levels["system"], levels["reference"], ci, cluster)
    gains = per_article_gain(mats["system"], mats["reference"], articles, target)
    gain, is_target = gains["gain"].to_numpy(), gains["in_target"].to_numpy()
    ordered = np.concatenate([gain[is_target], gain[~is_target]])
    p_perm = _relabel_p(ordered, int(is_target.sum()), np.random.default_rng(seed))
    part_gain = {part: float(runs[part]["system"].mean() - runs[part]["reference"].mean()) for part in runs}
    return {
        "gain_target": part_gain["target"],
        "gain_other": part_gain["other"],
        "interaction": diff.pop("delta"),
        **diff,
        "p_perm": p_perm,
        "mde": minimum_detectable_effect(diff["se"], diff["df"]),
        "n_target_articles": parts["target"][2],
        "n_other_articles": parts["other"][2],
    }


def _interaction_levels(parts: dict, rng) -> tuple[dict[str, _Level], list[tuple[float, float]]]:
    """Each system's per-seed target-minus-other statistic with its seeds resampled, and the two parts' group-level
    (variance, df) components of the difference (articles are drawn independently in each part)."""
    rep, runs = ({name: p["target"] - p["other"] for name, p in _by_system(parts, i).items()} for i in (0, 1))
    levels = {name: _resample_seeds(rep[name], runs[name], rng) for name in rep}
    cluster = []
    for part_rep, _, k in parts.values():
        centre = part_rep["system"].mean(axis=1) - part_rep["reference"].mean(axis=1)
        cluster.append((float(np.var(centre, ddof=_ddof(centre))), k - 1))
    return levels, cluster


def _by_system(parts: dict, i: int) -> dict[str, dict[str, np.ndarray]]:
    """{system: {part: parts[part][i][system]}}."""
    return {name: {part: parts[part][i][name] for part in parts} for name in parts["target"][i]}


def _interaction_part(strata, articles, mats: dict[str, np.ndarray], mask: np.ndarray, n_boot: int, rng) -> tuple:
    """One part (target or other rows): ({name: [n_boot, n_seeds] replicate per-seed macro means}, {name: per-seed
    macro means on the data}, number of articles). A part may hold few articles, so the article-level deviations are
    inflated by sqrt(k/(k-1)) (a resample of k clusters understates the variance by (k-1)/k) and the part's
    group-level variance gets k-1 df, as the seed level does."""
    cells = Cells.of(strata[mask], articles[mask], int(mask.sum()))
    part = {name: mat[:, mask] for name, mat in mats.items()}
    reps = _per_seed_replicates(cells, part, n_boot, rng)
    runs = {name: cells.macro_mean(mat.T) for name, mat in part.items()}
    scale = math.sqrt(cells.n_clusters / (cells.n_clusters - 1))
    return {name: runs[name] + scale * (reps[name] - runs[name]) for name in part}, runs, cells.n_clusters


def per_article_gain(system, reference, articles, in_target) -> pd.DataFrame:
    """One row per article (sorted by label): ``article``, ``in_target``, ``gain`` (the mean over the article's
    rows of the seed-averaged system minus the seed-averaged reference) and ``n_rows``; for a per-article figure
    and the randomisation test of :func:`interaction_bootstrap`, which both need the gain article by article."""
    mats, target = _check_interaction(system, reference, None, articles, in_target)
    article_codes, n_articles = codes(articles, "articles", len(target))
    diff = mats["system"].mean(axis=0) - mats["reference"].mean(axis=0)
    n_rows = np.bincount(article_codes, minlength=n_articles)
    first = np.unique(article_codes, return_index=True)[1]
    return pd.DataFrame(
        {
            "article": np.asarray(articles)[first],
            "in_target": target[first],
            "gain": np.bincount(article_codes, weights=diff, minlength=n_articles) / n_rows,
            "n_rows": n_rows,
        }
    )


def _check_interaction(system, reference, strata, articles, in_target) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The two score matrices (as {"system", "reference"}) and the target mask, or a ValueError naming the input."""
    mats = {}
    for name, values in (("system", system), ("reference", reference)):
        try:
            mats[name] = check_scores({name: values})[name]
        except ValueError as err:
            raise ValueError(str(err).replace(f"scores[{name!r}]", name)) from None
    n_rows = mats["system"].shape[1]
    if mats["reference"].shape[1] != n_rows:
        raise ValueError(
            f"reference: has {mats['reference'].shape[1]} rows but system has {n_rows}; score both on the same rows"
        )
    if strata is not None:
        codes(strata, "strata", n_rows)
    article_codes, n_articles = codes(articles, "articles", n_rows)
    target = np.asarray(in_target)
    if target.shape != (n_rows,) or target.dtype != bool:
        raise ValueError(f"in_target: expected {n_rows} booleans (one per row), got {target.dtype} {target.shape}")
    per_article = np.bincount(article_codes, weights=target, minlength=n_articles)
    if not np.all((per_article == 0) | (per_article == np.bincount(article_codes, minlength=n_articles))):
        raise ValueError("in_target: must be constant within an article (an article is in the target domain or not)")
    n_in = len(np.unique(article_codes[target]))
    if n_in < 2 or n_articles - n_in < 2:
        raise ValueError(
            f"in_target: needs at least 2 articles in and 2 out of the target domain, got {n_in} in and "
            f"{n_articles - n_in} out"
        )
    return mats, target
