"""Re-scoring an evaluation's TREC files with pytrec_eval: the independent cross-check of :mod:`evaluation.lareqa`.

``evaluate_lareqa`` computes AP, R@k and rank distance from its own ranks (:mod:`retrieval.search`); this module
recomputes them from what it *wrote* — the run and qrels files, read back with :mod:`retrieval.trec` and scored
by pytrec_eval (trec_eval's code) — and compares them per query with ``per_query.parquet`` and per setting with
``metrics.json``. Agreement shows that the ranking, the tie rule and the files are right, and that the files (cut
at ``run_depth`` but extended to the deepest relevant candidate) reproduce the full-pool numbers. It shares no
ranking code with the evaluation: that independence is its worth, hence a module of its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytrec_eval

from hybridir_utils.errors import EvaluationError
from hybridir_utils.retrieval import trec
from hybridir_utils.utils import atomic


def independent_rescore(out_dir: str | Path, tolerance: float = 1e-4, check: bool = True) -> dict:
    """Recompute AP, R@1, R@10 (pytrec_eval) and rank distance from the TREC files of an evaluation.

    Compares per query with ``per_query.parquet`` and the macro means with ``metrics.json``; returns
    {setting: {n_queries, max_abs_diff per metric, macro values}} and ``agrees``. With ``check`` an
    :class:`EvaluationError` is raised when any difference exceeds ``tolerance``.
    """
    out_dir = Path(out_dir)
    metrics = atomic.read_json(out_dir / "metrics.json")
    files = metrics.get("files", {})
    if "runs" not in files:
        raise EvaluationError(f"{out_dir}: this evaluation wrote no run files (write_runs=False)")
    per_query = pd.read_parquet(out_dir / files["per_query"])
    report: dict = {"agrees": True}
    for setting, run_file in files["runs"].items():
        qrels = trec.read_trec_qrels(out_dir / files["qrels"][setting])
        ours = per_query[per_query.setting == setting]
        key = ours.qid if setting == "multi" else ours.qid + "@" + ours.pool_lang
        ours = ours.assign(key=key.to_numpy()).set_index("key")
        rescored, distances = {}, []
        # Block by block (whole queries): a full run as nested dicts would need several GB.
        for block in trec.iter_trec_run(out_dir / run_file):
            run_dict: dict[str, dict[str, float]] = {}
            for qid, docid, score in zip(block.qid, block.docid, block.score, strict=True):
                run_dict.setdefault(qid, {})[docid] = score
            sub_qrels = {q: qrels[q] for q in run_dict if q in qrels}
            evaluator = pytrec_eval.RelevanceEvaluator(sub_qrels, {"map", "recall.1,10"})
            rescored.update(evaluator.evaluate(run_dict))
            if setting == "multi":
                distances.append(_rank_distance_from_run(block, sub_qrels))
        table = pd.DataFrame.from_dict(rescored, orient="index")
        missing = sorted(set(ours.index) - set(table.index))
        if missing:
            raise EvaluationError(f"{out_dir / run_file}: no ranking for {len(missing)} queries, e.g. {missing[:3]}")
        table = table.loc[ours.index]
        diffs = {
            "ap": float(np.abs(table["map"].to_numpy() - ours.ap.to_numpy()).max()),
            "r1": float(np.abs(table["recall_1"].to_numpy() - ours.r1.to_numpy()).max()),
            "r10": float(np.abs(table["recall_10"].to_numpy() - ours.r10.to_numpy()).max()),
        }
        pairs = pd.DataFrame({"x": ours.query_lang, "y": ours.pool_lang, "ap": table["map"].to_numpy()})
        macro_map = float(pairs.groupby(["x", "y"]).ap.mean().mean())
        diffs["macro_map"] = abs(macro_map - metrics[f"{setting}_map"])
        entry = {"n_queries": len(table), "max_abs_diff": diffs, "map": macro_map}
        if setting == "multi":
            dist = pd.concat(distances).reindex(ours.index)
            rd_diff = np.nanmax(np.abs(dist.to_numpy() - ours.rank_distance.to_numpy()), initial=0.0)
            diffs["rank_distance"] = float(rd_diff)
        report[setting] = entry
        if max(diffs.values()) > tolerance:
            report["agrees"] = False
    if check and not report["agrees"]:
        raise EvaluationError(f"{out_dir}: re-scored TREC files disagree with the evaluation: {report}")
    return report


def _rank_distance_from_run(run: pd.DataFrame, qrels: dict[str, dict[str, int]]) -> pd.Series:
    """Rank distance per query, re-sorting each run by trec_eval's order (score desc, docid desc)."""
    ordered = trec.sort_run(run)
    ordered = ordered.assign(pos=ordered.groupby("qid").cumcount() + 1)
    pairs = [(q, d) for q, docs in qrels.items() for d, r in docs.items() if r > 0]
    rel = pd.DataFrame(pairs, columns=["qid", "docid"])
    hits = ordered.merge(rel, on=["qid", "docid"])
    spread = hits.groupby("qid").pos.agg(["min", "max", "size"])
    return (spread["max"] - spread["min"]).where(spread["size"] >= 2).astype(float)
