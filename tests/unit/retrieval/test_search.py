"""Ranking and metric primitives (:mod:`retrieval.search`): hand cases, trec_eval's tie rule, FAISS, and a
property test against pytrec_eval on rankings full of ties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridir_utils.errors import EvaluationError
from hybridir_utils.retrieval import search


def test_ap_recall_hand_cases():
    m = search.ap_recall(np.array([[1, 3], [2, np.nan], [np.nan, np.nan], [12, 11]]))
    assert m["ap"][0] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert m["ap"][1] == pytest.approx(0.5)
    assert math.isnan(m["ap"][2]) and m["n_relevant"][2] == 0
    assert m["ap"][3] == pytest.approx((1 / 11 + 2 / 12) / 2)  # ranks are sorted before precision is taken
    np.testing.assert_allclose(m["r1"][:2], [0.5, 0.0])
    np.testing.assert_allclose(m["r10"][[0, 1, 3]], [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(m["first_rank"][[0, 1, 3]], [1, 2, 11])


def test_ordering_and_ranks_break_ties_by_descending_id():
    # candidates a..e (tie keys 0..4); three share score 0.5: trec_eval orders them d, c, a
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1]], dtype=np.float32)
    tie = np.arange(5)
    np.testing.assert_array_equal(search.ordered_prefix(scores, tie, 5)[0], [1, 3, 2, 0, 4])
    np.testing.assert_array_equal(search.ordered_prefix(scores, tie, 2)[0], [1, 3])  # the cut falls inside the tie
    above = search.ranks_of(scores, tie, np.array([[0, 2, 3, -1]]), bounds=np.array([0, 2, 5]))
    assert above.sum(axis=2)[0].tolist() == [3, 2, 1, 0]  # ranks 4, 3, 2; padding counts nothing
    assert above[0, 0].tolist() == [1, 2]  # above 'a': b in segment 0, c and d in segment 1


def test_faiss_flat_search_matches_exhaustive_order():
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((300, 16)).astype(np.float32)
    queries = rng.standard_normal((20, 16)).astype(np.float32)
    _, ids = search.faiss_search(queries, docs, 10)
    np.testing.assert_array_equal(ids, search.ordered_prefix(queries @ docs.T, np.arange(300), 10))
    _, ann = search.faiss_search(queries, docs, 10, index="hnsw")
    assert search.ann_recall(ids, ann) > 0.9
    with pytest.raises(EvaluationError, match="unknown index"):
        search.faiss_search(queries, docs, 10, index="ivf")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 4), min_size=2, max_size=12).flatmap(
        lambda s: st.tuples(st.just(s), st.lists(st.booleans(), min_size=len(s), max_size=len(s)))
    )
)
def test_ranks_and_ap_agree_with_pytrec_eval(case):
    """Property: on any ranking (small integer scores: many ties) our AP/R@k equal trec_eval's."""
    import pytrec_eval

    values, rel = case
    if not any(rel):
        rel[0] = True
    scores = np.array([values], dtype=np.float32)
    docids = [f"d{i:02d}" for i in range(len(values))]
    targets = np.array([[i for i, r in enumerate(rel) if r]])
    ranks = search.ranks_of(scores, np.arange(len(values)), targets, np.array([0, len(values)])).sum(axis=2) + 1
    ours = search.ap_recall(ranks.astype(float))
    qrels = {"q": {d: 1 for d, r in zip(docids, rel, strict=True) if r}}
    run = {"q": {d: float(v) for d, v in zip(docids, values, strict=True)}}
    theirs = pytrec_eval.RelevanceEvaluator(qrels, {"map", "recall.1,10"}).evaluate(run)["q"]
    assert ours["ap"][0] == pytest.approx(theirs["map"], abs=1e-12)
    assert ours["r1"][0] == pytest.approx(theirs["recall_1"])
    assert ours["r10"][0] == pytest.approx(theirs["recall_10"])


def test_ap_outside_unit_interval_is_refused():
    """Issue 12 defect 4: AP and mAP lie in [0, 1] by construction; broken (duplicate) ranks must not score 1.5."""
    with pytest.raises(EvaluationError, match=r"AP 1\.5 outside \[0, 1\]"):
        search.ap_recall(np.array([[1, 1]]))


# ---------------------------------------------------------------------------------------------- on a GPU (torch)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12))
def test_torch_ranks_and_prefixes_equal_numpy_on_the_same_scores(seed, depth):
    """Property: given the same scores (small integers: many ties, inside the top k and at its cut), the device
    path counts and orders exactly as numpy, padding included (run here on the CPU: the code is the GPU's)."""
    import torch

    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 5, (7, 23)).astype(np.float32)
    tie = rng.permutation(23)
    targets = np.where(rng.random((7, 4)) < 0.2, -1, rng.integers(0, 23, (7, 4)))
    bounds = np.array([0, 5, 6, 17, 23])
    on_device = torch.from_numpy(scores.copy())
    np.testing.assert_array_equal(
        search.ranks_of_torch(on_device, tie, targets, bounds), search.ranks_of(scores, tie, targets, bounds)
    )
    np.testing.assert_array_equal(
        search.ordered_prefix_torch(on_device, tie, depth), search.ordered_prefix(scores, tie, depth)
    )


def test_device_inner_products_stay_fp32_under_autocast():
    """The scoring matmul ignores an enclosing bf16 autocast (notebook 04 encodes under one): bf16 scores keep ~3
    digits and would invent ties."""
    import torch

    rng = np.random.default_rng(0)
    q, d = rng.standard_normal((5, 64)).astype(np.float32), rng.standard_normal((9, 64)).astype(np.float32)
    docs = torch.from_numpy(d)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = search.inner_products_torch(q, docs)
    assert inside.dtype == torch.float32
    np.testing.assert_allclose(inside.numpy(), q @ d.T, rtol=1e-5, atol=1e-5)
    assert torch.get_float32_matmul_precision() == "highest"  # restored (it was highest here)
