"""The report's summary tables (report.summaries): the paper's numbers, CI tables, per-language differences."""

from __future__ import annotations

import pandas as pd
import pytest
from doubles import topical_results

from hybridir_utils.report import summaries


def test_paper_anchors_parse_all_rows():
    paper = summaries.paper_anchors()
    assert len(paper) == 12
    hybrid = paper[(paper.model == "LaBSE (paper)") & (paper.batches == "hybrid") & (paper.dataset == "xquad-r")]
    assert hybrid[["mono_map", "cross_map", "multi_map", "rank_distance"]].iloc[0].tolist() == [
        0.817,
        0.767,
        0.682,
        221.1,
    ]


def test_ci_table_puts_levels_and_intervals_side_by_side():
    comparisons = pd.DataFrame(
        [dict(system=sys, setting=st, dataset="xquad-r", reference="hybrid/general", n_seeds=3, mean=m, delta=d,
              lo=d - 0.01, hi=d + 0.01)
         for sys, d in (("hybrid/general", 0.0), ("hybrid/news-weighted", 0.02))
         for st, m in (("mono", 0.8), ("cross", 0.7), ("multi", 0.5))]
    )  # fmt: skip
    table = summaries.ci_table(comparisons, "xquad-r", "hybrid/general")
    assert list(table.columns[:4]) == ["system", "seeds", "mono", "Δmono [95% CI]"]
    news = table.set_index("system").loc["hybrid/news-weighted"]
    assert news.cross == 0.7 and news["Δcross [95% CI]"] == "+0.020 [+0.010, +0.030]"
    with pytest.raises(ValueError, match="'mlqa-r' against 'hybrid/general'"):
        summaries.ci_table(comparisons, "mlqa-r", "hybrid/general")


def test_per_language_differences_against_the_base_mark_unseen_languages(tmp_path):
    gains = {"e5": (0.0, 0.0), "hybrid/news-in-domain": (0.05, 0.0)}
    results = topical_results(tmp_path, gains, seeds=(0,))
    table = summaries.per_language(results, "xquad-r", "e5", seen=["en"]).set_index(["system", "setting", "lang"])
    row = table.loc[("hybrid/news-in-domain", "mono", "de")]
    assert row.delta_vs_base == pytest.approx(0.025) and not row.seen  # half of the groups (news) gain 0.05
    assert table.loc[("hybrid/news-in-domain", "cross", "en")].seen and table.loc[("e5", "mono", "en")]["map"] > 0
    with pytest.raises(ValueError, match="base 'nope'"):
        summaries.per_language(results, "xquad-r", "nope")
