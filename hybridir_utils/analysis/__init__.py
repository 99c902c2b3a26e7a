"""Analysis: the planned comparisons at run level (seeds and question groups resampled), the domain-specificity
interactions, the decision rules every claim follows, and the paper's claims judged from result tables."""

from typing import TYPE_CHECKING

from hybridir_utils import lazy_face

if TYPE_CHECKING:  # what the names are, for readers and type checkers; imported on first use
    from hybridir_utils.analysis.claims import claims_table
    from hybridir_utils.analysis.effects import (
        INTERPOLATION_QUESTION,
        alpha_curve,
        article_gains,
        compare,
        comparison_plan,
        comparisons,
        interactions,
        run_means_comparisons,
    )

__all__ = [
    "INTERPOLATION_QUESTION",
    "alpha_curve",
    "article_gains",
    "claims_table",
    "compare",
    "comparison_plan",
    "comparisons",
    "interactions",
    "run_means_comparisons",
]
__getattr__, __dir__ = lazy_face(__name__, __file__)
