"""Result tables for the report: published anchors beside our numbers, and comparisons with CIs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir_utils.evaluation.bias import map_matrix
from hybridir_utils.evaluation.lareqa import language_means
from hybridir_utils.utils import atomic, paths

PAPER = "Elmahdy, Lin, Ahmad (2024), Hybrid batch training, arXiv 2408.10536"


def paper_anchors(path=None) -> pd.DataFrame:
    """The paper's macro mAP (mono / cross / multi) and rank distance per model, batch type and dataset.

    Parsed from ``data/reference/anchors.md`` (copied from the paper's Tables), one row per dataset.
    """
    text = (path or paths.anchors_file()).read_text(encoding="utf-8")
    row = re.compile(r"^\| (XLM-R|LaBSE) \| (\S+) \| ([\d. /]+) \| ([\d. /]+) \| ([\d. /]+) \|$", re.M)
    rows = []
    for model, batches, xq, ml, rd in row.findall(text):
        distances = [float(v) for v in rd.split("/")]
        for i, (dataset, cell) in enumerate((("xquad-r", xq), ("mlqa-r", ml))):
            mono, cross, multi = (float(v) for v in cell.split("/"))
            rows.append((f"{model} (paper)", batches, dataset, mono, cross, multi, distances[i]))
    if not rows:
        raise ValueError(f"{path or paths.anchors_file()}: no paper table rows found")
    cols = ["model", "batches", "dataset", "mono_map", "cross_map", "multi_map", "rank_distance"]
    return pd.DataFrame(rows, columns=cols)


MIN_SLICE_ARTICLES = 5  # fewer articles than this: no claim about the domain slice ("too few articles")


def _metrics(row) -> dict:
    return atomic.read_json(Path(row.per_query).parent / "metrics.json")


def domain_slices(results: pd.DataFrame, setting: str = "multi") -> pd.DataFrame:
    """mAP per (system, dataset, domain), averaged over seeds; ``status`` flags slices too small for a claim.

    The unit that limits a slice is the article (questions of one article share a topic and a candidate pool), so
    a slice of fewer than ``MIN_SLICE_ARTICLES`` articles is marked "too-few-articles", whatever its query count.
    """
    frames = []
    for r in results.itertuples():
        pq = pd.read_parquet(r.per_query)
        if "domain" not in pq.columns:
            raise ValueError(f"{r.per_query}: no domain column (evaluate with domain_of=...)")
        pq = pq[pq.setting == setting]
        g = pq.groupby("domain").agg(map=("ap", "mean"), queries=("qid", "size"), groups=("group", "nunique"),
                                     articles=("article", "nunique"))  # fmt: skip
        frames.append(g.reset_index().assign(system=r.system, seed=r.seed, dataset=r.dataset))
    table = pd.concat(frames, ignore_index=True)
    out = table.groupby(["system", "dataset", "domain"], sort=False).agg(
        map=("map", "mean"), queries=("queries", "first"), groups=("groups", "first"),
        articles=("articles", "first"), seeds=("seed", "nunique"),
    )  # fmt: skip
    out["status"] = np.where(out.articles < MIN_SLICE_ARTICLES, "too-few-articles", "ok")
    return out.reset_index().assign(setting=setting)


def per_language(results: pd.DataFrame, dataset: str, base: str, seen=()) -> pd.DataFrame:
    """``results/<profile>/languages.csv``: per system (mean over its runs), query language and setting, the mAP
    (cross: the mean over pool languages of each (X, Y) pool's mAP), its difference to ``base``, and whether the
    language was ``seen`` in training. Where monolingual accuracy is lost, and whether unseen languages lose more,
    is read here, from the per-query tables, not guessed."""
    frames = []
    for r in results[results.dataset == dataset].itertuples():
        pq = pd.read_parquet(r.per_query)
        pq = pq[pq.setting.isin(("mono", "cross"))]
        pools = language_means(pq)
        frames.append(pools.rename("map").reset_index().assign(system=r.system, seed=r.seed))
    if not frames:
        raise ValueError(f"no results for dataset {dataset!r}")
    table = pd.concat(frames, ignore_index=True)
    out = table.groupby(["system", "setting", "query_lang"], sort=False).agg(
        map=("map", "mean"), runs=("seed", "nunique")
    )
    out = out.reset_index().rename(columns={"query_lang": "lang"})
    ref = out[out.system == base].set_index(["setting", "lang"])["map"]
    if ref.empty:
        raise ValueError(f"base {base!r} is not among the scored systems of {dataset!r}")
    out["delta_vs_base"] = out["map"] - ref.reindex(pd.MultiIndex.from_frame(out[["setting", "lang"]])).to_numpy()
    return out.assign(dataset=dataset, seen=out.lang.isin(list(seen)))


def truncation_table(truncation: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Share of test texts past the evaluation cut-off, per language and kind (questions, candidates)."""
    t = truncation[truncation.dataset == dataset]
    table = t.pivot_table(index="kind", columns="lang", values="share_cut", sort=True)
    return table.map(lambda v: f"{100 * v:.1f}%").reset_index()


def ci_table(comparisons: pd.DataFrame, dataset: str, reference: str, settings=("mono", "cross", "multi")):
    """One row per system: seeds, and per setting its macro mAP and "difference [95% CI]" against ``reference``.

    The table readers quote: levels and differences side by side, each difference with its interval.
    """
    c = comparisons[(comparisons.dataset == dataset) & (comparisons.reference == reference)]
    if c.empty:
        raise ValueError(f"no comparisons of {dataset!r} against {reference!r}")
    rows = {}
    for r in c[c.setting.isin(settings)].itertuples():
        row = rows.setdefault(r.system, {"system": r.system, "seeds": int(r.n_seeds)})
        row[r.setting] = round(float(r.mean), 3)
        row[f"Δ{r.setting} [95% CI]"] = f"{r.delta:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}]"
    columns = ["system", "seeds", *[k for s in settings for k in (s, f"Δ{s} [95% CI]")]]
    return pd.DataFrame(list(rows.values())).reindex(columns=columns)


def language_preference(results: pd.DataFrame) -> pd.DataFrame:
    """Own-language preference in the multilingual top-k per (system, dataset): macro over query languages."""
    rows = []
    for r in results.itertuples():
        own = _metrics(r).get("own_language_preference") or {}
        rows.append({"system": r.system, "seed": r.seed, "dataset": r.dataset,
                     "own_language_preference": float(np.mean(list(own.values()))) if own else np.nan})  # fmt: skip
    table = pd.DataFrame(rows)
    return table.groupby(["system", "dataset"], sort=False).own_language_preference.mean().reset_index()


def map_matrices(results: pd.DataFrame, dataset: str, systems: list[str]) -> dict[str, pd.DataFrame]:
    """X x Y mAP matrices (seed-averaged) of two systems and their difference (second minus first)."""
    if len(systems) != 2:
        raise ValueError(f"map_matrices compares exactly two systems, got {systems}")
    out = {}
    for system in systems:
        rows = results[(results.dataset == dataset) & (results.system == system)]
        if rows.empty:
            raise ValueError(f"no {dataset} results for system {system!r}")
        mats = [map_matrix(pd.read_parquet(p)) for p in rows.per_pair]
        out[system] = sum(mats) / len(mats)
    out["difference"] = out[systems[1]] - out[systems[0]]
    return out


MIRACL_CAVEAT = (
    "MIRACL dev is not zero-shot for e5 models: multilingual-e5 was fine-tuned on MIRACL's training split (Wang et "
    "al. 2024), so multilingual-e5-small and every model trained from it have seen MIRACL's distribution (LaBSE and "
    "XLM-R have no such exposure as far as documented; BM25 is untrained). Compare the e5-based systems with each "
    "other, not with published zero-shot numbers. Every system is scored (domain variants and their size-matched "
    "controls included, each averaged over its seeds), so the table can show whether a domain-focused model keeps "
    "general monolingual retrieval (MIRACL: Wikipedia, queries and passages in one language) against its controls. "
    "It cannot show a cross-lingual or an in-domain gain (MIRACL has neither), and it carries no confidence "
    "intervals: a difference here is descriptive, not a claim."
)


MIRACL_COLUMNS = ["system", "seed", "lang", "retriever", "ndcg@10", "recall@100", "status", "n_queries",
                  "n_judged_queries", "corpus", "corpus_size"]  # fmt: skip


def miracl_levels(table: pd.DataFrame) -> pd.DataFrame:
    """``results/<profile>/miracl.csv``: one row per (system, seed, language, retriever), like ``levels.csv``.

    Errors stay as rows with status "error" (their message is in ``04_eval/miracl.parquet``).
    """
    return table.reindex(columns=MIRACL_COLUMNS)


def miracl_summary(table: pd.DataFrame, metric: str = "ndcg@10") -> pd.DataFrame:
    """``metric`` per system and language averaged over seeds, its macro over languages, and the number of seeds.

    Languages that failed to load stay as columns of NaN (named, not silently dropped) and out of the macro.
    """
    langs = list(dict.fromkeys(table.lang))
    ok = table[table.status == "ok"]
    by_seed = ok.groupby(["system", "seed", "lang"], sort=False)[metric].mean().unstack("lang").reindex(columns=langs)
    by_seed["macro"] = by_seed.mean(axis=1)
    out = by_seed.groupby(level="system", sort=False).mean()
    out["seeds"] = by_seed.groupby(level="system", sort=False).size()
    order = [x for x in dict.fromkeys(table.system) if x != "bm25"] + ["bm25"]
    return out.reindex([x for x in order if x in out.index])


# ---------------------------------------------------------------------- the shared report (index + one file)
QUESTION = (
    "Does domain adaptation inside hybrid batch training (focusing on science or news content) improve zero-shot "
    "cross-lingual retrieval while keeping monolingual accuracy?"
)
PAPER_QUESTION = (
    "Does hybrid batching do what its paper (Elmahdy, Lin, Ahmad 2024) says: the best multilingual-pool retrieval of "
    "X-X-mono, X-Y and hybrid batches, less language bias than monolingual batches, strong zero-shot retrieval in "
    "unseen languages, and a choice of α that is not critical?"
)
