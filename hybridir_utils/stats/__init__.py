"""Statistics of per-query scores: the paired cluster bootstrap over question groups and Holm's correction
(``groups``), and the run-level inference for trained systems (``runs``: seeds and question groups resampled, the
exact permutation test on run means, the minimum detectable effect, the domain-specificity interaction).

Below every part that scores or chooses (the recipe and WiSE-FT's λ are chosen by these intervals too); numpy,
pandas and scipy only.
"""

from typing import TYPE_CHECKING

from hybridir_utils import lazy_face

if TYPE_CHECKING:  # what the names are, for readers and type checkers; imported on first use
    from hybridir_utils.stats.groups import cluster_bootstrap, holm, macro_mean_se
    from hybridir_utils.stats.runs import (
        interaction_bootstrap,
        minimum_detectable_effect,
        paired_run_bootstrap,
        per_article_gain,
        run_bootstrap,
        run_permutation_p,
        smallest_permutation_p,
        t_interval,
    )

__all__ = [
    "cluster_bootstrap",
    "holm",
    "interaction_bootstrap",
    "macro_mean_se",
    "minimum_detectable_effect",
    "paired_run_bootstrap",
    "per_article_gain",
    "run_bootstrap",
    "run_permutation_p",
    "smallest_permutation_p",
    "t_interval",
]
__getattr__, __dir__ = lazy_face(__name__, __file__)
