"""Hybrid batches for anyone's pairs dataset in the plain sentence-transformers trainer: the drop-in.

``HybridBatchSampler`` needs a metadata table (languages, parallel groups) that the trainer must never see, since
its collator tokenises every non-label column. :class:`HybridBatches` splits a user's dataset into the two and
binds them; part of the light install (numpy, pandas, sentence-transformers only).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sentence_transformers.base.sampler import DefaultBatchSampler

from hybridir_utils.columns import DOMAIN, GROUP, PASSAGE, PASSAGE_LANG, QUERY, QUERY_LANG
from hybridir_utils.sampling.alpha import resolve_alpha
from hybridir_utils.sampling.sampler import HybridBatchSampler, SamplerConfigError
from hybridir_utils.sampling.validation import check_columns, checked_table, rows_table, user_index

log = logging.getLogger(__name__)


class HybridBatches:
    """Hybrid batches for anyone's pairs dataset in the plain sentence-transformers trainer (the drop-in).

    The trainer tokenises every non-label column of its dataset, so language and group columns handed to it would
    reach the loss as extra texts (MNRL would take them for hard negatives, silently). This object keeps them: it
    gives the trainer ``train_dataset`` (the text columns only, in their order) and ``batch_sampler`` (a callable
    for ``SentenceTransformerTrainingArguments(batch_sampler=...)``) that draws hybrid batches from the metadata.

        batches = HybridBatches(pairs, query_lang_column="anchor_lang", passage_lang_column="positive_lang",
                                group_column="id", alpha=0.5)
        args = SentenceTransformerTrainingArguments(output_dir, batch_sampler=batches.batch_sampler, ...)
        trainer = SentenceTransformerTrainer(model, args, train_dataset=batches.train_dataset, loss=loss, ...)

    Args:
        dataset: a 🤗 ``Dataset`` or a pandas ``DataFrame``: text columns (anchor, positive, then any hard negatives)
            in the order the loss reads them, and the metadata columns named below. A ``DatasetDict`` is refused:
            one sampler must see every training row (concatenate several training splits first).
        query_lang_column, passage_lang_column: the language of the first and of the second text column.
        group_column: id shared by the translations of one pair (a parallel group). None: every row is its own
            group, so translations are unknown and a cross-lingual batch may hold one as a negative; rows with the
            same positive text are still kept apart (their answer units are merged).
        negative_columns: text columns holding hard negatives; in a batch no text is both one pair's negative and
            another's positive (a false negative), and none repeats.
        metadata_columns: further columns to keep from the trainer (a ``domain`` column is kept when present).
        eval_sampler: what any other dataset (an eval split) gets: ``"no_duplicates"`` (sentence-transformers'
            ``NoDuplicatesBatchSampler``) or ``"default"`` (its plain batches). Evaluation loss needs no hybrid mix.
        **options: :class:`HybridBatchSampler` options (``alpha``, ``preset``, ``languages``, ``domains`` ...).
    """

    def __init__(
        self,
        dataset: Any,
        *,
        query_lang_column: str = QUERY_LANG,
        passage_lang_column: str = PASSAGE_LANG,
        group_column: str | None = GROUP,
        negative_columns: Sequence[str] = (),
        metadata_columns: Sequence[str] = (),
        eval_sampler: str = "no_duplicates",
        **options: Any,
    ) -> None:
        table = rows_table(dataset, "HybridBatches", "convert it first")
        domain_column = options.get("domain_column", DOMAIN)
        meta = [query_lang_column, passage_lang_column, *([group_column] if group_column else []), *metadata_columns]
        meta += [domain_column] if domain_column in table.columns and domain_column not in meta else []
        meta = list(dict.fromkeys(meta))
        steered = options.get("domains") is not None or options.get("domain_weights") is not None
        steered = steered or bool(options.get("domain_homogeneous"))  # then the sampler reads the domain column
        unique = list(options.get("unique_columns") or [])
        check_columns(table, [*meta, *negative_columns, *[domain_column] * steered, *unique])
        texts = [c for c in table.columns if c not in meta]
        if len(texts) < 2:
            raise SamplerConfigError(f"dataset needs two text columns (anchor, positive) besides the metadata {meta}; "
                                     f"it has {list(table.columns)}")  # fmt: skip
        if unknown := [c for c in negative_columns if c not in texts[2:]]:
            raise SamplerConfigError(f"negative_columns {unknown} must be text columns after the first two {texts[:2]}")
        if eval_sampler not in ("no_duplicates", "default"):
            raise SamplerConfigError(f"eval_sampler must be 'no_duplicates' or 'default', got {eval_sampler!r}")
        labels = {query_lang_column: "language", passage_lang_column: "language"}
        labels |= ({group_column: "group id"} if group_column else {}) | ({domain_column: "domain"} if steered else {})
        table = checked_table(table, texts, labels, "dataset", user_index(dataset))  # every text reaches the loss
        self.text_columns, self.metadata_columns, self.eval_sampler = texts, meta, eval_sampler
        # The sampler's table keeps the user's column names, so its refusals (languages, domains, feasibility)
        # name the columns the user passed; only the two texts take fixed names (the loss reads them by position).
        group = group_column or next(n for n in (GROUP, "__row_group__") if n not in table.columns)
        keep = [query_lang_column, passage_lang_column, *negative_columns, *unique]
        keep += [c for c in (group_column, domain_column) if c and c in table.columns]
        if clash := [c for c in dict.fromkeys(keep) if c in (QUERY, PASSAGE)]:
            raise SamplerConfigError(
                f"column {clash[0]!r} is passed as a language, group, negative or unique column, but HybridBatches "
                f"names the two texts {QUERY!r} and {PASSAGE!r}: rename that column (e.g. "
                f"dataset.rename_column({clash[0]!r}, '{clash[0]}_id')) and pass the new name"
            )
        self.pairs = pd.DataFrame(
            {
                QUERY: table[texts[0]].to_numpy(),
                PASSAGE: table[texts[1]].to_numpy(),
                **{c: table[c].to_numpy() for c in dict.fromkeys(keep)},
            }
        )
        if not group_column:
            self.pairs[group] = np.arange(len(table))  # every row its own group
        self.options = {**options, "negative_columns": list(negative_columns), "query_lang_column": query_lang_column,
                        "passage_lang_column": passage_lang_column, "group_column": group}  # fmt: skip
        resolve_alpha(self.options.get("alpha"), self.options.get("preset"))  # a bad α fails here, not in the trainer
        self.train_dataset = self._text_dataset(dataset, table, texts)

    @staticmethod
    def _text_dataset(dataset: Any, table: pd.DataFrame, texts: list[str]):
        if hasattr(dataset, "select_columns"):
            return dataset.select_columns(texts)
        from datasets import Dataset

        return Dataset.from_pandas(table[texts], preserve_index=False)

    def is_training_dataset(self, dataset: Any) -> bool:
        """Whether ``dataset`` holds the training rows in order (the trainer may hand over a copy)."""
        if dataset is self.train_dataset:
            return True
        columns = list(getattr(dataset, "column_names", None) or [])
        return (len(dataset) == len(self.pairs) and columns[:2] == self.text_columns[:2]
                and list(dataset[columns[0]]) == self.pairs["query"].tolist())  # fmt: skip

    def __getstate__(self) -> dict[str, Any]:
        # The trainer pickles its arguments (this bound method included) into every checkpoint: not the data.
        return {**self.__dict__, "pairs": None, "train_dataset": None}

    def batch_sampler(self, dataset: Any, **kwargs: Any):
        """``batch_sampler=`` for the trainer: hybrid batches for the training rows, ``eval_sampler`` otherwise."""
        if self.pairs is None:
            raise SamplerConfigError(
                "this HybridBatches was read back from a checkpoint (training_args.bin), which does not store your "
                "training rows: build HybridBatches(dataset, ...) again and pass its batch_sampler before training"
            )
        if self.is_training_dataset(dataset):
            return HybridBatchSampler(dataset, pairs=self.pairs, **{**kwargs, **self.options})
        from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

        fallback = NoDuplicatesBatchSampler if self.eval_sampler == "no_duplicates" else DefaultBatchSampler
        log.info(
            "batch_sampler: a dataset of %d rows that is not the training one (an eval split): %s batches",
            len(dataset),
            fallback.__name__,
        )
        return fallback(dataset, **kwargs)
