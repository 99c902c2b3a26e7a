"""Clash-free batch filling under ``HybridBatchSampler``: which rows may share a batch, and how one is filled.

Kept apart from the sampler because none of it knows languages, domains or alpha: a row is an integer, the
no-false-negative rule is a list of integer keys per row, and a pool is one or more streams of rows (the rows one
batch option draws from, not a domain training pool of :mod:`domains.pools`).

* :func:`answer_units` and :func:`clash_keys` turn the pairs table into those keys (an answer unit joins the
  groups that share an answer sentence, so a translation of a query's own answer is never its negative).
* :class:`Clash` is the rule for one batch: every key value (answer unit, query text, ...) at most once.
* :class:`Stream` serves one pool's rows as reshuffled passes; a row that clashes with the batch waits for the next.
* :class:`PoolFiller` fills a batch from several streams by weight (the domains of one option).
* :func:`greedy_fill` is the construction-time probe: can a pool fill one batch at all?
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
import pandas as pd

from hybridir_utils.columns import GROUP, PASSAGE


def answer_units(table: pd.DataFrame, group_column: str = GROUP, passage_column: str = PASSAGE) -> np.ndarray:
    """Per row, a component id joining groups that share any answer text (connected components)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    groups, _ = pd.factorize(table[group_column], sort=True)
    passages, _ = pd.factorize(table[passage_column], sort=True)
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    n_nodes = n_groups + (int(passages.max()) + 1 if len(passages) else 0)
    # Bipartite graph group -- passage text: groups reachable through a shared sentence form one unit.
    graph = coo_matrix((np.ones(len(groups)), (groups, passages + n_groups)), shape=(n_nodes, n_nodes))
    _, labels = connected_components(graph, directed=False)
    return labels[groups]


def clash_keys(
    table: pd.DataFrame, keep: np.ndarray, group_column: str, passage_column: str, key_columns: list[str], link: bool
) -> list[list[int]]:
    """Integer keys per row for the per-batch clash test: the answer unit, then one per column of ``key_columns``.

    Units from the rows that can be drawn only: a link through a filtered-out language would merge groups whose
    drawable passages never coincide. ``link=False`` makes every group its own unit.
    """
    unit = np.full(len(table), -1, dtype=np.int64)
    kept = table[keep]
    if link:
        unit[keep] = answer_units(kept, group_column, passage_column)
    else:
        unit[keep] = pd.factorize(kept[group_column])[0]
    return [unit.tolist()] + [pd.factorize(table[c])[0].tolist() for c in key_columns]


class Stream:
    """The rows of one pool, served as reshuffled passes; rows clashing with the current batch wait for the next."""

    __slots__ = ("order", "rows")

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self.order: deque[int] = deque()

    def take(self, rng: np.random.Generator, fits: Callable[[int], bool]) -> int | None:
        """The next row that ``fits``, or None when two fresh passes hold none (the pool cannot extend the batch)."""
        order, deferred, passes, found = self.order, [], 0, None
        while True:
            if not order:
                if passes == 2:
                    break
                order.extend(rng.permutation(self.rows).tolist())
                passes += 1
            row = order.popleft()
            if fits(row):
                found = row
                break
            deferred.append(row)
        order.extendleft(reversed(deferred))
        return found


def shared_text_keys(table: pd.DataFrame, columns: list[str]) -> list[frozenset[int]]:
    """Per row, the ids of its texts in ``columns`` (the positive, then hard negatives) in one id space: a text that
    is one row's negative and another's positive gets one id, so :class:`Clash` keeps them apart."""
    ids = pd.factorize(pd.concat([table[c].astype(str) for c in columns], ignore_index=True))[0]
    per_column = ids.reshape(len(columns), len(table))
    return [frozenset(per_column[:, row].tolist()) for row in range(len(table))]


class Clash:
    """The no-false-negative rule for one batch: each row has integer keys (answer unit, query and passage text,
    unique columns) and a batch holds every key value at most once; with ``shared`` (per row, the ids of its
    positive and hard-negative texts) no text appears twice across those columns either."""

    __slots__ = ("keys", "shared", "shared_used", "used")

    def __init__(self, keys: list[list[int]], shared: list[frozenset[int]] | None = None) -> None:
        self.keys, self.used = keys, [set() for _ in keys]
        self.shared, self.shared_used = shared, set()

    def fits(self, row: int) -> bool:
        return all(k[row] not in u for k, u in zip(self.keys, self.used, strict=True)) and (
            self.shared is None or self.shared_used.isdisjoint(self.shared[row])
        )

    def add(self, row: int) -> None:
        for k, u in zip(self.keys, self.used, strict=True):
            u.add(k[row])
        if self.shared is not None:
            self.shared_used.update(self.shared[row])


def greedy_fill(keys: list[list[int]], rows: np.ndarray, need: int, shared=None) -> int:
    """How many of ``rows``, taken in order, fit one batch together (at most ``need``): the feasibility probe."""
    clash, count = Clash(keys, shared), 0
    for row in rows.tolist():
        if clash.fits(row):
            clash.add(row)
            count += 1
            if count == need:
                break
    return count


class PoolFiller:
    """Fills batches from one pool's streams (one per domain when domains steer the draw): each slot picks a
    stream by weight, and a stream that cannot extend the batch drops out for the rest of it."""

    def __init__(self, streams: list[Stream], weights: np.ndarray) -> None:
        self.streams, self.weights = streams, np.asarray(weights, dtype=float)

    def fill(self, rng: np.random.Generator, need: int, clash: Clash) -> list[int]:
        """Up to ``need`` clash-free rows (fewer only when every stream is blocked)."""
        streams = self.streams
        weights = np.where(self.weights > 0, self.weights, 0.0)
        slots = rng.choice(len(streams), size=need, p=weights / weights.sum()) if len(streams) > 1 else [0] * need
        rows: list[int] = []
        for slot in slots:
            index = int(slot)
            while True:
                row = streams[index].take(rng, clash.fits)
                if row is not None:
                    break
                weights[index] = 0.0  # this stream cannot extend this batch: redraw among the others
                if not weights.any():
                    return rows
                index = int(rng.choice(len(streams), p=weights / weights.sum()))
            rows.append(row)
            clash.add(row)
        return rows
