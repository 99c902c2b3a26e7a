"""Result tables for the report: published anchors beside our numbers, and comparisons with CIs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir_utils import config, io

PAPER = "Elmahdy, Lin, Ahmad (2024), Hybrid batch training, arXiv 2408.10536"


def paper_anchors(path=None) -> pd.DataFrame:
    """The paper's macro mAP (mono / cross / multi) and rank distance per model, batch type and dataset.

    Parsed from ``data/reference/anchors.md`` (copied from the paper's Tables), one row per dataset.
    """
    text = (path or config.anchors_file()).read_text(encoding="utf-8")
    row = re.compile(r"^\| (XLM-R|LaBSE) \| (\S+) \| ([\d. /]+) \| ([\d. /]+) \| ([\d. /]+) \|$", re.M)
    rows = []
    for model, batches, xq, ml, rd in row.findall(text):
        distances = [float(v) for v in rd.split("/")]
        for i, (dataset, cell) in enumerate((("xquad-r", xq), ("mlqa-r", ml))):
            mono, cross, multi = (float(v) for v in cell.split("/"))
            rows.append((f"{model} (paper)", batches, dataset, mono, cross, multi, distances[i]))
    if not rows:
        raise ValueError(f"{path or config.anchors_file()}: no paper table rows found")
    cols = ["model", "batches", "dataset", "mono_map", "cross_map", "multi_map", "rank_distance"]
    return pd.DataFrame(rows, columns=cols)


MIN_SLICE_ARTICLES = 5  # fewer articles than this: no claim about the domain slice ("too few articles")
KEEP_MARGIN = 0.01  # monolingual mAP counts as "kept" when the CI of the change stays above -KEEP_MARGIN


def _metrics(row) -> dict:
    return io.read_json(Path(row.per_query).parent / "metrics.json")


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
    from hybridir_utils.bias import map_matrix

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


def run_miracl(systems: pd.DataFrame, source, languages, out_dir: Path, keep=("hybrid/general",), backend="torch"):
    """MIRACL nDCG@10 / Recall@100 of the baselines and the ``keep`` systems (first seed); None when no source."""
    if source is None:
        return None
    from hybridir_utils.miracl import evaluate_miracl
    from hybridir_utils.models import inference_backend, load_encoder

    if str(source) != "hub" and not Path(source).is_absolute():
        source = config.root() / source  # profiles name fixture folders relative to the project root
    chosen = systems[(systems.system == systems.label) | systems.system.isin(keep)].drop_duplicates("system")
    rows = []
    for s in chosen.itertuples():
        encoder = load_encoder(s.source, backend=inference_backend(s.source, backend))
        m = evaluate_miracl(encoder, languages, source=source, out_dir=Path(out_dir) / s.label)
        rows += [{"system": s.system, **row} for row in m["per_language"]]
    table = pd.DataFrame(rows)
    # BM25 does not depend on the dense model: keep one copy of its rows, named as its own system.
    bm25 = table.retriever == "bm25"
    table.loc[bm25, "system"] = "bm25"
    return table.drop_duplicates(["system", "lang", "retriever"]).reset_index(drop=True)
