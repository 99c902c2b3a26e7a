"""Hybrid batch sampling (Elmahdy, Lin & Ahmad 2024, arXiv 2408.10536) for in-batch-negative training.

Every batch is *monolingual* with probability ``alpha`` (query and passage in one language, the language drawn
uniformly among the training languages) and *cross-lingual* otherwise (every pair has query language != passage
language). ``alpha=1`` is X-X-mono, ``alpha=0`` is X-Y, ``alpha=0.5`` the paper's hybrid (see ``PRESETS``).

Design
------
* **Metadata stays in the sampler.** SentenceTransformers hands every non-label dataset column to the loss, so the
  trainer's dataset holds only ``query``/``passage``; the sampler gets the full pairs table (languages, group, domain)
  through :meth:`HybridBatchSampler.factory` and checks that the dataset has the same rows in the same order.
* **No false negatives.** A batch holds at most one pair per *answer unit* and never repeats a query or passage
  text. An answer unit is a parallel group, merged with every group that shares an answer sentence with it
  (XQuAD-R has many questions on one sentence): otherwise a cross-lingual batch could hold a translation of a
  query's own answer as a "negative".
* **Pools.** Rows are split into streams by (monolingual language | cross-lingual) and, with domain options, by
  domain. Each stream serves reshuffled passes of its rows; a row that would clash with the batch is deferred to
  the next batch, not dropped (answer units, clash rule, streams and filling: :mod:`sampling.fillers`).
  Batches are always full (a short batch would change the number of negatives), so ``drop_last`` only decides
  whether the epoch length rounds the row count down or up.
* **Epoch.** ``len()`` is the number of pairs the chosen ``alpha`` can reach divided by the global batch size
  (``steps_per_epoch=`` overrides). Streams are independent, so with ``alpha=0.5`` the smaller monolingual pools
  are revisited within an epoch, as in the paper, which trains for a number of steps.
* **Distributed.** Every rank draws the same *global* sequence from ``(seed, epoch)``. A global step is one
  ``batch_size * world_size`` block of mutually compatible rows, so all ranks in a step share the batch type,
  language and domain, and no group appears twice across ranks (safe even with cross-device negatives). With
  ``shard=False`` (default, what ``SentenceTransformerTrainer`` needs) the sampler yields the ``world_size`` batches
  of each step one after the other and accelerate's ``BatchSamplerShard`` hands batch ``k`` to rank
  ``k % world_size``; with ``shard=True`` (a plain ``DataLoader`` under torchrun) it yields only this rank's batch.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sentence_transformers.base.sampler import DefaultBatchSampler

from hybridir_utils.columns import DOMAIN, GROUP, PASSAGE, PASSAGE_LANG, QUERY, QUERY_LANG
from hybridir_utils.errors import SamplerConfigError
from hybridir_utils.sampling.alpha import resolve_alpha
from hybridir_utils.sampling.fillers import Clash, PoolFiller, Stream, clash_keys, greedy_fill, shared_text_keys
from hybridir_utils.sampling.validation import check_same_rows, checked_table, rows_table, user_index

log = logging.getLogger(__name__)
MONO, CROSS = "mono", "cross"
# Greedy orders tried when checking that a pool can fill one global batch (see fillers.greedy_fill).
_FEASIBILITY_TRIES = 3


@dataclass(frozen=True)
class BatchInfo:
    """What one batch is: global step, ``mono``/``cross``, language (mono only), domain (homogeneous only), rank."""

    step: int
    kind: str
    language: str | None
    domain: str | None
    rank: int


def distributed_info() -> tuple[int, int]:
    """(world_size, rank) of the initialised process group, else from torchrun's environment, else (1, 0)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0))


def _placement(world_size: int | None, rank: int | None) -> tuple[int, int]:
    """(world_size, rank) as given, else as detected by :func:`distributed_info`; the rank must be in range."""
    detected_world, detected_rank = distributed_info()
    world_size = int(world_size if world_size is not None else detected_world)
    rank = int(rank if rank is not None else detected_rank)
    if world_size < 1 or not 0 <= rank < world_size:
        raise SamplerConfigError(f"rank {rank} is not in [0, world_size={world_size})")
    return world_size, rank


Option = tuple[str, str, str | None]  # (kind, language ("" for cross), domain or None): what one step draws from


class HybridPolicy:
    """What each global step draws: monolingual with probability ``alpha`` (its language uniform among
    ``languages``), cross-lingual otherwise; with ``weights`` (domain-homogeneous batches) one domain option of
    that kind and language, with probability proportional to its weight."""

    def __init__(self, alpha: float, languages: Sequence[str], options: Sequence[Option], weights=None) -> None:
        self.alpha, self.languages, self.weights = alpha, list(languages), weights
        self.options: dict[tuple[str, str], list[Option]] = {}
        for option in options:
            self.options.setdefault(option[:2], []).append(option)

    def choose(self, rng: np.random.Generator) -> Option:
        # One uniform draw per step whatever alpha is, so the rest of the sequence does not depend on it.
        if rng.random() < self.alpha:
            kind, lang = MONO, self.languages[int(rng.integers(len(self.languages)))]
        else:
            kind, lang = CROSS, ""
        if self.weights is None:
            return kind, lang, None
        options = self.options[(kind, lang)]
        weights = np.array([self.weights[o] for o in options])
        return options[int(rng.choice(len(options), p=weights / weights.sum()))]


class HybridBatchSampler(DefaultBatchSampler):
    """Batches that are monolingual with probability ``alpha``, cross-lingual otherwise; see the module docstring.

    Args:
        dataset: what the trainer iterates (same rows, same order as ``pairs``). Without ``pairs`` it must itself
            hold the metadata columns (a pairs ``DataFrame`` or a 🤗 ``Dataset``).
        batch_size: pairs per batch on one device.
        drop_last: round the epoch length down (True) or up (False); batches are always full.
        valid_label_columns, generator: accepted for SentenceTransformers; unused (the draw is seeded by
            ``(seed, epoch)`` so every rank agrees without sharing torch RNG state).
        seed: base seed; ``set_epoch`` changes the draw.
        pairs: the training-pairs table (``data.training_pairs`` columns, optionally a domain column).
        alpha / preset: mono-batch probability, or a name from ``PRESETS`` (default: hybrid, 0.5).
        languages: training languages (rows whose query or passage language is outside are dropped); default all.
        domains: keep only pairs of these domains. domain_weights: {domain: weight >= 0}; a pair of weight 2 is
            drawn twice as often as one of weight 1 (missing domains weigh 1). domain_homogeneous: each batch from
            one domain, drawn with probability proportional to weight x pairs. domain_column: the domain column.
        unique_columns: columns whose values may not repeat within a global batch (besides the answer unit).
        negative_columns: hard-negative text columns; their texts and the passages share one space, so no text is
            both one pair's negative and another's positive in a batch, and none repeats.
        link_shared_answers: merge groups sharing an answer sentence into one unit (recommended; see above).
        steps_per_epoch: global steps per epoch instead of the row-count default.
        world_size, rank: default from torch.distributed (or torchrun's environment). shard: see the module doc.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool = False,
        valid_label_columns: list[str] | None = None,
        generator: Any = None,
        seed: int | None = 0,
        *,
        pairs: pd.DataFrame | None = None,
        alpha: float | None = None,
        preset: str | None = None,
        languages: Sequence[str] | None = None,
        domains: Sequence[str] | None = None,
        domain_weights: Mapping[str, float] | None = None,
        domain_homogeneous: bool = False,
        domain_column: str = DOMAIN,
        query_column: str = QUERY,
        passage_column: str = PASSAGE,
        query_lang_column: str = QUERY_LANG,
        passage_lang_column: str = PASSAGE_LANG,
        group_column: str = GROUP,
        unique_columns: Sequence[str] | None = None,
        negative_columns: Sequence[str] = (),
        link_shared_answers: bool = True,
        steps_per_epoch: int | None = None,
        world_size: int | None = None,
        rank: int | None = None,
        shard: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise SamplerConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        super().__init__(
            dataset,
            batch_size=int(batch_size),
            drop_last=bool(drop_last),
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=0 if seed is None else int(seed),
        )
        self.alpha = resolve_alpha(alpha, preset)
        self.world_size, self.rank = _placement(world_size, rank)
        self.shard = bool(shard)
        self.domain_homogeneous = bool(domain_homogeneous)
        self.domain_column = domain_column

        labels = {query_lang_column: "language", passage_lang_column: "language", group_column: "group id"}
        self._refuse_trainer_metadata(dataset, pairs, shard, [*labels, domain_column])
        steered = domains is not None or domain_weights is not None or domain_homogeneous  # reads the domain column
        labels |= dict.fromkeys(unique_columns or [], "value") | ({domain_column: "domain"} if steered else {})
        table = self._metadata_table(dataset, pairs, [query_column, passage_column, *negative_columns], labels)
        self._keep = self._select_rows(
            table, (query_lang_column, passage_lang_column), languages, domains, domain_weights
        )
        key_columns = list(dict.fromkeys([query_column, passage_column, *(unique_columns or [])]))
        self._keys = clash_keys(table, self._keep, group_column, passage_column, key_columns, link_shared_answers)
        self._shared = shared_text_keys(table, [passage_column, *negative_columns]) if negative_columns else None
        self._build_pools()
        self._check_feasible()
        self.steps_per_epoch = self._epoch_length(steps_per_epoch)

    # ---------------------------------------------------------------- construction helpers
    @staticmethod
    def _refuse_trainer_metadata(dataset: Any, pairs: pd.DataFrame | None, shard: bool, columns: list[str]) -> None:
        """What the trainer builds from ``batch_sampler=HybridBatchSampler``: its collator would tokenise these."""
        leaking = [c for c in columns if c in (getattr(dataset, "column_names", None) or [])]
        if pairs is None and not shard and leaking:
            raise SamplerConfigError(
                f"dataset columns {leaking} would reach the loss as texts (the sentence-transformers trainer "
                "tokenises every non-label column): use hybridir_utils.sampling.HybridBatches(dataset, ...), whose "
                "train_dataset holds the texts only and whose batch_sampler keeps the metadata, or pass pairs="
            )

    def _select_rows(self, table: pd.DataFrame, lang_columns, languages, domains, domain_weights) -> np.ndarray:
        """The rows batches may draw: both languages among ``languages``, domain chosen and weighted above 0."""
        self._lang_columns = tuple(lang_columns)
        keep = self._language_mask(table, *lang_columns, languages) & self._domain_mask(table, domains, domain_weights)
        if not keep.any():
            raise SamplerConfigError(
                f"no row is left to draw batches from: none has both languages (columns {list(lang_columns)}) "
                f"among languages={list(self.languages)} and a domain among domains={domains} with a weight above "
                f"0 (domain_weights={dict(domain_weights) if domain_weights else None}): widen languages= or "
                "domains=, or check that those columns hold the codes you passed"
            )
        return keep

    def _language_mask(self, table: pd.DataFrame, query_lang_column: str, passage_lang_column: str, languages):
        """Rows whose query and passage languages are both training languages; sets ``languages``."""
        self._qlang = qlang = table[query_lang_column].astype(str).to_numpy()
        self._plang = plang = table[passage_lang_column].astype(str).to_numpy()
        keep = np.ones(len(table), dtype=bool)
        available = sorted(set(qlang) | set(plang))
        if languages is not None:
            languages = [languages] if isinstance(languages, str) else list(languages)
            unknown = [lang for lang in languages if lang not in available]
            if unknown or not languages:
                raise SamplerConfigError(f"languages= names {unknown or languages}, which no row holds (the rows' "
                                         f"languages: {available})")  # fmt: skip
            keep &= np.isin(qlang, languages) & np.isin(plang, languages)
        self.languages: tuple[str, ...] = tuple(sorted(languages) if languages is not None else available)
        return keep

    def _domain_mask(self, table: pd.DataFrame, domains, domain_weights) -> np.ndarray:
        """Rows of the chosen, positively weighted domains (every row without domain options); sets ``domains``
        and ``domain_weights``."""
        domain = table[self.domain_column].astype(str).to_numpy() if self.domain_column in table.columns else None
        self._domain = domain
        self.domains, self.domain_weights = self._check_domains(domain, domains, domain_weights)
        self._weighted = domain_weights is not None
        keep = np.ones(len(table), dtype=bool)
        if domains is not None:
            keep &= np.isin(domain, list(domains))
        if domain_weights is not None:
            keep &= np.isin(domain, [d for d, w in self.domain_weights.items() if w > 0])
        return keep

    def _epoch_length(self, steps_per_epoch: int | None) -> int:
        """Global steps per epoch: as given, else the pairs the chosen ``alpha`` can reach per global batch."""
        if steps_per_epoch is not None:
            if int(steps_per_epoch) < 1:
                raise SamplerConfigError(f"steps_per_epoch must be >= 1, got {steps_per_epoch!r}")
            return int(steps_per_epoch)
        n_rows = sum(len(self._pool_rows[o]) for o in self._options if self._option_prob_positive(o))
        per_step = self.batch_size * self.world_size
        return max(1, n_rows // per_step if self.drop_last else math.ceil(n_rows / per_step))

    @staticmethod
    def _metadata_table(dataset: Any, pairs: pd.DataFrame | None, texts: list[str], labels: dict[str, str]):
        """The metadata table, checked (:func:`validation.checked_table`: its labels as text); when ``pairs`` is
        separate, the dataset must hold its rows in the same order."""
        if pairs is None:
            table = rows_table(dataset, "HybridBatchSampler", "pass pairs= (see HybridBatchSampler.factory)")
            return checked_table(table, texts, labels, "dataset", user_index(dataset))
        if not isinstance(pairs, pd.DataFrame):
            raise SamplerConfigError(f"pairs must be a pandas DataFrame, got {type(pairs).__name__}")
        table = checked_table(pairs.reset_index(drop=True), texts, labels, "pairs", pairs.index)
        if dataset is not None and dataset is not pairs:
            check_same_rows(dataset, table, texts[:2])
        return table

    def _check_domains(self, domain, domains, domain_weights):
        if domain is None:
            return None, {}
        present = sorted(set(domain))
        chosen = list(domains) if domains is not None else present
        if domains is not None:
            if isinstance(domains, str):
                raise SamplerConfigError(f"domains must be a list of names, got the string {domains!r}")
            unknown = [d for d in chosen if d not in present]
            if unknown or not chosen:
                raise SamplerConfigError(
                    f"domains {unknown or chosen} not in column {self.domain_column!r} (present: {present})"
                )
        weights = {d: 1.0 for d in chosen}
        if domain_weights is not None:
            unknown = [d for d in domain_weights if d not in chosen]
            if unknown:
                raise SamplerConfigError(f"domain_weights names domain(s) {unknown} not among {chosen}")
            for d, w in domain_weights.items():
                try:
                    w = float(w)
                except (TypeError, ValueError):
                    w = float("nan")
                if not math.isfinite(w) or w < 0:
                    raise SamplerConfigError(f"domain_weights[{d!r}] must be a finite number >= 0, got {w!r}")
                weights[d] = w
            if not any(weights.values()):
                raise SamplerConfigError(f"domain_weights are all zero: {dict(domain_weights)}")
        return tuple(chosen), weights

    def _build_pools(self) -> None:
        """Streams keyed (kind, language, domain) and the batch options (kind, language[, domain]) drawn per step."""
        # Per-domain streams only when domains steer the draw; a plain `domains=` filter needs none.
        by_domain = self._domain is not None and (self.domain_homogeneous or self._weighted)
        rows = np.flatnonzero(self._keep)
        mono = self._qlang[rows] == self._plang[rows]
        frame = pd.DataFrame(
            {
                "row": rows,
                "kind": np.where(mono, MONO, CROSS),
                "lang": np.where(mono, self._qlang[rows], ""),
                "domain": self._domain[rows] if by_domain else "",
            }
        )
        self._streams_rows: dict[tuple[str, str, str], np.ndarray] = {
            key: g.row.to_numpy() for key, g in frame.groupby(["kind", "lang", "domain"], sort=True)
        }
        self._by_domain = by_domain
        # An option is what one global step draws from: all domain streams of (kind, lang), or one of them.
        self._options: list[tuple[str, str, str | None]] = []
        self._pool_rows: dict[tuple[str, str, str | None], np.ndarray] = {}
        for kind, lang, dom in self._streams_rows:
            if self.domain_homogeneous:
                option = (kind, lang, dom)
                self._options.append(option)
                self._pool_rows[option] = self._streams_rows[(kind, lang, dom)]
            elif (kind, lang, None) not in self._pool_rows:
                option = (kind, lang, None)
                self._options.append(option)
                self._pool_rows[option] = np.concatenate(
                    [r for (k, g, _), r in self._streams_rows.items() if (k, g) == (kind, lang)]
                )

    def _weight(self, stream_key: tuple[str, str, str]) -> float:
        """Draw weight of a domain stream: domain weight x pairs (equal weights = proportional to size)."""
        if not self._by_domain:
            return 1.0
        return self.domain_weights.get(stream_key[2], 1.0) * len(self._streams_rows[stream_key])

    def _option_prob_positive(self, option: tuple[str, str, str | None]) -> bool:
        """Whether a step can draw this option (zero-weight domains were filtered out at construction)."""
        return self.alpha > 0.0 if option[0] == MONO else self.alpha < 1.0

    def _check_feasible(self) -> None:
        """Every option a step can draw must fill ``batch_size * world_size`` clash-free rows; else name them."""
        need = self.batch_size * self.world_size
        if self.alpha > 0:
            have = {lang for kind, lang, _ in self._options if kind == MONO}
            lacking = [lang for lang in self.languages if lang not in have]
            if lacking:
                raise SamplerConfigError(
                    f"alpha={self.alpha} needs monolingual batches but language(s) {lacking} have no "
                    f"monolingual row (both columns {list(self._lang_columns)} in that language): add such rows, "
                    "leave those languages out (languages=), or lower alpha to 0 (cross-lingual batches only)"
                )
        if self.alpha < 1 and not any(kind == CROSS for kind, _, _ in self._options):
            raise SamplerConfigError(
                f"alpha={self.alpha} needs cross-lingual batches but no row has two different languages in columns "
                f"{list(self._lang_columns)} (languages: {list(self.languages)}): add cross-lingual rows, or set "
                "alpha=1 (monolingual batches only)"
            )
        rng = np.random.default_rng(self.seed)
        short = []
        for option in self._options:
            if not self._option_prob_positive(option):
                continue
            rows = self._pool_rows[option]
            best = max(
                greedy_fill(self._keys, rng.permutation(rows), need, self._shared) for _ in range(_FEASIBILITY_TRIES)
            )
            if best < need:
                kind, lang, dom = option
                label = f"{kind}{' ' + lang if lang else ''}{f' domain {dom!r}' if dom is not None else ''}"
                short.append(f"{label}: {len(rows)} pairs, at most {best} without clashing groups/texts")
        if short:
            raise SamplerConfigError(
                f"batch_size={self.batch_size} x world_size={self.world_size} = {need} pairs per step cannot be met "
                f"(one pair per parallel group, groups that share a positive counting as one; no repeated text) by: "
                f"{'; '.join(short)}. Lower the batch size or drop those languages"
                f"{'/domains, or turn off domain_homogeneous' if self.domain_homogeneous else ''}"
            )

    # ---------------------------------------------------------------- sampling
    def __len__(self) -> int:
        return self.steps_per_epoch if self.shard else self.steps_per_epoch * self.world_size

    def __iter__(self) -> Iterator[list[int]]:
        for _info, batch in self.iter_with_info():
            yield batch

    def iter_with_info(self, all_ranks: bool | None = None) -> Iterator[tuple[BatchInfo, list[int]]]:
        """(BatchInfo, batch) in the order ``__iter__`` yields them (``all_ranks`` overrides ``not shard``)."""
        every = (not self.shard) if all_ranks is None else all_ranks
        for info, batches in self._global_steps():
            for rank, batch in enumerate(batches):
                if every or rank == self.rank:
                    yield BatchInfo(info.step, info.kind, info.language, info.domain, rank), batch

    def _global_steps(self) -> Iterator[tuple[BatchInfo, list[list[int]]]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        fillers = self._fillers()
        positive = [o for o in self._options if self._option_prob_positive(o)]
        weights = {o: self._weight(o) for o in positive} if self.domain_homogeneous else None
        policy = HybridPolicy(self.alpha, self.languages, positive, weights)
        need = self.batch_size * self.world_size
        for step in range(self.steps_per_epoch):
            kind, lang, domain = option = policy.choose(rng)
            rows = fillers[option].fill(rng, need, Clash(self._keys, self._shared))
            if len(rows) < need:
                raise RuntimeError(
                    f"step {step}: could fill only {len(rows)} of {need} rows for a {kind} {lang} batch (domain "
                    f"{domain}); the construction-time feasibility check should have caught this"
                )
            batches = [rows[r * self.batch_size : (r + 1) * self.batch_size] for r in range(self.world_size)]
            yield BatchInfo(step, kind, lang or None, domain, -1), batches

    def _fillers(self) -> dict[Option, PoolFiller]:
        """A filler per option over fresh streams (a new epoch reshuffles from scratch): the option's own stream
        (domain-homogeneous), else every domain stream of its kind and language."""
        streams = {key: Stream(rows) for key, rows in self._streams_rows.items()}
        fillers = {}
        for option in self._options:
            keys = [option] if self.domain_homogeneous else [k for k in streams if k[:2] == option[:2]]
            fillers[option] = PoolFiller([streams[k] for k in keys], np.array([self._weight(k) for k in keys]))
        return fillers

    # ---------------------------------------------------------------- trainer glue
    @classmethod
    def factory(cls, pairs: pd.DataFrame, **options: Any) -> SamplerFactory:
        """A callable for ``SentenceTransformerTrainingArguments(batch_sampler=...)`` bound to the pairs table."""
        return SamplerFactory(cls, pairs, options)

    def describe(self, batch: Sequence[int]) -> dict[str, Any]:
        """Languages, groups and domains of one batch (for tests and logs)."""
        rows = list(batch)
        return {
            "query_langs": self._qlang[rows].tolist(),
            "passage_langs": self._plang[rows].tolist(),
            "units": [self._keys[0][r] for r in rows],
            "domains": self._domain[rows].tolist() if self._domain is not None else None,
        }


class SamplerFactory:
    """``batch_sampler=`` callable: SentenceTransformers calls it with (dataset, batch_size, drop_last, ...)."""

    def __init__(self, cls: type[HybridBatchSampler], pairs: pd.DataFrame, options: dict[str, Any]) -> None:
        self.cls, self.pairs, self.options = cls, pairs, dict(options)
        # Fail at configuration time, not when the trainer first builds its dataloader.
        resolve_alpha(self.options.get("alpha"), self.options.get("preset"))

    def __call__(self, dataset: Any, **kwargs: Any) -> HybridBatchSampler:
        if self.pairs is None:
            raise SamplerConfigError(
                "this batch sampler was read back from a checkpoint (training_args.bin), which does not store your "
                "training rows: build it again from your data (HybridBatchSampler.factory(...)) before training"
            )
        return self.cls(dataset, pairs=self.pairs, **{**kwargs, **self.options})

    def __getstate__(self) -> dict[str, Any]:
        # The trainer pickles its arguments into every checkpoint; the pairs table does not belong there.
        return {"cls": self.cls, "pairs": None, "options": self.options}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in sorted(self.options.items()))
        return f"{self.cls.__name__}.factory(<{len(self.pairs) if self.pairs is not None else '?'} pairs>, {opts})"
