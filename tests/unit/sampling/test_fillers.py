"""Batch-filling mechanics under the sampler: streams defer (never drop) clashing rows, the clash rule, filling."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hybridir_utils.sampling.fillers import Clash, PoolFiller, Stream, answer_units, clash_keys, greedy_fill


def test_answer_units_join_groups_through_shared_answers_among_drawable_rows_only():
    table = pd.DataFrame(
        {
            "group": ["g0", "g0", "g1", "g1", "g2"],
            "passage": ["p0-en", "p0-de", "p0-en", "p1-de", "p2-en"],  # g1 asks about g0's answer sentence
            "query": ["q0-en", "q0-de", "q1-en", "q1-de", "q2-en"],
            "lang": ["en", "de", "en", "de", "en"],
        }
    )
    units = answer_units(table)
    assert units[0] == units[2] != units[4]
    keep = (table.lang == "de").to_numpy()  # the shared sentence is English: without it g0 and g1 are apart
    linked = clash_keys(table, keep, "group", "passage", ["query"], link=True)
    assert linked[0] == [-1, 0, -1, 1, -1]  # rows that cannot be drawn get no unit
    assert linked[1] == pd.factorize(table["query"])[0].tolist()
    assert clash_keys(table, np.ones(5, bool), "group", "passage", [], link=False) == [[0, 0, 1, 1, 2]]


def test_clash_holds_every_key_value_once():
    clash = Clash([[0, 0, 1, 2], [5, 6, 7, 5]])  # rows 0/1 share key 0, rows 0/3 share key 1
    clash.add(0)
    assert [clash.fits(r) for r in range(4)] == [False, False, True, False]


def test_stream_serves_each_row_once_per_pass_and_defers_clashing_rows():
    rows = np.arange(10)
    stream, rng = Stream(rows), np.random.default_rng(0)
    served = [stream.take(rng, lambda r: True) for _ in range(10)]
    assert sorted(served) == list(range(10))  # one pass: every row once
    pass_order = np.random.default_rng(5).permutation(rows).tolist()
    stream = Stream(rows)
    assert stream.take(np.random.default_rng(5), lambda r: r == 9) == 9
    skipped = pass_order[: pass_order.index(9)]
    assert list(stream.order) == skipped + pass_order[pass_order.index(9) + 1 :]  # skipped rows first, in order


def test_stream_gives_up_after_two_passes_without_a_fitting_row():
    stream = Stream(np.arange(5))
    assert stream.take(np.random.default_rng(1), lambda r: False) is None
    assert sorted(stream.order) == sorted(list(range(5)) * 2)  # both passes kept for later batches, none dropped


def test_greedy_fill_counts_compatible_rows_up_to_need():
    keys = [[0, 0, 1, 2, 3]]
    assert greedy_fill(keys, np.array([0, 1, 2, 3, 4]), 10) == 4
    assert greedy_fill(keys, np.array([0, 1, 2, 3, 4]), 2) == 2


def test_pool_filler_redraws_when_a_stream_is_blocked():
    keys = [[0, 0, 0, 1, 2, 3, 4, 5]]  # stream A (rows 0-2) can give one row per batch, stream B (3-7) five
    filler = PoolFiller([Stream(np.arange(3)), Stream(np.arange(3, 8))], np.array([10.0, 1.0]))
    rows = filler.fill(np.random.default_rng(2), 4, Clash(keys))
    assert len(rows) == 4 and sum(r < 3 for r in rows) == 1
    assert len(set(keys[0][r] for r in rows)) == 4
    short = PoolFiller([Stream(np.arange(3))], np.array([1.0])).fill(np.random.default_rng(3), 2, Clash(keys))
    assert len(short) == 1  # every stream blocked: fewer rows, the caller decides


def test_pool_filler_never_draws_a_zero_weight_stream():
    filler = PoolFiller([Stream(np.arange(5)), Stream(np.arange(5, 10))], np.array([0.0, 1.0]))
    rows = filler.fill(np.random.default_rng(4), 5, Clash([list(range(10))]))
    assert sorted(rows) == list(range(5, 10))
