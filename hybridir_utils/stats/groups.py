"""Significance of per-query scores: a paired cluster bootstrap over question groups, and Holm's correction.

Why this design (read before changing it):

- **The unit of independence is the question group, not the query.** A LAReQA question group is the same question
  translated into every language, and it appears in every (query language, pool language) stratum. Its rows share
  the question's difficulty, so they are strongly correlated; resampling rows (or queries within strata) as if
  they were independent makes confidence intervals far too narrow and p-values far too small. Each bootstrap
  replicate therefore draws *groups* with replacement, once, and applies that one draw to every stratum and to
  every system (a paired design: all systems are scored on exactly the same rows).
- **Seeds: here a fixed, stated level; for trained systems the primary analysis is** :func:`stats.runs.run_bootstrap`.
  In :func:`cluster_bootstrap` a system's score on a row is the mean over its seeds, and the CI says how much that
  seed-averaged system could move under a new draw of question groups, with the range of the per-seed differences
  (``seed_delta_min`` / ``seed_delta_max``) stated next to it. But the project's claim is about a *training
  method*: a rerun draws new seeds as surely as a new test set draws new questions, so for trained systems the
  interval must include run-to-run variance. ``runs.run_bootstrap`` resamples each system's seeds as well (independently
  per system, never paired by index) and gives t intervals, a run-level permutation check and the minimum
  detectable effect; ``cluster_bootstrap`` stays for frozen models and as the group-only view.
- **Holm over every comparison the report states.** Each table row other than the reference is one test; a
  report that states several comparisons (systems x datasets x settings x references) applies :func:`holm` to all
  of their p-values together, not per table.

The reported statistic is the macro mean over strata of the mean score (e.g. AP) in each stratum, as LAReQA
reports mAP. In a replicate, a stratum's mean is the mean of its rows weighted by how often each row's group was
drawn; a stratum none of whose groups was drawn (possible only when a stratum covers few groups) is left out of
that replicate's macro mean, for every system alike, so that paired differences stay comparable.

Vectorised numpy, seeded: the same inputs and seed give identical output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "CHUNK_CELLS",
    "GROUP_COLUMNS",
    "Cells",
    "check_options",
    "check_scores",
    "cluster_bootstrap",
    "cluster_weights",
    "codes",
    "holm",
    "macro_mean_se",
    "macro_means",
]

CHUNK_CELLS = 2_000_000  # floats materialised at once per array (replicates x clusters, replicates x columns)
GROUP_COLUMNS = [
    "system",
    "n_seeds",
    "n_rows",
    "n_clusters",
    "mean",
    "ci_low",
    "ci_high",
    "delta",
    "lo",
    "hi",
    "p",
    "seed_delta_min",
    "seed_delta_max",
]


def check_scores(scores: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError("scores: expected a non-empty mapping system name -> [n_seeds, n_rows] array")
    out, n_rows = {}, None
    for name, values in scores.items():
        arr = np.asarray(values, dtype=float)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(
                f"scores[{name!r}]: expected a non-empty [n_seeds, n_rows] (or 1-d) array, got shape {np.shape(values)}"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"scores[{name!r}]: contains NaN or infinite values")
        if n_rows is None:
            n_rows, first = arr.shape[1], name
        elif arr.shape[1] != n_rows:
            raise ValueError(
                f"scores[{name!r}]: has {arr.shape[1]} rows but scores[{first!r}] has {n_rows}; score every "
                "system on the same rows"
            )
        out[name] = arr
    return out


def codes(labels, name: str, n_rows: int) -> tuple[np.ndarray, int]:
    arr = np.asarray(labels)
    if arr.shape != (n_rows,):
        raise ValueError(f"{name}: expected {n_rows} labels (one per row of the scores), got shape {arr.shape}")
    try:
        uniques, codes = np.unique(arr, return_inverse=True)
    except TypeError as err:  # mixed label types that do not sort
        raise ValueError(f"{name}: labels must be of one sortable type ({err})") from None
    return codes.reshape(-1), len(uniques)


def check_options(mats: dict[str, np.ndarray], reference: str, n_boot: int, ci: float) -> None:
    """Name the bad option before any work (the scores, strata and clusters are checked first)."""
    if reference not in mats:
        raise ValueError(f"reference: {reference!r} is not among the systems {list(mats)}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot: expected an integer >= 1, got {n_boot!r}")
    if not 0 < ci < 1:
        raise ValueError(f"ci: expected a confidence level strictly between 0 and 1, got {ci!r}")


def cluster_bootstrap(
    scores: Mapping[str, np.ndarray],
    strata,
    clusters,
    reference: str,
    n_boot: int = 5000,
    seed: int = 0,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Paired cluster bootstrap of the macro mean of every system, and of its difference to ``reference``.

    Args:
        scores: system name -> [n_seeds, n_rows] per-row scores (a 1-d array is one seed); every system on the same
            rows in the same order. A system's score on a row is the mean over its seeds (seeds are not resampled).
        strata: one label per row (e.g. ``"en>de"``); the statistic is the macro mean over strata.
        clusters: one label per row (the question group); the unit resampled. ``np.arange(n_rows)`` gives the
            ordinary per-row bootstrap (rows assumed independent).
        reference: the system the differences are taken against.
        n_boot: bootstrap replicates; seed: the random seed; ci: the confidence level of the percentile intervals.

    Each replicate draws n_clusters clusters with replacement once and weights every row by its cluster's count,
    in every stratum and every system alike (see the module docstring for empty strata).

    Returns one row per system, in the order of ``scores``: ``system``, ``n_seeds``, ``n_rows``, ``n_clusters``,
    ``mean`` (macro mean on the data), ``ci_low`` / ``ci_high`` (percentile CI of the mean), ``delta`` (``mean``
    minus the reference's), ``lo`` / ``hi`` (percentile CI of the paired difference), ``p`` (two-sided bootstrap
    p of the difference, ``(1 + #{|d* - delta| >= |delta|}) / (n_boot + 1)``; 1 for the reference), and
    ``seed_delta_min`` / ``seed_delta_max``: the range of the per-seed differences to the reference. Seeds pair
    by index when both have the same number of seeds; when one side has a single seed, it is compared with every
    seed of the other; otherwise (both several seeds, different counts) they are NaN.
    """
    mats = check_scores(scores)
    n_rows = next(iter(mats.values())).shape[1]
    cells = Cells.of(strata, clusters, n_rows)
    check_options(mats, reference, n_boot, ci)

    names = list(mats)
    seed_avg = {name: mats[name].mean(axis=0) for name in names}
    means = dict(zip(names, cells.macro_mean(np.column_stack([seed_avg[n] for n in names])).tolist(), strict=True))
    ref_seeds = cells.macro_mean(mats[reference].T)
    # Columns bootstrapped: the reference's seed-averaged rows, then each system's seed-averaged difference to it
    # (an identical system then gives exactly 0 in every replicate). A system's level is reference + difference.
    columns = np.column_stack([seed_avg[reference]] + [seed_avg[name] - seed_avg[reference] for name in names])
    boot = _bootstrap(cells, columns, n_boot, seed)

    q = [(1 - ci) / 2, (1 + ci) / 2]
    rows = []
    for i, name in enumerate(names):
        d_boot = boot[:, 1 + i]
        delta = means[name] - means[reference]
        size = {"n_seeds": mats[name].shape[0], "n_rows": n_rows, "n_clusters": cells.n_clusters}
        summary = _compare(boot[:, 0] + d_boot, d_boot, delta, q, name == reference)
        seeds = _seed_range(cells.macro_mean(mats[name].T), ref_seeds)
        spread = {"seed_delta_min": seeds[0], "seed_delta_max": seeds[1]}
        rows.append({"system": name, **size, "mean": means[name], **summary, **spread})
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


@dataclass(frozen=True)
class Cells:
    """The rows binned by (cluster, stratum). Every statistic here is a function of per-cell sums and row counts,
    so a replicate only reweights clusters: it never materialises resampled rows."""

    cell: np.ndarray  # per row: cluster * n_strata + stratum
    n_clusters: int
    n_strata: int
    counts: np.ndarray  # [n_clusters, n_strata] rows per cell

    @classmethod
    def of(cls, strata, clusters, n_rows: int) -> Cells:
        stratum, n_strata = codes(strata, "strata", n_rows)
        cluster, n_clusters = codes(clusters, "clusters", n_rows)
        cell = cluster * n_strata + stratum
        counts = np.bincount(cell, minlength=n_clusters * n_strata).astype(float).reshape(n_clusters, n_strata)
        return cls(cell, n_clusters, n_strata, counts)

    def sums(self, values: np.ndarray) -> np.ndarray:
        """[n_rows, k] -> [n_clusters, n_strata, k]: the per-cell sums of each column."""
        size = self.n_clusters * self.n_strata
        sums = [np.bincount(self.cell, weights=col, minlength=size) for col in values.T]
        return np.stack(sums, axis=1).reshape(self.n_clusters, self.n_strata, -1)

    def macro_mean(self, values: np.ndarray) -> np.ndarray:
        """The macro mean over strata of each column of [n_rows, k] on the data (every stratum has rows)."""
        per_stratum = self.sums(values).sum(axis=0) / self.counts.sum(axis=0)[:, None]
        return per_stratum.mean(axis=0)  # elementwise per column: identical columns give identical means


def _bootstrap(cells: Cells, columns: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """[n_boot, k]: the macro mean of each column of [n_rows, k] in every replicate; replicates go in chunks of
    about ``CHUNK_CELLS`` floats so that memory stays bounded for many clusters or systems."""
    sums = cells.sums(columns)
    rng = np.random.default_rng(seed)
    boot = np.empty((n_boot, columns.shape[1]))
    chunk = max(1, CHUNK_CELLS // max(cells.n_clusters, cells.n_strata * columns.shape[1]))
    for start in range(0, n_boot, chunk):
        n = min(chunk, n_boot - start)
        boot[start : start + n] = macro_means(cluster_weights(rng, n, cells.n_clusters), sums, cells.counts)
    return boot


def cluster_weights(rng: np.random.Generator, n: int, n_clusters: int) -> np.ndarray:
    """[n, n_clusters]: how often each cluster is drawn when each of ``n`` replicates draws ``n_clusters`` clusters
    with replacement, once for every stratum and system (the paired design)."""
    draws = rng.integers(0, n_clusters, size=(n, n_clusters))
    offsets = (np.arange(n) * n_clusters)[:, None]
    weights = np.bincount((draws + offsets).ravel(), minlength=n * n_clusters).reshape(n, n_clusters)
    return weights.astype(float)


def macro_means(weights: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Macro means over strata for each row of ``weights``.

    ``weights`` is [n_rep, n_clusters] (how often each cluster was drawn); ``sums`` is [n_clusters, n_strata,
    n_columns] (per-cluster sums of each column's rows in each stratum) and ``counts`` [n_clusters, n_strata] (the
    number of those rows). Returns [n_rep, n_columns]: the mean over strata with positive weight of the
    weight-averaged rows of each stratum.
    """
    n_clusters, n_strata, n_cols = sums.shape
    num = (weights @ sums.reshape(n_clusters, n_strata * n_cols)).reshape(-1, n_strata, n_cols)
    den = weights @ counts  # [n_rep, n_strata]
    present = den > 0
    means = num / np.where(present, den, 1.0)[:, :, None]
    means[~present] = 0.0
    return means.sum(axis=1) / present.sum(axis=1)[:, None]


def _compare(level: np.ndarray, d_boot: np.ndarray, delta: float, q: list[float], is_reference: bool) -> dict:
    """Percentile CIs of a system's level and of its paired difference to the reference, and the two-sided
    bootstrap p of that difference (the reference against itself: 0 and p = 1)."""
    ci_low, ci_high = np.quantile(level, q)
    if is_reference:
        lo = hi = 0.0
        p = 1.0
    else:
        lo, hi = np.quantile(d_boot, q)
        # tolerance: float noise must not turn "as extreme as observed" into "less extreme"
        extreme = np.abs(d_boot - delta) >= abs(delta) - 1e-12
        p = (1 + int(extreme.sum())) / (len(d_boot) + 1)
    floats = {"ci_low": ci_low, "ci_high": ci_high, "delta": delta, "lo": lo, "hi": hi, "p": p}
    return {key: float(value) for key, value in floats.items()}


def _seed_range(system: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    if len(system) == len(reference) or len(system) == 1 or len(reference) == 1:
        diffs = system - reference  # paired by seed index, or a single seed broadcast against every seed
        return float(diffs.min()), float(diffs.max())
    return float("nan"), float("nan")


def macro_mean_se(values, strata, clusters, n_boot: int = 1000, seed: int = 0) -> float:
    """The standard error of one model's macro mean (over strata) under a new draw of clusters (question groups):
    how far a dev score could move by chance, to be read beside a selection rule's margin."""
    mat = check_scores({"values": values})["values"]
    cells = Cells.of(strata, clusters, mat.shape[1])
    check_options({"values": mat}, "values", n_boot, 0.95)
    return float(np.std(_bootstrap(cells, mat[:1].T, n_boot, seed)[:, 0], ddof=1))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the order of the input: monotone in the raw p, capped at 1."""
    p = np.asarray(p_values, dtype=float).reshape(-1)
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p_values: expected values in [0, 1], got {p_values!r}")
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out
