"""The verdict rules in words: claimed or not, kept or not, and the one format of a difference with its interval.
The rules themselves are :mod:`hybridir_utils.analysis.rules`; this module only says them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hybridir_utils import naming
from hybridir_utils.analysis.rules import ALPHA, KEEP_MARGIN, kept, perm_ok, significant
from hybridir_utils.report import summaries
from hybridir_utils.stats.runs import smallest_permutation_p

__all__ = ["against_base", "fmt", "fmt_interaction", "interaction_claimed", "interval", "kept", "kept_text",
           "meets_target", "row_of", "significant", "target_met", "target_text", "verdict"]  # fmt: skip


def row_of(c: pd.DataFrame, system: str, reference: str, setting: str):
    hit = c[(c.system == system) & (c.reference == reference) & (c.setting == setting) & (c.slice == "all")]
    return hit.iloc[0] if len(hit) else None


def verdict(row) -> str:
    """higher / lower / no detectable difference, or "not claimable" when the runs cannot reach the permutation
    rule at all (3 runs against the one-run base: no p below 0.25), so a null is not read as "nothing there"."""
    if significant(row):
        return "higher" if row.delta > 0 else "lower"
    n, m, floor = permutation_floor(row)
    return f"not claimable: {n} vs {m} runs give no permutation p below {floor:.2g}" if floor >= ALPHA else (
        "no detectable difference")  # fmt: skip


def permutation_floor(row) -> tuple[int, int, float]:
    """(runs, reference runs, the smallest permutation p they can give) of a comparison row; 0 without runs."""
    n, m = int(getattr(row, "n_seeds", 0) or 0), int(getattr(row, "n_ref_seeds", 0) or 0)
    return n, m, smallest_permutation_p(n, m) if n >= 1 and m >= 1 else 0.0


def fmt(row) -> str:
    """``+0.012 [+0.004, +0.021], p_Holm 0.003, p_perm 0.002 (run SD 0.010 vs 0.012; MDE 0.011)``."""
    text = f"{row.delta:+.3f} [{row.lo:+.3f}, {row.hi:+.3f}], p_Holm {row.p_holm:.3g}"
    if not np.isnan(row.p_perm):
        text += f", p_perm {row.p_perm:.3g}"
    sds = " vs ".join("—" if np.isnan(v) else f"{v:.3f}" for v in (row.run_sd, row.ref_run_sd))
    return text + f" (run SD {sds}; MDE {row.mde:.3f})"


def interaction_claimed(row) -> bool:
    """Domain specificity: the on-topic gain exceeds the off-topic gain (Holm-adjusted, CI above 0, the
    randomisation test over articles agreeing), on at least ``summaries.MIN_SLICE_ARTICLES`` on-topic test articles."""
    enough = row.status == "ok" and row.n_target_articles >= summaries.MIN_SLICE_ARTICLES
    return bool(enough and row.p_holm < ALPHA and row.lo > 0 and perm_ok(row))


def fmt_interaction(row) -> str:
    if row.status != "ok":
        return f"not testable ({row.status}: {row.n_target_articles} on-topic test articles)"
    return (
        f"on-topic {row.gain_target:+.3f} vs elsewhere {row.gain_other:+.3f} "
        f"({row.n_target_articles} vs {row.n_other_articles} articles): interaction {row.interaction:+.3f} "
        f"[{row.lo:+.3f}, {row.hi:+.3f}], p_Holm {row.p_holm:.3g}, p_perm {row.p_perm:.3g} (MDE {row.mde:.3f})"
    )


def kept_text(mono) -> str:
    """Non-inferiority in words: shown kept, shown lost (the whole interval below the margin), or not shown kept."""
    if kept(mono):
        return "shown kept"
    return f"lost: the whole interval below −{KEEP_MARGIN}" if mono.hi < -KEEP_MARGIN else "not shown kept"


def interval(d, lo, hi) -> str:
    return f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def against_base(c: pd.DataFrame, base: str) -> list[tuple[str, pd.Series, pd.Series]]:
    """(system, cross row, mono row) of every trained system with both rows against ``base``, sorted by name."""
    rows = [(s, row_of(c, s, base, "cross"), row_of(c, s, base, "mono")) for s in sorted(c.system.unique())
            if naming.is_trained(s)]  # fmt: skip
    return [(s, x, m) for s, x, m in rows if x is not None and m is not None]


def meets_target(cross, mono) -> bool:
    """The target as non-inferiority: the cross-lingual gain's interval above 0, monolingual shown kept."""
    return bool(cross.lo > 0 and kept(mono))


def target_met(c: pd.DataFrame, base: str, profile: str) -> list[tuple[str, str]]:
    """(label, system) of each shipped system that meets the target; a run count the permutation rule can never
    reach (3 runs against the one-run base) is labelled as met by interval only, not claimable."""
    met = []
    for s, x, m in against_base(c, base):
        if naming.is_as_trained(s) or not meets_target(x, m):
            continue
        n, _, floor = permutation_floor(x)
        few = f"; {n} runs: by interval only, not claimable" if floor >= ALPHA else ""
        met.append((f"`{s}` ({profile}{few})", s))
    return met


def target_text(met: list[tuple[str, str]]) -> str:
    """Who meets the target (from :func:`target_met`), and a warning when a control is among them."""
    if not met:
        return "shown for no trained system; the measured trade-off is the answer."
    done = f"shown for {', '.join(name for name, _ in met)}."
    if controls := [f"`{s}`" for _, s in met if naming.is_control(s)]:
        done += f" {', '.join(controls)} {'is a control' if len(controls) == 1 else 'are controls'}, so meeting it is "
        done += "not by itself a domain effect."
    return done
