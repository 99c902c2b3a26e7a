"""The pre-registered H1 verdict: both parts, the rule fixed in advance (no Holm), hand-made rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybridir_utils import result_tables
from hybridir_utils.errors import ConfirmationError
from hybridir_utils.report import confirmation, readme
from hybridir_utils.report.confirmation import ARM, CONTROL
from hybridir_utils.utils import paths


def _tables(delta=0.02, p=0.01, p_perm=0.002, interaction=0.03, ip=0.02, ip_perm=0.01, n_news=8) -> dict:
    row = dict(system=ARM, reference=CONTROL, dataset="xquad-r", slice="all", lo=delta - 0.01, hi=delta + 0.01,
               n_seeds=6, n_ref_seeds=6, run_sd=0.01, ref_run_sd=0.012, mde=0.018)  # fmt: skip
    comparisons = pd.DataFrame([{**row, "setting": s, "delta": delta, "p": p, "p_perm": p_perm, "p_holm": p}
                                for s in ("mono", "cross", "multi")])  # fmt: skip
    inter = pd.DataFrame([dict(system=ARM, reference=CONTROL, topic="news", dataset="xquad-r", setting="cross",
                               gain_target=interaction + 0.01, gain_other=0.01, interaction=interaction,
                               lo=interaction - 0.02, hi=interaction + 0.02, p=ip, p_holm=ip, p_perm=ip_perm,
                               mde=0.04, n_target_articles=n_news, n_other_articles=48 - n_news,
                               status="ok")])  # fmt: skip
    return {"comparisons": comparisons, "interactions": inter}


def test_h1_holds_only_when_both_parts_pass_the_rule_fixed_in_advance():
    ok, lines = confirmation.verdict(_tables())
    assert ok and len(lines) == 2 and all("**Holds.**" in line for line in lines)
    assert "+0.0200 [+0.0100, +0.0300]" in lines[0] and "8 news test articles" in lines[1]
    assert not confirmation.verdict(_tables(delta=-0.02))[0]  # a significant loss is not support
    assert not confirmation.verdict(_tables(p=0.06))[0]
    assert not confirmation.verdict(_tables(p_perm=np.nan))[0]  # no permutation p: never support
    assert not confirmation.verdict(_tables(interaction=-0.03))[0]  # a broad gain alone: a pool effect
    assert not confirmation.verdict(_tables(ip_perm=0.2))[0]
    ok, lines = confirmation.verdict(_tables(n_news=3))
    assert not ok and "not testable" in lines[1]


def test_a_missing_h1_row_is_an_error_naming_the_table():
    tables = _tables()
    tables["comparisons"] = tables["comparisons"][tables["comparisons"].setting != "cross"]
    with pytest.raises(ConfirmationError, match=r"comparisons.csv: 0 rows for hybrid/news-in-domain vs"):
        confirmation.verdict(tables)


def test_the_results_confirmation_section_is_generated_from_the_confirmation_tables():
    text = (paths.root() / "RESULTS.md").read_text(encoding="utf-8")
    section = confirmation.render(confirmation.folder())
    assert readme.replace_section(text, section, "confirm") == text, "stale: run `make results`"
    assert f"{confirmation.WHAT_IT_IS}." in section  # a re-scoring of the same models, and called that


def test_the_readme_prose_about_the_confirmation_holds():
    """The hand-written paragraph "Run 2026-12-04" under "Pre-registered", checked against results/confirm."""
    folder = paths.root() / "results" / "confirm-mlqa-dev"
    loaded = {name: result_tables.read(folder, name) for name in ("comparisons", "interactions")}
    ok, _ = confirmation.verdict(loaded)
    gain = loaded["comparisons"].set_index(["system", "reference", "setting"]).loc[(ARM, CONTROL, "cross")]
    inter = loaded["interactions"].set_index("system").loc[ARM]
    assert not ok and round(gain.delta, 3) == 0.007 and gain.lo < 0 < gain.hi and round(gain.p, 3) == 0.085
    assert round(gain.mde, 3) == 0.012 and not confirmation.holds(inter) and inter.interaction < inter.mde
    assert result_tables.read(folder, "truncation").lang.nunique() == 7
    cpu = result_tables.read(paths.root() / "results" / "cpu-mlqa-dev", "comparisons").set_index(
        ["system", "reference", "setting"]
    )
    on_cpu = cpu.loc[(ARM, CONTROL, "cross")].delta
    assert on_cpu > 0 and abs(on_cpu - gain.delta) < 0.005  # "the same direction and size as on the cpu test set"


def test_the_science_confirmation_section_is_generated_from_its_own_tables():
    """results/confirm-science: H1-science for the science arms, judged by the same rule as news's H1."""
    text = (paths.root() / "RESULTS.md").read_text(encoding="utf-8")
    arm, control, source = confirmation.HYPOTHESES["confirm-science"]
    section = confirmation.render(confirmation.folder("confirm-science"), arm=arm, control=control, source=source)
    assert readme.replace_section(text, section, "confirm-science") == text, "stale: run `make results`"
    assert f"`{arm}` minus `{control}`" in section and "science test articles" in section


def test_the_results_prose_about_the_science_confirmation_holds():
    """The hand-written "Run 2026-12-07" paragraph of the science confirmation, against results/confirm-science."""
    arm, control, _ = confirmation.HYPOTHESES["confirm-science"]
    folder = confirmation.folder("confirm-science")
    loaded = {name: result_tables.read(folder, name) for name in ("comparisons", "interactions")}
    ok, lines = confirmation.verdict(loaded, arm=arm, control=control)
    assert not ok and "**Holds.**" in lines[0] and "**Does not hold.**" in lines[1]  # first part holds, second not
    c = loaded["comparisons"].set_index(["system", "reference", "setting"]).loc[(arm, control, "cross")]
    assert (f"{c.delta:+.3f}", f"{c.lo:+.3f}", f"{c.hi:+.3f}") == ("+0.003", "+0.000", "+0.006")
    assert (f"{c.p:.3f}", f"{c.p_perm:.3f}", f"{c.mde:.3f}") == ("0.027", "0.028", "0.004")
    i = loaded["interactions"].set_index(["system", "reference"]).loc[(arm, control)]
    assert (int(i.n_target_articles), int(i.n_other_articles)) == (11, 21)
    assert f"{i.gain_target:+.3f}" == f"{i.gain_other:+.3f}" == "+0.003"
    assert (f"{i.interaction:+.3f}", f"{i.lo:+.3f}", f"{i.hi:+.3f}", f"{i.mde:.3f}") == ("-0.000", "-0.003", "+0.003",
                                                                                       "0.005")  # fmt: skip
    test_side = result_tables.read(paths.root() / "results" / "science", "comparisons")
    r = test_side.set_index(["system", "reference", "setting"]).loc[(arm, control, "cross")]
    assert f"{r.delta:+.3f}" == "+0.003" and not (r.p < 0.05 and r.p_perm < 0.05)  # "not detected there"
    training = result_tables.read(folder, "training")  # the same 6 + 6 models as the science profile's, re-scored
    assert training.equals(result_tables.read(paths.root() / "results" / "science", "training"))
    assert training.query("system in [@arm, @control]").groupby("system").seed.nunique().to_dict() == {
        arm: 6,
        control: 6,
    }


def test_the_answer_sections_line_on_both_confirmations_holds():
    """RESULTS.md's line under "Science or news": science's confirmation not supported (gain holds, interaction not),
    news's only from the earlier design's run."""
    arm, control, _ = confirmation.HYPOTHESES["confirm-science"]
    science = {
        n: result_tables.read(confirmation.folder("confirm-science"), n) for n in ("comparisons", "interactions")
    }
    ok, lines = confirmation.verdict(science, arm=arm, control=control)
    assert not ok and "**Holds.**" in lines[0] and "**Does not hold.**" in lines[1]
    assert confirmation.folder("confirm").name == confirmation.EARLIER  # news: no zero-shot confirmation committed
    news = {n: result_tables.read(confirmation.folder("confirm"), n) for n in ("comparisons", "interactions")}
    assert not confirmation.verdict(news)[0]
