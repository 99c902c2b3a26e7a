"""The data: LAReQA (XQuAD-R, MLQA-R) and MIRACL read with checks, training pairs, and the splits (training
articles held out, the zero-shot dev held out of the test set, test articles never trained on)."""

from typing import TYPE_CHECKING

from hybridir_utils import lazy_face

if TYPE_CHECKING:  # what the names are, for readers and type checkers; imported on first use
    from hybridir_utils.data.lareqa_loader import (
        LANGUAGES,
        LAReQAData,
        answer_label_report,
        article_key,
        article_overlap,
        describe,
        ensure_data,
        examples,
        load_lareqa,
        token_lengths,
        training_pairs,
        truncated_share,
    )
    from hybridir_utils.data.miracl_loader import MiraclData, load_miracl, resolve_source
    from hybridir_utils.data.splits import (
        ZERO_SHOT_EVAL,
        split_articles,
        split_part,
        without_eval_articles,
        zero_shot_split,
    )

__all__ = [
    "LANGUAGES",
    "ZERO_SHOT_EVAL",
    "LAReQAData",
    "MiraclData",
    "answer_label_report",
    "article_key",
    "article_overlap",
    "describe",
    "ensure_data",
    "examples",
    "load_lareqa",
    "load_miracl",
    "resolve_source",
    "split_articles",
    "split_part",
    "token_lengths",
    "training_pairs",
    "truncated_share",
    "without_eval_articles",
    "zero_shot_split",
]
__getattr__, __dir__ = lazy_face(__name__, __file__)
