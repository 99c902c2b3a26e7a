"""The LAReQA evaluation as a sentence-transformers evaluator, for ``eval_strategy`` inside anyone's training.

No pooled multilingual evaluation exists in MTEB, and per-language LAReQA scores are asked for; this evaluator gives
both during training: monolingual, cross-lingual and multilingual-pool mAP, R@1 and R@10, per-language mAP and rank
distance, under the names the trainer logs (``<name>_multi_map``, ``<name>_mono_map_en`` ...). It calls
:func:`evaluation.lareqa.evaluate_lareqa`, so its numbers are the project's (a test checks equality), with the
embedding cache off: the weights change between evaluations, so a cached embedding would be stale.

    from hybridir_utils.evaluation.evaluator import LAReQAEvaluator
    evaluator = LAReQAEvaluator.from_dataset("xquad-r", languages=["en", "de", "th"])
    trainer = SentenceTransformerTrainer(..., evaluator=evaluator)  # args: eval_strategy="steps", eval_steps=...
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

from hybridir_utils.data.lareqa_loader import LAReQAData, load_lareqa
from hybridir_utils.evaluation.lareqa import SETTINGS, evaluate_lareqa, language_means
from hybridir_utils.utils import paths

# What every evaluation returns besides the per-language scores (metrics.json keys of evaluate_lareqa).
SUMMARY = (*(f"{s}_{m}" for s in SETTINGS for m in ("map", "r1", "r10")), "rank_distance")


class LAReQAEvaluator(SentenceEvaluator):
    """Pooled LAReQA retrieval of a :class:`~hybridir_utils.data.LAReQAData` test set (see the module docstring).

    Args:
        data: the questions, candidates and relevance of the test set (``data.load_lareqa``).
        name: prefix of every logged metric.
        batch_size: encoding batch size.
        primary_metric: the metric ``load_best_model_at_end`` selects on (default: multilingual-pool mAP).
        keep_dir: a folder to keep each evaluation's tables in (``<keep_dir>/<name>-step<k>/``); default: none.
    """

    def __init__(
        self,
        data: LAReQAData,
        name: str = "lareqa",
        batch_size: int = 16,
        primary_metric: str = "multi_map",
        keep_dir: str | Path | None = None,
        show_progress_bar: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(data, LAReQAData):
            raise TypeError(f"data must be an LAReQAData (data.load_lareqa), got {type(data).__name__}")
        known = (*SUMMARY, *(f"{s}_map_{lang}" for s in SETTINGS for lang in data.languages))
        if primary_metric not in known:
            raise ValueError(f"primary_metric {primary_metric!r} is not one of {list(known)}")
        self.data, self.name, self.batch_size = data, name, int(batch_size)
        self.primary_metric, self.greater_is_better = primary_metric, primary_metric != "rank_distance"
        self.keep_dir, self.show_progress_bar = (Path(keep_dir) if keep_dir else None), show_progress_bar

    @classmethod
    def from_dataset(cls, dataset: str = "xquad-r", languages: Sequence[str] | None = None,
                     data_dir: str | Path | None = None, **kwargs: Any) -> LAReQAEvaluator:  # fmt: skip
        """The evaluator of a LAReQA set by name (``xquad-r`` / ``mlqa-r``), in ``languages`` (None: all)."""
        data = load_lareqa(dataset, data_dir=paths.lareqa_dir(data_dir), languages=languages)
        return cls(data, **kwargs)

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        with tempfile.TemporaryDirectory(prefix="lareqa-eval-") as tmp:
            folder = (self.keep_dir or Path(tmp)) / f"{self.name}-step{steps}"
            m = evaluate_lareqa(model, self.data, folder, batch_size=self.batch_size, use_cache=False,
                                write_runs=False, show_progress_bar=self.show_progress_bar)  # fmt: skip
            per_query = pd.read_parquet(folder / m["files"]["per_query"])
        metrics = {
            **{k: float(m[k]) for k in SUMMARY},
            **per_language(per_query),
            **{f"rank_distance_{lang}": float(v) for lang, v in m.get("rank_distance_by_lang", {}).items()},
        }
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def get_config_dict(self) -> dict[str, Any]:
        return {"dataset": self.data.name, "languages": list(self.data.languages), "protocol": "LAReQA (pooled)"}


def per_language(per_query: pd.DataFrame) -> dict[str, float]:
    """``<setting>_map_<query language>`` (:func:`lareqa.language_means`, as ``report.per_language``)."""
    return {f"{setting}_map_{lang}": float(v) for (setting, lang), v in language_means(per_query).items()}
