"""Language bias in a multilingual pool: rank distance, language preference, and the X x Y mAP matrix.

- rank distance (Huang et al. 2023): per query, the 1-based rank of its lowest-ranked relevant candidate minus that
  of its highest-ranked one, in the multilingual pool; averaged per query language, then macro over languages.
  Undefined (NaN, left out of the means) for a query with fewer than two relevant candidates.
- language preference: the share of each candidate language among the top-k of each query language, against its
  share of the pool; a ratio above 1 means the model favours that language.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def rank_distance(relevant_ranks: Sequence[Sequence[int]]) -> np.ndarray:
    """max rank - min rank of each query's relevant candidates (NaN when a query has fewer than two)."""
    out = np.full(len(relevant_ranks), np.nan)
    for i, ranks in enumerate(relevant_ranks):
        ranks = np.asarray(ranks)
        if ranks.size and (ranks < 1).any():
            raise ValueError(f"rank_distance: query {i} has a rank below 1 ({ranks.min()}); ranks are 1-based")
        if ranks.size >= 2:
            out[i] = float(ranks.max() - ranks.min())
    return out


def rank_distance_summary(per_query: pd.DataFrame, lang_col: str = "query_lang") -> tuple[float, dict[str, float]]:
    """(macro mean over query languages, mean per language) of the ``rank_distance`` column; NaN rows ignored."""
    missing = {lang_col, "rank_distance"} - set(per_query.columns)
    if missing:
        raise KeyError(f"rank_distance_summary: per-query table lacks column(s) {sorted(missing)}")
    by_lang = per_query.groupby(lang_col, sort=True)["rank_distance"].mean().dropna()
    return (float(by_lang.mean()) if len(by_lang) else float("nan")), {k: float(v) for k, v in by_lang.items()}


def language_preference(top: pd.DataFrame, pool_langs: Sequence[str] | pd.Series) -> pd.DataFrame:
    """Share of each candidate language in the retrieved top-k, per query language, against its pool share.

    ``top`` has one row per retrieved item with columns ``query_lang`` and ``cand_lang`` (k rows per query);
    ``pool_langs`` is the language of every pool candidate. Returns one row per (query_lang, cand_lang) with
    ``topk_share``, ``pool_share`` and ``preference`` = topk_share / pool_share (languages never retrieved: 0).
    """
    missing = {"query_lang", "cand_lang"} - set(top.columns)
    if missing:
        raise KeyError(f"language_preference: table lacks column(s) {sorted(missing)}")
    pool = pd.Series(np.asarray(pool_langs)).value_counts(normalize=True)
    if pool.empty:
        raise ValueError("language_preference: empty pool")
    unknown = set(top.cand_lang) - set(pool.index)
    if unknown:
        raise ValueError(f"language_preference: retrieved language(s) {sorted(unknown)} are not in the pool")
    counts = pd.crosstab(top.query_lang, top.cand_lang).reindex(columns=sorted(pool.index), fill_value=0)
    shares = counts.div(counts.sum(axis=1), axis=0)
    out = shares.stack().rename("topk_share").reset_index()
    out.columns = ["query_lang", "cand_lang", "topk_share"]
    out["pool_share"] = out.cand_lang.map(pool).astype(float)
    out["preference"] = out.topk_share / out.pool_share
    return out


def map_matrix(per_pair: pd.DataFrame, languages: Sequence[str] | None = None, metric: str = "map") -> pd.DataFrame:
    """Query language (rows) x pool language (columns) table of ``metric`` from the per-pair table (for heatmaps).

    Rows with pool "multi" are left out; ``languages`` fixes the order (default: sorted).
    """
    missing = {"query_lang", "pool_lang", metric} - set(per_pair.columns)
    if missing:
        raise KeyError(f"map_matrix: per-pair table lacks column(s) {sorted(missing)}")
    pairs = per_pair[per_pair.pool_lang != "multi"]
    matrix = pairs.pivot(index="query_lang", columns="pool_lang", values=metric)
    order = list(languages) if languages is not None else sorted(set(matrix.index) | set(matrix.columns))
    matrix = matrix.reindex(index=order, columns=order)
    matrix.index.name, matrix.columns.name = "query language", "pool language"
    return matrix
