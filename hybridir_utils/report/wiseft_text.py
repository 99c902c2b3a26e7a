"""WiSE-FT in words: the λ chosen on the dev by its rule (the dev curve), the interpolated models against the same
runs as trained, and the test-side λ curve, a diagnostic that feeds no choice."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hybridir_utils import naming, result_tables
from hybridir_utils.analysis import effects
from hybridir_utils.analysis.rules import KEEP_MARGIN
from hybridir_utils.errors import AnswerError
from hybridir_utils.report.tables import markdown
from hybridir_utils.report.verdicts import fmt, interval, verdict


def _runs(n: int) -> str:
    return f"{n} general run{'s' if n != 1 else ''}"


def wiseft_lines(wiseft: pd.DataFrame | None) -> list[str]:
    """WiSE-FT's λ: the rule, the qualifying λ, the chosen one on the dev curve (paired intervals against the base,
    runs as the unit), and λ = 1 (the runs as trained) beside it; then the curve as a table."""
    if wiseft is None or "mono_lo" not in wiseft:
        return []
    dev = wiseft[wiseft.part == "dev"].sort_values("lam") if "part" in wiseft else wiseft.sort_values("lam")
    chosen = dev[dev.chosen.astype(bool)]
    if chosen.empty:
        raise AnswerError("wiseft.csv marks no chosen λ")
    ch, ends = chosen.iloc[0], dev[dev.lam == dev.lam.max()].iloc[0]
    qualify = ", ".join(f"{v:g}" for v in dev[dev.qualifies.astype(bool) & (dev.lam > 0)].lam) or "none"
    at = lambda r: (f"dev mono {interval(r.mono_delta, r.mono_lo, r.mono_hi)}, dev cross "  # noqa: E731
                    f"{interval(r.cross_delta, r.cross_lo, r.cross_hi)}")  # fmt: skip
    table = pd.DataFrame({"λ": dev.lam, "runs": dev.runs, "dev mono": dev.dev_mono.round(3),
                          "mono Δ vs base [95% CI]": [interval(r.mono_delta, r.mono_lo, r.mono_hi)
                                                      for r in dev.itertuples()],
                          "dev cross": dev.dev_cross.round(3),
                          "cross Δ vs base [95% CI]": [interval(r.cross_delta, r.cross_lo, r.cross_hi)
                                                       for r in dev.itertuples()],
                          "qualifies": dev.qualifies.astype(bool), "chosen": dev.chosen.astype(bool)})  # fmt: skip
    return [f"**WiSE-FT's λ, chosen on the dev ({ch.dev}; {_runs(int(ch.runs))}), never on the test.** The "
            f"rule, written before the sweep: among λ whose dev monolingual difference from the base has a paired "
            f"run-level interval with lower end above −{KEEP_MARGIN}, the highest mean dev cross-lingual mAP; ties "
            f"to the smaller λ. Qualifying: λ ∈ {{{qualify}}}; chosen λ = {ch.lam:g} ({at(ch)}); at λ = "
            f"{ends.lam:g}, the runs as trained: {at(ends)}.", "",
            "The dev curve (λ = 0 is the base; differences paired on the same dev questions, runs as the unit):", "",
            markdown(table), ""]  # fmt: skip


def interpolation_lines(c: pd.DataFrame) -> list[str]:
    """The planned rows of the interpolation itself: each WiSE-FT model against the same runs as trained."""
    rows = c[(c.question == effects.INTERPOLATION_QUESTION) & (c.slice == "all")] if "question" in c else c.iloc[:0]
    if rows.empty:
        return []
    lines = ["**WiSE-FT against the same runs as trained** (paired by run, Holm with every other row):"]
    for system, group in rows.groupby("system", sort=True):
        cells = "; ".join(f"{r.setting.replace('_', ' ')} {fmt(r)} → {verdict(r)}" for r in group.itertuples())
        lines.append(f"- `{system}` vs `{naming.as_trained(system)}`: {cells}")
    return [*lines, ""]


def dev_name(table: pd.DataFrame) -> str:
    """The dev a recipe or λ was chosen on (tables of the earlier design have no ``dev`` column: MLQA-R's)."""
    names = table.dev.dropna().unique() if "dev" in table else []
    return str(names[0]) if len(names) else "held-out MLQA-R articles"


def wiseft_test_lines(curve: pd.DataFrame | None) -> list[str]:
    """The test-side λ curve, a diagnostic drawn after the choice: where the dev-chosen λ lands on the test, and the
    λ the same rule would pick on the test (never used), so a reader sees whether the dev tracks the test."""
    if curve is None or curve.empty:
        return []
    curve = curve.sort_values("lam")
    chosen = curve[curve.chosen.astype(bool)]
    ok = curve[(curve.mono_lo > -KEEP_MARGIN) & (curve.lam > 0)]
    best = ok.sort_values(["cross_delta", "lam"], ascending=[False, True]).iloc[0] if len(ok) else None
    table = pd.DataFrame({"λ": curve.lam, "runs": curve.runs,
                          "test mono Δ vs base [95% CI]": [interval(r.mono_delta, r.mono_lo, r.mono_hi)
                                                           for r in curve.itertuples()],
                          "test cross Δ vs base [95% CI]": [interval(r.cross_delta, r.cross_lo, r.cross_hi)
                                                            for r in curve.itertuples()],
                          "chosen on dev": curve.chosen.astype(bool)})  # fmt: skip
    lines = ["**The λ curve on the test, a diagnostic** (scored after λ was chosen and recorded; it feeds no choice):"]
    if len(chosen):
        c = chosen.iloc[0]
        lines.append(f"at the dev-chosen λ = {c.lam:g}, test mono {interval(c.mono_delta, c.mono_lo, c.mono_hi)}, "
                     f"test cross {interval(c.cross_delta, c.cross_lo, c.cross_hi)}.")  # fmt: skip
    lines.append("The same rule applied to the test would pick " + (
        f"λ = {best.lam:g} (test cross {best.cross_delta:+.3f})" if best is not None else "no λ above 0 (none keeps "
        f"test mono within −{KEEP_MARGIN})") + f", read from {int(curve.runs.max())} run(s): not a result, a check of "
        "the dev.")  # fmt: skip
    return [" ".join(lines), "", markdown(table), ""]


def render_wiseft_test(results_dir: str | Path) -> str:
    """The section of the ``wiseft-test`` profile: the test-side λ curve of runs trained and λ chosen elsewhere."""
    folder = Path(results_dir)
    curve = result_tables.read(folder, "wiseft_test")
    return "\n".join([f"Generated from `results/{folder.name}/wiseft_test.csv` (dev: {dev_name(curve)}).", "",
                      *wiseft_test_lines(curve)]) + "\n"  # fmt: skip
