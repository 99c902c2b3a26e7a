"""Search and ranking over L2-normalised embeddings: FAISS top-k, exact ranked prefixes and ranks under the tie rule
of :mod:`retrieval.trec`, and AP / Recall@k from the ranks of relevant items.

The score is the inner product (cosine; the number FAISS ``IndexFlatIP`` computes). Ties (equal float32 scores, e.g.
duplicate texts) are broken by candidate id, descending: ``tie_key`` is each candidate's position in ascending id
order (:func:`retrieval.trec.tie_key`). Ranks are 1-based. AP = mean over the relevant candidates of precision
at their ranks; Recall@k = share of relevant in the top k.
"""

from __future__ import annotations

import numpy as np

from hybridir_utils.errors import EvaluationError


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
    import faiss  # heavy optional dependency: only MIRACL's dense search needs it

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
    check_unit_interval("AP", ap)
    return {"ap": ap, "r1": r1, "r10": r10, "first_rank": first, "n_relevant": n}


def check_unit_interval(what: str, values) -> None:
    """AP and mAP lie in [0, 1] by construction; a value outside means broken ranks, never a result."""
    values = np.asarray(values, dtype=float)
    bad = values[np.isfinite(values) & ((values < 0) | (values > 1 + 1e-9))]
    if bad.size:
        raise EvaluationError(
            f"{what} {float(bad[0]):g} outside [0, 1]: the ranks are broken (duplicate or invalid ranks)"
        )


# ---------------------------------------------------------------------------------------------- on a GPU
# The same ranks on the device that encoded (a GPU), so that scoring a 13k x 13k pool costs milliseconds there
# instead of seconds of host CPU per system. Scores are full-fp32 inner products (no autocast, no TF32: either
# would round scores to ~3 digits and invent ties); counts and prefixes follow the tie rule above exactly, given the
# same scores. On a CPU the evaluation keeps numpy (its BLAS rounds differently from torch's: committed numbers).


def inner_products_torch(queries: np.ndarray, docs):
    """``queries @ docs.T`` on the device of the torch tensor ``docs``, in full fp32."""
    import torch

    q = torch.as_tensor(np.ascontiguousarray(queries, dtype=np.float32), device=docs.device)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        with torch.autocast(docs.device.type, enabled=False):
            return q @ docs.float().T
    finally:
        torch.set_float32_matmul_precision(previous)


def ranks_of_torch(scores, tie_key: np.ndarray, targets: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """:func:`ranks_of` of a torch ``scores`` tensor, computed where it lives; returns the same int64 array."""
    import torch

    dev = scores.device
    tie = torch.as_tensor(np.asarray(tie_key, dtype=np.int64), device=dev)
    tgt = torch.as_tensor(np.asarray(targets, dtype=np.int64), device=dev)
    edges = torch.as_tensor(np.asarray(bounds, dtype=np.int64), device=dev)
    rows = torch.arange(scores.shape[0], device=dev)
    out = torch.zeros((*tgt.shape, len(bounds) - 1), dtype=torch.int64, device=dev)
    for j in range(tgt.shape[1]):
        col = tgt[:, j].clamp(min=0)
        t_score = scores[rows, col][:, None]
        above = (scores > t_score) | ((scores == t_score) & (tie[None, :] > tie[col][:, None]))
        above &= (tgt[:, j] >= 0)[:, None]
        count = torch.nn.functional.pad(above.to(torch.int32).cumsum(dim=1), (1, 0))  # count[:, c] = above before c
        out[:, j, :] = count[:, edges[1:]] - count[:, edges[:-1]]
    return out.cpu().numpy()


def ordered_prefix_torch(scores, tie_key: np.ndarray, depth: int) -> np.ndarray:
    """:func:`ordered_prefix` of a torch ``scores`` tensor: ``topk`` on its device; a row whose top ``depth`` + 1
    scores hold a tie (where ``topk``'s order is arbitrary) is redone on the host under the tie rule."""
    import torch

    n = scores.shape[1]
    depth = min(int(depth), n)
    values, idx = torch.topk(scores, min(depth + 1, n), dim=1, largest=True, sorted=True)
    tied = (values[:, 1:] == values[:, :-1]).any(dim=1).nonzero().flatten().cpu().numpy()
    out = idx[:, :depth].cpu().numpy()
    for i in tied:
        out[i] = ordered_prefix(scores[i].cpu().numpy(), tie_key, depth)[0]
    return out
