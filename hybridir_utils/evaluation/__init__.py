"""Scoring systems: the LAReQA protocol (mono / cross / multilingual pool, rank distance), MIRACL, every system
of a profile scored at one cut-off (a score's uncertainty is :mod:`stats`').
``LAReQAEvaluator`` runs the LAReQA protocol inside the sentence-transformers trainer."""

from typing import TYPE_CHECKING

from hybridir_utils import lazy_face

if TYPE_CHECKING:  # what the names are, for readers and type checkers; imported on first use
    from hybridir_utils.evaluation.evaluator import LAReQAEvaluator
    from hybridir_utils.evaluation.lareqa import evaluate_lareqa, language_means
    from hybridir_utils.evaluation.miracl import evaluate_miracl
    from hybridir_utils.evaluation.systems import (
        BASELINES,
        base_label,
        evaluate_miracl_systems,
        evaluate_systems,
        evaluation_set,
        read_runs,
        read_scores,
        select_systems,
        systems_to_evaluate,
    )

__all__ = [
    "BASELINES",
    "LAReQAEvaluator",
    "base_label",
    "evaluate_lareqa",
    "evaluate_miracl",
    "evaluate_miracl_systems",
    "evaluate_systems",
    "evaluation_set",
    "language_means",
    "read_runs",
    "read_scores",
    "select_systems",
    "systems_to_evaluate",
]
__getattr__, __dir__ = lazy_face(__name__, __file__)
