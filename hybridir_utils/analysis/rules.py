"""The decision rules every claim of the project follows, fixed before any result was seen.

One home, so the answer (``answer``), the paper's claims (``claims``) and the pre-registered confirmation judge a
row the same way: a difference is claimed only when its Holm-adjusted p is below ``ALPHA``, its 95% CI excludes
zero and the exact permutation test on the run means agrees; monolingual accuracy counts as kept when the CI of
the change stays above ``-KEEP_MARGIN``.
"""

from __future__ import annotations

import numpy as np

ALPHA = 0.05
KEEP_MARGIN = 0.01


def perm_ok(row) -> bool:
    """The exact permutation test on run means agrees. It needs runs: a trained side with one run has no p_perm
    (NaN) and its interval no run level, so it never supports a claim."""
    p_perm = getattr(row, "p_perm", np.nan)
    return bool(np.isfinite(p_perm) and p_perm < ALPHA)


def significant(row) -> bool:
    """A claim needs all three: Holm-adjusted p below ALPHA, a 95% CI that excludes 0, and the exact permutation
    test on the run means below ALPHA."""
    return bool(row.p_holm < ALPHA and (row.lo > 0 or row.hi < 0) and perm_ok(row))


def kept(row) -> bool:
    """Monolingual accuracy kept: the CI of the change stays above ``-KEEP_MARGIN``, at run level (two runs or more
    of the trained system; a one-run interval says nothing about the method)."""
    return bool(row.n_seeds >= 2 and row.lo > -KEEP_MARGIN)
