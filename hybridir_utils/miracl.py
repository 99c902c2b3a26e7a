"""MIRACL (Zhang et al. 2023) retrieval: nDCG@10 and Recall@100 of a dense encoder and of a BM25 baseline.

Data comes from the 🤗 hub or from local files in the official formats:

- hub: ``miracl/miracl`` (config = language; rows ``query_id, query, positive_passages, negative_passages`` with
  passages ``{docid, title, text}``; positives are qrels 1, negatives 0) and ``miracl/miracl-corpus``
  (``docid, title, text``, split "train"). ``hub_loader(name, config, split) -> datasets.Dataset`` does the
  loading (default: ``datasets.load_dataset``), so a test can feed saved datasets through the same conversion;
- local: topics TSV ``qid<TAB>query``, qrels TREC ``qid Q0 docid rel``, corpus JSONL ``{"docid", "title", "text"}``
  (each possibly .gz), either as explicit paths or found under a root in the official layout
  ``miracl-v1.0-<lang>/topics/topics.miracl-v1.0-<lang>-<split>.tsv``,
  ``miracl-v1.0-<lang>/qrels/qrels.miracl-v1.0-<lang>-<split>.tsv``, ``miracl-corpus-v1.0-<lang>/docs-*.jsonl[.gz]``.

Every judged docid must exist in the corpus and every qrels qid among the topics; otherwise a :class:`MiraclError`
names the file and line (or the hub row). Passages are encoded as ``title + " " + text`` (the MIRACL/E5 convention)
with the "passage" prompt, queries with the "query" prompt. Dense search is FAISS exact inner product (``index=
"flat"``) or HNSW (``index="hnsw"``, whose Recall@k against exact search is measured on up to ``ann_check_queries``
queries and reported). BM25 is ``bm25s`` with Pyserini's MIRACL parameters (k1 0.9, b 0.4) over lower-cased word
tokens; Chinese, Japanese and Thai (no spaces) are tokenised into overlapping character bigrams. Metrics are
computed by pytrec_eval (trec_eval's ``ndcg_cut.10`` and ``recall.100``) over the queries that have judgements.

``sample_size=N`` evaluates on the judged passages plus N random others (seeded): much cheaper, but the numbers are
NOT comparable with full-corpus MIRACL results (fewer distractors), and the output says so.

``metrics.json`` (in ``out_dir``): model, fingerprint, split, languages, index; ``<retriever>_ndcg@10`` and
``<retriever>_recall@100`` macro over languages (retriever "dense", or "bm25"); ``comparable_to_full_corpus``;
``per_language``: one row per (lang, retriever) with ndcg@10, recall@100, n_queries, n_judged_queries, corpus
("full" | "sample"), corpus_size, comparable_to_full_corpus; ``language_info`` {lang: {source, corpus (sample
details), ann ({index, recall@k_vs_exact, queries}, HNSW only)}}; ``files`` (per-query parquet, TREC runs and
qrels per language); ``timings``. ``per_query.parquet``: lang, qid, retriever, ndcg@10, recall@100. The returned
dict also holds that table under ``per_query``.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir_utils import io, trec
from hybridir_utils.embeddings import encode_cached, model_fingerprint, model_name
from hybridir_utils.search import ann_recall, faiss_search

HUB_TOPICS = "miracl/miracl"
HUB_CORPUS = "miracl/miracl-corpus"
BM25_PARAMS = {"k1": 0.9, "b": 0.4}  # Pyserini's MIRACL BM25 baseline
_NO_SPACE_LANGS = {"zh", "ja", "th"}
_CJK_THAI = r"\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"


class MiraclError(ValueError):
    """Malformed or inconsistent MIRACL input; the message names the file and line (or hub row)."""


@dataclass
class MiraclData:
    """Topics, qrels and (possibly sampled) corpus of one MIRACL language and split."""

    lang: str
    topics: pd.DataFrame  # qid, query
    qrels: dict[str, dict[str, int]]
    corpus: pd.DataFrame  # docid, title, text
    source: str
    corpus_info: dict = field(default_factory=dict)

    def passages(self) -> list[str]:
        """``title + " " + text`` per corpus row (the MIRACL convention; no leading space without a title)."""
        return [f"{t} {x}" if t else x for t, x in zip(self.corpus.title, self.corpus.text, strict=True)]


# ------------------------------------------------------------------------------------------------ local files


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def _lines(path: str | Path) -> Iterator[tuple[int, str]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MIRACL file {path} does not exist")
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, start=1):
                line = line.rstrip("\n\r")
                if line.strip():
                    yield lineno, line
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise MiraclError(f"{path}: cannot read ({exc})") from exc


def read_topics(path: str | Path) -> pd.DataFrame:
    """Topics TSV ``qid<TAB>query`` -> DataFrame(qid, query)."""
    rows, seen = [], set()
    for lineno, line in _lines(path):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise MiraclError(f"{path}:{lineno}: expected 'qid<TAB>query', got {line[:80]!r}")
        qid = parts[0].strip()
        if qid in seen:
            raise MiraclError(f"{path}:{lineno}: duplicate query id {qid!r}")
        seen.add(qid)
        rows.append((qid, parts[1].strip()))
    if not rows:
        raise MiraclError(f"{path}: no topics")
    return pd.DataFrame(rows, columns=["qid", "query"])


def read_qrels(path: str | Path) -> tuple[dict[str, dict[str, int]], dict[tuple[str, str], int]]:
    """TREC qrels ``qid Q0 docid rel`` -> ({qid: {docid: rel}}, {(qid, docid): line number})."""
    qrels: dict[str, dict[str, int]] = {}
    where: dict[tuple[str, str], int] = {}
    for lineno, line in _lines(path):
        parts = line.split()
        if len(parts) != 4:
            raise MiraclError(f"{path}:{lineno}: expected 'qid Q0 docid relevance' (4 fields), got {line[:80]!r}")
        qid, _, docid, rel = parts
        try:
            grade = int(rel)
        except ValueError as exc:
            raise MiraclError(f"{path}:{lineno}: relevance {rel!r} is not an integer") from exc
        if docid in qrels.get(qid, {}):
            raise MiraclError(f"{path}:{lineno}: duplicate judgement for ({qid}, {docid})")
        qrels.setdefault(qid, {})[docid] = grade
        where[(qid, docid)] = lineno
    if not qrels:
        raise MiraclError(f"{path}: no judgements")
    return qrels, where


def iter_corpus(paths: Sequence[str | Path]) -> Iterator[tuple[str, str, str]]:
    """(docid, title, text) from JSONL corpus files (each possibly .gz); errors name file and line."""
    for path in paths:
        for lineno, line in _lines(path):
            try:
                doc = json.loads(line)
                docid, title, text = str(doc["docid"]), doc.get("title") or "", doc["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise MiraclError(f"{path}:{lineno}: expected a JSON object with docid, title, text ({exc})") from exc
            if not isinstance(text, str) or not isinstance(title, str):
                raise MiraclError(f"{path}:{lineno}: title and text must be strings")
            yield docid, title, text


def find_local_files(root: str | Path, lang: str, split: str = "dev") -> tuple[Path, Path, list[Path]]:
    """(topics, qrels, corpus files) of ``lang`` under ``root`` in the official MIRACL layout."""
    root = Path(root)
    base = root / f"miracl-v1.0-{lang}"
    topics = _one(base / "topics", f"topics.miracl-v1.0-{lang}-{split}.tsv", root)
    qrels = _one(base / "qrels", f"qrels.miracl-v1.0-{lang}-{split}.tsv", root)
    corpus_dir = root / f"miracl-corpus-v1.0-{lang}"
    corpus = sorted(p for p in corpus_dir.glob("*.jsonl*") if p.suffix in (".jsonl", ".gz"))
    if not corpus:
        raise FileNotFoundError(f"no corpus files (*.jsonl, *.jsonl.gz) in {corpus_dir}")
    return topics, qrels, corpus


def _one(folder: Path, name: str, root: Path) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{folder / name} not found (MIRACL root {root})")


def load_miracl_local(
    lang: str,
    root: str | Path | None = None,
    split: str = "dev",
    *,
    topics: str | Path | None = None,
    qrels: str | Path | None = None,
    corpus: str | Path | Sequence[str | Path] | None = None,
    sample_size: int | None = None,
    seed: int = 0,
) -> MiraclData:
    """Load one language from local files: explicit paths, or found under ``root`` (official layout)."""
    _check_sampling(sample_size, seed)
    if topics is None or qrels is None or corpus is None:
        if root is None:
            raise MiraclError("load_miracl_local: give root= or all of topics=, qrels=, corpus=")
        found = find_local_files(root, lang, split)
        topics, qrels = topics or found[0], qrels or found[1]
        corpus = corpus if corpus is not None else found[2]
    corpus_paths = [corpus] if isinstance(corpus, str | Path) else list(corpus)
    topic_df = read_topics(topics)
    judged, where = read_qrels(qrels)
    known = set(topic_df.qid)
    for (qid, _), lineno in where.items():
        if qid not in known:
            raise MiraclError(f"{qrels}:{lineno}: query id {qid!r} is not in the topics file {topics}")
    docs, info = _collect_corpus(iter_corpus(corpus_paths), judged, sample_size, seed)
    if gap := _first_missing(judged, where, docs):
        (qid, docid), lineno, n = gap
        raise MiraclError(
            f"{qrels}:{lineno}: docid {docid!r} (query {qid}) is not in the corpus "
            f"({', '.join(map(str, corpus_paths))}); {n} judged docid(s) missing in all"
        )
    return MiraclData(lang, topic_df, judged, docs, f"local:{topics}", info)


def _first_missing(qrels: Mapping[str, Mapping[str, int]], where: Mapping[tuple[str, str], int], docs: pd.DataFrame):
    """The first-listed judged (qid, docid) absent from ``docs``, where it was listed, and how many are absent."""
    missing = {d for rel in qrels.values() for d in rel} - set(docs.docid)
    if not missing:
        return None
    key, pos = min(((k, v) for k, v in where.items() if k[1] in missing), key=lambda kv: kv[1])
    return key, pos, len(missing)


def _collect_corpus(
    records: Iterable[tuple[str, str, str]], qrels: Mapping[str, Mapping[str, int]], sample_size: int | None, seed: int
) -> tuple[pd.DataFrame, dict]:
    """The whole corpus, or the judged passages plus ``sample_size`` others by seeded reservoir sampling."""
    judged = {d for rel in qrels.values() for d in rel}
    keep, reservoir, seen_ids, n_total, n_other = [], [], set(), 0, 0
    rng = np.random.default_rng(seed)
    for docid, title, text in records:
        if docid in seen_ids:
            raise MiraclError(f"corpus: duplicate docid {docid!r}")
        seen_ids.add(docid)
        n_total += 1
        if sample_size is None or docid in judged:
            keep.append((docid, title, text))
            continue
        n_other += 1  # reservoir sampling (Algorithm R): a uniform sample of unjudged passages, one pass
        if len(reservoir) < sample_size:
            reservoir.append((docid, title, text))
        else:
            j = int(rng.integers(0, n_other))
            if j < sample_size:
                reservoir[j] = (docid, title, text)
    rows = keep + sorted(reservoir)
    docs = pd.DataFrame(rows, columns=["docid", "title", "text"])
    return docs, _corpus_info(sample_size, seed, n_total, len(keep), len(reservoir))


def _check_sampling(sample_size, seed) -> None:
    """``sample_size=-1`` used to mean 0 random passages without a word, ``seed='x'`` a raw ValueError."""
    if sample_size is not None and (
        isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 0
    ):
        raise MiraclError(f"sample_size must be an integer >= 0 or None, got {sample_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise MiraclError(f"seed must be an integer >= 0, got {seed!r}")


def _corpus_info(sample_size, seed, n_total, n_judged, n_random) -> dict:
    if sample_size is None:
        return {"kind": "full", "size": n_total, "comparable_to_full_corpus": True}
    return {
        "kind": "sample",
        "size": n_judged + n_random,
        "full_size": n_total,
        "judged": n_judged,
        "random": n_random,
        "seed": seed,
        "comparable_to_full_corpus": False,
        "note": "judged passages + random others: fewer distractors than the full corpus, so scores are inflated "
        "and NOT comparable with published full-corpus MIRACL numbers",
    }


# ------------------------------------------------------------------------------------------------ hub


def _default_hub_loader(name: str, config: str, split: str):
    from datasets import load_dataset

    return load_dataset(name, config, split=split)


def load_miracl_hub(
    lang: str,
    split: str = "dev",
    *,
    hub_loader: Callable[[str, str, str], object] | None = None,
    topics_name: str = HUB_TOPICS,
    corpus_name: str = HUB_CORPUS,
    corpus_split: str = "train",
    sample_size: int | None = None,
    seed: int = 0,
) -> MiraclData:
    """Load one language from 🤗 datasets (hub names by default; ``hub_loader`` may read saved copies)."""
    loader = hub_loader or _default_hub_loader
    where_topics = f"{topics_name}[{lang}] split {split}"
    try:
        topics_ds = loader(topics_name, lang, split)
        corpus_ds = loader(corpus_name, lang, corpus_split)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as exc:
        raise MiraclError(f"cannot load MIRACL {lang} from the hub ({exc}); offline? use local files") from exc
    need = {"query_id", "query", "positive_passages", "negative_passages"}
    missing_cols = need - set(topics_ds.column_names)
    if missing_cols:
        raise MiraclError(f"{where_topics}: missing column(s) {sorted(missing_cols)}")
    if {"docid", "text"} - set(corpus_ds.column_names):
        raise MiraclError(f"{corpus_name}[{lang}] split {corpus_split}: needs columns docid, title, text")
    rows, qrels, where = [], {}, {}
    for i, row in enumerate(topics_ds):
        qid = str(row["query_id"])
        if qid in qrels:
            raise MiraclError(f"{where_topics} row {i}: duplicate query_id {qid!r}")
        rows.append((qid, row["query"]))
        qrels[qid] = {}
        for key, grade in (("positive_passages", 1), ("negative_passages", 0)):
            for passage in row[key] or []:
                qrels[qid][str(passage["docid"])] = grade
                where[(qid, str(passage["docid"]))] = i
    records = (
        (str(r["docid"]), r.get("title") or "", r["text"])
        for r in corpus_ds.select_columns([c for c in ("docid", "title", "text") if c in corpus_ds.column_names])
    )
    docs, info = _collect_corpus(records, qrels, sample_size, seed)
    if gap := _first_missing(qrels, where, docs):
        (qid, docid), i, n = gap
        raise MiraclError(
            f"{where_topics} row {i} (query {qid}): judged docid {docid!r} is not in {corpus_name}[{lang}]; "
            f"{n} judged docid(s) missing in all"
        )
    topics = pd.DataFrame(rows, columns=["qid", "query"])
    return MiraclData(lang, topics, {q: r for q, r in qrels.items() if r}, docs, f"hub:{topics_name}", info)


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
    import bm25s

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
    import pytrec_eval

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


def evaluate_miracl(
    encoder,
    languages: Sequence[str],
    out_dir: str | Path | None = None,
    *,
    source: str | Path = "hub",
    split: str = "dev",
    sample_size: int | None = None,
    seed: int = 0,
    k: int = 100,
    index: str = "flat",
    ann_check_queries: int = 200,
    bm25: bool = True,
    max_queries: int | None = None,
    hub_loader: Callable[[str, str, str], object] | None = None,
    name: str | None = None,
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    show_progress_bar: bool = True,
) -> dict:
    """Evaluate ``encoder`` (and BM25) on MIRACL ``languages``; see the module docstring for sources and outputs.

    ``source`` is "hub" or a local root folder (official layout). ``max_queries`` keeps the first N topics
    (file order). Returns the metrics dict (also written to ``out_dir/metrics.json``).
    """
    if isinstance(languages, str):
        languages = [languages]
    if not languages:
        raise MiraclError("evaluate_miracl: no languages given")
    if k < 100:
        raise MiraclError(f"k={k}: Recall@100 needs at least 100 results per query")
    if max_queries is not None and max_queries < 1:
        raise MiraclError(f"max_queries must be >= 1, got {max_queries}")
    fp = model_fingerprint(encoder)
    label = name or model_name(encoder)
    timings = {"load": 0.0, "encode": 0.0, "search": 0.0, "bm25": 0.0, "metric": 0.0}
    rows, per_lang, per_query, files = [], {}, [], {"runs": {}, "qrels": {}}
    for lang in languages:
        t = time.perf_counter()
        kwargs = {"split": split, "sample_size": sample_size, "seed": seed}
        if str(source) == "hub":
            data = load_miracl_hub(lang, hub_loader=hub_loader, **kwargs)
        else:
            data = load_miracl_local(lang, source, **kwargs)
        if max_queries is not None:
            data.topics = data.topics.iloc[:max_queries].reset_index(drop=True)
            data.qrels = {q: data.qrels[q] for q in data.topics.qid if q in data.qrels}
        timings["load"] += time.perf_counter() - t

        t = time.perf_counter()
        enc = {
            "batch_size": batch_size,
            "cache_dir": cache_dir,
            "use_cache": use_cache,
            "fingerprint": fp,
            "show_progress_bar": show_progress_bar,
        }
        q_emb = encode_cached(encoder, data.topics["query"].tolist(), "query", **enc)
        p_emb = encode_cached(encoder, data.passages(), "passage", **enc)
        timings["encode"] += time.perf_counter() - t

        t = time.perf_counter()
        runs = {"dense": dense_run(q_emb, p_emb, data, k, index=index)}
        entry: dict = {"source": data.source, "corpus": data.corpus_info}
        if index == "hnsw":
            n_check = min(ann_check_queries, len(q_emb))
            _, exact = faiss_search(q_emb[:n_check], p_emb, k, index="flat")
            _, approx = faiss_search(q_emb[:n_check], p_emb, k, index="hnsw")
            entry["ann"] = {"index": "hnsw", f"recall@{k}_vs_exact": ann_recall(exact, approx), "queries": n_check}
        timings["search"] += time.perf_counter() - t
        if bm25:
            t = time.perf_counter()
            runs["bm25"] = bm25_run(data, k)
            timings["bm25"] += time.perf_counter() - t

        t = time.perf_counter()
        for system, run in runs.items():
            scores = score_run(data.qrels, run).assign(lang=lang, retriever=system)
            per_query.append(scores)
            rows.append(
                {
                    "lang": lang,
                    "retriever": system,
                    "ndcg@10": float(scores["ndcg@10"].mean()),
                    "recall@100": float(scores["recall@100"].mean()),
                    "n_queries": len(data.topics),
                    "n_judged_queries": len(data.qrels),
                    "corpus": data.corpus_info["kind"],
                    "corpus_size": data.corpus_info["size"],
                    "comparable_to_full_corpus": data.corpus_info["comparable_to_full_corpus"],
                }
            )
            if out_dir is not None:
                rel = f"runs/{lang}.{system}.trec"
                trec.write_run(Path(out_dir) / rel, run, label if system == "dense" else "bm25")
                files["runs"].setdefault(lang, {})[system] = rel
        if out_dir is not None:
            files["qrels"][lang] = f"runs/{lang}.qrels"
            trec.write_qrels(Path(out_dir) / files["qrels"][lang], data.qrels)
        per_lang[lang] = entry
        timings["metric"] += time.perf_counter() - t

    systems = ["dense", "bm25"] if bm25 else ["dense"]
    comparable = all(e["corpus"].get("comparable_to_full_corpus", False) for e in per_lang.values())
    metrics = {
        "model": label,
        "fingerprint": fp,
        "dataset": "miracl",
        "split": split,
        "languages": list(languages),
        "index": index,
        **{
            f"{s}_{m}": float(np.mean([r[m] for r in rows if r["retriever"] == s]))
            for s in systems
            for m in ("ndcg@10", "recall@100")
        },
        "comparable_to_full_corpus": comparable,
        "per_language": rows,
        "language_info": per_lang,
        "timings": {key: round(v, 4) for key, v in timings.items()},
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    table = pd.concat(per_query, ignore_index=True)[["lang", "qid", "retriever", "ndcg@10", "recall@100"]]
    if out_dir is not None:
        out_dir = Path(out_dir)
        io.write_parquet(out_dir / "per_query.parquet", table)
        metrics["files"] = {"per_query": "per_query.parquet", **files}
        io.write_json(out_dir / "metrics.json", metrics)
    return {**metrics, "per_query": table}
