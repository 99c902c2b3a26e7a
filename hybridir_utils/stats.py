"""Significance over queries: paired bootstrap, paired randomisation test, bootstrap CIs, comparison tables.

Every function takes per-query scores (e.g. AP) aligned on the same queries. With ``strata`` (e.g. the query
language, or the (query, pool) language pair) the statistic is the macro mean over strata — the way the project
reports mAP — and resampling happens within each stratum; without it, the plain mean over queries.
Vectorised numpy, seeded: the same inputs and seed give the same numbers.

p-values are two-sided and add one to numerator and denominator (never exactly 0):
- bootstrap: share of resampled mean differences at least as far from the observed one as the observed one is
  from 0 (the bootstrap distribution shifted to the null);
- randomisation: share of random sign flips of the per-query differences whose mean is at least as extreme.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

_CHUNK_CELLS = 4_000_000  # bootstrap draws materialised at once (chunk x queries), to bound memory


def _as_array(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-d array of per-query scores, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def _strata_index(strata, n: int) -> list[np.ndarray]:
    if strata is None:
        return [np.arange(n)]
    labels = np.asarray(strata)
    if labels.shape != (n,):
        raise ValueError(f"strata: expected {n} labels (one per query), got shape {labels.shape}")
    _, codes = np.unique(labels, return_inverse=True)
    return [np.flatnonzero(codes == k) for k in range(codes.max() + 1)]


def _macro(x: np.ndarray, groups: list[np.ndarray]) -> float:
    return float(np.mean([x[g].mean() for g in groups]))


def _bootstrap_stats(x: np.ndarray, groups: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` replicates of the macro mean, each resampling queries with replacement within their stratum."""
    total = np.zeros(n_boot)
    for g in groups:
        values = x[g]
        step = max(1, _CHUNK_CELLS // len(g))
        for lo in range(0, n_boot, step):
            hi = min(n_boot, lo + step)
            total[lo:hi] += values[rng.integers(0, len(g), size=(hi - lo, len(g)))].mean(axis=1)
    return total / len(groups)


def _check_pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_array(a, "a"), _as_array(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"paired test: a has {a.size} queries but b has {b.size}; align them on the same queries")
    return a, b


def _check_n(n: int, name: str) -> None:
    if int(n) < 1:
        raise ValueError(f"{name} must be >= 1, got {n}")


def bootstrap_ci(a, n_boot: int = 10_000, seed: int = 0, ci: float = 0.95, strata=None) -> dict:
    """Mean of ``a`` (macro over strata) with a percentile bootstrap confidence interval."""
    _check_n(n_boot, "n_boot")
    a = _as_array(a, "a")
    groups = _strata_index(strata, a.size)
    boots = _bootstrap_stats(a, groups, n_boot, np.random.default_rng(seed))
    lo, hi = np.quantile(boots, [(1 - ci) / 2, (1 + ci) / 2])
    return {"mean": _macro(a, groups), "ci_low": float(lo), "ci_high": float(hi), "n": int(a.size)}


def paired_bootstrap(a, b, n_boot: int = 10_000, seed: int = 0, ci: float = 0.95, strata=None) -> dict:
    """Paired bootstrap of mean(a) - mean(b) over queries: {diff, ci_low, ci_high, p_value, n}."""
    _check_n(n_boot, "n_boot")
    a, b = _check_pair(a, b)
    d = a - b
    groups = _strata_index(strata, d.size)
    diff = _macro(d, groups)
    boots = _bootstrap_stats(d, groups, n_boot, np.random.default_rng(seed))
    lo, hi = np.quantile(boots, [(1 - ci) / 2, (1 + ci) / 2])
    # Tolerance so that float noise in an all-zero difference still counts as "as extreme" (p = 1).
    extreme = np.abs(boots - diff) >= abs(diff) - 1e-12
    p = (1 + int(extreme.sum())) / (n_boot + 1)
    return {"diff": diff, "ci_low": float(lo), "ci_high": float(hi), "p_value": float(p), "n": int(d.size)}


def randomisation_test(a, b, n_perm: int = 10_000, seed: int = 0, strata=None) -> dict:
    """Paired randomisation (sign-flip) test of mean(a) - mean(b): {diff, p_value, n}."""
    _check_n(n_perm, "n_perm")
    a, b = _check_pair(a, b)
    d = a - b
    groups = _strata_index(strata, d.size)
    diff = _macro(d, groups)
    rng = np.random.default_rng(seed)
    # Sign flips are drawn per query; the flipped statistic is the (macro) mean of the flipped differences.
    weights = np.zeros(d.size)
    for g in groups:
        weights[g] = 1.0 / (len(g) * len(groups))
    wd = weights * d
    count, step = 0, max(1, _CHUNK_CELLS // d.size)
    for lo in range(0, n_perm, step):
        hi = min(n_perm, lo + step)
        signs = rng.integers(0, 2, size=(hi - lo, d.size), dtype=np.int8) * 2 - 1
        stats = signs @ wd
        count += int((np.abs(stats) >= abs(diff) - 1e-12).sum())
    return {"diff": diff, "p_value": float((1 + count) / (n_perm + 1)), "n": int(d.size)}


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (same order as the input)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def comparison_table(
    scores: pd.DataFrame | Mapping[str, pd.Series],
    reference: str,
    n_boot: int = 10_000,
    seed: int = 0,
    ci: float = 0.95,
    strata: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per system: mean with CI, and difference to ``reference`` with CI and p-values.

    ``scores`` is a wide table (index: query key, one column per system) or a mapping system -> Series indexed by
    query key; every system must cover the same queries. ``strata`` (indexed like the scores) switches to the
    macro mean over strata. Columns: system, n, mean, ci_low, ci_high, diff, diff_ci_low, diff_ci_high,
    p_bootstrap, p_randomisation, p_holm (Holm over the non-reference systems, bootstrap p).
    """
    if isinstance(scores, Mapping):
        keys = {name: set(s.index) for name, s in scores.items()}
        first = next(iter(keys.values()), set())
        for name, k in keys.items():
            if k != first:
                raise ValueError(
                    f"comparison_table: system {name!r} covers {len(k)} queries, {len(k ^ first)} differ from the "
                    "others; evaluate every system on the same queries"
                )
        scores = pd.DataFrame(dict(scores))
    if reference not in scores.columns:
        raise KeyError(f"comparison_table: reference system {reference!r} not among {list(scores.columns)}")
    if scores.isna().any().any():
        bad = scores.columns[scores.isna().any()].tolist()
        raise ValueError(f"comparison_table: system(s) {bad} lack scores for some queries")
    labels = None if strata is None else strata.reindex(scores.index).to_numpy()
    if labels is not None and pd.isna(labels).any():
        raise ValueError("comparison_table: strata do not cover every query of the scores")
    ref = scores[reference].to_numpy(float)
    rows = []
    for system in scores.columns:
        values = scores[system].to_numpy(float)
        row = {"system": system, **bootstrap_ci(values, n_boot, seed, ci, labels)}
        if system == reference:
            row.update(diff=0.0, diff_ci_low=0.0, diff_ci_high=0.0, p_bootstrap=1.0, p_randomisation=1.0)
        else:
            boot = paired_bootstrap(values, ref, n_boot, seed, ci, labels)
            perm = randomisation_test(values, ref, n_boot, seed, labels)
            row.update(
                diff=boot["diff"],
                diff_ci_low=boot["ci_low"],
                diff_ci_high=boot["ci_high"],
                p_bootstrap=boot["p_value"],
                p_randomisation=perm["p_value"],
            )
        rows.append(row)
    table = pd.DataFrame(rows)
    others = table.system != reference
    table["p_holm"] = 1.0
    if others.any():
        table.loc[others, "p_holm"] = holm(table.loc[others, "p_bootstrap"].to_numpy())
    columns = ["system", "n", "mean", "ci_low", "ci_high", "diff", "diff_ci_low", "diff_ci_high"]
    return table[[*columns, "p_bootstrap", "p_randomisation", "p_holm"]]


def per_query_scores(per_query: Mapping[str, pd.DataFrame | str], setting: str = "multi", metric: str = "ap"):
    """Wide table (index "<qid>@<pool>", one column per system) of ``metric`` from evaluation per-query tables.

    ``per_query`` maps system name -> the per-query DataFrame or its parquet path (see evaluation.py); only
    rows of ``setting`` ("mono" | "cross" | "multi") are kept. Also returns the stratum of each row (its
    (query language, pool) pair), to pass as ``strata`` for macro means.
    """
    columns, strata = {}, None
    for name, table in per_query.items():
        df = pd.read_parquet(table) if not isinstance(table, pd.DataFrame) else table
        missing = {"qid", "pool_lang", "query_lang", "setting", metric} - set(df.columns)
        if missing:
            raise KeyError(f"per_query_scores: table of {name!r} lacks column(s) {sorted(missing)}")
        df = df[df.setting == setting]
        key = df.qid + "@" + df.pool_lang
        columns[name] = pd.Series(df[metric].to_numpy(float), index=key)
        if strata is None:
            strata = pd.Series((df.query_lang + ">" + df.pool_lang).to_numpy(), index=key)
    if not columns:
        raise ValueError("per_query_scores: no systems given")
    wide = pd.DataFrame(columns)
    return wide, strata
