"""The pre-registered confirmation H1 (RESULTS.md "Pre-registered"), judged from ``results/confirm/*.csv`` alone
(or, until the zero-shot design's confirmation has run, the earlier design's ``results/confirm-mlqa-dev``).

    python -m hybridir_utils.report confirmation            # print the RESULTS.md section
    python -m hybridir_utils.report confirmation --write    # rewrite it in RESULTS.md (between its markers)
    python -m hybridir_utils.report confirmation --check    # fail if RESULTS.md differs from the tables

H1, written down before any run of the run-level design: scored on the XQuAD-R languages the ``cpu`` test set
leaves out (they never steered a choice), the news in-domain arm beats its structure-matched random control on
cross-lingual mAP, and the gain is larger on the news test articles than elsewhere. The rule, fixed with it: a
family of its own (no Holm); the two-level bootstrap's two-sided p < ``rules.ALPHA`` with a positive difference
and the exact permutation test on the run means agreeing; the interaction by the same rule, on at least
``summaries.MIN_SLICE_ARTICLES`` news test articles. Everything else in the tables is secondary.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir_utils.analysis import rules
from hybridir_utils.errors import ConfirmationError
from hybridir_utils.report import answer, readme, summaries, tables
from hybridir_utils.utils import paths

PROFILE = "confirm"
EARLIER = "confirm-mlqa-dev"  # the confirmation of the earlier design (λ chosen on MLQA-R dev)
WHAT_IT_IS = (
    "a re-scoring of the same models on translations of the same questions, not a replication: no run "
    "is new, so its run-to-run variance is that of the profile whose models it scores"
)
ARM, CONTROL, SETTING = "hybrid/news-in-domain", "hybrid/news-size-random", "cross"  # H1, as pre-registered
# Each pre-registered confirmation profile: (arm, its control), as written in its params before it ran.
HYPOTHESES = {PROFILE: (ARM, CONTROL, "cpu"),
              "confirm-science": ("hybrid/science-in-domain", "hybrid/science-size-random", "science")}  # fmt: skip


def _one(table: pd.DataFrame, name: str, dataset: str, arm: str, control: str) -> pd.Series:
    hit = table[(table.system == arm) & (table.reference == control) & (table.dataset == dataset)
                & (table.setting == SETTING)]  # fmt: skip
    if "slice" in hit:
        hit = hit[hit.slice == "all"]
    if len(hit) != 1:
        raise ConfirmationError(f"{name}.csv: {len(hit)} rows for {arm} vs {control} on {dataset} {SETTING}, not 1")
    return hit.iloc[0]


def holds(row: pd.Series) -> bool:
    """The pre-registered rule for one row: positive difference, p < ALPHA (no Holm), permutation p < ALPHA."""
    diff = row.interaction if "interaction" in row else row.delta
    return bool(diff > 0 and row.p < rules.ALPHA and np.isfinite(row.p_perm) and row.p_perm < rules.ALPHA)


def verdict(tables: dict[str, pd.DataFrame], dataset: str = "xquad-r", arm: str = ARM,
            control: str = CONTROL) -> tuple[bool, list[str]]:  # fmt: skip
    """Whether H1 holds, and the lines that say why: both parts, with the design's minimum detectable effects."""
    gain = _one(tables["comparisons"], "comparisons", dataset, arm, control)
    inter = _one(tables["interactions"], "interactions", dataset, arm, control)
    enough = inter.status == "ok" and inter.n_target_articles >= summaries.MIN_SLICE_ARTICLES
    part1, part2 = holds(gain), enough and holds(inter)
    perm = lambda r: "no permutation p" if not np.isfinite(r.p_perm) else f"p_perm {r.p_perm:.3g}"  # noqa: E731
    lines = [
        f"- *Gain:* `{arm}` minus `{control}`, cross-lingual macro mAP {gain.delta:+.4f} [{gain.lo:+.4f}, "
        f"{gain.hi:+.4f}] (95% run-level CI), p {gain.p:.3g}, {perm(gain)}; {int(gain.n_seeds)} vs "
        f"{int(gain.n_ref_seeds)} runs, run SD {gain.run_sd:.4f} / {gain.ref_run_sd:.4f}; the design detects "
        f"{gain.mde:.4f} with 80% power. **{'Holds' if part1 else 'Does not hold'}.**",
        f"- *On {inter.topic} articles:* gain {inter.gain_target:+.4f} on {int(inter.n_target_articles)} {inter.topic} "
        f"test articles vs "
        f"{inter.gain_other:+.4f} on {int(inter.n_other_articles)} others: interaction {inter.interaction:+.4f} "
        f"[{inter.lo:+.4f}, {inter.hi:+.4f}], p {inter.p:.3g}, {perm(inter)}; MDE {inter.mde:.4f}"
        + ("" if enough else f" (fewer than {summaries.MIN_SLICE_ARTICLES} {inter.topic} articles: not testable)")
        + f". **{'Holds' if part2 else 'Does not hold'}.**",
    ]  # fmt: skip
    return part1 and part2, lines


def render(results_dir: str | Path, dataset: str = "xquad-r", arm: str = ARM, control: str = CONTROL,
           source: str = "cpu") -> str:  # fmt: skip
    """The RESULTS.md section: H1, its verdict, then the secondary rows and levels (no claim made from those)."""
    folder = Path(results_dir)
    loaded = answer.load(folder)
    ok, lines = verdict(loaded, dataset, arm, control)
    languages = sorted(loaded["truncation"].query("dataset == @dataset").lang.unique())
    c = loaded["comparisons"]
    return "\n".join([
        f"Generated from `results/{folder.name}/*.csv` ({dataset}, languages {', '.join(languages)}; the `{source}` "
        f"profile's models, recipe and WiSE-FT λ): {WHAT_IT_IS}.", "",
        f"**H1 {'is supported' if ok else 'is not supported'}** (both parts must hold; a family of its own, no Holm):",
        "", *lines, "",
        f"Secondary, not part of H1 (Holm over these rows; * = claimed by the `{source}` profile's rule):", "",
        tables.markdown(tables.comparison_table(c, dataset)), "",
        "Levels (macro mAP, mean over runs):", "",
        tables.markdown(tables.levels_table(loaded["levels"], dataset).reset_index()),
        "", "What it does not show: the other domain (its own confirmation), other models or batch sizes, or "
        "MLQA-R as a test set; a null here is bounded by the MDE above, not a proof of no effect.",
    ]) + "\n"  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    profile = PROFILE
    if "--profile" in argv:
        at = argv.index("--profile")
        profile = argv[at + 1] if at + 1 < len(argv) else ""
        del argv[at : at + 2]
    if profile not in HYPOTHESES:
        print(f"confirmation: --profile must be one of {sorted(HYPOTHESES)} (a pre-registered confirmation), got "
              f"{profile!r}", file=sys.stderr)  # fmt: skip
        return 2
    arm, control, source = HYPOTHESES[profile]
    make = lambda p: render(folder(p), arm=arm, control=control, source=source)  # noqa: E731
    return readme.command(argv, make, profile, name="confirmation", doc=__doc__)


def folder(profile: str = PROFILE) -> Path:
    """The confirmation's tables: the profile's own once it has run, else (news) the earlier design's."""
    own = paths.results_dir(profile)
    return own if (own / "comparisons.csv").is_file() or profile != PROFILE else paths.results_dir(EARLIER)
