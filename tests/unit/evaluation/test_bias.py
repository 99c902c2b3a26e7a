"""Language bias measures on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hybridir_utils.evaluation import bias


def test_rank_distance_hand_case():
    # relevant ranks per query in the multilingual pool (1-based)
    out = bias.rank_distance([[1, 5, 3], [7, 2], [4], []])
    assert out[:2].tolist() == [4.0, 5.0]
    assert math.isnan(out[2]) and math.isnan(out[3])  # undefined with fewer than two relevant
    with pytest.raises(ValueError, match="1-based"):
        bias.rank_distance([[0, 3]])


def test_rank_distance_summary_is_macro_over_languages():
    per_query = pd.DataFrame(
        {"query_lang": ["en", "en", "en", "de"], "rank_distance": [2.0, 4.0, np.nan, 10.0]},
    )
    macro, by_lang = bias.rank_distance_summary(per_query)
    assert by_lang == {"de": 10.0, "en": 3.0}
    assert macro == pytest.approx(6.5)  # not the query mean (16 / 3)
    with pytest.raises(KeyError, match="rank_distance"):
        bias.rank_distance_summary(per_query.drop(columns="rank_distance"))


def test_language_preference_hand_case():
    # pool: 3 en, 1 de; en queries retrieved en, en, de, de (top-2 of two queries)
    top = pd.DataFrame({"query_lang": ["en"] * 4, "cand_lang": ["en", "en", "de", "de"]})
    out = bias.language_preference(top, ["en", "en", "en", "de"]).set_index("cand_lang")
    assert out.loc["en", "topk_share"] == 0.5 and out.loc["en", "pool_share"] == 0.75
    assert out.loc["en", "preference"] == pytest.approx(2 / 3)
    assert out.loc["de", "preference"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="not in the pool"):
        bias.language_preference(pd.DataFrame({"query_lang": ["en"], "cand_lang": ["zh"]}), ["en"])


def test_language_preference_counts_unretrieved_languages_as_zero():
    top = pd.DataFrame({"query_lang": ["de", "de"], "cand_lang": ["de", "de"]})
    out = bias.language_preference(top, ["de", "en"]).set_index("cand_lang")
    assert out.loc["en", "topk_share"] == 0.0 and out.loc["de", "preference"] == 2.0


def test_map_matrix_orders_languages_and_drops_multi():
    per_pair = pd.DataFrame(
        {
            "query_lang": ["en", "en", "de", "de", "en"],
            "pool_lang": ["en", "de", "en", "de", "multi"],
            "map": [0.9, 0.5, 0.4, 0.8, 0.3],
        }
    )
    matrix = bias.map_matrix(per_pair, languages=["en", "de"])
    assert matrix.index.tolist() == ["en", "de"] and matrix.columns.tolist() == ["en", "de"]
    assert matrix.loc["en", "de"] == 0.5 and matrix.loc["de", "en"] == 0.4
    assert bias.map_matrix(per_pair).index.tolist() == ["de", "en"]  # default: sorted
    with pytest.raises(KeyError, match="r10"):
        bias.map_matrix(per_pair, metric="r10")
