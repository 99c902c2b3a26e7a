"""LAReQA evaluation (XQuAD-R, MLQA-R): embed, rank, score, write — mAP / Recall@k, bias, TREC files.

Protocol (Roy et al. 2020, see data/reference/anchors.md):

- ``mono`` (X = Y) and ``cross`` (X != Y): queries in X, pool = every candidate sentence of Y, relevant = the
  answer sentence(s) in Y (``ds.relevant_in(qid, Y)``); a query with no answer in Y (MLQA-R groups lack some
  languages) is skipped for that pair and counted in ``n_skipped``. Metrics per (X, Y), then macro means over the
  mono pairs and over the cross pairs (pairs without any query are left out and listed in ``empty_pairs``).
- ``multi``: queries in X, pool = the candidates of every loaded language together, relevant = every parallel
  answer sentence (``ds.relevant[qid]``); per-X means, macro over X. Rank distance comes from this setting.

Stages. *Embed*: each question and candidate text is encoded once (queries with the "query" prompt, candidates
with "passage"; :func:`retrieval.embeddings.encode_cached`, cached) and reused by every setting. *Rank*:
every query scores the *whole* pool (inner product of L2-normalised embeddings, no top-k cut, so AP is exact) and
gets the ranks of its relevant candidates (:mod:`retrieval.search`; ties broken by candidate id descending,
trec_eval's rule, :mod:`retrieval.trec`). *Score*: AP, R@1, R@10 and rank distance per query, then the
tables and macro means. *Write*: ranked lists, TREC files, the tables and ``metrics.json``. Queries go through
rank, score and list-writing in chunks of ``_CHUNK`` (bounded memory).

Output files in ``out_dir`` (written into a staging folder that replaces ``out_dir`` whole once ``metrics.json`` is
written: a crash leaves the previous evaluation intact, never new tables beside an old ``metrics.json``):

- ``metrics.json``: model, fingerprint, dataset, languages, settings; macro metrics ``{mono,cross,multi}_{map,r1,
  r10}``; ``rank_distance`` (macro over query languages) and ``rank_distance_by_lang``; ``multi_map_by_lang``;
  ``own_language_preference`` (top-k share of the query's own language / its pool share, per X) with
  ``preference_k``; ``n_queries`` / ``n_skipped`` / ``n_pairs`` per setting; ``empty_pairs``; ``pool_sizes``;
  ``map_by_domain`` ({setting: {domain: macro mAP}}, only with ``domain_of``); ``files`` (paths relative to
  out_dir: ``per_query``, ``per_pair``, ``language_preference``, ``runs`` {setting: path}, ``qrels`` {setting:
  path}); ``run_cut`` (what the run files hold); ``ties``; ``timings`` (seconds: ``fingerprint``, ``encode``,
  ``search`` (scoring and top-k lists), ``metric`` (ranks of relevant candidates, AP, tables), ``write`` (files,
  incl. extending run lists), ``total``); ``encoding`` (n_texts, n_encoded, n_cached); ``created``.
- ``per_query.parquet``: one row per (query, pool): qid, query_lang, pool_lang (Y, or "multi"), setting, ap, r1,
  r10, n_relevant, first_rank, rank_distance (multi only, NaN when < 2 relevant), group, article[, domain].
- ``per_pair.parquet``: one row per (X, pool): query_lang, pool_lang, setting, n_queries, n_skipped, map, r1, r10,
  pool_size (multi rows included, pool_lang "multi").
- ``language_preference.parquet``: see :func:`evaluation.bias.language_preference`.
- ``runs/<setting>.trec.gz`` + ``runs/<setting>.qrels``: TREC run (``qid Q0 cid rank score tag``) and qrels
  (``qid 0 cid 1``). Pair settings use the query id ``<qid>@<Y>``. The whole pool for every query would be
  ~170 M lines on XQuAD-R, so each query lists its top ``run_depth`` (default 10) candidates *extended down to its
  deepest relevant candidate*: every relevant candidate appears at its full-pool rank, so AP, R@k, P@k, nDCG@k and
  rank distance recomputed from the files equal the full-pool values (only counts of retrieved documents, such as
  trec_eval's num_ret, differ). ``run_depth=None`` writes the whole pool. A weak model's multilingual run is
  still large (its deepest relevant candidates sit deep): ``write_runs`` can restrict the files to some settings.
  :func:`retrieval.rescore.independent_rescore` re-reads the files with pytrec_eval and checks the
  agreement (tolerance 1e-4).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from hybridir_utils.errors import EvaluationError
from hybridir_utils.evaluation import bias
from hybridir_utils.retrieval import trec
from hybridir_utils.retrieval.embeddings import encode_queries_and_passages, model_fingerprint, model_name
from hybridir_utils.retrieval.search import (
    ap_recall,
    check_unit_interval,
    inner_products_torch,
    ordered_prefix,
    ordered_prefix_torch,
    ranks_of,
    ranks_of_torch,
)
from hybridir_utils.utils import atomic
from hybridir_utils.utils.timing import stamped, timed

SETTINGS = ("mono", "cross", "multi")
TIES = trec.TIES
_CHUNK = 256  # queries scored at once: bounds the [chunk, pool] score matrix (13 MB at 13k candidates)


# ------------------------------------------------------------------------------------------------ pools and ranks


class _Pool:
    """Candidates grouped by language (contiguous segments), with trec_eval tie keys."""

    def __init__(self, candidates: pd.DataFrame, languages: Sequence[str]):
        dup = candidates.cid[candidates.cid.duplicated()]
        if len(dup):
            raise EvaluationError(f"candidate ids are not unique (e.g. {dup.iloc[0]!r})")
        missing = sorted(set(candidates.lang) - set(languages))
        if missing:
            raise EvaluationError(f"candidates in language(s) {missing} not among the dataset languages")
        lang_pos = {lang: i for i, lang in enumerate(languages)}
        order = np.argsort(candidates.lang.map(lang_pos).to_numpy(), kind="stable")
        self.frame = candidates.iloc[order].reset_index(drop=True)
        self.rows = order  # pool position -> row in ds.candidates (for the embeddings)
        self.cids = self.frame.cid.to_numpy(dtype=object)
        self.langs = list(languages)
        self.seg = self.frame.lang.map(lang_pos).to_numpy()
        counts = np.bincount(self.seg, minlength=len(languages))
        self.bounds = np.concatenate([[0], np.cumsum(counts)])
        self.tie_key = trec.tie_key(self.cids)
        self.index = {cid: i for i, cid in enumerate(self.cids)}

    def segment(self, y: int) -> slice:
        return slice(int(self.bounds[y]), int(self.bounds[y + 1]))

    def sizes(self) -> dict[str, int]:
        return dict(zip(self.langs, np.diff(self.bounds).tolist(), strict=True)) | {"multi": len(self.cids)}


def _check_settings(settings) -> tuple[str, ...]:
    settings = (settings,) if isinstance(settings, str) else tuple(settings)
    bad = [s for s in settings if s not in SETTINGS]
    if bad or not settings:
        raise EvaluationError(f"unknown setting(s) {bad or settings}; expected some of {SETTINGS}")
    return tuple(s for s in SETTINGS if s in settings)


def _relevant_matrix(ds, qids: Sequence[str], pool: _Pool) -> np.ndarray:
    """[n_queries, max relevant] pool indices of every relevant candidate (-1 = padding)."""
    lists = []
    for qid in qids:
        rel = ds.relevant.get(qid)
        if not rel:
            raise EvaluationError(f"{ds.name}: question {qid!r} has no relevant candidate")
        try:
            lists.append(sorted(pool.index[c] for c in rel))
        except KeyError as exc:
            raise EvaluationError(f"{ds.name}: relevant {exc.args[0]!r} of {qid!r} is not a pool candidate") from exc
    width = max(len(x) for x in lists)
    out = np.full((len(lists), width), -1, dtype=np.int64)
    for i, x in enumerate(lists):
        out[i, : len(x)] = x
    return out


class _Ranker:
    """Scores query chunks of one language against the pool; ranks of relevant candidates; ranked lists."""

    def __init__(self, ds, pool: _Pool, pool_emb: np.ndarray, timings: dict, device: str | None = None,
                 host_scores: bool = True):  # fmt: skip
        """``device``: None ranks with numpy; a torch device (a GPU) ranks there (``retrieval.search``'s torch
        functions: same tie rule), copying a chunk's scores to the host only when ``host_scores`` (run files)."""
        self.ds, self.pool, self.pool_emb, self.timings = ds, pool, pool_emb, timings
        self.on_device = None
        if device is not None:
            import torch

            self.on_device = torch.as_tensor(pool_emb, device=device)
        self.host_scores = host_scores

    def rank(self, q_emb: np.ndarray, qids: np.ndarray) -> dict:
        """scores, relevant pool indices (padded -1), their segments, multi-pool and own-pool ranks."""
        pool = self.pool
        with timed(self.timings, "search"):
            if self.on_device is None:
                scores = q_emb @ self.pool_emb.T  # = IndexFlatIP's inner product, for the whole pool
            else:
                scores = inner_products_torch(q_emb, self.on_device)
        with timed(self.timings, "metric"):
            rel = _relevant_matrix(self.ds, qids, pool)
            valid = rel >= 0
            rel_seg = np.where(valid, pool.seg[np.maximum(rel, 0)], -1)
            # one pass gives both the multilingual rank (summed over languages) and the rank in the own-language pool
            count = ranks_of if self.on_device is None else ranks_of_torch
            above = count(scores, pool.tie_key, rel, pool.bounds)
            own = np.take_along_axis(above, np.maximum(rel_seg, 0)[..., None], axis=2)[..., 0]
        if self.on_device is not None and self.host_scores:
            scores = scores.cpu().numpy()
        return {
            "qids": qids,
            "scores": scores,
            "rel": rel,
            "rel_seg": rel_seg,
            "multi_rank": np.where(valid, above.sum(axis=2) + 1, np.nan),
            "pair_rank": np.where(valid, own + 1, np.nan),
        }

    def ranked_lists(self, ch: dict, y: int | None, depth: int, extend: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        """Pool positions of the ranked list of every query with a relevant candidate in pool ``y`` (None: the
        multilingual pool): its top ``depth``, with ``extend`` continued down to its deepest relevant candidate.
        Returns (query rows, lists)."""
        with timed(self.timings, "search"):
            if y is None:
                cols, ranks = slice(0, len(self.pool.cids)), ch["multi_rank"]
            else:
                cols = self.pool.segment(y)
                ranks = np.where(ch["rel_seg"] == y, ch["pair_rank"], np.nan)
            rows = np.flatnonzero(np.isfinite(ranks).any(axis=1))
            if len(rows) and isinstance(ch["scores"], np.ndarray):
                sub, tie = ch["scores"][rows, cols], self.pool.tie_key[cols]
                order = ordered_prefix(sub, tie, depth)
            elif len(rows):  # on the device: no run file (host_scores false), so no list extends past `depth`
                sub, tie = ch["scores"][rows][:, cols], self.pool.tie_key[cols]
                order = ordered_prefix_torch(sub, tie, depth)
        lists: list[np.ndarray] = []
        if len(rows):
            with timed(self.timings, "write"):  # the extension exists only for the run files: it counts as writing
                deepest = np.nanmax(ranks[rows], axis=1).astype(int) if extend else np.zeros(len(rows), dtype=int)
                for k in range(len(rows)):
                    idx = order[k] if deepest[k] <= order.shape[1] else ordered_prefix(sub[k], tie, deepest[k])[0]
                    lists.append(idx + cols.start)
        return rows, lists


def _add_rows(rows: dict[str, list[np.ndarray]], base: dict, **columns) -> None:
    """Append one chunk of per-query rows column-wise (one DataFrame at the end is much faster than many)."""
    n = len(base["qid"])
    for key, value in {**base, **columns}.items():
        rows.setdefault(key, []).append(np.asarray(value) if np.ndim(value) else np.full(n, value, dtype=object))


def _pair_settings(settings, langs, x: int):
    """(setting, pool index, pool lang) of every requested pair setting for query language ``x``."""
    for y, lang in enumerate(langs):
        setting = "mono" if y == x else "cross"
        if setting in settings:
            yield setting, y, lang


# ------------------------------------------------------------------------------------------------ evaluation


def evaluate_lareqa(
    encoder,
    ds,
    out_dir: str | Path,
    settings: Sequence[str] = SETTINGS,
    domain_of: Mapping[str, str] | None = None,
    *,
    name: str | None = None,
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    fingerprint: str | None = None,
    run_depth: int | None = 10,
    write_runs: bool | Sequence[str] = True,
    preference_k: int = 10,
    show_progress_bar: bool = True,
    rank_device: str | None = None,
) -> dict:
    """Evaluate ``encoder`` on a LAReQA dataset (``data.LAReQAData``); write and return metrics (module docstring).

    ``domain_of`` maps article -> domain: per-query rows get a ``domain`` column and metrics ``map_by_domain``.
    ``run_depth`` sets the TREC run cut (None: whole pool); ``write_runs`` = True (every setting), False (none)
    or the settings to write (e.g. ``("mono", "cross")``: a weak model's multilingual run is large).
    ``use_cache=False`` encodes everything afresh; ``cache_dir`` overrides ``paths.embeddings_dir()``.
    ``rank_device`` (e.g. "cuda"): score and rank on that torch device (fp32, same tie rule) instead of numpy on the
    host, which takes a large share of each system's time on a GPU machine; None (default) keeps numpy, which the
    committed CPU numbers use.
    """
    timings = dict.fromkeys(("fingerprint", "encode", "search", "metric", "write", "total"), 0.0)
    with atomic.atomic_dir(out_dir) as staging:  # outputs appear together, or the previous ones stay
        with timed(timings, "total"):
            run = _Evaluation(ds, settings, domain_of, run_depth, write_runs, preference_k, timings)
            label = name or model_name(encoder)
            enc_stats: dict = {}
            encode = {"batch_size": batch_size, "cache_dir": cache_dir, "use_cache": use_cache,
                      "show_progress_bar": show_progress_bar, "stats": enc_stats}  # fmt: skip
            fp, q_emb, c_emb = _embed(encoder, run.questions, run.candidates, fingerprint, timings, encode)
            with contextlib.ExitStack() as stack:
                writer = trec.RunWriter(stack, staging, run.run_settings, label) if run.run_settings else None
                run.rank_score_write(q_emb, c_emb, writer, show_progress_bar, rank_device)
            per_query, per_pair, preference, metrics = run.tables()
            files = _write_tables(staging, per_query, per_pair, preference, writer, timings)
        metrics = {
            "model": label,
            "fingerprint": fp,
            "dataset": ds.name,
            "languages": run.langs,
            "settings": list(run.settings),
            "batch_size": batch_size,  # int8 backends' embeddings depend on their batch-mates: record it
            **metrics,
            "pool_sizes": run.pool.sizes(),
            "files": files,
            "run_cut": _run_cut(writer, run_depth, len(run.pool.cids)),
            "ties": TIES,
            "ranked_on": str(rank_device) if rank_device else "host (numpy)",
            **stamped(timings),
            "encoding": enc_stats,
        }
        atomic.write_json(staging / "metrics.json", metrics)
    return {**metrics, "out_dir": str(out_dir)}


def _embed(encoder, questions: pd.DataFrame, candidates: pd.DataFrame, fingerprint, timings: dict, encode: dict):
    """Stage 1: (fingerprint, query embeddings, candidate embeddings), every text encoded once (cached)."""
    with timed(timings, "fingerprint"):
        fp = model_fingerprint(encoder, fingerprint)
    with timed(timings, "encode"):
        q_emb, c_emb = encode_queries_and_passages(encoder, questions.text, candidates.text, fp, **encode)
    return fp, q_emb, c_emb


class _Evaluation:
    """One evaluation's inputs and accumulated rows: stages 2-4 (rank, score, ranked lists and run lines) run per
    chunk of queries of one language, then :meth:`tables` scores the whole (macro metrics, preference)."""

    def __init__(self, ds, settings, domain_of, run_depth, write_runs, preference_k: int, timings: dict):
        self.settings = _check_settings(settings)
        if run_depth is not None and int(run_depth) < 1:
            raise EvaluationError(f"run_depth must be >= 1 or None, got {run_depth}")
        if preference_k < 1:
            raise EvaluationError(f"preference_k must be >= 1, got {preference_k}")
        self.questions, self.candidates = ds.questions.reset_index(drop=True), ds.candidates.reset_index(drop=True)
        if self.questions.empty or self.candidates.empty:
            raise EvaluationError(f"{ds.name}: no questions or no candidates to evaluate ({ds.languages})")
        self.domains = None
        if domain_of is not None:
            unknown = sorted(set(self.questions.article) - set(domain_of))
            if unknown:
                raise EvaluationError(f"domain_of lacks {len(unknown)} article(s) of {ds.name}, e.g. {unknown[:3]}")
            self.domains = self.questions.article.map(domain_of).to_numpy()
        self.ds, self.timings, self.preference_k = ds, timings, preference_k
        self.langs = list(ds.languages)
        self.pool = _Pool(self.candidates, self.langs)
        self.depth = len(self.pool.cids) if run_depth is None else max(int(run_depth), preference_k)
        self.run_settings = _run_settings(write_runs, self.settings)
        self.rows: dict[str, list[np.ndarray]] = {}
        self.top_rows: list[pd.DataFrame] = []

    def rank_score_write(self, q_emb: np.ndarray, c_emb: np.ndarray, writer, show_progress_bar: bool,
                         device: str | None = None) -> None:  # fmt: skip
        """Stages 2-4 over every query language, chunk by chunk (ranked on ``device``, see :class:`_Ranker`)."""
        pool_emb = np.ascontiguousarray(c_emb[self.pool.rows])
        ranker = _Ranker(self.ds, self.pool, pool_emb, self.timings, device, host_scores=bool(self.run_settings))
        q_lang, q_ids = self.questions.lang.to_numpy(), self.questions.qid.to_numpy()
        for x, lang in enumerate(tqdm(self.langs, desc="rank", disable=not show_progress_bar)):
            q_idx = np.flatnonzero(q_lang == lang)
            for lo in range(0, len(q_idx), _CHUNK):
                chunk = q_idx[lo : lo + _CHUNK]
                ch = ranker.rank(q_emb[chunk], q_ids[chunk])
                with timed(self.timings, "metric"):
                    self.score(ch, chunk, x, lang)
                self.lists(ranker, ch, x, lang, writer)

    def score(self, ch: dict, chunk: np.ndarray, x: int, lang: str) -> None:
        """Stage 3: AP, R@1, R@10 (and rank distance for multi) of every query of the chunk, per pool."""
        base = {
            "qid": ch["qids"],
            "query_lang": lang,
            "group": self.questions.group.to_numpy()[chunk],
            "article": self.questions.article.to_numpy()[chunk],
        }
        if self.domains is not None:
            base["domain"] = self.domains[chunk]
        no_distance = np.full(len(chunk), np.nan)
        for setting, y, pool_lang in _pair_settings(self.settings, self.langs, x):
            m = ap_recall(np.where(ch["rel_seg"] == y, ch["pair_rank"], np.nan))
            _add_rows(self.rows, base, pool_lang=pool_lang, setting=setting, **m, rank_distance=no_distance)
        if "multi" in self.settings:
            m = ap_recall(ch["multi_rank"])
            m["rank_distance"] = bias.rank_distance([r[np.isfinite(r)].astype(int) for r in ch["multi_rank"]])
            _add_rows(self.rows, base, pool_lang="multi", setting="multi", **m)

    def lists(self, ranker: _Ranker, ch: dict, x: int, lang: str, writer: trec.RunWriter | None) -> None:
        """Stage 4: ranked lists, for the language preference (multi top-k) and the run files."""
        pools = [("multi", None, "multi")] if "multi" in self.settings else []
        pools += [p for p in _pair_settings(self.settings, self.langs, x) if p[0] in self.run_settings]
        for setting, y, pool_lang in pools:
            write = setting in self.run_settings
            q_rows, lists = ranker.ranked_lists(ch, y, self.depth if write else self.preference_k, extend=write)
            if setting == "multi":
                tops = np.concatenate([idx[: self.preference_k] for idx in lists])
                self.top_rows.append(
                    pd.DataFrame({"query_lang": lang, "cand_lang": self.pool.frame.lang.to_numpy()[tops]})
                )
            if write:
                with timed(self.timings, "write"):
                    self._write_run(writer, ch, setting, y, pool_lang, q_rows, lists)

    def _write_run(self, writer, ch: dict, setting: str, y, pool_lang: str, q_rows, lists) -> None:
        suffix = "" if setting == "multi" else f"@{pool_lang}"
        cids = self.pool.cids
        for i, idx in zip(q_rows, lists, strict=True):
            rel = ch["rel"][i][(ch["rel"][i] >= 0) & ((ch["rel_seg"][i] == y) if y is not None else True)]
            writer.write(setting, f"{ch['qids'][i]}{suffix}", cids[idx], ch["scores"][i, idx], cids[rel])

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, dict]:
        """Stage 3, whole: per-query and per-pair tables, macro metrics, language preference."""
        with timed(self.timings, "metric"):
            per_query = pd.DataFrame({k: np.concatenate(v) for k, v in self.rows.items()})
            first = ["qid", "query_lang", "pool_lang", "setting", "ap", "r1", "r10", "n_relevant", "first_rank"]
            extra = ["domain"] if self.domains is not None else []
            per_query = per_query[[*first, "rank_distance", "group", "article", *extra]]
            skipped = per_query.n_relevant == 0
            n_skipped = per_query[skipped].groupby(["query_lang", "pool_lang"]).size()
            per_query = per_query[~skipped].reset_index(drop=True)
            per_query = per_query.astype({"n_relevant": int, "first_rank": int})
            per_pair = _per_pair(per_query, self.langs, self.settings, n_skipped, self.pool)
            metrics = _macro_metrics(per_query, per_pair, self.settings)
            if self.domains is not None:
                metrics["map_by_domain"] = _map_by_domain(per_query)
            preference = None
            if self.top_rows:
                preference = bias.language_preference(pd.concat(self.top_rows, ignore_index=True), self.pool.frame.lang)
                own = preference[preference.query_lang == preference.cand_lang]
                metrics["own_language_preference"] = {r.query_lang: float(r.preference) for r in own.itertuples()}
                metrics["preference_k"] = int(self.preference_k)
        return per_query, per_pair, preference, metrics


def _write_tables(out_dir: Path, per_query, per_pair, preference, writer, timings: dict) -> dict:
    """Stage 5: the tables; returns ``files`` of metrics.json (paths relative to ``out_dir``)."""
    with timed(timings, "write"):
        files: dict = {"per_query": "per_query.parquet", "per_pair": "per_pair.parquet"}
        atomic.write_parquet(out_dir / "per_query.parquet", per_query)
        atomic.write_parquet(out_dir / "per_pair.parquet", per_pair)
        if preference is not None:
            files["language_preference"] = "language_preference.parquet"
            atomic.write_parquet(out_dir / "language_preference.parquet", preference)
        if writer is not None:
            files["runs"] = {s: p["run"] for s, p in writer.paths.items()}
            files["qrels"] = {s: p["qrels"] for s, p in writer.paths.items()}
    return files


def _run_settings(write_runs, settings: Sequence[str]) -> tuple[str, ...]:
    if write_runs is True:
        return tuple(settings)
    if write_runs is False or write_runs is None:
        return ()
    chosen = (write_runs,) if isinstance(write_runs, str) else tuple(write_runs)
    bad = [s for s in chosen if s not in settings]
    if bad:
        raise EvaluationError(f"write_runs names setting(s) {bad} that are not evaluated (settings: {list(settings)})")
    return tuple(s for s in settings if s in chosen)


def _run_cut(writer: trec.RunWriter | None, run_depth: int | None, pool_size: int) -> dict:
    if writer is None:
        return {"written": False}
    out = {"written": True, "settings": list(writer.paths), "lines": dict(writer.lines)}
    if run_depth is None or run_depth >= pool_size:
        return {**out, "depth": None, "rule": "whole pool for every query"}
    rule = (
        f"top {run_depth} per query, extended down to its deepest relevant candidate: every relevant candidate is "
        "listed at its full-pool rank, so AP, R@k, P@k, nDCG@k and rank distance recomputed from the files equal "
        "the full-pool values; only measures counting retrieved documents (num_ret, set_*) differ"
    )
    return {**out, "depth": int(run_depth), "rule": rule}


def _per_pair(per_query: pd.DataFrame, langs, settings, n_skipped: pd.Series, pool: _Pool) -> pd.DataFrame:
    grouped = per_query.groupby(["query_lang", "pool_lang", "setting"], sort=False)
    table = grouped.agg(n_queries=("qid", "size"), map=("ap", "mean"), r1=("r1", "mean"), r10=("r10", "mean"))
    table = table.reset_index()
    expected = [(x, y, "mono" if x == y else "cross") for x in langs for y in langs]
    expected = [e for e in expected if e[2] in settings] + [(x, "multi", "multi") for x in langs if "multi" in settings]
    frame = pd.DataFrame(expected, columns=["query_lang", "pool_lang", "setting"])
    table = frame.merge(table, how="left", on=["query_lang", "pool_lang", "setting"])
    table["n_queries"] = table.n_queries.fillna(0).astype(int)
    table["n_skipped"] = [int(n_skipped.get((x, y), 0)) for x, y in zip(table.query_lang, table.pool_lang, strict=True)]
    table["pool_size"] = table.pool_lang.map(pool.sizes()).astype(int)
    return table


def _macro_metrics(per_query: pd.DataFrame, per_pair: pd.DataFrame, settings) -> dict:
    out: dict = {"n_pairs": {}, "n_queries": {}, "n_skipped": {}, "empty_pairs": []}
    for s in settings:
        pairs = per_pair[per_pair.setting == s]
        empty = pairs[pairs.n_queries == 0]
        out["empty_pairs"] += [f"{x}>{y}" for x, y in zip(empty.query_lang, empty.pool_lang, strict=True)]
        pairs = pairs[pairs.n_queries > 0]
        for metric in ("map", "r1", "r10"):
            out[f"{s}_{metric}"] = float(pairs[metric].mean()) if len(pairs) else float("nan")
            check_unit_interval(f"{s}_{metric}", out[f"{s}_{metric}"])
        out["n_pairs"][s] = len(pairs)
        out["n_queries"][s] = int(pairs.n_queries.sum())
        out["n_skipped"][s] = int(per_pair[per_pair.setting == s].n_skipped.sum())
    if "multi" in settings:
        multi = per_pair[per_pair.setting == "multi"]
        out["multi_map_by_lang"] = {x: float(v) for x, v in zip(multi.query_lang, multi["map"], strict=True)}
        out["rank_distance"], out["rank_distance_by_lang"] = bias.rank_distance_summary(
            per_query[per_query.setting == "multi"]
        )
    return out


def _map_by_domain(per_query: pd.DataFrame) -> dict:
    """{setting: {domain: mAP}}, each the macro mean over (X, pool) pairs of the per-pair mean AP in that domain."""
    means = per_query.groupby(["setting", "domain", "query_lang", "pool_lang"]).ap.mean()
    macro = means.groupby(level=["setting", "domain"]).mean()
    out: dict = {}
    for (setting, domain), value in macro.items():
        out.setdefault(setting, {})[domain] = float(value)
    return out


def language_means(per_query):
    """Macro mAP per (setting, query language) from a per-query table: mono and multi the mean AP of that language's
    queries, cross the mean over the other pool languages of each (query, pool) language pair's mAP."""
    return per_query.groupby(["setting", "query_lang", "pool_lang"]).ap.mean().groupby(["setting", "query_lang"]).mean()
