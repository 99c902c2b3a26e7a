"""LAReQA evaluation (XQuAD-R, MLQA-R): cached encoding, exhaustive ranking, mAP / Recall@k, bias, TREC files.

Protocol (Roy et al. 2020, see data/reference/anchors.md):

- ``mono`` (X = Y) and ``cross`` (X != Y): queries in X, pool = every candidate sentence of Y, relevant = the
  answer sentence(s) in Y (``ds.relevant_in(qid, Y)``); a query with no answer in Y (MLQA-R groups lack some
  languages) is skipped for that pair and counted in ``n_skipped``. Metrics per (X, Y), then macro means over the
  mono pairs and over the cross pairs (pairs without any query are left out and listed in ``empty_pairs``).
- ``multi``: queries in X, pool = the candidates of every loaded language together, relevant = every parallel
  answer sentence (``ds.relevant[qid]``); per-X means, macro over X. Rank distance comes from this setting.

Scoring and ranking. Embeddings are L2-normalised, the score is their inner product (cosine; the same number
FAISS ``IndexFlatIP`` computes), and every query ranks the *whole* pool (no top-k cut), so AP is exact.
Ties (equal float32 scores, e.g. duplicate sentences) are broken by candidate id, descending byte order —
trec_eval's own rule — so trec_eval / pytrec_eval re-scoring the run files agrees even on ties (a test checks
it). Do not re-score with ranx: its tie order is not trec_eval's, and under ties its AP differed from trec_eval's
by up to 0.51 in a check; the project does not depend on it. Ranks are 1-based.
AP = mean over the relevant candidates of precision at their ranks; Recall@k = share of relevant in the top k.

Encoding. Each question and candidate text is encoded once (queries with the "query" prompt, candidates with
"passage") and reused by every setting. :func:`encode_cached` keeps embeddings under
``config.embeddings_dir()/<fingerprint>/<prompt>-<prompt hash>.npz`` (sha1(text) -> row), so a re-evaluation of
the same model and texts encodes nothing; only missing texts are encoded.

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
- ``language_preference.parquet``: see :func:`hybridir_utils.bias.language_preference`.
- ``runs/<setting>.trec.gz`` + ``runs/<setting>.qrels``: TREC run (``qid Q0 cid rank score tag``) and qrels
  (``qid 0 cid 1``). Pair settings use the query id ``<qid>@<Y>``. The whole pool for every query would be
  ~170 M lines on XQuAD-R, so each query lists its top ``run_depth`` (default 10) candidates *extended down to its
  deepest relevant candidate*: every relevant candidate appears at its full-pool rank, so AP, R@k, P@k, nDCG@k and
  rank distance recomputed from the files equal the full-pool values (only counts of retrieved documents, such as
  trec_eval's num_ret, differ). ``run_depth=None`` writes the whole pool. A weak model's multilingual run is
  still large (its deepest relevant candidates sit deep): ``write_runs`` can restrict the files to some settings.
  :func:`independent_rescore` re-reads the files with pytrec_eval and checks the agreement (tolerance 1e-4).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gzip
import hashlib
import re
import time
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from hybridir_utils import bias, config, io

SETTINGS = ("mono", "cross", "multi")
TIES = "score descending, then candidate id descending (trec_eval's order); ranks 1-based"
_CHUNK = 256  # queries scored at once: bounds the [chunk, pool] score matrix (13 MB at 13k candidates)


class EvaluationError(ValueError):
    """Bad evaluation input or an unreadable cache/run file; the message names it."""


# ------------------------------------------------------------------------------------------------ encoding


def model_fingerprint(encoder, fingerprint: str | None = None) -> str:
    """``fingerprint`` if given, else :func:`hybridir_utils.models.fingerprint` (weights + pipeline hash)."""
    if fingerprint:
        return str(fingerprint)
    from hybridir_utils.models import fingerprint as _fingerprint

    return _fingerprint(encoder)


def model_name(encoder) -> str:
    from hybridir_utils.models import encoder_name

    return encoder_name(encoder)


def _prompt_args(encoder, prompt_name: str | None) -> tuple[dict, str]:
    """encode() kwargs for the prompt, and the prompt text that keys the cache.

    A sentence-transformers model without that prompt would raise, so the prompt is then dropped (the model has
    no prompts: all texts are encoded plainly, and the cache key says so).
    """
    if not prompt_name:
        return {}, ""
    prompts = getattr(encoder, "prompts", None)
    if isinstance(prompts, Mapping):
        if prompts.get(prompt_name):
            return {"prompt_name": prompt_name}, str(prompts[prompt_name])
        return {}, ""
    return {"prompt_name": prompt_name}, f"<{prompt_name}>"


def _text_keys(texts: Sequence[str]) -> np.ndarray:
    return np.array([hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts], dtype="S40")


class EmbeddingCache:
    """Embeddings of one (model fingerprint, prompt): ``sha1(text) -> float32 row`` in one ``.npz`` file.

    New rows are merged with whatever is on disk at save time, then written atomically; two processes saving
    at once can only lose rows (re-encoded later), never corrupt the file. A file is read as strictly as a fresh
    encode is checked (finite, unit norm, ``dim`` columns, one row per key): a bad one is named in a warning and
    ignored, so its texts are re-encoded and the file rewritten, never scored.
    """

    def __init__(
        self,
        fingerprint: str,
        prompt_name: str,
        prompt: str,
        cache_dir: str | Path | None = None,
        dim: int | None = None,
    ):
        base = Path(cache_dir) if cache_dir is not None else config.embeddings_dir()
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", fingerprint)
        if safe != fingerprint:
            safe = f"{safe[:60]}-{hashlib.sha1(fingerprint.encode()).hexdigest()[:8]}"
        tag = hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:8]
        self.path = base / safe / f"{re.sub(r'[^A-Za-z0-9_-]', '_', prompt_name or 'none')}-{tag}.npz"
        self.dim = dim
        self.keys, self.emb = self._read()
        self._new_keys: list[np.ndarray] = []
        self._new_emb: list[np.ndarray] = []

    def _read(self, warn: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        empty = np.empty(0, dtype="S40"), None
        if not self.path.is_file():
            return empty
        try:
            with np.load(self.path, allow_pickle=False) as z:
                keys, emb = z["keys"], z["emb"]
            problem = self._problem(keys, emb)
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            problem = f"unreadable ({type(exc).__name__}: {exc})"
        if problem is None:
            return keys, emb
        if warn:
            warnings.warn(f"embedding cache {self.path}: {problem}; ignored, its texts are re-encoded", stacklevel=3)
        return empty

    def _problem(self, keys: np.ndarray, emb: np.ndarray) -> str | None:
        """What is wrong with cached ``keys`` / ``emb``, or None: the same checks as a fresh encode, and more."""
        if keys.dtype != np.dtype("S40") or keys.ndim != 1:
            return f"keys of dtype {keys.dtype} and shape {keys.shape}, expected sha1 hex digests"
        if emb.ndim != 2 or len(keys) != len(emb) or emb.dtype.kind != "f":
            return f"{len(keys)} keys but embeddings of shape {emb.shape} and dtype {emb.dtype}"
        if self.dim is not None and emb.shape[1] != self.dim:
            return f"embeddings of dimension {emb.shape[1]}, the model gives {self.dim}"
        bad = ~np.isfinite(emb).all(axis=1)
        if bad.any():
            return f"{int(bad.sum())} row(s) with NaN or infinite values"
        norms = np.linalg.norm(emb.astype(np.float64), axis=1)
        off = np.abs(norms - 1) > 1e-3
        if off.any():
            return f"{int(off.sum())} row(s) not of unit norm (e.g. {norms[off][0]:.4g})"
        return None

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(found mask, rows of the found keys in order)."""
        if self.emb is None or not len(keys):
            return np.zeros(len(keys), dtype=bool), None
        order = np.argsort(self.keys)
        pos = np.clip(np.searchsorted(self.keys[order], keys), 0, len(order) - 1)
        found = self.keys[order][pos] == keys
        return found, self.emb[order[pos[found]]]

    def add(self, keys: np.ndarray, emb: np.ndarray) -> None:
        self._new_keys.append(keys)
        self._new_emb.append(emb)

    def save(self) -> None:
        if not self._new_keys:
            return
        disk_keys, disk_emb = self._read(warn=False)
        keys = np.concatenate([disk_keys, *self._new_keys])
        parts = ([disk_emb] if disk_emb is not None else []) + self._new_emb
        if len({p.shape[1] for p in parts}) > 1:
            raise EvaluationError(f"{self.path}: cached embeddings have another dimension than the new ones")
        emb = np.concatenate(parts).astype(np.float32, copy=False)
        keys, first = np.unique(keys, return_index=True)
        emb = emb[first]

        def _write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a bare path
                np.savez(fh, keys=keys, emb=emb)

        io.atomic_write(self.path, _write)
        self.keys, self.emb = keys, emb
        self._new_keys, self._new_emb = [], []


def _normalise(emb: np.ndarray, what: str) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2:
        raise EvaluationError(f"{what}: encoder returned an array of shape {emb.shape}, expected [n, d]")
    if not np.isfinite(emb).all():
        raise EvaluationError(f"{what}: encoder returned NaN or infinite values")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(norms, 1e-12)


def _dimension(encoder) -> int | None:
    """The encoder's embedding dimension when it says (sentence-transformers models do), to check cached rows."""
    method = getattr(encoder, "get_embedding_dimension", None) or getattr(
        encoder, "get_sentence_embedding_dimension", None
    )
    try:
        dim = method() if callable(method) else None
    except Exception:  # an encoder whose dimension is unknown (or broken) is simply not checked
        return None
    return dim if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None


def encode_cached(
    encoder,
    texts: Sequence[str],
    prompt_name: str | None,
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
    show_progress_bar: bool = True,
    use_cache: bool = True,
    fingerprint: str | None = None,
    stats: dict | None = None,
    chunk_size: int = 1024,
    save_every_s: float = 60.0,
) -> np.ndarray:
    """L2-normalised float32 embeddings of ``texts`` [n, d], encoding only texts missing from the cache.

    The cache key is (``models.fingerprint(encoder)`` or ``fingerprint``, prompt text, sha1(text)); duplicates are
    encoded once. Encoding goes in chunks of ``chunk_size`` texts with a progress bar, and the cache is saved at
    least every ``save_every_s`` seconds, so an interrupted long encode resumes. ``stats`` (a dict, optional)
    receives ``n_texts``, ``n_encoded`` and ``n_cached`` (added to existing counts).
    """
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise EvaluationError(f"encode_cached: text {bad} is {type(texts[bad]).__name__}, not str")
    kwargs, prompt = _prompt_args(encoder, prompt_name)
    keys = _text_keys(texts)
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    cache = (
        EmbeddingCache(
            model_fingerprint(encoder, fingerprint), prompt_name or "", prompt, cache_dir, _dimension(encoder)
        )
        if (use_cache)
        else None
    )
    found, rows = cache.lookup(uniq) if cache is not None else (np.zeros(len(uniq), dtype=bool), None)
    missing = np.flatnonzero(~found)
    parts: dict[int, np.ndarray] = {}
    if rows is not None:
        parts[-1] = rows
    last_save = time.monotonic()
    with tqdm(
        total=len(missing),
        desc=f"encode {prompt_name or 'texts'}",
        unit="text",
        disable=not show_progress_bar or not len(missing),
    ) as bar:
        for lo in range(0, len(missing), chunk_size):
            idx = missing[lo : lo + chunk_size]
            batch = [texts[first[i]] for i in idx]
            emb = encoder.encode(
                batch,
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
                **kwargs,
            )
            emb = _normalise(emb, f"encoding {len(batch)} texts ({prompt_name})")
            if len(emb) != len(batch):
                raise EvaluationError(f"encoder returned {len(emb)} embeddings for {len(batch)} texts")
            parts[lo] = emb
            if cache is not None:
                cache.add(uniq[idx], emb)
                if time.monotonic() - last_save > save_every_s:
                    cache.save()
                    last_save = time.monotonic()
            bar.update(len(idx))
    if cache is not None:
        cache.save()
    if stats is not None:
        for key, value in (("n_texts", len(texts)), ("n_encoded", len(missing)), ("n_cached", int(found.sum()))):
            stats[key] = stats.get(key, 0) + value
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    dim = next(iter(parts.values())).shape[1]
    out = np.empty((len(uniq), dim), dtype=np.float32)
    if rows is not None:
        out[found] = rows
    for lo, emb in parts.items():
        if lo >= 0:
            out[missing[lo : lo + chunk_size]] = emb
    return out[inverse]


# ------------------------------------------------------------------------------------------------ search


def faiss_search(
    queries: np.ndarray,
    docs: np.ndarray,
    k: int,
    index: str = "flat",
    hnsw_m: int = 32,
    ef_search: int = 256,
    ef_construction: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (scores, indices) by inner product with FAISS: exact ``IndexFlatIP`` or ANN ``IndexHNSWFlat``."""
    import faiss

    docs = np.ascontiguousarray(docs, dtype=np.float32)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if docs.ndim != 2 or queries.ndim != 2 or docs.shape[1] != queries.shape[1]:
        raise EvaluationError(f"faiss_search: query shape {queries.shape} and doc shape {docs.shape} do not match")
    k = min(int(k), len(docs))
    if index == "flat":
        idx = faiss.IndexFlatIP(docs.shape[1])
    elif index == "hnsw":
        idx = faiss.IndexHNSWFlat(docs.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = ef_construction
        idx.hnsw.efSearch = max(ef_search, k)
    else:
        raise EvaluationError(f"unknown index {index!r}; expected 'flat' or 'hnsw'")
    idx.add(docs)
    scores, ids = idx.search(queries, k)
    return scores, ids


def ann_recall(exact_ids: np.ndarray, ann_ids: np.ndarray) -> float:
    """Mean share of the exact top-k that the approximate search also returns (Recall@k of ANN vs exact)."""
    hits = [
        len(set(e[e >= 0]) & set(a[a >= 0])) / max(1, int((e >= 0).sum()))
        for e, a in zip(exact_ids, ann_ids, strict=True)
    ]
    return float(np.mean(hits)) if hits else float("nan")


def ordered_prefix(scores: np.ndarray, tie_key: np.ndarray, depth: int) -> np.ndarray:
    """Column indices of the first ``depth`` candidates of every row in ranking order: score descending, then
    ``tie_key`` descending (``tie_key`` = the candidate's position in ascending id order, so ids descending)."""
    scores = np.atleast_2d(scores)
    tie = np.asarray(tie_key, dtype=np.int64)
    n = scores.shape[1]
    depth = min(int(depth), n)
    neg = -scores
    if depth < n:
        part = np.argpartition(neg, depth - 1, axis=1)[:, :depth]
        # argpartition picks arbitrarily among scores tied at the cut: redo such rows with the tie rule
        kth = np.take_along_axis(neg, part, axis=1).max(axis=1)
        for i in np.flatnonzero(np.count_nonzero(neg <= kth[:, None], axis=1) > depth):
            cand = np.flatnonzero(neg[i] <= kth[i])
            part[i] = cand[np.lexsort((-tie[cand], neg[i, cand]))][:depth]
    else:
        part = np.broadcast_to(np.arange(n), scores.shape)
    order = np.lexsort((-tie[part], np.take_along_axis(neg, part, axis=1)), axis=-1)
    return np.take_along_axis(part, order, axis=1)


def ranks_of(scores: np.ndarray, tie_key: np.ndarray, targets: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """How many candidates of each column segment rank above each target: [rows, targets, segments].

    ``scores`` [rows, n]; ``targets`` [rows, t] column indices (-1: padding, counts 0); segments are the column
    ranges ``bounds[k]:bounds[k + 1]``. The order is the one of :func:`ordered_prefix`. The rank of a target
    in the whole row is ``sum over segments + 1``, inside its own segment ``its segment's count + 1``.
    """
    tie = np.asarray(tie_key, dtype=np.int64)
    out = np.zeros((*targets.shape, len(bounds) - 1), dtype=np.int64)
    rows = np.arange(len(scores))
    for j in range(targets.shape[1]):
        target = targets[:, j]
        live = target >= 0
        t_score = scores[rows, np.maximum(target, 0)][:, None]
        above = scores > t_score
        tied = np.flatnonzero(live & (np.count_nonzero(scores == t_score, axis=1) > 1))
        for i in tied:  # exact float ties (duplicate texts): the higher id ranks first
            above[i] |= (scores[i] == t_score[i]) & (tie > tie[target[i]])
        above[~live] = False
        for k in range(len(bounds) - 1):
            out[:, j, k] = np.count_nonzero(above[:, bounds[k] : bounds[k + 1]], axis=1)
    return out


def ap_recall(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row AP, R@1, R@10, first rank and relevant count from 1-based ranks of relevant items (NaN = none)."""
    ranks = np.asarray(ranks, dtype=float)
    valid = np.isfinite(ranks)
    n = valid.sum(axis=1)
    rk = np.sort(np.where(valid, ranks, np.inf), axis=1)
    i = np.arange(1, rk.shape[1] + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(np.isfinite(rk), i / rk, 0.0)
        ap = prec.sum(axis=1) / n
        r1 = (rk <= 1).sum(axis=1) / n
        r10 = (rk <= 10).sum(axis=1) / n
    first = np.where(n > 0, rk[:, 0] if rk.shape[1] else np.nan, np.nan)
    _check_unit_interval("AP", ap)
    return {"ap": ap, "r1": r1, "r10": r10, "first_rank": first, "n_relevant": n}


def _check_unit_interval(what: str, values) -> None:
    """AP and mAP lie in [0, 1] by construction; a value outside means broken ranks, never a result."""
    values = np.asarray(values, dtype=float)
    bad = values[np.isfinite(values) & ((values < 0) | (values > 1 + 1e-9))]
    if bad.size:
        raise EvaluationError(
            f"{what} {float(bad[0]):g} outside [0, 1]: the ranks are broken (duplicate or invalid ranks)"
        )


# ------------------------------------------------------------------------------------------------ evaluation


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
        self.tie_key = np.empty(len(self.cids), dtype=np.int64)
        self.tie_key[np.argsort(self.cids.astype(str), kind="stable")] = np.arange(len(self.cids))
        self.index = {cid: i for i, cid in enumerate(self.cids)}

    def segment(self, y: int) -> slice:
        return slice(int(self.bounds[y]), int(self.bounds[y + 1]))


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


class _RunWriter:
    """Gzip TREC run + qrels files per setting, each moved into place only when complete."""

    def __init__(self, stack: contextlib.ExitStack, out_dir: Path, settings: Sequence[str], tag: str):
        self.tag = re.sub(r"\s+", "_", tag) or "run"
        self.runs, self.qrels, self.paths = {}, {}, {}
        for s in settings:
            run_path, qrels_path = out_dir / "runs" / f"{s}.trec.gz", out_dir / "runs" / f"{s}.qrels"
            tmp_run = stack.enter_context(io.atomic_path(run_path))
            tmp_qrels = stack.enter_context(io.atomic_path(qrels_path))
            self.runs[s] = stack.enter_context(gzip.open(tmp_run, "wt", encoding="utf-8", compresslevel=1))
            self.qrels[s] = stack.enter_context(open(tmp_qrels, "w", encoding="utf-8"))
            self.paths[s] = {"run": f"runs/{s}.trec.gz", "qrels": f"runs/{s}.qrels"}
        self.lines = dict.fromkeys(settings, 0)

    def write(self, setting: str, qid: str, cids: np.ndarray, scores: np.ndarray, relevant: Sequence[str]) -> None:
        tag = self.tag
        lines = zip(cids.tolist(), scores.tolist(), strict=True)
        # .9g: every distinct float32 stays distinct and equal ones stay equal, so re-sorting reproduces our order
        self.runs[setting].write("".join(f"{qid} Q0 {c} {r} {s:.9g} {tag}\n" for r, (c, s) in enumerate(lines, 1)))
        self.qrels[setting].write("".join(f"{qid} 0 {c} 1\n" for c in relevant))
        self.lines[setting] += len(cids)


class _Ranker:
    """Scores query chunks of one language against the pool; ranks of relevant candidates; ranked lists."""

    def __init__(self, ds, pool: _Pool, pool_emb: np.ndarray, timings: dict):
        self.ds, self.pool, self.pool_emb, self.timings = ds, pool, pool_emb, timings

    def rank(self, q_emb: np.ndarray, qids: np.ndarray) -> dict:
        """scores, relevant pool indices (padded -1), their segments, multi-pool and own-pool ranks."""
        pool = self.pool
        t = time.perf_counter()
        scores = q_emb @ self.pool_emb.T  # = IndexFlatIP's inner product, for the whole pool
        self.timings["search"] += time.perf_counter() - t
        t = time.perf_counter()
        rel = _relevant_matrix(self.ds, qids, pool)
        valid = rel >= 0
        rel_seg = np.where(valid, pool.seg[np.maximum(rel, 0)], -1)
        # one pass gives both the multilingual rank (summed over languages) and the rank in the own-language pool
        above = ranks_of(scores, pool.tie_key, rel, pool.bounds)
        own = np.take_along_axis(above, np.maximum(rel_seg, 0)[..., None], axis=2)[..., 0]
        out = {
            "qids": qids,
            "scores": scores,
            "rel": rel,
            "rel_seg": rel_seg,
            "multi_rank": np.where(valid, above.sum(axis=2) + 1, np.nan),
            "pair_rank": np.where(valid, own + 1, np.nan),
        }
        self.timings["metric"] += time.perf_counter() - t
        return out

    def ranked_lists(self, ch: dict, y: int | None, depth: int, extend: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        """Pool positions of the ranked list of every query with a relevant candidate in pool ``y`` (None: the
        multilingual pool): its top ``depth``, with ``extend`` continued down to its deepest relevant candidate.
        Returns (query rows, lists)."""
        t = time.perf_counter()
        if y is None:
            cols, ranks = slice(0, len(self.pool.cids)), ch["multi_rank"]
        else:
            cols = self.pool.segment(y)
            ranks = np.where(ch["rel_seg"] == y, ch["pair_rank"], np.nan)
        rows = np.flatnonzero(np.isfinite(ranks).any(axis=1))
        lists: list[np.ndarray] = []
        if len(rows):
            sub, tie = ch["scores"][rows, cols], self.pool.tie_key[cols]
            order = ordered_prefix(sub, tie, depth)
            self.timings["search"] += time.perf_counter() - t
            t = time.perf_counter()  # the extension exists only for the run files: it counts as writing
            deepest = np.nanmax(ranks[rows], axis=1).astype(int) if extend else np.zeros(len(rows), dtype=int)
            for k in range(len(rows)):
                idx = order[k] if deepest[k] <= order.shape[1] else ordered_prefix(sub[k], tie, deepest[k])[0]
                lists.append(idx + cols.start)
            self.timings["write"] += time.perf_counter() - t
        else:
            self.timings["search"] += time.perf_counter() - t
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
) -> dict:
    """Evaluate ``encoder`` on a LAReQA dataset (``data.LAReQAData``); write and return metrics (module docstring).

    ``domain_of`` maps article -> domain: per-query rows get a ``domain`` column and metrics ``map_by_domain``.
    ``run_depth`` sets the TREC run cut (None: whole pool); ``write_runs`` = True (every setting), False (none)
    or the settings to write (e.g. ``("mono", "cross")``: a weak model's multilingual run can reach ~1 GB).
    ``use_cache=False`` encodes everything afresh; ``cache_dir`` overrides ``config.embeddings_dir()``.
    """
    options = {"name": name, "batch_size": batch_size, "cache_dir": cache_dir, "use_cache": use_cache,
               "fingerprint": fingerprint, "run_depth": run_depth, "write_runs": write_runs,
               "preference_k": preference_k, "show_progress_bar": show_progress_bar}  # fmt: skip
    with io.atomic_dir(out_dir) as staging:  # outputs appear together, or the previous ones stay
        metrics = _evaluate(encoder, ds, staging, settings, domain_of, **options)
    return {**metrics, "out_dir": str(out_dir)}


def _evaluate(encoder, ds, out_dir: Path, settings, domain_of, *, name, batch_size, cache_dir, use_cache, fingerprint,
              run_depth, write_runs, preference_k, show_progress_bar) -> dict:  # fmt: skip
    """The body of :func:`evaluate_lareqa`, writing into ``out_dir`` (a staging folder swapped in afterwards)."""
    t_start = time.perf_counter()
    settings = _check_settings(settings)
    if run_depth is not None and int(run_depth) < 1:
        raise EvaluationError(f"run_depth must be >= 1 or None, got {run_depth}")
    if preference_k < 1:
        raise EvaluationError(f"preference_k must be >= 1, got {preference_k}")
    questions, candidates = ds.questions.reset_index(drop=True), ds.candidates.reset_index(drop=True)
    if questions.empty or candidates.empty:
        raise EvaluationError(f"{ds.name}: no questions or no candidates to evaluate ({ds.languages})")
    domains = None
    if domain_of is not None:
        unknown = sorted(set(questions.article) - set(domain_of))
        if unknown:
            raise EvaluationError(f"domain_of lacks {len(unknown)} article(s) of {ds.name}, e.g. {unknown[:3]}")
        domains = questions.article.map(domain_of).to_numpy()
    label = name or model_name(encoder)

    # --- encode: every text once, reused by every setting
    t0 = time.perf_counter()
    fp = model_fingerprint(encoder, fingerprint)
    t_fingerprint = time.perf_counter() - t0
    t0 = time.perf_counter()
    enc_stats: dict = {}
    kw = {
        "batch_size": batch_size,
        "cache_dir": cache_dir,
        "show_progress_bar": show_progress_bar,
        "use_cache": use_cache,
        "fingerprint": fp,
        "stats": enc_stats,
    }
    q_emb = encode_cached(encoder, questions.text.tolist(), "query", **kw)
    c_emb = encode_cached(encoder, candidates.text.tolist(), "passage", **kw)
    if q_emb.shape[1] != c_emb.shape[1]:
        raise EvaluationError(f"query dim {q_emb.shape[1]} != passage dim {c_emb.shape[1]}")
    timings = {
        "fingerprint": t_fingerprint,
        "encode": time.perf_counter() - t0,
        "search": 0.0,
        "metric": 0.0,
        "write": 0.0,
    }

    langs = list(ds.languages)
    pool = _Pool(candidates, langs)
    ranker = _Ranker(ds, pool, np.ascontiguousarray(c_emb[pool.rows]), timings)
    pool_size = len(pool.cids)
    depth = pool_size if run_depth is None else max(int(run_depth), preference_k)
    run_settings = _run_settings(write_runs, settings)
    rows: dict[str, list[np.ndarray]] = {}
    top_rows: list[pd.DataFrame] = []
    q_lang, q_ids = questions.lang.to_numpy(), questions.qid.to_numpy()
    with contextlib.ExitStack() as stack:
        writer = _RunWriter(stack, out_dir, run_settings, label) if run_settings else None
        for x, lang in enumerate(tqdm(langs, desc="rank", disable=not show_progress_bar)):
            q_idx = np.flatnonzero(q_lang == lang)
            for lo in range(0, len(q_idx), _CHUNK):
                chunk = q_idx[lo : lo + _CHUNK]
                ch = ranker.rank(q_emb[chunk], q_ids[chunk])
                t = time.perf_counter()
                base = {
                    "qid": ch["qids"],
                    "query_lang": lang,
                    "group": questions.group.to_numpy()[chunk],
                    "article": questions.article.to_numpy()[chunk],
                }
                if domains is not None:
                    base["domain"] = domains[chunk]
                no_distance = np.full(len(chunk), np.nan)
                for setting, y, pool_lang in _pair_settings(settings, langs, x):
                    m = ap_recall(np.where(ch["rel_seg"] == y, ch["pair_rank"], np.nan))
                    _add_rows(rows, base, pool_lang=pool_lang, setting=setting, **m, rank_distance=no_distance)
                if "multi" in settings:
                    m = ap_recall(ch["multi_rank"])
                    m["rank_distance"] = bias.rank_distance([r[np.isfinite(r)].astype(int) for r in ch["multi_rank"]])
                    _add_rows(rows, base, pool_lang="multi", setting="multi", **m)
                timings["metric"] += time.perf_counter() - t

                pools = [("multi", None, "multi")] if "multi" in settings else []
                pools += [p for p in _pair_settings(settings, langs, x) if p[0] in run_settings]
                for setting, y, pool_lang in pools:
                    write = setting in run_settings
                    q_rows, lists = ranker.ranked_lists(ch, y, depth if write else preference_k, extend=write)
                    if setting == "multi":
                        tops = np.concatenate([idx[:preference_k] for idx in lists])
                        top_rows.append(
                            pd.DataFrame({"query_lang": lang, "cand_lang": pool.frame.lang.to_numpy()[tops]})
                        )
                    if not write:
                        continue
                    t = time.perf_counter()
                    suffix = "" if setting == "multi" else f"@{pool_lang}"
                    for i, idx in zip(q_rows, lists, strict=True):
                        rel = ch["rel"][i][(ch["rel"][i] >= 0) & ((ch["rel_seg"][i] == y) if y is not None else True)]
                        writer.write(
                            setting, f"{ch['qids'][i]}{suffix}", pool.cids[idx], ch["scores"][i, idx], pool.cids[rel]
                        )
                    timings["write"] += time.perf_counter() - t

    # --- tables and macro metrics
    t = time.perf_counter()
    per_query = pd.DataFrame({k: np.concatenate(v) for k, v in rows.items()})
    first = ["qid", "query_lang", "pool_lang", "setting", "ap", "r1", "r10", "n_relevant", "first_rank"]
    per_query = per_query[[*first, "rank_distance", "group", "article", *(["domain"] if domains is not None else [])]]
    skipped = per_query.n_relevant == 0
    n_skipped = per_query[skipped].groupby(["query_lang", "pool_lang"]).size()
    per_query = per_query[~skipped].reset_index(drop=True)
    per_query = per_query.astype({"n_relevant": int, "first_rank": int})
    per_pair = _per_pair(per_query, langs, settings, n_skipped, pool)
    metrics = _macro_metrics(per_query, per_pair, settings)
    if domains is not None:
        metrics["map_by_domain"] = _map_by_domain(per_query)
    preference = None
    if top_rows:
        preference = bias.language_preference(pd.concat(top_rows, ignore_index=True), pool.frame.lang)
        own = preference[preference.query_lang == preference.cand_lang]
        metrics["own_language_preference"] = {r.query_lang: float(r.preference) for r in own.itertuples()}
        metrics["preference_k"] = int(preference_k)
    timings["metric"] += time.perf_counter() - t

    t = time.perf_counter()
    files: dict = {"per_query": "per_query.parquet", "per_pair": "per_pair.parquet"}
    io.write_parquet(out_dir / "per_query.parquet", per_query)
    io.write_parquet(out_dir / "per_pair.parquet", per_pair)
    if preference is not None:
        files["language_preference"] = "language_preference.parquet"
        io.write_parquet(out_dir / "language_preference.parquet", preference)
    if writer is not None:
        files["runs"] = {s: p["run"] for s, p in writer.paths.items()}
        files["qrels"] = {s: p["qrels"] for s, p in writer.paths.items()}
    timings["write"] += time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_start
    metrics = {
        "model": label,
        "fingerprint": fp,
        "dataset": ds.name,
        "languages": langs,
        "settings": list(settings),
        "batch_size": batch_size,  # int8 backends' embeddings depend on their batch-mates: record it
        **metrics,
        "pool_sizes": dict(zip(langs, np.diff(pool.bounds).tolist(), strict=True)) | {"multi": pool_size},
        "files": files,
        "run_cut": _run_cut(writer, run_depth, pool_size),
        "ties": TIES,
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "encoding": enc_stats,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    io.write_json(out_dir / "metrics.json", metrics)
    return metrics


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


def _run_cut(writer: _RunWriter | None, run_depth: int | None, pool_size: int) -> dict:
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
    sizes = dict(zip(langs, np.diff(pool.bounds).tolist(), strict=True)) | {"multi": len(pool.cids)}
    table["pool_size"] = table.pool_lang.map(sizes).astype(int)
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
            _check_unit_interval(f"{s}_{metric}", out[f"{s}_{metric}"])
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


# ------------------------------------------------------------------------------------------------ re-scoring


_RUN_COLUMNS = ["qid", "q0", "docid", "rank", "score", "tag"]
_RUN_DTYPES = {"qid": str, "q0": str, "docid": str, "rank": np.int64, "score": np.float64, "tag": str}


def iter_trec_run(path: str | Path, block_lines: int = 2_000_000) -> Iterator[pd.DataFrame]:
    """A TREC run file (optionally .gz) in blocks of whole queries: tables of qid, docid, rank, score.

    Streaming keeps memory bounded on runs of tens of millions of lines; a query's lines must be contiguous
    (as in the files written here), else an error names the query.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"run file {path} does not exist")
    seen: set[str] = set()
    carry = None
    try:
        reader = pd.read_csv(
            path,
            sep=" ",
            header=None,
            names=_RUN_COLUMNS,
            dtype=_RUN_DTYPES,
            keep_default_na=False,
            engine="c",
            chunksize=block_lines,
        )
        for chunk in reader:
            chunk = chunk[["qid", "docid", "rank", "score"]]
            if carry is not None:
                chunk = pd.concat([carry, chunk], ignore_index=True)
            last = chunk.qid.iloc[-1]
            done, carry = chunk[chunk.qid != last], chunk[chunk.qid == last]
            if len(done):
                yield _check_contiguous(done, seen, path)
    except (ValueError, pd.errors.ParserError) as exc:
        raise EvaluationError(f"{path}: not a TREC run (qid Q0 docid rank score tag): {exc}") from exc
    if carry is not None and len(carry):
        yield _check_contiguous(carry, seen, path)


def _check_contiguous(block: pd.DataFrame, seen: set[str], path: Path) -> pd.DataFrame:
    qids = set(block.qid.unique())
    again = qids & seen
    if again:
        raise EvaluationError(f"{path}: the lines of query {sorted(again)[0]!r} are not contiguous")
    seen |= qids
    return block


def read_trec_run(path: str | Path) -> pd.DataFrame:
    """A whole TREC run file (optionally .gz) as one table qid, docid, rank, score."""
    blocks = list(iter_trec_run(path))
    return pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame(columns=["qid", "docid", "rank", "score"])


def read_trec_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """TREC qrels ``qid iter docid rel`` -> {qid: {docid: rel}}; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"qrels file {path} does not exist")
    qrels: dict[str, dict[str, int]] = {}
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise EvaluationError(f"{path}:{lineno}: expected 'qid iter docid relevance', got {line.strip()!r}")
            try:
                rel = int(parts[3])
            except ValueError as exc:
                raise EvaluationError(f"{path}:{lineno}: relevance {parts[3]!r} is not an integer") from exc
            qrels.setdefault(parts[0], {})[parts[2]] = rel
    return qrels


def independent_rescore(out_dir: str | Path, tolerance: float = 1e-4, check: bool = True) -> dict:
    """Recompute AP, R@1, R@10 (pytrec_eval) and rank distance from the TREC files of an evaluation.

    Compares per query with ``per_query.parquet`` and the macro means with ``metrics.json``; returns
    {setting: {n_queries, max_abs_diff per metric, macro values}} and ``agrees``. With ``check`` an
    :class:`EvaluationError` is raised when any difference exceeds ``tolerance``.
    """
    import pytrec_eval

    out_dir = Path(out_dir)
    metrics = io.read_json(out_dir / "metrics.json")
    files = metrics.get("files", {})
    if "runs" not in files:
        raise EvaluationError(f"{out_dir}: this evaluation wrote no run files (write_runs=False)")
    per_query = pd.read_parquet(out_dir / files["per_query"])
    report: dict = {"agrees": True}
    for setting, run_file in files["runs"].items():
        qrels = read_trec_qrels(out_dir / files["qrels"][setting])
        ours = per_query[per_query.setting == setting]
        key = ours.qid if setting == "multi" else ours.qid + "@" + ours.pool_lang
        ours = ours.assign(key=key.to_numpy()).set_index("key")
        rescored, distances = {}, []
        # Block by block (whole queries): a full run as nested dicts would need several GB.
        for block in iter_trec_run(out_dir / run_file):
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
    ordered = run.sort_values(["qid", "score", "docid"], ascending=[True, False, False], kind="stable")
    ordered = ordered.assign(pos=ordered.groupby("qid").cumcount() + 1)
    pairs = [(q, d) for q, docs in qrels.items() for d, r in docs.items() if r > 0]
    rel = pd.DataFrame(pairs, columns=["qid", "docid"])
    hits = ordered.merge(rel, on=["qid", "docid"])
    spread = hits.groupby("qid").pos.agg(["min", "max", "size"])
    return (spread["max"] - spread["min"]).where(spread["size"] >= 2).astype(float)
