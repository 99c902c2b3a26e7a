"""MIRACL (Zhang et al. 2023) retrieval: nDCG@10 and Recall@100 of a dense encoder and of a BM25 baseline.

Data (hub or local files, one reader) comes from :mod:`data.miracl_loader`. Passages are encoded as
``title + " " + text`` with the "passage" prompt, queries with the "query" prompt. Dense search is FAISS exact inner
product (``index="flat"``) or HNSW (``index="hnsw"``, whose Recall@k against exact search is measured on up to
``ann_check_queries`` queries and reported). BM25 is ``bm25s`` with Pyserini's MIRACL parameters (k1 0.9, b 0.4)
over lower-cased word tokens; Chinese, Japanese and Thai (no spaces) are tokenised into overlapping character
bigrams. Metrics are computed by pytrec_eval (trec_eval's ``ndcg_cut.10`` and ``recall.100``) over the queries that
have judgements. A sampled corpus (``sample_size``) gives numbers NOT comparable with full-corpus MIRACL results,
and the output says so.

``metrics.json`` (in ``out_dir``): model, fingerprint, split, languages, index; ``<retriever>_ndcg@10`` and
``<retriever>_recall@100`` macro over languages (retriever "dense", or "bm25"); ``comparable_to_full_corpus``;
``per_language``: one row per (lang, retriever) with ndcg@10, recall@100, status ("ok" | "error": the language's
input could not be loaded; metrics NaN), error (the message), n_queries, n_judged_queries, corpus ("full" |
"sample"), corpus_size, comparable_to_full_corpus; ``failed`` {lang: message}; ``language_info`` {lang: {status,
source, corpus (sample details), ann ({index, recall@k_vs_exact, queries}, HNSW only)}}; ``files`` (per-query
parquet, TREC runs and qrels per language); ``timings``. Macro scores average the languages scored.
``per_query.parquet``: lang, qid, retriever, ndcg@10, recall@100. The returned dict also holds that table under
``per_query``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bm25s
import numpy as np
import pandas as pd
import pytrec_eval

from hybridir_utils.data.miracl_loader import HUB, MiraclData, MiraclWarning, load_miracl
from hybridir_utils.errors import MiraclError
from hybridir_utils.retrieval import trec
from hybridir_utils.retrieval.embeddings import encode_queries_and_passages, model_fingerprint, model_name
from hybridir_utils.retrieval.search import ann_recall, faiss_search
from hybridir_utils.utils import atomic
from hybridir_utils.utils.timing import stamped, timed

BM25_PARAMS = {"k1": 0.9, "b": 0.4}  # Pyserini's MIRACL BM25 baseline
_NO_SPACE_LANGS = {"zh", "ja", "th"}
_CJK_THAI = r"\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"


# ------------------------------------------------------------------------------------------------ retrieval


def tokenize(text: str, lang: str) -> list[str]:
    """Lower-cased word tokens; runs of CJK/Thai characters become overlapping character bigrams."""
    tokens = []
    for word in re.findall(rf"[{_CJK_THAI}]+|\w+", text.lower()):
        if lang in _NO_SPACE_LANGS and re.fullmatch(rf"[{_CJK_THAI}]+", word):
            tokens += [word] if len(word) == 1 else [word[i : i + 2] for i in range(len(word) - 1)]
        else:
            tokens.append(word)
    return tokens


def bm25_run(data: MiraclData, k: int = 100) -> dict[str, dict[str, float]]:
    """BM25 (bm25s, k1 0.9, b 0.4) top-k per query: {qid: {docid: score}} (documents scoring 0 are dropped)."""
    corpus_tokens = [tokenize(p, data.lang) or ["<empty>"] for p in data.passages()]
    retriever = bm25s.BM25(**BM25_PARAMS)
    retriever.index(corpus_tokens, show_progress=False)
    query_tokens = [tokenize(q, data.lang) or ["<empty>"] for q in data.topics["query"]]
    ids, scores = retriever.retrieve(query_tokens, k=min(k, len(corpus_tokens)), show_progress=False)
    docids = data.corpus.docid.to_numpy()
    return {
        qid: {docids[d]: float(s) for d, s in zip(row_ids, row_scores, strict=True) if s > 0}
        for qid, row_ids, row_scores in zip(data.topics.qid, ids, scores, strict=True)
    }


def dense_run(
    q_emb: np.ndarray, p_emb: np.ndarray, data: MiraclData, k: int = 100, index: str = "flat"
) -> dict[str, dict[str, float]]:
    """FAISS top-k per query: {qid: {docid: score}}."""
    scores, ids = faiss_search(q_emb, p_emb, k, index=index)
    docids = data.corpus.docid.to_numpy()
    return {
        qid: {docids[d]: float(s) for d, s in zip(row_ids, row_scores, strict=True) if d >= 0}
        for qid, row_ids, row_scores in zip(data.topics.qid, ids, scores, strict=True)
    }


def score_run(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Per-query nDCG@10 and Recall@100 (pytrec_eval) for every judged query (a query missing from run: 0)."""
    judged = {q: dict(r) for q, r in qrels.items() if r}
    evaluator = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.10", "recall.100"})
    full_run = {q: dict(run.get(q, {})) or {"__none__": 0.0} for q in judged}
    result = evaluator.evaluate(full_run)
    return pd.DataFrame(
        {
            "qid": list(result),
            "ndcg@10": [v["ndcg_cut_10"] for v in result.values()],
            "recall@100": [v["recall_100"] for v in result.values()],
        }
    )


# ------------------------------------------------------------------------------------------------ evaluation

_METRIC_NAMES = ("ndcg@10", "recall@100")


def evaluate_miracl(
    encoder,
    languages: Sequence[str],
    out_dir: str | Path | None = None,
    *,
    source: str | Path = HUB,
    split: str = "dev",
    sample_size: int | None = None,
    seed: int = 0,
    k: int = 100,
    index: str = "flat",
    ann_check_queries: int = 200,
    bm25: bool = True,
    max_queries: int | None = None,
    name: str | None = None,
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    show_progress_bar: bool = True,
) -> dict:
    """Evaluate ``encoder`` (and BM25) on MIRACL ``languages``; see the module docstring for sources and outputs.

    ``source`` is "hub" (the hub's files) or a local root folder (official layout). ``max_queries`` keeps the first
    N topics (file order). A language whose input cannot be loaded is skipped with a :class:`MiraclWarning` and
    kept as rows with ``status`` "error" and the message (a long multi-language run is not lost to one bad file);
    macro scores cover the languages scored. Returns the metrics dict (also written to ``out_dir/metrics.json``).
    """
    languages = [languages] if isinstance(languages, str) else list(languages)
    _check_evaluation(languages, k, max_queries)
    run = _LanguageRun(encoder, name or model_name(encoder), model_fingerprint(encoder), out_dir, k, index, bm25)
    run.encode_options = {"batch_size": batch_size, "cache_dir": cache_dir, "use_cache": use_cache,
                          "show_progress_bar": show_progress_bar}  # fmt: skip
    run.ann_check_queries = ann_check_queries
    load = {"split": split, "sample_size": sample_size, "seed": seed}
    for lang in languages:
        try:
            with timed(run.timings, "load"):
                data = load_miracl(lang, source, max_queries=max_queries, **load)
        except (MiraclError, OSError) as exc:
            run.fail(lang, exc)
            continue
        run.score(data)
    if not run.per_query:
        raise MiraclError(f"MIRACL: every language failed: {'; '.join(f'{k}: {v}' for k, v in run.failed.items())}")
    return run.finish(languages, split, index)


def _check_evaluation(languages: Sequence[str], k: int, max_queries: int | None) -> None:
    if not languages:
        raise MiraclError("evaluate_miracl: no languages given")
    if k < 100:
        raise MiraclError(f"k={k}: Recall@100 needs at least 100 results per query")
    if max_queries is not None and max_queries < 1:
        raise MiraclError(f"max_queries must be >= 1, got {max_queries}")


@dataclass
class _LanguageRun:
    """One :func:`evaluate_miracl` call's state, filled language by language: rows, per-query tables, files, timings."""

    encoder: object
    label: str
    fingerprint: str
    out_dir: str | Path | None
    k: int
    index: str
    bm25: bool
    encode_options: dict = field(default_factory=dict)
    ann_check_queries: int = 200
    rows: list = field(default_factory=list)
    per_lang: dict = field(default_factory=dict)
    per_query: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    files: dict = field(default_factory=lambda: {"runs": {}, "qrels": {}})
    timings: dict = field(default_factory=lambda: dict.fromkeys(("load", "encode", "search", "bm25", "metric"), 0.0))

    @property
    def retrievers(self) -> list[str]:
        return ["dense", "bm25"] if self.bm25 else ["dense"]

    def fail(self, lang: str, exc: Exception) -> None:
        """Keep a language that could not be loaded as rows with status "error" and its message; warn."""
        message = str(exc) if isinstance(exc, MiraclError) else f"{type(exc).__name__}: {exc}"
        warnings.warn(f"MIRACL {lang}: skipped ({message})", MiraclWarning, stacklevel=3)
        self.failed[lang] = message
        self.per_lang[lang] = {"status": "error", "error": message}
        nan = dict.fromkeys(_METRIC_NAMES, float("nan"))
        self.rows += [
            {"lang": lang, "retriever": r, **nan, "status": "error", "error": message} for r in self.retrievers
        ]

    def score(self, data: MiraclData) -> None:
        """Encode, search (dense, BM25), score and write the runs of one loaded language."""
        with timed(self.timings, "encode"):
            q_emb, p_emb = encode_queries_and_passages(
                self.encoder, data.topics["query"], data.passages(), self.fingerprint, **self.encode_options
            )
        with timed(self.timings, "search"):
            runs = {"dense": dense_run(q_emb, p_emb, data, self.k, index=self.index)}
            entry: dict = {"status": "ok", "source": data.source, "corpus": data.corpus_info}
            if self.index == "hnsw":
                n_check = min(self.ann_check_queries, len(q_emb))
                _, exact = faiss_search(q_emb[:n_check], p_emb, self.k, index="flat")
                _, approx = faiss_search(q_emb[:n_check], p_emb, self.k, index="hnsw")
                recall = ann_recall(exact, approx)
                entry["ann"] = {"index": "hnsw", f"recall@{self.k}_vs_exact": recall, "queries": n_check}
        if self.bm25:
            with timed(self.timings, "bm25"):
                runs["bm25"] = bm25_run(data, self.k)
        with timed(self.timings, "metric"):
            for system, run in runs.items():
                self._record(data, system, run)
            if self.out_dir is not None:
                self.files["qrels"][data.lang] = f"runs/{data.lang}.qrels"
                trec.write_qrels(Path(self.out_dir) / self.files["qrels"][data.lang], data.qrels)
        self.per_lang[data.lang] = entry

    def _record(self, data: MiraclData, system: str, run: Mapping[str, Mapping[str, float]]) -> None:
        scores = score_run(data.qrels, run).assign(lang=data.lang, retriever=system)
        self.per_query.append(scores)
        info = data.corpus_info
        self.rows.append(
            {"lang": data.lang, "retriever": system, **{m: float(scores[m].mean()) for m in _METRIC_NAMES},
             "status": "ok", "error": "", "n_queries": len(data.topics), "n_judged_queries": len(data.qrels),
             "corpus": info["kind"], "corpus_size": info["size"],
             "comparable_to_full_corpus": info["comparable_to_full_corpus"]}
        )  # fmt: skip
        if self.out_dir is not None:
            rel = f"runs/{data.lang}.{system}.trec"
            trec.write_run(Path(self.out_dir) / rel, run, self.label if system == "dense" else "bm25")
            self.files["runs"].setdefault(data.lang, {})[system] = rel

    def finish(self, languages: list[str], split: str, index: str) -> dict:
        """The metrics dict (macro over the languages scored), written to ``out_dir`` with the per-query table."""
        ok = [r for r in self.rows if r["status"] == "ok"]
        scored = [e for e in self.per_lang.values() if e["status"] == "ok"]
        metrics = {
            "model": self.label,
            "fingerprint": self.fingerprint,
            "dataset": "miracl",
            "split": split,
            "languages": languages,
            "index": index,
            **{
                f"{s}_{m}": float(np.mean([r[m] for r in ok if r["retriever"] == s]))
                for s in self.retrievers
                for m in _METRIC_NAMES
            },
            "comparable_to_full_corpus": all(e["corpus"].get("comparable_to_full_corpus", False) for e in scored),
            "per_language": self.rows,
            "language_info": self.per_lang,
            "failed": self.failed,
            **stamped(self.timings),
        }
        table = pd.concat(self.per_query, ignore_index=True)[["lang", "qid", "retriever", *_METRIC_NAMES]]
        if self.out_dir is not None:
            out_dir = Path(self.out_dir)
            atomic.write_parquet(out_dir / "per_query.parquet", table)
            metrics["files"] = {"per_query": "per_query.parquet", **self.files}
            atomic.write_json(out_dir / "metrics.json", metrics)
        return {**metrics, "per_query": table}
